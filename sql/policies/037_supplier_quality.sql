-- app.supplier_quality: each supplier's QC record. Everyone reads; only the lifecycle writes.
set local role tracker_owner;
alter table app.supplier_quality enable row level security;
alter table app.supplier_quality force row level security;

create policy all_staff_identified on app.supplier_quality as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.supplier_quality is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.supplier_quality for select
  to staff
  using (true);
comment on policy select_everyone on app.supplier_quality is 'Every staff role sees every supplier''s QC record (counts only, across all teams).';
-- NOTE: insert/update/delete are not granted: app.record_inspection() keeps the counts, and they only grow.

grant select on app.supplier_quality to staff;
