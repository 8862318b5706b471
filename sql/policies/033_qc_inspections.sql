-- app.qc_inspections: results and rejection reasons. Visible with the sample.
set local role tracker_owner;
alter table app.qc_inspections enable row level security;
alter table app.qc_inspections force row level security;

create policy all_staff_identified on app.qc_inspections as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.qc_inspections is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.qc_inspections for select
  to staff
  using (exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.qc_inspections is 'Anyone who can see a sample sees its inspection results and rejection reasons (the supplier''s quality record).';
-- NOTE: insert is not granted: inspections are recorded by app.record_inspection() (QC only).
-- NOTE: update/delete are not granted and a trigger refuses them: a rejection stays forever.

grant select on app.qc_inspections to staff;
