-- app.factories: factories samples go to. Everyone reads; factory liaisons and the system admin maintain.
set local role tracker_owner;
alter table app.factories enable row level security;
alter table app.factories force row level security;

create policy select_everyone on app.factories for select
  to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics, finance,
     ops_director, md, system_admin
  using (true);
comment on policy select_everyone on app.factories is 'Every staff role sees every factory.';
create policy insert_liaison_admin on app.factories for insert to factory_liaison, system_admin with check (true);
comment on policy insert_liaison_admin on app.factories is 'Factory liaisons and the system admin add factories.';
create policy update_liaison_admin on app.factories for update to factory_liaison, system_admin using (true) with check (true);
comment on policy update_liaison_admin on app.factories is 'Factory liaisons and the system admin update or deactivate factories.';
-- NOTE: delete is not granted; deactivate a factory instead (samples refer to it).

grant select on app.factories to buyer, senior_buyer, designer, sales_lead, sales_executive, qc,
  factory_liaison, logistics, finance, ops_director, md, system_admin;
grant insert (name, country, city, active), update (name, country, city, active) on app.factories
  to factory_liaison, system_admin;
