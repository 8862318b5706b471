-- V0007: corrections people need (issue 10 item 14/15): a photo added by mistake is
-- removed (kept in the table and the audit log, hidden from every list), and the
-- sign-in time a staff admin reads comes from the sessions table.
set role tracker_owner;

alter table app.sample_photos
  add column removed_at timestamptz,
  add column removed_by bigint references app.staff,
  add column removed_reason text check (length(removed_reason) <= 500),
  add constraint sample_photos_removed_with_reason
    check ((removed_at is null) = (removed_by is null) and (removed_at is null) = (removed_reason is null));
comment on column app.sample_photos.removed_at is 'When the photo was removed as a mistake (app.remove_photo); a removed photo is hidden by the select policy but never deleted.';
comment on column app.sample_photos.removed_by is 'Who removed the photo.';
comment on column app.sample_photos.removed_reason is 'Why the photo was removed (required).';

create index web_sessions_staff_created_idx on app_private.web_sessions (staff_id, created_at desc);

reset role;
