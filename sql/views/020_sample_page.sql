-- What the sample page shows, said in SQL: its timeline, comment thread, photos and QC
-- inspections, each a security_invoker view (the caller's RLS applies to every table
-- joined), filtered by sample_id and ordered by the page. tracker/web/samples.py reads
-- these instead of building the joins itself.
set local role tracker_owner;

create view app.sample_timeline with (security_invoker = true) as
select e.id, e.sample_id, e.at, e.action, e.from_state::text as from_state, e.to_state::text as to_state,
       e.note, e.details, e.is_override, st.full_name as actor, e.actor_role
  from app.sample_events e
  left join app.staff st on st.id = e.actor_id;
comment on view app.sample_timeline is 'A sample''s events with the actor''s name (newest first on the page); rows as app.sample_events'' policies allow.';

create view app.sample_comment_thread with (security_invoker = true) as
select c.id, c.sample_id, c.body, c.is_qc_rejection, c.created_at, c.edited_at, c.author_id,
       st.full_name as author,
       -- the same rule as the update policy on app.sample_comments (update_everyone_own_recent)
       (c.author_id = app.current_staff_id() and not c.is_qc_rejection
        and c.created_at > now() - app.comment_edit_window()) as editable
  from app.sample_comments c
  join app.staff st on st.id = c.author_id;
comment on view app.sample_comment_thread is 'A sample''s comments with the author''s name and whether the signed-in person may still edit each one.';

create view app.sample_photo_list with (security_invoker = true) as
select p.id, p.sample_id, p.caption, p.width, p.height, p.created_at, st.full_name as uploader,
       p.id in (select app.removable_photos(p.sample_id)) as removable
  from app.sample_photos p
  join app.staff st on st.id = p.uploaded_by;
comment on view app.sample_photo_list is 'A sample''s photos (not the image bytes) with the uploader''s name and whether the signed-in person may remove each one now.';

create view app.sample_inspection_list with (security_invoker = true) as
select i.id, i.sample_id, i.result::text as result, i.reason, i.inspected_at, st.full_name as inspector, n.notes
  from app.qc_inspections i
  join app.staff st on st.id = i.inspector_id
  left join app.qc_inspection_notes n on n.inspection_id = i.id;
comment on view app.sample_inspection_list is 'A sample''s QC inspections with the inspector''s name; the inspector''s notes read as NULL for whoever app.qc_inspection_notes'' policies hide them from.';

grant select on app.sample_timeline, app.sample_comment_thread, app.sample_photo_list, app.sample_inspection_list
  to staff;
