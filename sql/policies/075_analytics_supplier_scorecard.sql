-- analytics_private.supplier_scorecard: spend and the scorecard's measures per team x season x
-- supplier (V0022: a table kept by the refresh). Private, like every object of
-- analytics_private: no RLS policy reads it for anyone.
set local role tracker_owner;
alter table analytics_private.supplier_scorecard enable row level security;
alter table analytics_private.supplier_scorecard force row level security;
-- NOTE: no policy and no grant: staff read it only through analytics.supplier_scorecard and
--       analytics.supplier_seasons (scoped like costs); only app_private.refresh_analytics() writes it.
