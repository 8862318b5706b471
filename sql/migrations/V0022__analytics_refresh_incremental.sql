-- V0022: the nightly analytics refresh under a minute at 1M samples, and the suppliers page
-- a lookup (issue 13). Measured before (V0016, bench/RESULTS.md): 86-160 s, of which
-- spend_facts 47 s (REFRESH ... CONCURRENTLY's diff of a 940k-row materialised view whose
-- grain is nearly one row per sample) and state_days 23 s (a walk of every event).
--  * spend_facts and supplier_scorecard become tables the refresh keeps equal to their
--    definitions (the views analytics_private.spend_facts_query and supplier_scorecard_query,
--    the V0016 queries unchanged): the query joined to the table by hash on the key, and only
--    the rows that differ deleted and inserted (REFRESH ... CONCURRENTLY writes the whole
--    result into a temporary table, checks it for duplicates and matches whole rows by a
--    sort-merge join). Readers are never blocked (row changes only) and see the old figures
--    until the refresh commits, as before.
--  * state_days becomes incremental: events are append-only and a closed stay never changes,
--    so each sample's stays are summed once (analytics_private.sample_stays, with the team,
--    category and supplier they were counted under) and the per-group sums
--    (analytics_private.state_days) are kept by adding the difference for the samples queued
--    since the last refresh (analytics_private.stays_queue, filled by triggers on new moves and
--    on a change of a sample's team, category or supplier). Open stays are kept as a count
--    and the sum of their start times, so the days up to the refresh are computed when read
--    (analytics.state_days), not rewritten every night.
--  * supplier_season: the scorecard rolled up to season x supplier, every team together, for
--    the roles that read every team (the suppliers page aggregated 71k team x season x
--    supplier rows per request as the MD).
-- The other roll-ups over spend_facts are re-created unchanged (the CASCADE drops them with
-- the materialised view); the scoped views over them are re-created by sql/views/050_analytics.sql
-- after the migration, in the same transaction.
-- squawk: every index here is on a table or materialised view this migration has just
-- created, which nobody can read or write yet, so CONCURRENTLY (impossible in a transaction)
-- would change nothing; the views the CASCADE drops are re-created before commit; for the
-- same reason SET NOT NULL on those new tables' key columns blocks no reader.
-- squawk-ignore-file require-concurrent-index-creation, ban-drop-view, adding-not-nullable-field
set local lock_timeout = '10s';
set local statement_timeout = '30min';  -- building spend_facts and the stays at 1M samples takes minutes
set role tracker_owner;

drop materialized view if exists analytics_private.state_days cascade;
drop materialized view if exists analytics_private.spend_facts cascade;  -- and every roll-up of it

------------------------------------------------------------------------------
-- spend_facts: a table kept equal to its definition by the refresh
------------------------------------------------------------------------------
create view analytics_private.spend_facts_query as
with ordered as (
  select e.sample_id, min(e.at) as ordered_at
    from app.sample_events e
   where e.action = 'order'
   group by e.sample_id
)
select date_trunc('month', coalesce(o.ordered_at, s.created_at) at time zone 'Europe/London')::date as month,
       s.season_id, s.team_id, s.requested_by as buyer_id, s.category_id, s.supplier_id,
       count(*)::integer as samples,
       sum(k.total_gbp) as spend_gbp,
       coalesce(sum(k.total_gbp) filter (where s.state = 'ordered'), 0) as committed_gbp,
       count(*) filter (where s.state = 'ordered')::integer as ordered,
       count(*) filter (where s.received_on is not null)::integer as received,
       count(*) filter (where s.state = 'cut-for-production')::integer as cut_for_production,
       count(*) filter (where s.state = 'returned')::integer as returned,
       count(*) filter (where s.qc_rejected)::integer as qc_rejected,
       coalesce(sum(s.received_on - (s.created_at at time zone 'Europe/London')::date)
                filter (where s.received_on is not null), 0)::integer as lead_days_sum,
       count(*) filter (where s.received_on > s.expected_on)::integer as late_deliveries,
       count(*) filter (where s.last_qc_result is not null)::integer as inspected
  from app.samples s
  join app.sample_costs k on k.sample_id = s.id
  left join ordered o on o.sample_id = s.id
 where s.state <> 'requested' and s.supplier_id is not null
 group by 1, 2, 3, 4, 5, 6;
comment on view analytics_private.spend_facts_query is 'The definition of analytics_private.spend_facts: the refresh writes the difference between this and the table.';

-- stored in key order (a month's rows together), as V0016 clustered the materialised view
create table analytics_private.spend_facts as
select * from analytics_private.spend_facts_query order by month, season_id, team_id, buyer_id, category_id, supplier_id;
-- the key is NOT NULL (the samples' columns are): the refresh matches rows on it
alter table analytics_private.spend_facts
  alter column month set not null, alter column season_id set not null, alter column team_id set not null,
  alter column buyer_id set not null, alter column category_id set not null, alter column supplier_id set not null;
create unique index spend_facts_key on analytics_private.spend_facts
  (month, season_id, team_id, buyer_id, category_id, supplier_id);
create index spend_facts_season_idx on analytics_private.spend_facts (season_id, team_id);
create index spend_facts_category_idx on analytics_private.spend_facts (category_id, season_id);
create index spend_facts_supplier_idx on analytics_private.spend_facts (supplier_id, month);
create index spend_facts_buyer_idx on analytics_private.spend_facts (buyer_id, season_id);
create index spend_facts_team_month_idx on analytics_private.spend_facts (team_id, month);
comment on table analytics_private.spend_facts is 'Spend (GBP at the order''s FX rate), outcomes and the scorecard''s measures (lead days request -> received, late deliveries, inspected) of costed samples by order month x season x team x buyer x category x supplier. Kept equal to analytics_private.spend_facts_query by the refresh.';

------------------------------------------------------------------------------
-- the roll-ups (V0016, unchanged) and supplier_season
------------------------------------------------------------------------------
create materialized view analytics_private.spend_monthly as
select month, season_id, team_id, category_id,
       sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp, sum(committed_gbp) as committed_gbp,
       sum(ordered)::integer as ordered, sum(received)::integer as received, sum(cut_for_production)::integer as cut_for_production,
       sum(returned)::integer as returned, sum(qc_rejected)::integer as qc_rejected
  from analytics_private.spend_facts
 group by 1, 2, 3, 4;
create unique index spend_monthly_key on analytics_private.spend_monthly (month, season_id, team_id, category_id);
create index spend_monthly_season_idx on analytics_private.spend_monthly (season_id, team_id);
create index spend_monthly_team_month_idx on analytics_private.spend_monthly (team_id, month);
comment on materialized view analytics_private.spend_monthly is 'spend_facts rolled up to month x season x team x category.';

create materialized view analytics_private.spend_buyer_season as
select season_id, team_id, buyer_id, sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp,
       sum(committed_gbp) as committed_gbp, sum(ordered)::integer as ordered
  from analytics_private.spend_facts
 group by 1, 2, 3;
create unique index spend_buyer_season_key on analytics_private.spend_buyer_season (season_id, team_id, buyer_id);
comment on materialized view analytics_private.spend_buyer_season is 'spend_facts rolled up to season x team x buyer.';

-- supplier_scorecard: a table too (227k rows at 1M samples; its concurrent refresh was 5-7 s)
create view analytics_private.supplier_scorecard_query as
select team_id, season_id, supplier_id, sum(samples)::integer as samples, sum(received)::integer as received,
       sum(lead_days_sum)::bigint as lead_days_sum, sum(late_deliveries)::integer as late_deliveries,
       sum(qc_rejected)::integer as qc_rejected, sum(inspected)::integer as inspected,
       sum(returned)::integer as returned, sum(cut_for_production)::integer as cut_for_production,
       sum(spend_gbp) as spend_gbp, sum(committed_gbp) as committed_gbp
  from analytics_private.spend_facts
 group by 1, 2, 3;
comment on view analytics_private.supplier_scorecard_query is 'The definition of analytics_private.supplier_scorecard: the refresh writes the difference between this and the table.';
-- stored in season order, as V0016 clustered it (the suppliers page reads a season)
create table analytics_private.supplier_scorecard as
select * from analytics_private.supplier_scorecard_query order by season_id, team_id, supplier_id;
alter table analytics_private.supplier_scorecard
  alter column team_id set not null, alter column season_id set not null, alter column supplier_id set not null;
create unique index supplier_scorecard_key on analytics_private.supplier_scorecard (team_id, season_id, supplier_id);
create index supplier_scorecard_supplier_idx on analytics_private.supplier_scorecard (supplier_id);
create index supplier_scorecard_season_idx on analytics_private.supplier_scorecard (season_id, team_id);
comment on table analytics_private.supplier_scorecard is 'Per team, season and supplier (a roll-up of spend_facts): spend, lead time request -> received (sum of days), late deliveries, QC rejects, returns, cuts. Kept equal to analytics_private.supplier_scorecard_query by the refresh.';

-- every team together: what the suppliers page reads for the roles that see every team
create materialized view analytics_private.supplier_season as
select season_id, supplier_id, sum(samples)::integer as samples, sum(received)::integer as received,
       sum(lead_days_sum)::bigint as lead_days_sum, sum(late_deliveries)::integer as late_deliveries,
       sum(qc_rejected)::integer as qc_rejected, sum(inspected)::integer as inspected,
       sum(returned)::integer as returned, sum(cut_for_production)::integer as cut_for_production,
       sum(spend_gbp) as spend_gbp, sum(committed_gbp) as committed_gbp
  from analytics_private.supplier_scorecard
 group by 1, 2;
create unique index supplier_season_key on analytics_private.supplier_season (season_id, supplier_id);
comment on materialized view analytics_private.supplier_season is 'supplier_scorecard without the team: season x supplier, every team together (shown only to the roles that read every team''s costs).';

create materialized view analytics_private.spend_category_month as
select month, team_id, category_id, sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp
  from analytics_private.spend_monthly
 group by 1, 2, 3;
create unique index spend_category_month_key on analytics_private.spend_category_month (month, team_id, category_id);
create index spend_category_month_team_idx on analytics_private.spend_category_month (team_id, month);
comment on materialized view analytics_private.spend_category_month is 'spend_monthly without the season: month x team x category (MoM/YoY and the monthly trend read it).';

create materialized view analytics_private.spend_team_month as
select month, team_id, sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp
  from analytics_private.spend_category_month
 group by 1, 2;
create unique index spend_team_month_key on analytics_private.spend_team_month (month, team_id);
comment on materialized view analytics_private.spend_team_month is 'spend_category_month without the category: month x team (the monthly trend reads it).';

create materialized view analytics_private.spend_season as
select season_id, team_id, category_id, sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp,
       sum(committed_gbp) as committed_gbp, sum(ordered)::integer as ordered
  from analytics_private.spend_monthly
 group by 1, 2, 3;
create unique index spend_season_key on analytics_private.spend_season (season_id, team_id, category_id);
create index spend_season_team_idx on analytics_private.spend_season (team_id, season_id);
comment on materialized view analytics_private.spend_season is 'spend_monthly without the month: season x team x category (budgets, season comparisons, the headlines read it).';

create materialized view analytics_private.supplier_share_leaders as
with m as (
  select month, category_id, supplier_id, sum(spend_gbp) as spend
    from analytics_private.spend_facts
   group by 1, 2, 3
), share as (
  select m.*, m.spend / nullif(sum(m.spend) over (partition by m.month, m.category_id), 0) as share
    from m
), categories as (
  select distinct month, category_id from m
)
select cur.month, cur.category_id, cur.supplier_id, cur.spend as spend_gbp, cur.share,
       ly.spend as same_month_last_year_gbp,
       case when lyc.category_id is not null then coalesce(ly.share, 0) end as last_year_share,
       cur.share >= 0.05 and lyc.category_id is not null and (ly.share is null or cur.share >= 1.2 * ly.share)
         as over_indexed
  from share cur
  left join categories lyc on lyc.month = (cur.month - interval '1 year')::date and lyc.category_id = cur.category_id
  left join share ly on ly.month = (cur.month - interval '1 year')::date
                    and ly.category_id = cur.category_id and ly.supplier_id = cur.supplier_id
 where cur.share >= 0.05;
create unique index supplier_share_leaders_key on analytics_private.supplier_share_leaders (month, category_id, supplier_id);
comment on materialized view analytics_private.supplier_share_leaders is 'All teams together: suppliers with at least 5 % of a category''s spend in a month (the precondition of over-indexed), their share, last year''s share in the same month, over_indexed. Shown only to the roles that read every team''s costs.';

------------------------------------------------------------------------------
-- state_days: per-sample stays, summed once; per-group sums kept by differences
------------------------------------------------------------------------------
-- one row per costed sample (ordered onward, with a supplier) and non-terminal state it has
-- been in: its closed stays (count, seconds) and, when it is in that state now, the start of
-- the open stay (epoch seconds). A condition on sample_id reaches the events' index (it is
-- the window's partition and a grouping column), which is how the refresh reads it.
create view analytics_private.sample_stays_query as
select t.sample_id, t.state, s.team_id, s.category_id, s.supplier_id,
       (count(*) filter (where t.until is not null))::integer as stays,
       coalesce(sum(date_part('epoch', t.until - t.at)) filter (where t.until is not null), 0) as seconds,
       max(date_part('epoch', t.at)) filter (where t.until is null) as open_since
  from (select e.sample_id, e.to_state as state, e.at,
               lead(e.at) over (partition by e.sample_id order by e.at, e.id) as until
          from app.sample_events e
         where e.to_state is not null and e.from_state is distinct from e.to_state) t
  join app.samples s on s.id = t.sample_id
  join app.sample_costs k on k.sample_id = s.id
 where t.state not in ('returned', 'cut-for-production') and s.state <> 'requested' and s.supplier_id is not null
 group by t.sample_id, t.state, s.team_id, s.category_id, s.supplier_id;
comment on view analytics_private.sample_stays_query is 'The definition of analytics_private.sample_stays: per costed sample and non-terminal state, its closed stays (count, seconds) and the start of its open stay (epoch seconds, null when it is not in that state now).';

create table analytics_private.sample_stays (
  sample_id bigint not null,
  state app.sample_state not null,
  team_id integer not null,
  category_id integer,
  supplier_id integer not null,
  stays integer not null,
  seconds double precision not null,
  open_since double precision,
  primary key (sample_id, state)
);
comment on table analytics_private.sample_stays is 'Each sample''s stays as counted into analytics_private.state_days (with the team, category and supplier they were counted under): replaced for the samples queued since the last refresh.';
insert into analytics_private.sample_stays
select * from analytics_private.sample_stays_query order by sample_id, state;

-- per team x category (supplier_id 0) and per team x supplier (category_id 0) and state
create table analytics_private.state_days (
  team_id integer not null,
  category_id integer not null,
  supplier_id integer not null,
  state app.sample_state not null,
  stays integer not null,
  closed_seconds double precision not null,
  open_stays integer not null,
  open_since_sum double precision not null,
  primary key (team_id, category_id, supplier_id, state)
);
comment on table analytics_private.state_days is 'Stays in each non-terminal state per team x category (supplier_id 0) and per team x supplier (category_id 0): every stay (stays), the closed ones'' seconds, the open ones'' count and the sum of their starts (epoch seconds); analytics.state_days adds the open stays up to the refresh. Sums of analytics_private.sample_stays, kept by the refresh.';
insert into analytics_private.state_days
select team_id, coalesce(case when grouping(category_id) = 0 then category_id end, 0),
       coalesce(case when grouping(supplier_id) = 0 then supplier_id end, 0), state,
       sum(stays + (open_since is not null)::integer), sum(seconds), count(open_since), coalesce(sum(open_since), 0)
  from analytics_private.sample_stays
 group by grouping sets ((team_id, category_id, state), (team_id, supplier_id, state));

-- the samples whose stays changed since the last refresh: written by the triggers
-- after_insert_queue_stays (app.sample_events) and after_update_queue_stays (app.samples),
-- read and emptied by the refresh (it takes the rows committed before it started; a
-- transaction that commits later is taken by the next refresh)
create table analytics_private.stays_queue (
  sample_id bigint not null
);
comment on table analytics_private.stays_queue is 'Samples whose stays must be summed again at the next refresh (a new move, or a new team, category or supplier). A bulk load with triggers off (session_replication_role = replica) queues its samples itself.';

-- the CLUSTER of V0016, for the re-created roll-ups the pages read in key order
cluster analytics_private.spend_monthly using spend_monthly_key;
cluster analytics_private.spend_category_month using spend_category_month_key;

analyze analytics_private.spend_facts, analytics_private.spend_monthly, analytics_private.spend_buyer_season,
        analytics_private.supplier_scorecard, analytics_private.supplier_season, analytics_private.spend_category_month,
        analytics_private.spend_team_month, analytics_private.spend_season, analytics_private.supplier_share_leaders,
        analytics_private.sample_stays, analytics_private.state_days, analytics_private.stays_queue;

-- every figure was rebuilt just now: that is the "data as of" (open stays count to it)
insert into analytics_private.refreshes (started_at, finished_at, trigger) values (now(), clock_timestamp(), 'migration');

reset role;
