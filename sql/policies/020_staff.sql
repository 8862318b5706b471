-- app.staff: the people. Everyone reads names and roles (to see who holds what);
-- the system admin invites, changes role/team and deactivates.
set local role tracker_owner;
alter table app.staff enable row level security;
alter table app.staff force row level security;

create policy all_staff_identified on app.staff as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.staff is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.staff for select
  to staff
  using (true);
comment on policy select_everyone on app.staff is 'Every staff role sees colleagues (name, role, team; the e-mail only for those who administer staff, by column grant), so holders and requesters can be named.';
create policy insert_admins on app.staff for insert to system_admin, ops_director, md with check (true);
comment on policy insert_admins on app.staff is 'The system admin and the directors add staff (only directors in roles that read costs: trigger before_change_rules).';
create policy update_admins on app.staff for update to system_admin, ops_director, md using (true) with check (true);
comment on policy update_admins on app.staff is 'The system admin and the directors change a person''s name, email, role, team or active flag (never their own role, team or flag; only directors touch roles that read costs: trigger before_change_rules).';
-- NOTE: the rules no grant can say live in sql/functions/070_staff_rules.sql: nobody
--       changes their own role, team or active flag; only a director adds or changes
--       someone in a role that reads costs; one active system admin and one MD always remain.
-- NOTE: a personal login (staff.login_role) does not outlive its person's rights:
--       deactivating or re-roling them revokes the login's group role in the same
--       transaction; only a DBA grants it again (make analyst).
-- NOTE: delete is not granted: deactivate instead; events and audit rows name staff forever.
-- NOTE: login_role is not granted to anyone; personal logins are made by a DBA (make analyst).

-- everyone reads the directory columns (who holds what, who asked for it); the e-mail
-- address and the database login only those who administer staff
grant select (id, full_name, role, team_id, active, created_at) on app.staff to buyer, senior_buyer, designer,
  sales_lead, sales_executive, qc, factory_liaison, logistics, finance;
grant select on app.staff to ops_director, md, system_admin;
-- NOTE: email and login_role are not granted to the other nine roles: a colleague
--       directory shows name, role and team; reading an address is an error (42501).
grant insert (email, full_name, role, team_id, active), update (email, full_name, role, team_id, active)
  on app.staff to system_admin, ops_director, md;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger after_update_end_sessions after update of role, active on app.staff
  for each row when (old.role is distinct from new.role or old.active is distinct from new.active)
  execute function app_private.tg_staff__end_sessions();
create or replace trigger before_change_rules before insert or update on app.staff
  for each row execute function app_private.tg_staff__check_change();
create or replace trigger after_update_keep_admins after update of role, active on app.staff
  for each statement execute function app_private.tg_staff__keep_admins();
create or replace trigger after_update_sync_login after update of role, active, login_role on app.staff
  for each row execute function app_private.tg_staff__sync_login();
-- every change bumps the row's version (app_private.tg_any__bump_version, 040_lifecycle.sql): the
-- admin form sends the version it was loaded from
create or replace trigger before_update_bump_version before update on app.staff
  for each row execute function app_private.tg_any__bump_version();
