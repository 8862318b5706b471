-- analytics_private.stays_queue: samples whose stays the next refresh sums again (V0022). Private, like every
-- object of analytics_private: no RLS policy reads it for anyone.
set local role tracker_owner;
alter table analytics_private.stays_queue enable row level security;
alter table analytics_private.stays_queue force row level security;
-- NOTE: no policy and no grant: written by the SECURITY DEFINER triggers after_insert_queue_stays
--       (app.sample_events) and after_update_queue_stays (app.samples), emptied by the refresh.
