-- analytics_private.spend_facts: spend facts by month x season x team x buyer x category x supplier (V0022: a table kept by the refresh). Private, like every
-- object of analytics_private: no RLS policy reads it for anyone.
set local role tracker_owner;
alter table analytics_private.spend_facts enable row level security;
alter table analytics_private.spend_facts force row level security;
-- NOTE: no policy and no grant: staff read it only through the scoped views of schema analytics
--       (analytics.spend and the roll-ups); only app_private.refresh_analytics() writes it.
