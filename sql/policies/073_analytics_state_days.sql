-- analytics_private.state_days: stays per team x category and team x supplier (V0022: sums kept by the refresh). Private, like every
-- object of analytics_private: no RLS policy reads it for anyone.
set local role tracker_owner;
alter table analytics_private.state_days enable row level security;
alter table analytics_private.state_days force row level security;
-- NOTE: no policy and no grant: staff read it only through analytics.state_days (scoped like
--       costs, open stays counted to the refresh); only app_private.refresh_analytics() writes it.
