-- app.sample_comments: the thread on a sample. Anyone who sees the sample reads and
-- posts; authors edit their own text for app.comment_edit_window(); nobody deletes.
set local role tracker_owner;
alter table app.sample_comments enable row level security;
alter table app.sample_comments force row level security;

create policy all_staff_identified on app.sample_comments as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.sample_comments is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.sample_comments for select
  to staff
  using (exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.sample_comments is 'Anyone who can see a sample reads its comment thread.';

create policy insert_everyone_own_on_visible_sample on app.sample_comments for insert
  to staff
  with check (author_id = (select app.current_staff_id())
              and not is_qc_rejection
              and exists (select 1 from app.samples s where s.id = sample_id));
comment on policy insert_everyone_own_on_visible_sample on app.sample_comments is 'Anyone posts a comment, as themselves, on a sample they can see; QC rejection comments come only from app.record_inspection().';

create policy update_everyone_own_recent on app.sample_comments for update
  to staff
  using (author_id = (select app.current_staff_id()) and not is_qc_rejection
         and created_at > now() - app.comment_edit_window())
  with check (author_id = (select app.current_staff_id()));
comment on policy update_everyone_own_recent on app.sample_comments is 'Authors correct their own comment within app.comment_edit_window() of posting; QC rejection comments never change.';
-- NOTE: delete is not granted, and a trigger refuses it even to the owner: comments are kept forever.

grant select on app.sample_comments to staff;
grant insert (sample_id, author_id, body) on app.sample_comments to staff;
grant update (body) on app.sample_comments to staff;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger before_update_comment before update on app.sample_comments
  for each row execute function app_private.tg_sample_comments__check_update();
create or replace trigger before_delete_forbid before delete on app.sample_comments
  for each row execute function audit.tg_any__forbid_change();
drop trigger if exists after_change_realtime_signal on app.sample_comments;  -- a constraint trigger has no OR REPLACE
create constraint trigger after_change_realtime_signal after insert or update on app.sample_comments
  deferrable initially deferred
  for each row execute function app_private.tg_any__realtime_signal('comment');
