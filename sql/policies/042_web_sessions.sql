-- app_private.web_sessions: signed-in browsers (token hashes). And the grants of
-- every sign-in, session, invitation and reset function, grouped by grantee.
set local role tracker_owner;
alter table app_private.web_sessions enable row level security;
alter table app_private.web_sessions force row level security;
-- NOTE: no policy and no grant: only app.current_staff_id() and the session functions below read or write it.

-- nobody by default (000 revokes EXECUTE from PUBLIC; this says it once more for
-- the staff roles, and grants below only where meant)
revoke execute on function
  app_private.new_token(), app_private.begin_sign_in(text, inet, text),
  app_private.require_session_lifetime(interval),
  app_private.finish_sign_in(bigint, boolean, interval, text, text),
  app_private.may_manage_credentials(app.staff_role, app.staff_role),
  app_private.require_credentials_admin(bigint, text),
  app_private.accept_invite(text, text),
  app_private.start_session(bigint, interval, inet, text), app_private.resume_session(text),
  app_private.end_sessions(bigint, text),
  app_private.tg_staff__end_sessions(), app_private.tg_staff_credentials__end_sessions()
  from public, staff;

-- authenticator (the web app, before it switches to anyone's role): sign in, resume
-- a session, accept a sign-up or reset link
grant execute on function app_private.begin_sign_in(text, inet, text),
  app_private.finish_sign_in(bigint, boolean, interval, text, text),
  app_private.resume_session(text), app_private.accept_invite(text, text)
  to authenticator;
-- NOTE: app_private.start_session is granted to nobody: the web app gets a session only from finish_sign_in.
-- (Tests, the demo loader and the benchmarks call start_session as the owner.)
-- NOTE: app_private.end_sessions, require_credentials_admin and the two trigger functions are internal.

-- every staff role (after SET ROLE, identity from the session): sign out
grant execute on function app.end_session() to staff;

-- the roles that administer staff (each function checks who may administer whom)
grant execute on function app.create_invite(bigint), app.reset_password(bigint) to system_admin, ops_director, md;
-- when each person last signed in (read from the sessions, for the staff admin page)
grant execute on function app.last_sign_ins() to system_admin, ops_director, md;
revoke execute on function app.create_invite(bigint), app.reset_password(bigint)
  from buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics, finance;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger after_end_realtime_sessions after update of ended_at on app_private.web_sessions
  for each statement execute function app_private.tg_web_sessions__signal_end();
