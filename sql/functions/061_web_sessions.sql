-- Web sessions: the browser holds a random token, the database its hash. The
-- token, put into the transaction-local setting tracker.session, is the web app's
-- only identity (app.current_staff_id()). Sessions end on logout, password change
-- or reset, deactivation and role change - here, in the database, for every
-- session of that person at once.
set local role tracker_owner;

create or replace function app_private.start_session(
  p_staff_id bigint, p_lifetime interval default interval '12 hours',
  p_client_addr inet default null, p_user_agent text default null)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_role app.staff_role;
  v_token text := new_token();
begin
  perform require_session_lifetime(p_lifetime);
  select s.role into v_role from app.staff s where s.id = p_staff_id;
  if not found then
    raise exception using errcode = 'TR006', message = format('no staff member %s', p_staff_id);
  end if;
  insert into web_sessions (token_hash, staff_id, role, expires_at, client_addr, user_agent)
  values (sha256(convert_to(v_token, 'UTF8')), p_staff_id, v_role, now() + p_lifetime, p_client_addr,
          left(p_user_agent, 512));
  return v_token;
end
$$;
comment on function app_private.start_session(bigint, interval, inet, text) is 'A new session for a staff member with their current role, ending after p_lifetime at the latest; returns the token (only its hash is stored). Not granted to anyone: finish_sign_in calls it after a verified password; tests, the demo loader and benchmarks call it as the owner.';

create or replace function app_private.resume_session(
  p_token text, out staff_id bigint, out role app.staff_role, out status text, out end_reason text)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_session web_sessions;
  v_staff app.staff;
begin
  status := 'unknown';
  if p_token is null or p_token !~ '^[0-9a-f]{64}$' then
    return;
  end if;
  select * into v_session from web_sessions w where w.token_hash = sha256(convert_to(p_token, 'UTF8'));
  if not found then
    return;
  end if;
  select * into v_staff from app.staff s where s.id = v_session.staff_id;
  if v_session.ended_at is not null then
    status := 'ended';
    end_reason := v_session.end_reason;
  elsif v_session.expires_at <= now() then
    status := 'expired';
  elsif not v_staff.active then  -- the triggers end these; kept as a second line
    status := 'ended';
    end_reason := 'deactivated';
  elsif v_staff.role <> v_session.role then
    status := 'ended';
    end_reason := 'role_changed';
  else
    status := 'active';
    staff_id := v_session.staff_id;
    role := v_session.role;
    -- last seen, at most once a minute (not a write per request)
    update web_sessions w set last_seen_at = now()
     where w.id = v_session.id and w.last_seen_at < now() - interval '1 minute';
  end if;
end
$$;
comment on function app_private.resume_session(text) is 'Per request (authenticator only): whether a session token is active (then whose, and the role to switch to), ended (and why), expired or unknown. Notes when it was last seen.';

create or replace function app_private.end_sessions(p_staff_id bigint, p_reason text) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
declare
  v_count integer;
begin
  update web_sessions w set ended_at = now(), end_reason = p_reason
   where w.staff_id = p_staff_id and w.ended_at is null;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
comment on function app_private.end_sessions(bigint, text) is 'Ends every open session of a person, with the reason (signed_out, password_changed, password_reset, deactivated, role_changed); returns how many. Internal: triggers and the reset function.';

create or replace function app.end_session() returns boolean
language plpgsql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
declare
  v_token text := current_setting('tracker.session', true);
begin
  if session_user::text <> 'authenticator' or v_token is null or v_token !~ '^[0-9a-f]{64}$' then
    return false;  -- a personal login has no web session to end
  end if;
  update web_sessions w set ended_at = now(), end_reason = 'signed_out'
   where w.token_hash = sha256(convert_to(v_token, 'UTF8')) and w.ended_at is null;
  return found;
end
$$;
comment on function app.end_session() is 'Sign out: ends the caller''s own web session (the token in tracker.session), so a copy of the cookie no longer works. True when a session was ended.';

------------------------------------------------------------------------------
-- Triggers: a role change or deactivation ends every session of that person; so
-- does any change of their password (which also forgets their known browsers).
------------------------------------------------------------------------------
create or replace function app_private.tg_staff__end_sessions() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
begin
  if old.active and not new.active then
    perform end_sessions(new.id, 'deactivated');
  elsif old.role is distinct from new.role then
    perform end_sessions(new.id, 'role_changed');
  end if;
  return null;
end
$$;
comment on function app_private.tg_staff__end_sessions() is 'AFTER UPDATE on app.staff: deactivation or a role change ends every web session of that person.';

create or replace function app_private.tg_staff_credentials__end_sessions() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
begin
  perform end_sessions(new.staff_id, 'password_changed');
  delete from known_devices d where d.staff_id = new.staff_id;
  return null;
end
$$;
comment on function app_private.tg_staff_credentials__end_sessions() is 'AFTER UPDATE of the password hash on staff_credentials: ends every web session of that person and forgets the browsers they signed in from.';

