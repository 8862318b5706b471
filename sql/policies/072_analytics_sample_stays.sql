-- analytics_private.sample_stays: each sample's stays as counted into state_days (V0022). Private, like every
-- object of analytics_private: no RLS policy reads it for anyone.
set local role tracker_owner;
alter table analytics_private.sample_stays enable row level security;
alter table analytics_private.sample_stays force row level security;
-- NOTE: no policy and no grant: nobody reads it but the refresh, which replaces the rows of
--       the samples queued since the last refresh.
