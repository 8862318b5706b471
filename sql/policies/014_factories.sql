-- app.factories: factories samples go to. Everyone reads; factory liaisons and the system admin maintain.
set local role tracker_owner;
alter table app.factories enable row level security;
alter table app.factories force row level security;

create policy all_staff_identified on app.factories as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.factories is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.factories for select
  to staff
  using (true);
comment on policy select_everyone on app.factories is 'Every staff role sees every factory.';
create policy insert_liaison_admin on app.factories for insert to factory_liaison, system_admin with check (true);
comment on policy insert_liaison_admin on app.factories is 'Factory liaisons and the system admin add factories.';
create policy update_liaison_admin on app.factories for update to factory_liaison, system_admin using (true) with check (true);
comment on policy update_liaison_admin on app.factories is 'Factory liaisons and the system admin update or deactivate factories.';
-- NOTE: delete is not granted; deactivate a factory instead (samples refer to it).

grant select on app.factories to staff;
grant insert (name, country, city, active), update (name, country, city, active) on app.factories
  to factory_liaison, system_admin;
