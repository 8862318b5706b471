-- app.staff: the people. Everyone reads names and roles (to see who holds what);
-- the system admin invites, changes role/team and deactivates.
set local role tracker_owner;
alter table app.staff enable row level security;
alter table app.staff force row level security;

create policy select_everyone on app.staff for select
  to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics, finance,
     ops_director, md, system_admin
  using (true);
comment on policy select_everyone on app.staff is 'Every staff role sees colleagues (name, email, role, team), so holders and requesters can be named.';
create policy insert_system_admin on app.staff for insert to system_admin with check (true);
comment on policy insert_system_admin on app.staff is 'The system admin adds staff.';
create policy update_system_admin on app.staff for update to system_admin using (true) with check (true);
comment on policy update_system_admin on app.staff is 'The system admin changes a person''s name, email, role, team or active flag.';
-- NOTE: delete is not granted: deactivate instead; events and audit rows name staff forever.
-- NOTE: login_role is not granted to anyone; personal logins are made by a DBA (make analyst).

grant select on app.staff to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison,
  logistics, finance, ops_director, md, system_admin;
grant insert (email, full_name, role, team_id, active), update (email, full_name, role, team_id, active)
  on app.staff to system_admin;
