-- Identity: who is behind this session. See sql/CONVENTIONS.md "Identity".
set local role tracker_owner;

create or replace function app.current_staff_id() returns bigint
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
  v_setting text := current_setting('tracker.staff_id', true);
  v_id bigint;
begin
  if session_user::text = 'authenticator' then
    -- the web app: trust the transaction-local setting, but only for an active
    -- staff member whose role is the role the app switched to
    if v_setting !~ '^[0-9]{1,18}$' then
      return null;
    end if;
    select s.id into v_id
      from app.staff s
     where s.id = v_setting::bigint
       and s.active
       and s.role::text = current_setting('role');
    return v_id;
  end if;
  -- any other login (analyst, DBA): resolved from the login itself; the GUC is ignored
  select s.id into v_id
    from app.staff s
   where s.login_role = session_user
     and s.active
     and pg_has_role(session_user, s.role::text, 'MEMBER');
  return v_id;
end
$$;
comment on function app.current_staff_id() is 'The staff id behind this session, or null. Cannot be spoofed by setting tracker.staff_id from a direct login.';

-- plpgsql rather than sql: a SQL function that is not inlined is planned on every
-- call, which policies (one call per query) would pay each time
create or replace function app.current_staff_role() returns app.staff_role
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
  v_role app.staff_role;
begin
  select role into v_role from app.staff where id = app.current_staff_id();
  return v_role;
end
$$;
comment on function app.current_staff_role() is 'The staff role of the person behind this session, or null.';

create or replace function app.current_team_id() returns integer
language plpgsql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
declare
  v_team integer;
begin
  select team_id into v_team from app.staff where id = app.current_staff_id();
  return v_team;
end
$$;
comment on function app.current_team_id() is 'The buying team of the person behind this session, or null.';

create or replace function app.clock() returns timestamptz
language sql stable security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
  select case when exists (select 1 from app_private.demo_clock)
              then coalesce(nullif(current_setting('tracker.demo_now', true), '')::timestamptz, now())
              else now() end
$$;
comment on function app.clock() is 'now(), except while the demo loader back-dates events (app_private.demo_clock holds a row).';

create or replace function app_private.lookup_login(p_email text)
returns table (staff_id bigint, role app.staff_role, active boolean, password_hash text)
language sql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
  select s.id, s.role, s.active, c.password_hash
    from app.staff s
    left join app_private.staff_credentials c on c.staff_id = s.id
   where lower(s.email) = lower(btrim(p_email))
$$;
comment on function app_private.lookup_login(text) is 'Sign-in lookup for the web app (authenticator only): the staff row and its password hash for an email.';

-- the audit trigger (running as audit_owner) records who made each change
grant usage on schema app to audit_owner;
grant execute on function app.current_staff_id() to audit_owner;
