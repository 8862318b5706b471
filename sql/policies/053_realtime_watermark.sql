-- app_private.realtime_watermark: the realtime sequencer's floor (one row, V0024), below which no
-- inbox row can still appear (sql/functions/080_realtime.sql, app_private.sequence_realtime).
set local role tracker_owner;
alter table app_private.realtime_watermark enable row level security;
alter table app_private.realtime_watermark force row level security;
-- NOTE: no policy and no grant: only the sequencer (a definer) reads and writes the watermark, in
--       the transaction of its moves, so no caller can hand it a floor.
