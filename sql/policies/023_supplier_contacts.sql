-- app.supplier_contacts: people at suppliers (sensitive: commercial contacts).
set local role tracker_owner;
alter table app.supplier_contacts enable row level security;
alter table app.supplier_contacts force row level security;

create policy all_staff_identified on app.supplier_contacts as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.supplier_contacts is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_commercial on app.supplier_contacts for select
  to buyer, senior_buyer, finance, ops_director, md
  using (true);
comment on policy select_commercial on app.supplier_contacts is 'Buyers, senior buyers, finance and directors see supplier contacts; nobody else does.';
create policy insert_buyers on app.supplier_contacts for insert to buyer, senior_buyer with check (true);
comment on policy insert_buyers on app.supplier_contacts is 'Buyers and senior buyers add contacts.';
create policy update_buyers on app.supplier_contacts for update to buyer, senior_buyer using (true) with check (true);
comment on policy update_buyers on app.supplier_contacts is 'Buyers and senior buyers keep contacts up to date.';
create policy delete_senior_buyer on app.supplier_contacts for delete to senior_buyer using (true);
comment on policy delete_senior_buyer on app.supplier_contacts is 'Senior buyers remove contacts who left the supplier (the audit log keeps them).';
-- NOTE: designers, sales, QC, factory liaisons, logistics and the system admin get no rows (no policy names them).

-- SELECT is granted to every role so that views joining this table work for everyone;
-- RLS has no policy for the roles above that must not see it, so they get no rows
-- (a hidden field reads as NULL), never an error that reveals the row exists.
grant select on app.supplier_contacts to staff;
grant insert (supplier_id, name, email, phone, position), update (name, email, phone, position)
  on app.supplier_contacts to buyer, senior_buyer;
grant delete on app.supplier_contacts to senior_buyer;
