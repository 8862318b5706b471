-- Personal database logins for analysts and DBAs: a LOGIN role that is a member of
-- exactly one group role, tied to a staff row. The same policies then apply to it.
-- Callable only by a superuser / the migration admin (EXECUTE is not granted).
set local role tracker_owner;

create or replace function app_private.grant_personal_login(p_email text, p_login name, p_password text default null)
returns name
language plpgsql volatile security invoker
set search_path = pg_catalog, app, pg_temp
as $$
declare
  v_staff app.staff;
  v_other text;
begin
  if p_login is null or p_login !~ '^[a-z][a-z0-9_]{2,62}$' then
    raise exception using errcode = 'TR005',
      message = format('login name "%s" is not valid', p_login),
      hint = 'Use 3-63 lower-case letters, digits or underscores, starting with a letter.';
  end if;
  if p_login in ('authenticator', 'tracker_owner', 'audit_owner', 'postgres', 'staff')
     or p_login::text in (select unnest(enum_range(null::app.staff_role))::text) then
    raise exception using errcode = 'TR005', message = format('login name "%s" is reserved', p_login);
  end if;
  select * into v_staff from app.staff where lower(email) = lower(btrim(p_email));
  if not found then
    raise exception using errcode = 'TR006', message = format('no staff member with email %s', p_email),
      hint = 'Create the staff row first (system admin), then grant the login.';
  end if;
  if exists (select 1 from app.staff where login_role = p_login and id <> v_staff.id) then
    raise exception using errcode = 'TR005', message = format('login %s already belongs to someone else', p_login);
  end if;
  if not exists (select 1 from pg_roles where rolname = p_login) then
    execute format('create role %I login inherit', p_login);
  elsif exists (select 1 from pg_roles where rolname = p_login and (rolsuper or rolbypassrls or rolcreaterole)) then
    raise exception using errcode = 'TR005', message = format('role %s is privileged; refusing to tie it to staff', p_login);
  elsif exists (select 1 from pg_roles r where r.rolname = p_login and not r.rolcanlogin
                  and exists (select 1 from pg_auth_members m where m.roleid = r.oid)) then
    -- a group role (staff, or any role others are members of) is never someone's login
    raise exception using errcode = 'TR005', message = format('login name "%s" is reserved: it is a group role', p_login);
  end if;
  if p_password is not null then
    execute format('alter role %I password %L', p_login, p_password);
  end if;
  -- nobody can stall the building: the same timeouts as V0005 gave existing logins
  execute format('alter role %I set statement_timeout = %L', p_login, '120s');
  execute format('alter role %I set lock_timeout = %L', p_login, '5s');
  execute format('alter role %I set idle_in_transaction_session_timeout = %L', p_login, '60s');
  -- a member of exactly one group role: a reused login leaves every other one
  for v_other in select unnest(enum_range(null::app.staff_role))::text loop
    if v_other <> v_staff.role::text and pg_has_role(p_login, v_other, 'MEMBER') then
      execute format('revoke %I from %I', v_other, p_login);
    end if;
  end loop;
  execute format('grant %I to %I', v_staff.role, p_login);
  update app.staff set login_role = p_login where id = v_staff.id;
  return p_login;
end
$$;
comment on function app_private.grant_personal_login(text, name, text) is 'DBA only: creates (or reuses) a LOGIN role, makes it a member of the staff member''s group role and ties it to their staff row.';
