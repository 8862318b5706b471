-- app.sample_events: the timeline. Visible with its sample; written only by the lifecycle functions.
set local role tracker_owner;
alter table app.sample_events enable row level security;
alter table app.sample_events force row level security;

create policy all_staff_identified on app.sample_events as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.sample_events is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.sample_events for select
  to staff
  using (exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.sample_events is 'Anyone who can see a sample sees its whole timeline (events never carry costs or QC notes).';
-- NOTE: insert/update/delete are not granted: events are written by the lifecycle
-- functions only, and a trigger refuses update/delete/truncate even to the owner.

grant select on app.sample_events to staff;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
-- NOTE: no realtime signal of its own (until V0021 it had one): every event is written with a
--       change that signals already (the sample's insert or update, or the removed photo's
--       update), and one trigger fewer per transition is one inbox row fewer.
drop trigger if exists after_change_realtime_signal on app.sample_events;
-- append-only: an update, delete or truncate is refused (TR011), even to the owner
create or replace trigger before_change_forbid before update or delete on app.sample_events
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_truncate_forbid before truncate on app.sample_events
  for each statement execute function audit.tg_any__forbid_change();
-- analytics (V0022): the samples that moved have their stays summed again at the next refresh
drop trigger if exists after_insert_queue_stays on app.sample_events;  -- transition tables: no OR REPLACE
create trigger after_insert_queue_stays after insert on app.sample_events
  referencing new table as new_events
  for each statement execute function app_private.tg_sample_events__queue_stays();
