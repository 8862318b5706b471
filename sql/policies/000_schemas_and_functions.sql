-- Schema usage and function execution, grouped by grantee.
-- Tables get their grants in their own file (one file per table).
set local role tracker_owner;

-- PUBLIC gets nothing: functions are created with EXECUTE for PUBLIC by default
revoke execute on all functions in schema app, app_private from public;

-- every staff role: the app schema, and the lifecycle internals the app wrappers call
grant usage on schema app, app_private to buyer, senior_buyer, designer, sales_lead, sales_executive, qc,
  factory_liaison, logistics, finance, ops_director, md, system_admin;
grant execute on all functions in schema app to buyer, senior_buyer, designer, sales_lead, sales_executive, qc,
  factory_liaison, logistics, finance, ops_director, md, system_admin;
grant execute on all functions in schema app_private to buyer, senior_buyer, designer, sales_lead,
  sales_executive, qc, factory_liaison, logistics, finance, ops_director, md, system_admin;
-- NOTE: the staff roles may call app_private's definer functions directly; each one
-- re-checks visibility (app_private.can_see_sample, equal to the samples policies),
-- role, scope and state itself, so skipping the app wrapper gains nothing.
-- the sign-in functions belong to the authenticator alone
revoke execute on function app_private.lookup_login(text), app_private.login_allowed(text),
  app_private.record_login_failure(text), app_private.clear_login_failures(text),
  app_private.accept_invite(text, text)
  from buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics, finance,
       ops_director, md, system_admin;

-- authenticator: only the sign-in lookup (it holds no other privilege of its own;
-- everything else happens after SET LOCAL ROLE)
grant usage on schema app, app_private to authenticator;
grant execute on function app_private.lookup_login(text), app_private.login_allowed(text),
  app_private.record_login_failure(text), app_private.clear_login_failures(text),
  app_private.accept_invite(text, text) to authenticator;
grant execute on function app.current_staff_id() to authenticator;

reset role;
set local role audit_owner;
revoke execute on all functions in schema audit from public;
grant usage on schema audit to system_admin, ops_director, md;
grant execute on function audit.verify_chain() to system_admin, ops_director, md;
-- NOTE: audit.record_change() and audit.forbid_change() are trigger functions; no role executes them directly.
