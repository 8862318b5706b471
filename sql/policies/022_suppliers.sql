-- app.suppliers: companies samples come from. Everyone reads the name; buyers add suppliers.
set local role tracker_owner;
alter table app.suppliers enable row level security;
alter table app.suppliers force row level security;

create policy all_staff_identified on app.suppliers as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.suppliers is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.suppliers for select
  to staff
  using (true);
comment on policy select_everyone on app.suppliers is 'Every staff role sees supplier names and countries (contacts are separate and sensitive).';
create policy insert_buyers_admin on app.suppliers for insert to buyer, senior_buyer, system_admin with check (true);
comment on policy insert_buyers_admin on app.suppliers is 'Buyers, senior buyers and the system admin add new suppliers.';
create policy update_senior_buyer_admin on app.suppliers for update to senior_buyer, system_admin
  using (true) with check (true);
comment on policy update_senior_buyer_admin on app.suppliers is 'Senior buyers and the system admin rename or deactivate suppliers.';
-- NOTE: delete is not granted: a supplier's quality record must survive.

grant select on app.suppliers to staff;
grant insert (name, country) on app.suppliers to buyer, senior_buyer, system_admin;
grant update (name, country, active) on app.suppliers to senior_buyer, system_admin;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
drop trigger if exists after_change_realtime_signal on app.suppliers;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.suppliers
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('supplier');
create or replace trigger after_rename_refresh_search after update of name on app.suppliers
  for each row when (old.name is distinct from new.name)
  execute function app_private.tg_any__refresh_search();
