-- app.teams: buying teams. Everyone reads; the system admin maintains.
set local role tracker_owner;
alter table app.teams enable row level security;
alter table app.teams force row level security;

create policy all_staff_identified on app.teams as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.teams is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.teams for select
  to staff
  using (true);
comment on policy select_everyone on app.teams is 'Every staff role sees every buying team.';

create policy insert_system_admin on app.teams for insert to system_admin with check (true);
comment on policy insert_system_admin on app.teams is 'The system admin creates teams.';
create policy update_system_admin on app.teams for update to system_admin using (true) with check (true);
comment on policy update_system_admin on app.teams is 'The system admin renames teams.';
-- NOTE: delete is not granted because samples and staff keep referring to a team forever.

grant select on app.teams to staff;
grant insert (code, name), update (code, name) on app.teams to system_admin;
