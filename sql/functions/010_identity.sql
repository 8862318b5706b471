-- Identity: who is behind this session. See sql/CONVENTIONS.md "Identity".
set local role tracker_owner;

create or replace function app.current_staff_id() returns bigint
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_token text;
  v_id bigint;
begin
  if session_user::text = 'authenticator' then
    -- the web app: identity comes only from a session token in the transaction-local
    -- setting tracker.session, looked up by its hash: unexpired, not ended, the person
    -- active, and their role = the role at sign-in = the role the app switched to
    v_token := current_setting('tracker.session', true);
    if v_token is null or v_token !~ '^[0-9a-f]{64}$' then
      return null;
    end if;
    select w.staff_id into v_id
      from app_private.web_sessions w
      join app.staff s on s.id = w.staff_id
     where w.token_hash = sha256(convert_to(v_token, 'UTF8'))
       and w.ended_at is null
       and w.expires_at > now()
       and s.active
       and s.role = w.role
       and w.role::text = current_setting('role');
    return v_id;
  end if;
  -- any other login (analyst, DBA): resolved from the login itself; settings are ignored
  select s.id into v_id
    from app.staff s
   where s.login_role = session_user
     and s.active
     and pg_has_role(session_user, s.role::text, 'MEMBER');
  return v_id;
end
$$;
comment on function app.current_staff_id() is 'The staff id behind this session, or null. The web app (authenticator) is identified only by a live session token in tracker.session; other logins by session_user. No setting makes a direct login someone else.';

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

create or replace function app.current_staff_email() returns text
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$ select email from app.staff where id = app.current_staff_id() $$;
comment on function app.current_staff_email() is 'The e-mail address of the person behind this session, or null (the column is granted only to those who administer staff; everyone may read their own).';

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

create or replace function app.current_staff_is_director() returns boolean
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
  select coalesce((select s.role in ('ops_director', 'md') from app.staff s
                    where s.id = app.current_staff_id() and s.active), false)
$$;
comment on function app.current_staff_is_director() is 'Whether the person behind this session is a director (the ops director or the MD): who may refresh the analytics now (app.refresh_analytics) and extend or mark chased any overdue sample (require_responsible). The pages ask it before offering those buttons.';

-- plpgsql rather than sql: as a definer it is never inlined, and a SQL function that is not
-- inlined is planned again in every transaction at every place it is called from (four times
-- in one transition), where plpgsql keeps its plan for the session
create or replace function app.clock() returns timestamptz
language plpgsql stable security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
declare
  v_demo text := nullif(current_setting('tracker.demo_now', true), '');
begin
  -- the setting is anyone's to set; it counts only while the demo loader's row is there (and
  -- without it, as in every transaction but the loader's, the table is not read at all)
  if v_demo is not null and exists (select 1 from app_private.demo_clock) then
    return v_demo::timestamptz;
  end if;
  return now();
end
$$;
comment on function app.clock() is 'now(), except while the demo loader back-dates events (app_private.demo_clock holds a row).';

-- the audit trigger (running as audit_owner) records who made each change
grant usage on schema app to audit_owner;
grant execute on function app.current_staff_id() to audit_owner;
