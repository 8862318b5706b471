-- V0010: spend analytics (issue 13). Materialised views in the private schema
-- analytics_private (materialised views ignore RLS, so no staff role may read them),
-- the refresh record behind "data as of", budgets, and the nightly pg_cron schedule.
-- The scoped views over them live in sql/views/050_analytics.sql, the refresh in
-- sql/functions/100_analytics.sql. A materialised view here reads tables only (never
-- a function or a view): sql/reset.sql drops those with CASCADE on every migrate.
create schema if not exists analytics authorization tracker_owner;
comment on schema analytics is 'Spend analytics for the roles that read costs: scoped views over analytics_private (issue 13).';
create schema analytics_private authorization tracker_owner;
comment on schema analytics_private is 'Materialised views and the refresh record behind analytics; granted to no staff role (materialised views ignore RLS).';

-- REFRESH ... CONCURRENTLY builds its diff in temporary tables, as the owner
do $$
begin
  execute format('grant temporary on database %I to tracker_owner', current_database());
end
$$;

set role tracker_owner;

------------------------------------------------------------------------------
-- Budgets: team x season x category, edited by finance and senior buyers (audited
-- by the generic trigger, sql/functions/021_audit_triggers.sql)
------------------------------------------------------------------------------
create table app.budgets (
  id integer generated always as identity primary key,
  team_id integer not null references app.teams,
  season_id integer not null references app.seasons,
  category_id integer not null references app.categories,
  amount_gbp numeric(14, 2) not null check (amount_gbp >= 0),
  updated_by bigint references app.staff,
  updated_at timestamptz not null default now(),
  constraint budgets_team_season_category_key unique (team_id, season_id, category_id)
);
create index budgets_season_idx on app.budgets (season_id);
comment on table app.budgets is 'Spend budget in GBP per buying team, season and category; compared with actual and committed spend in analytics.budget_vs_actual.';
comment on column app.budgets.amount_gbp is 'The budget in GBP (0 means nothing may be spent).';
comment on column app.budgets.updated_by is 'Who set the amount last; set by trigger from the session.';

------------------------------------------------------------------------------
-- Spend facts: costed samples (ordered onward) by order month (Europe/London) x
-- season x team x buyer x category x supplier. Only costed samples count, so every
-- figure derives from rows a reader of costs can see.
------------------------------------------------------------------------------
create materialized view analytics_private.spend_facts as
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
       count(*) filter (where s.qc_rejected)::integer as qc_rejected
  from app.samples s
  join app.sample_costs k on k.sample_id = s.id
  left join ordered o on o.sample_id = s.id
 where s.state <> 'requested' and s.supplier_id is not null
 group by 1, 2, 3, 4, 5, 6
 -- stored in month order: a month's rows sit together (a concurrent refresh rewrites only
 -- what changed, mostly the recent months, and appends it)
 order by 1, 2, 3;
create unique index spend_facts_key on analytics_private.spend_facts
  (month, season_id, team_id, buyer_id, category_id, supplier_id);
create index spend_facts_season_idx on analytics_private.spend_facts (season_id, team_id);
create index spend_facts_category_idx on analytics_private.spend_facts (category_id, season_id);
create index spend_facts_supplier_idx on analytics_private.spend_facts (supplier_id, month);
create index spend_facts_buyer_idx on analytics_private.spend_facts (buyer_id, season_id);
comment on materialized view analytics_private.spend_facts is 'Spend (GBP at the order''s FX rate) and outcomes of costed samples by order month x season x team x buyer x category x supplier.';

-- the same, rolled up without buyer and supplier: what overview pages and headlines read
create materialized view analytics_private.spend_monthly as
select month, season_id, team_id, category_id,
       sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp, sum(committed_gbp) as committed_gbp,
       sum(ordered)::integer as ordered, sum(received)::integer as received, sum(cut_for_production)::integer as cut_for_production,
       sum(returned)::integer as returned, sum(qc_rejected)::integer as qc_rejected
  from analytics_private.spend_facts
 group by 1, 2, 3, 4
 order by 1, 2, 3;
create unique index spend_monthly_key on analytics_private.spend_monthly (month, season_id, team_id, category_id);
create index spend_monthly_season_idx on analytics_private.spend_monthly (season_id, team_id);
comment on materialized view analytics_private.spend_monthly is 'spend_facts rolled up to month x season x team x category.';

-- and by buyer and season only: what the running-hot report and the finance headline read
create materialized view analytics_private.spend_buyer_season as
select season_id, team_id, buyer_id, sum(samples)::integer as samples, sum(spend_gbp) as spend_gbp,
       sum(committed_gbp) as committed_gbp, sum(ordered)::integer as ordered
  from analytics_private.spend_facts
 group by 1, 2, 3;
create unique index spend_buyer_season_key on analytics_private.spend_buyer_season (season_id, team_id, buyer_id);
comment on materialized view analytics_private.spend_buyer_season is 'spend_facts rolled up to season x team x buyer.';

------------------------------------------------------------------------------
-- Supplier scorecard: team x season x supplier, sums so any grouping averages right
------------------------------------------------------------------------------
create materialized view analytics_private.supplier_scorecard as
select s.team_id, s.season_id, s.supplier_id,
       count(*)::integer as samples,
       count(*) filter (where s.received_on is not null)::integer as received,
       coalesce(sum(s.received_on - (s.created_at at time zone 'Europe/London')::date)
                filter (where s.received_on is not null), 0)::bigint as lead_days_sum,
       count(*) filter (where s.received_on > s.expected_on)::integer as late_deliveries,
       count(*) filter (where s.qc_rejected)::integer as qc_rejected,
       count(*) filter (where s.last_qc_result is not null)::integer as inspected,
       count(*) filter (where s.state = 'returned')::integer as returned,
       count(*) filter (where s.state = 'cut-for-production')::integer as cut_for_production,
       sum(k.total_gbp) as spend_gbp,
       coalesce(sum(k.total_gbp) filter (where s.state = 'ordered'), 0) as committed_gbp
  from app.samples s
  join app.sample_costs k on k.sample_id = s.id
 where s.state <> 'requested' and s.supplier_id is not null
 group by 1, 2, 3
 order by 2, 1, 3;
create unique index supplier_scorecard_key on analytics_private.supplier_scorecard (team_id, season_id, supplier_id);
create index supplier_scorecard_supplier_idx on analytics_private.supplier_scorecard (supplier_id);
create index supplier_scorecard_season_idx on analytics_private.supplier_scorecard (season_id, team_id);
comment on materialized view analytics_private.supplier_scorecard is 'Per team, season and supplier: spend, lead time request -> received (sum of days), late deliveries, QC rejects, returns, cuts.';

------------------------------------------------------------------------------
-- Days in each state (from the events), per team x category and per team x supplier
-- (category_id = 0: all categories; supplier_id = 0: all suppliers; no NULLs in the
-- unique key, so REFRESH ... CONCURRENTLY does not rewrite every row)
------------------------------------------------------------------------------
create materialized view analytics_private.state_days as
with stays as (
  select e.sample_id, e.to_state as state,
         extract(epoch from coalesce(lead(e.at) over w, now()) - e.at) / 86400 as days
    from app.sample_events e
   where e.to_state is not null and e.from_state is distinct from e.to_state
  window w as (partition by e.sample_id order by e.at, e.id)
)
select s.team_id, coalesce(case when grouping(s.category_id) = 0 then s.category_id end, 0) as category_id,
       coalesce(case when grouping(s.supplier_id) = 0 then s.supplier_id end, 0) as supplier_id,
       t.state, count(*)::integer as stays, round(sum(t.days)::numeric, 2) as days_sum
  from stays t
  join app.samples s on s.id = t.sample_id
  join app.sample_costs k on k.sample_id = s.id
 where t.state not in ('returned', 'cut-for-production') and s.state <> 'requested' and s.supplier_id is not null
 group by grouping sets ((s.team_id, s.category_id, t.state), (s.team_id, s.supplier_id, t.state));
create unique index state_days_key on analytics_private.state_days (team_id, category_id, supplier_id, state);
comment on materialized view analytics_private.state_days is 'Stays in each non-terminal state (count and total days, open stays counted to the refresh) per team x category (supplier_id 0) and per team x supplier (category_id 0).';

------------------------------------------------------------------------------
-- The refresh record: "data as of"
------------------------------------------------------------------------------
create table analytics_private.refreshes (
  id bigint generated always as identity primary key,
  started_at timestamptz not null,
  finished_at timestamptz,
  trigger text not null check (trigger in ('migration', 'demo', 'cron', 'manual')),
  staff_id bigint references app.staff,
  seconds jsonb not null default '{}'
);
comment on table analytics_private.refreshes is 'One row per refresh of the analytics materialised views; the newest finished row''s started_at is the "data as of" time.';
alter table analytics_private.refreshes enable row level security;
alter table analytics_private.refreshes force row level security;
-- NOTE: no policy and no grant: staff read it only through analytics.data_as_of.
insert into analytics_private.refreshes (started_at, finished_at, trigger) values (now(), now(), 'migration');
analyze analytics_private.spend_facts, analytics_private.spend_monthly, analytics_private.spend_buyer_season,
        analytics_private.supplier_scorecard, analytics_private.state_days;

reset role;

------------------------------------------------------------------------------
-- pg_cron: nightly refresh at 02:30 (GMT) and a monthly purge of this job's run
-- history. pg_cron lives in one database per cluster (cron.database_name); in any
-- other database (test clones, the benchmark database) there is no schedule, and
-- the refresh runs by hand or from the page.
------------------------------------------------------------------------------
do $$
begin
  if current_database() = current_setting('cron.database_name', true)
     and exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
    perform cron.schedule('tracker-analytics-refresh', '30 2 * * *',
                          $job$select app_private.refresh_analytics('cron')$job$);
    perform cron.schedule('tracker-analytics-purge-history', '45 2 1 * *',
                          $job$delete from cron.job_run_details
                                where jobid in (select jobid from cron.job where jobname like 'tracker-analytics-%')
                                  and end_time < now() - interval '90 days'$job$);
  else
    raise notice 'pg_cron is not in this database (cron.database_name = %): analytics refresh not scheduled here',
      coalesce(current_setting('cron.database_name', true), 'unset');
  end if;
end
$$;
