-- app.sample_photos: photos of a sample, visible with it.
set local role tracker_owner;
alter table app.sample_photos enable row level security;
alter table app.sample_photos force row level security;

create policy all_staff_identified on app.sample_photos as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.sample_photos is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.sample_photos for select
  to staff
  using (removed_at is null and exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.sample_photos is 'Anyone who can see a sample sees its photos, except those removed as a mistake.';

create policy insert_uploaders_own_on_visible_sample on app.sample_photos for insert
  to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics
  with check (uploaded_by = (select app.current_staff_id())
              and exists (select 1 from app.samples s where s.id = sample_id));
comment on policy insert_uploaders_own_on_visible_sample on app.sample_photos is 'People who handle samples (buyers, design, sales, QC, factory liaison, logistics) add photos, as themselves, to samples they can see.';
-- NOTE: finance, directors and the system admin do not upload photos; nobody edits or deletes one (evidence).
-- NOTE: a photo added by mistake is removed only by app.remove_photo() (the uploader within
--       24 hours, or a director): the row stays, hidden by select_everyone_visible_sample, and the
--       change is in the audit log; removed_* are granted to nobody.

grant select on app.sample_photos to staff;
grant insert (sample_id, uploaded_by, content_type, width, height, image, thumbnail, caption) on app.sample_photos
  to buyer, senior_buyer, designer, sales_lead, sales_executive, qc, factory_liaison, logistics;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
drop trigger if exists after_change_realtime_signal on app.sample_photos;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.sample_photos
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('photo');
