-- app.realtime_events: the realtime outbox. A row is readable exactly when the thing it
-- signals is: its sample, and for a costing change the sample's costs. The relay reads
-- it through each subscriber's own role and session (tracker/web/realtime.py).
set local role tracker_owner;
alter table app.realtime_events enable row level security;
alter table app.realtime_events force row level security;
create policy all_staff_identified on app.realtime_events as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.realtime_events is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';
create policy select_everyone_visible_signal on app.realtime_events for select
  to staff
  using ((kind = 'supplier' and exists (select 1 from app.suppliers su where su.id = ref_id))
         or (exists (select 1 from app.samples s where s.id = sample_id)
             and (kind <> 'cost' or exists (select 1 from app.sample_costs c where c.sample_id = realtime_events.sample_id))));
comment on policy select_everyone_visible_signal on app.realtime_events is 'A signal is seen by whoever sees its sample; a costing signal only by whoever sees that sample''s costs; a supplier''s signal by whoever sees the supplier.';
-- NOTE: insert/update/delete are not granted: rows come only from the sequencer
--       (app_private.sequence_realtime, a definer), which moves them from the inbox that
--       the deferred signal triggers (app_private.tg_any__realtime_signal) fill.
grant select on app.realtime_events to staff;

-- the relay's catch-up point and its sequencer (authenticator only; neither shows a row)
grant execute on function app_private.realtime_high_water() to authenticator;
grant execute on function app_private.sequence_realtime(integer) to authenticator;
grant execute on function app_private.realtime_backlog() to authenticator;
