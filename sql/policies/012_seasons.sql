-- app.seasons: trading seasons. Everyone reads; the system admin maintains.
set local role tracker_owner;
alter table app.seasons enable row level security;
alter table app.seasons force row level security;

create policy all_staff_identified on app.seasons as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.seasons is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.seasons for select
  to staff
  using (true);
comment on policy select_everyone on app.seasons is 'Every staff role sees every season.';
create policy insert_system_admin on app.seasons for insert to system_admin with check (true);
comment on policy insert_system_admin on app.seasons is 'The system admin opens new seasons.';
create policy update_system_admin on app.seasons for update to system_admin using (true) with check (true);
comment on policy update_system_admin on app.seasons is 'The system admin corrects season names and dates.';
-- NOTE: delete is not granted because samples refer to their season forever.

grant select on app.seasons to staff;
grant insert (code, name, starts_on, ends_on), update (code, name, starts_on, ends_on) on app.seasons to system_admin;
