-- Staff administration rules the grants cannot say: nobody raises their own rights,
-- only directors hand out roles that read costs, the building always keeps an
-- active system admin and an active MD, and a person's personal database login
-- loses its group role when they are deactivated or re-roled.
set local role tracker_owner;

create or replace function app_private.cost_reading_roles() returns app.staff_role[]
language sql immutable parallel safe
as $$ select '{buyer,senior_buyer,sales_lead,finance,ops_director,md}'::app.staff_role[] $$;
comment on function app_private.cost_reading_roles() is 'Roles some policy lets read costs (sql/policies/031_sample_costs.sql); only a director may give or change them.';

create or replace function app_private.tg_staff__check_change() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
begin
  if tg_op = 'UPDATE' and new is not distinct from old then
    return new;  -- nothing changes
  end if;
  select * into v_me from app.staff where id = app.current_staff_id();
  if v_me.id is null then
    return new;  -- a DBA or the migrations: no staff identity, no staff rule
  end if;
  if tg_op = 'UPDATE' and new.id = v_me.id
     and (new.role, new.team_id, new.active) is distinct from (old.role, old.team_id, old.active) then
    raise exception using errcode = 'TR002',
      message = 'nobody can change their own role, team or active flag',
      hint = 'Ask another administrator (a director for roles that read costs).';
  end if;
  if v_me.role not in ('ops_director', 'md')
     and (new.role = any (app_private.cost_reading_roles())
          or (tg_op = 'UPDATE' and old.role = any (app_private.cost_reading_roles()))) then
    raise exception using errcode = 'TR002',
      message = format('only the ops director or the MD can add or change %s',
                       app_private.role_label(case when tg_op = 'UPDATE' and old.role = any (app_private.cost_reading_roles())
                                                   then old.role else new.role end)),
      detail = format('you are signed in as %s; %s can read costs', app_private.role_label(v_me.role),
                      app_private.role_label(new.role)),
      hint = 'Ask a director.';
  end if;
  return new;
end
$$;
comment on function app_private.tg_staff__check_change() is 'BEFORE INSERT/UPDATE on staff: nobody changes their own role, team or active flag; only directors add or change people in roles that read costs (TR002).';

create or replace function app_private.tg_staff__keep_admins() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_role app.staff_role;
begin
  foreach v_role in array '{system_admin,md}'::app.staff_role[] loop
    if not exists (select 1 from app.staff where role = v_role and active) then
      raise exception using errcode = 'TR005',
        message = format('the tracker must keep at least one active %s', replace(v_role::text, '_', ' ')),
        detail = format('this change would leave no active %s', replace(v_role::text, '_', ' ')),
        hint = 'Give the role to someone else first.';
    end if;
  end loop;
  return null;
end
$$;
comment on function app_private.tg_staff__keep_admins() is 'AFTER UPDATE on staff: refuses a change that leaves no active system admin or no active MD (TR005).';

create or replace function app_private.tg_staff__sync_login() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  -- out of the group role when the person leaves it, is deactivated or loses the login;
  -- giving a login new rights stays a DBA's deliberate act (make analyst)
  if old.login_role is not null
     and (new.login_role is distinct from old.login_role or new.role <> old.role or not new.active)
     and exists (select 1 from pg_roles where rolname = old.login_role)
     and pg_has_role(old.login_role, old.role::text, 'MEMBER') then
    execute format('revoke %I from %I', old.role, old.login_role);
  end if;
  return null;
end
$$;
comment on function app_private.tg_staff__sync_login() is 'AFTER UPDATE on staff (definer: the owner holds ADMIN OPTION on the group roles): deactivating or re-roling a person revokes their personal login''s group role in the same transaction; a DBA grants new rights with make analyst.';

