-- app.locations: places in the building. Everyone reads; logistics and the system admin maintain.
set local role tracker_owner;
alter table app.locations enable row level security;
alter table app.locations force row level security;

create policy all_staff_identified on app.locations as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.locations is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.locations for select
  to staff
  using (true);
comment on policy select_everyone on app.locations is 'Every staff role sees every location, so anyone can find a sample.';
create policy insert_logistics_admin on app.locations for insert to logistics, system_admin with check (true);
comment on policy insert_logistics_admin on app.locations is 'Logistics and the system admin add shelves and rooms.';
create policy update_logistics_admin on app.locations for update to logistics, system_admin using (true) with check (true);
comment on policy update_logistics_admin on app.locations is 'Logistics and the system admin rename shelves and rooms.';
-- NOTE: delete is not granted because events refer to past locations.

grant select on app.locations to staff;
grant insert (code, name, kind), update (code, name, kind) on app.locations to logistics, system_admin;
