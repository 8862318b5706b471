-- app.sample_costs: costing and commercial terms (sensitive).
set local role tracker_owner;
alter table app.sample_costs enable row level security;
alter table app.sample_costs force row level security;

create policy all_staff_identified on app.sample_costs as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.sample_costs is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_buyer_own_team on app.sample_costs for select to buyer, senior_buyer
  using (team_id = (select app.current_team_id()));
comment on policy select_buyer_own_team on app.sample_costs is 'Buyers and senior buyers see the costs of their own team''s samples only.';

create policy select_finance_sales_lead_directors on app.sample_costs for select
  to finance, sales_lead, ops_director, md
  using (true);
comment on policy select_finance_sales_lead_directors on app.sample_costs is 'Finance, the sales lead and directors see every cost.';

create policy update_finance_po on app.sample_costs for update to finance using (true) with check (true);
comment on policy update_finance_po on app.sample_costs is 'Finance records PO numbers and payment terms.';
-- NOTE: designers, sales executives, QC, factory liaisons, logistics and the system admin never see costs.
-- NOTE: insert is not granted: costs are recorded by app.order_sample().
-- NOTE: delete is not granted: spend history is kept.

-- SELECT is granted to every role so that views joining this table work for everyone;
-- RLS has no policy for the roles above that must not see it, so they get no rows
-- (a hidden field reads as NULL), never an error that reveals the row exists.
grant select on app.sample_costs to staff;
grant update (po_number, payment_terms) on app.sample_costs to finance;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
drop trigger if exists after_change_realtime_signal on app.sample_costs;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.sample_costs
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('cost');
