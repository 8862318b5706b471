-- app_private.realtime_inbox: realtime signals as writers leave them, before the sequencer
-- (app_private.sequence_realtime) moves them into app.realtime_events in commit order.
set local role tracker_owner;
alter table app_private.realtime_inbox enable row level security;
alter table app_private.realtime_inbox force row level security;
-- NOTE: no policy and no grant: rows come only from the deferred signal triggers and leave
--       only through the sequencer, both definers; a signal is read as app.realtime_events.
