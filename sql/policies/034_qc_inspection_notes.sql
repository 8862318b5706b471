-- app.qc_inspection_notes: the inspector's notes (sensitive).
set local role tracker_owner;
alter table app.qc_inspection_notes enable row level security;
alter table app.qc_inspection_notes force row level security;

create policy all_staff_identified on app.qc_inspection_notes as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.qc_inspection_notes is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_qc_directors on app.qc_inspection_notes for select to qc, ops_director, md
  using (true);
comment on policy select_qc_directors on app.qc_inspection_notes is 'QC and directors read every inspector''s notes.';

create policy select_buyer_own_team on app.qc_inspection_notes for select to buyer, senior_buyer
  using (exists (select 1 from app.qc_inspections i join app.samples s on s.id = i.sample_id
                  where i.id = inspection_id and s.team_id = (select app.current_team_id())));
comment on policy select_buyer_own_team on app.qc_inspection_notes is 'Buyers and senior buyers read the notes on their own team''s samples.';
-- NOTE: designers, sales, factory liaisons, logistics, finance and the system admin never see QC notes.
-- NOTE: insert is not granted: notes are written by app.record_inspection(); update/delete are refused by trigger.

-- SELECT is granted to every role so that views joining this table work for everyone;
-- RLS has no policy for the roles above that must not see it, so they get no rows
-- (a hidden field reads as NULL), never an error that reveals the row exists.
grant select on app.qc_inspection_notes to staff;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
-- append-only: an update, delete or truncate is refused (TR011), even to the owner
create or replace trigger before_change_forbid before update or delete on app.qc_inspection_notes
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_truncate_forbid before truncate on app.qc_inspection_notes
  for each statement execute function audit.tg_any__forbid_change();
