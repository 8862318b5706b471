-- app.samples: one row per physical sample. Who sees which rows; who edits which
-- fields. The state column is never granted: it moves only through the lifecycle
-- functions (sql/functions/040_lifecycle.sql).
set local role tracker_owner;
alter table app.samples enable row level security;
alter table app.samples force row level security;

create policy all_staff_identified on app.samples as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.samples is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_buyer_own_team_or_in_flight on app.samples for select to buyer, senior_buyer
  using (team_id = (select app.current_team_id())
         or state not in ('returned', 'cut-for-production'));
comment on policy select_buyer_own_team_or_in_flight on app.samples is 'Buyers and senior buyers see all of their own team''s samples and every team''s samples still in flight (to spot near-duplicates).';

create policy select_design_sales_ordered_onward on app.samples for select
  to designer, sales_lead, sales_executive
  using (state <> 'requested');
comment on policy select_design_sales_ordered_onward on app.samples is 'Designers and sales see samples once ordered (what is coming to them, what they hold, what happened to it).';

create policy select_qc_received_onward on app.samples for select to qc
  using (received_on is not null);
comment on policy select_qc_received_onward on app.samples is 'QC sees samples that have been received, from receipt onward.';

create policy select_factory_liaison_factory_bound on app.samples for select to factory_liaison
  using (factory_id is not null or state in ('received', 'with-design', 'with-sales'));
comment on policy select_factory_liaison_factory_bound on app.samples is 'A factory liaison sees samples that are or have been at a factory, and samples in the building that they may send to one; never requests, orders or samples that never left for a factory after returning.';

create policy select_all_rows on app.samples for select
  to logistics, finance, ops_director, md, system_admin
  using (true);
comment on policy select_all_rows on app.samples is 'Logistics, finance, directors and the system admin see every sample (costs are a separate table).';

create policy update_buyer_own_team_before_receipt on app.samples for update to buyer, senior_buyer
  using (team_id = (select app.current_team_id())
         and state in ('requested', 'ordered'))
  with check (team_id = (select app.current_team_id()));
comment on policy update_buyer_own_team_before_receipt on app.samples is 'Buyers and senior buyers correct title, style, category and season of their own team''s samples until received.';

create policy update_logistics_in_building on app.samples for update to logistics
  using (state in ('received', 'with-design', 'with-sales'))
  with check (true);
comment on policy update_logistics_in_building on app.samples is 'Logistics moves samples that are in the building between locations.';
-- NOTE: insert is not granted: samples are created only by app.request_sample().
-- NOTE: delete is not granted: a sample's history is kept forever.
-- NOTE: state, holder, factory, dates and flags are not granted for update to anyone;
--       the lifecycle functions change them and write the event.

grant select on app.samples to staff;
grant update (title, style_code, category_id, season_id) on app.samples to buyer, senior_buyer;
grant update (location_id) on app.samples to logistics;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
-- every column but search (derived: a supplier's or category's rename rebuilds it without the
-- sample changing) and version itself; tests/test_versions.py fails when a new column is missing
create or replace trigger before_update_bump_version before update of
  title, style_code, category_id, season_id, team_id, requested_by, supplier_id, state, holder_id, location_id,
  factory_id, on_loan, expected_on, received_on, return_due_on, qc_rejected, production_approved_by,
  production_approved_at, courier_ref, withdrawn_at, state_changed_at, created_at, updated_at, last_qc_result,
  transit_from, transit_since, external_ref, id
  on app.samples for each row execute function app_private.tg_any__bump_version();
drop trigger if exists before_write_search on app.samples;  -- until V0021 one trigger for both (renamed below)
create or replace trigger before_insert_search before insert
  on app.samples for each row execute function app_private.tg_samples__set_search();
-- only when a searched value really changes: every transition sets these columns to what they were
create or replace trigger before_update_search before update of title, style_code, category_id, supplier_id
  on app.samples for each row
  -- written as one flat OR (a row comparison deparses nested, and a dump restored would differ)
  when (old.title is distinct from new.title or old.style_code is distinct from new.style_code
        or old.category_id is distinct from new.category_id or old.supplier_id is distinct from new.supplier_id)
  execute function app_private.tg_samples__set_search();
-- what the near-duplicate check matches on (app_private.sample_match, V0023): written when a
-- sample is created and when a matched value really changes, never by a plain move
create or replace trigger after_insert_keep_match after insert
  on app.samples for each row execute function app_private.tg_samples__keep_match();
create or replace trigger after_update_keep_match after update of title, style_code, category_id, state
  on app.samples for each row
  when (old.title is distinct from new.title or old.style_code is distinct from new.style_code
        or old.category_id is distinct from new.category_id
        or (old.state in ('returned', 'cut-for-production')) <> (new.state in ('returned', 'cut-for-production')))
  execute function app_private.tg_samples__keep_match();
drop trigger if exists after_change_realtime_signal on app.samples;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.samples
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('sample');
-- analytics (V0022): a sample counted under another team, category or supplier has its stays
-- summed again at the next refresh
create or replace trigger after_update_queue_stays after update of team_id, category_id, supplier_id on app.samples
  for each row
  -- (three conditions, not one row comparison: that is stored as nested ORs, which a dump and
  -- restore flattens, so tests/test_backup.py would see the schema change)
  when (old.team_id is distinct from new.team_id or old.category_id is distinct from new.category_id
        or old.supplier_id is distinct from new.supplier_id)
  execute function app_private.tg_samples__queue_stays();
