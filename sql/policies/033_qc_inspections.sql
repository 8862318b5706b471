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

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
drop trigger if exists after_change_realtime_signal on app.qc_inspections;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.qc_inspections
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('inspection');
-- append-only: an update, delete or truncate is refused (TR011), even to the owner
create or replace trigger before_change_forbid before update or delete on app.qc_inspections
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_truncate_forbid before truncate on app.qc_inspections
  for each statement execute function audit.tg_any__forbid_change();
