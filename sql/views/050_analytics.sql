-- analytics: what analysts, directors, finance and buyers read (issue 13).
--
-- Two layers.
-- 1. Scoped views over the private materialised views (analytics_private ignores
--    RLS, so no staff role may read it). These run with the owner's rights - a
--    security_invoker view would need SELECT on the materialised view itself, which
--    would hand every reader every team's figures - and are security_barrier, so a
--    caller's own conditions cannot see rows the scope drops. The scope is the cost
--    policy of app.sample_costs, written once in analytics_private.readable_teams:
--      finance, the sales lead, the ops director, the MD: every team;
--      buyers and senior buyers: their own team;
--      anyone else, or nobody resolved from the session: nothing
--    and only roles that read costs are granted the schema at all. Figures of every
--    team together (supplier_share_leaders) go only to the roles that see every team.
-- 2. security_invoker views on top (MoM/YoY, budgets, over-index, running hot):
--    they read layer 1 and app.budgets as the caller, so they inherit its scope.
set local role tracker_owner;

------------------------------------------------------------------------------
-- layer 1: scoped views
------------------------------------------------------------------------------
-- the teams whose figures the caller may read (the cost policy of app.sample_costs); the
-- scoped views below keep the rows of these teams. In analytics_private (granted to
-- nobody): the views read it with the owner's rights.
create or replace view analytics_private.readable_teams as
select t.id as team_id
  from app.teams t
 where (select app.current_staff_role()) in ('finance', 'sales_lead', 'ops_director', 'md')
    or ((select app.current_staff_role()) in ('buyer', 'senior_buyer') and t.id = (select app.current_team_id()));
comment on view analytics_private.readable_teams is 'The teams whose analytics figures the caller may read: every team for finance, the sales lead and directors, their own for buyers and senior buyers, none for anyone else (the cost policy of app.sample_costs).';

create view analytics.teams with (security_barrier) as
select t.id, t.code, t.name
  from app.teams t
  join analytics_private.readable_teams r on r.team_id = t.id;
comment on view analytics.teams is 'The teams whose figures the caller reads (every team, or their own): the team pick lists of the analytics pages and the budget form.';

create view analytics.data_as_of with (security_barrier) as
select r.started_at as as_of, r.finished_at, r.trigger,
       (select jsonb_object_agg(k, v) from jsonb_each(r.seconds) x(k, v)) as seconds
  from analytics_private.refreshes r
 where r.finished_at is not null
   and (select app.current_staff_role()) in ('buyer', 'senior_buyer', 'sales_lead', 'finance', 'ops_director', 'md')
 order by r.finished_at desc
 limit 1;
comment on view analytics.data_as_of is 'When the analytics figures were taken (as_of: start of the latest refresh), when that refresh finished, what started it (migration, demo, cron, manual), seconds per materialised view.';

create view analytics.spend with (security_barrier) as
select f.month, f.season_id, se.code as season, f.team_id, t.code as team, f.buyer_id, b.full_name as buyer,
       f.category_id, c.name as category, f.supplier_id, su.name as supplier,
       f.samples, f.spend_gbp, f.committed_gbp, f.ordered, f.received, f.cut_for_production, f.returned, f.qc_rejected
  from analytics_private.spend_facts f
  left join app.seasons se on se.id = f.season_id
  left join app.teams t on t.id = f.team_id
  left join app.staff b on b.id = f.buyer_id
  left join app.categories c on c.id = f.category_id
  left join app.suppliers su on su.id = f.supplier_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.spend is 'Grain: order month x season x team x buyer x category x supplier. Spend (GBP at the order''s FX rate) of costed samples, committed (still ordered, not received) and how many samples that is (ordered), and outcome counts. Scoped like costs.';

create view analytics.spend_monthly with (security_barrier) as
select f.month, f.season_id, se.code as season, f.team_id, t.code as team, f.category_id, c.name as category,
       f.samples, f.spend_gbp, f.committed_gbp, f.ordered, f.received, f.cut_for_production, f.returned, f.qc_rejected
  from analytics_private.spend_monthly f
  left join app.seasons se on se.id = f.season_id
  left join app.teams t on t.id = f.team_id
  left join app.categories c on c.id = f.category_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.spend_monthly is 'Grain: order month x season x team x category (analytics.spend without buyer and supplier). Scoped like costs.';

create view analytics.buyer_season with (security_barrier) as
select f.season_id, se.code as season, f.team_id, t.code as team, f.buyer_id, b.full_name as buyer,
       f.samples, f.spend_gbp, f.committed_gbp, f.ordered
  from analytics_private.spend_buyer_season f
  left join app.seasons se on se.id = f.season_id
  left join app.teams t on t.id = f.team_id
  left join app.staff b on b.id = f.buyer_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.buyer_season is 'Grain: season x team x buyer (analytics.spend rolled up). Scoped like costs.';

create view analytics.supplier_scorecard with (security_barrier) as
select f.team_id, t.code as team, f.season_id, se.code as season, f.supplier_id, su.name as supplier,
       f.samples, f.received, f.lead_days_sum, round(f.lead_days_sum::numeric / nullif(f.received, 0), 1) as avg_lead_days,
       f.late_deliveries, f.inspected, f.qc_rejected,
       round(100.0 * f.qc_rejected / nullif(f.inspected, 0), 1) as qc_reject_pct,
       f.returned, f.cut_for_production, f.spend_gbp, f.committed_gbp
  from analytics_private.supplier_scorecard f
  left join app.seasons se on se.id = f.season_id
  left join app.teams t on t.id = f.team_id
  left join app.suppliers su on su.id = f.supplier_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.supplier_scorecard is 'Grain: team x season x supplier, costed samples. Spend and committed spend; lead time request -> received (sum and average days), late deliveries (received after the expected date), QC inspected/rejected, returned, cut. Sum the counts to aggregate. Scoped like costs.';

-- the open stays are counted up to the refresh that summed them (the "data as of" time)
create view analytics.state_days with (security_barrier) as
select f.team_id, t.code as team, nullif(f.category_id, 0) as category_id, c.name as category,
       nullif(f.supplier_id, 0) as supplier_id, su.name as supplier, f.state, f.stays,
       round(((f.closed_seconds + f.open_stays * r.as_of - f.open_since_sum) / 86400)::numeric, 2) as days_sum,
       round(round(((f.closed_seconds + f.open_stays * r.as_of - f.open_since_sum) / 86400)::numeric, 2)
             / nullif(f.stays, 0), 1) as avg_days
  from analytics_private.state_days f
  cross join (select date_part('epoch', max(x.started_at)) as as_of
                from analytics_private.refreshes x where x.finished_at is not null) r
  left join app.teams t on t.id = f.team_id
  left join app.categories c on c.id = f.category_id
  left join app.suppliers su on su.id = f.supplier_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.state_days is 'Days spent in each non-terminal state (stays and total days; open stays counted to the refresh) per team x category (supplier_id null) and per team x supplier (category_id null). Scoped like costs.';

create view analytics.spend_category_month with (security_barrier) as
select f.month, f.team_id, t.code as team, f.category_id, c.name as category, f.samples, f.spend_gbp
  from analytics_private.spend_category_month f
  left join app.teams t on t.id = f.team_id
  left join app.categories c on c.id = f.category_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.spend_category_month is 'Grain: order month x team x category (analytics.spend_monthly without the season). Scoped like costs.';

create view analytics.spend_team_month with (security_barrier) as
select f.month, f.team_id, t.code as team, f.samples, f.spend_gbp
  from analytics_private.spend_team_month f
  left join app.teams t on t.id = f.team_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.spend_team_month is 'Grain: order month x team (all categories together). Scoped like costs.';

create view analytics.spend_season with (security_barrier) as
select f.season_id, se.code as season, f.team_id, t.code as team, f.category_id, c.name as category,
       f.samples, f.spend_gbp, f.committed_gbp, f.ordered
  from analytics_private.spend_season f
  left join app.seasons se on se.id = f.season_id
  left join app.teams t on t.id = f.team_id
  left join app.categories c on c.id = f.category_id
 where f.team_id = any (array(select team_id from analytics_private.readable_teams));
comment on view analytics.spend_season is 'Grain: season x team x category (analytics.spend_monthly without the month). Scoped like costs.';

-- every team together, so only for the roles that read every team's costs (a buyer's
-- shares are of their own team's spend: analytics.supplier_over_index computes them)
create view analytics.supplier_share_leaders with (security_barrier) as
select f.month, f.category_id, c.name as category, f.supplier_id, su.name as supplier, f.spend_gbp,
       round(100 * f.share, 1) as share_pct, f.same_month_last_year_gbp,
       round(100 * f.last_year_share, 1) as last_year_share_pct,
       round(100 * f.share / nullif(f.last_year_share, 0)) as index, f.over_indexed
  from analytics_private.supplier_share_leaders f
  left join app.categories c on c.id = f.category_id
  left join app.suppliers su on su.id = f.supplier_id
 where (select app.current_staff_role()) in ('finance', 'sales_lead', 'ops_director', 'md');
comment on view analytics.supplier_share_leaders is 'Grain: month x category x supplier, every team together, only suppliers with at least 5% of the category''s spend that month (the rows of analytics.supplier_over_index that can be over-indexed, precomputed). Only for the roles that read every team''s costs (finance, the sales lead, directors); a buyer reads no rows here.';

-- every team together, so only for the roles that read every team's costs (for buyers
-- analytics.supplier_seasons rolls up their team's scorecard instead)
create view analytics.supplier_season_all_teams with (security_barrier) as
select f.season_id, se.code as season, f.supplier_id, su.name as supplier,
       f.samples, f.received, f.lead_days_sum, f.late_deliveries, f.inspected, f.qc_rejected,
       f.returned, f.cut_for_production, f.spend_gbp, f.committed_gbp
  from analytics_private.supplier_season f
  left join app.seasons se on se.id = f.season_id
  left join app.suppliers su on su.id = f.supplier_id
 where (select app.current_staff_role()) in ('finance', 'sales_lead', 'ops_director', 'md');
comment on view analytics.supplier_season_all_teams is 'Grain: season x supplier, every team together (analytics.supplier_scorecard without the team, precomputed). Only for the roles that read every team''s costs (finance, the sales lead, directors); a buyer reads no rows here.';

------------------------------------------------------------------------------
-- layer 2: reports, security_invoker over layer 1 and app.budgets
------------------------------------------------------------------------------
create view analytics.category_monthly with (security_invoker) as
with s as (
  select month, category_id, sum(spend_gbp) as spend, sum(samples) as samples
    from analytics.spend_category_month group by 1, 2
), bounds as (
  select min(month) as lo, max(month) as hi from s
), cal as (
  select d::date as month, b.lo from bounds b, generate_series(b.lo, b.hi, interval '1 month') d
)
select cal.month, c.id as category_id, c.name as category,
       coalesce(cur.samples, 0)::integer as samples, coalesce(cur.spend, 0) as spend_gbp,
       case when cal.month > cal.lo then coalesce(pm.spend, 0) end as prev_month_gbp,
       case when cal.month > cal.lo then coalesce(cur.spend, 0) - coalesce(pm.spend, 0) end as mom_change_gbp,
       round(100 * (coalesce(cur.spend, 0) - pm.spend) / nullif(pm.spend, 0), 1) as mom_pct,
       case when cal.month >= (cal.lo + interval '1 year')::date then coalesce(ly.spend, 0) end as same_month_last_year_gbp,
       case when cal.month >= (cal.lo + interval '1 year')::date then coalesce(cur.spend, 0) - coalesce(ly.spend, 0) end
         as yoy_change_gbp,
       round(100 * (coalesce(cur.spend, 0) - ly.spend) / nullif(ly.spend, 0), 1) as yoy_pct
  from cal
  cross join app.categories c
  left join s cur on cur.month = cal.month and cur.category_id = c.id
  left join s pm on pm.month = (cal.month - interval '1 month')::date and pm.category_id = c.id
  left join s ly on ly.month = (cal.month - interval '1 year')::date and ly.category_id = c.id;
comment on view analytics.category_monthly is 'Grain: month x category, every month from the first with spend to the last (months without spend read 0). Spend of the teams you may see, the month before (MoM) and the same month last year (YoY), absolute and %; comparisons before the first month of data are null.';

-- the same for one month, as a function so that only the three months it compares are
-- read (the view aggregates every month first)
create function analytics.category_month(p_month date)
returns table (month date, category_id integer, category text, samples integer, spend_gbp numeric,
               prev_month_gbp numeric, mom_change_gbp numeric, mom_pct numeric, same_month_last_year_gbp numeric,
               yoy_change_gbp numeric, yoy_pct numeric)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- the months are written out (not read from a CTE), so they reach the index as conditions
  with m as (
    select date_trunc('month', p_month)::date as cur,
           (date_trunc('month', p_month) - interval '1 month')::date as prev,
           (date_trunc('month', p_month) - interval '1 year')::date as ly
  ), known as (
    -- is there spend before this month / in or before last year's month? (the first month of
    -- data has no comparison; asked with EXISTS, which stops at the first row, not min())
    select exists (select 1 from analytics.spend_category_month f
                    where f.month < date_trunc('month', p_month)::date) as before_cur,
           exists (select 1 from analytics.spend_category_month f
                    where f.month <= (date_trunc('month', p_month) - interval '1 year')::date) as before_ly
  ), s as (
    select f.month, f.category_id, sum(f.spend_gbp) as spend, sum(f.samples) as samples
      from analytics.spend_category_month f
     where f.month in (date_trunc('month', p_month)::date, (date_trunc('month', p_month) - interval '1 month')::date,
                       (date_trunc('month', p_month) - interval '1 year')::date)
     group by 1, 2
  )
  select m.cur, c.id, c.name, coalesce(cur.samples, 0)::integer, coalesce(cur.spend, 0),
         case when k.before_cur then coalesce(pm.spend, 0) end,
         case when k.before_cur then coalesce(cur.spend, 0) - coalesce(pm.spend, 0) end,
         round(100 * (coalesce(cur.spend, 0) - pm.spend) / nullif(pm.spend, 0), 1),
         case when k.before_ly then coalesce(ly.spend, 0) end,
         case when k.before_ly then coalesce(cur.spend, 0) - coalesce(ly.spend, 0) end,
         round(100 * (coalesce(cur.spend, 0) - ly.spend) / nullif(ly.spend, 0), 1)
    from m
    cross join known k
    cross join app.categories c
    left join s cur on cur.month = m.cur and cur.category_id = c.id
    left join s pm on pm.month = m.prev and pm.category_id = c.id
    left join s ly on ly.month = m.ly and ly.category_id = c.id
$$;
comment on function analytics.category_month(date) is 'analytics.category_monthly for the month of p_month only (every category, MoM and YoY), reading just the three months it compares. Reads analytics.spend_category_month as the caller.';

create view analytics.season_spend with (security_invoker) as
with s as (
  select season_id, category_id, sum(spend_gbp) as spend, sum(samples) as samples, sum(committed_gbp) as committed
    from analytics.spend_season group by 1, 2
)
select se.id as season_id, se.code as season, c.id as category_id, c.name as category,
       coalesce(cur.samples, 0)::integer as samples, coalesce(cur.spend, 0) as spend_gbp,
       coalesce(cur.committed, 0) as committed_gbp,
       ly.code as last_year_season,
       case when ly.id is not null then coalesce(lys.spend, 0) end as last_year_gbp,
       case when ly.id is not null then coalesce(cur.spend, 0) - coalesce(lys.spend, 0) end as yoy_change_gbp,
       round(100 * (coalesce(cur.spend, 0) - lys.spend) / nullif(lys.spend, 0), 1) as yoy_pct
  from app.seasons se
  cross join app.categories c
  left join s cur on cur.season_id = se.id and cur.category_id = c.id
  left join app.seasons ly on ly.code = left(se.code, 2) || lpad(((right(se.code, 2)::integer + 99) % 100)::text, 2, '0')
  left join s lys on lys.season_id = ly.id and lys.category_id = c.id;
comment on view analytics.season_spend is 'Grain: season x category. Spend and committed spend of the teams you may see, against the same season last year (SS26 vs SS25); last-year figures are null when that season is not in the system.';

create view analytics.budget_vs_actual with (security_invoker) as
-- every budget with its actual spend, then spend without a budget: a union, so that a
-- condition on season, team or category reaches both sides (and the index)
with actual as (
  select team_id, season_id, category_id, spend_gbp as spend, committed_gbp as committed
    from analytics.spend_season
), lines as (
  select b.team_id, b.season_id, b.category_id, b.amount_gbp as budget, a.spend, a.committed, false as no_budget
    from app.budgets b
    left join actual a on a.team_id = b.team_id and a.season_id = b.season_id and a.category_id = b.category_id
  union all
  select a.team_id, a.season_id, a.category_id, null, a.spend, a.committed, true
    from actual a
   where not exists (select 1 from app.budgets b where b.team_id = a.team_id and b.season_id = a.season_id
                                                   and b.category_id = a.category_id)
)
select l.team_id, t.code as team, l.season_id, se.code as season, l.category_id, c.name as category,
       l.budget as budget_gbp, coalesce(l.spend, 0) as actual_gbp, coalesce(l.committed, 0) as committed_gbp,
       l.budget - coalesce(l.spend, 0) as remaining_gbp,
       round(100 * coalesce(l.spend, 0) / nullif(l.budget, 0), 1) as burn_pct,
       coalesce(l.spend, 0) > coalesce(l.budget, 0) as over_budget,
       l.no_budget
  from lines l
  left join app.teams t on t.id = l.team_id
  left join app.seasons se on se.id = l.season_id
  left join app.categories c on c.id = l.category_id;
comment on view analytics.budget_vs_actual is 'Grain: team x season x category, every budget and every spend. Actual spend (ordered onward, includes committed), committed (ordered, not yet received), remaining, burn %; over_budget when actual exceeds the budget (or there is spend and no budget: no_budget).';

-- a function of the month rather than a view: both months are then plain conditions
-- that reach the materialised view's index (a view over every month would aggregate
-- all of them first). SECURITY INVOKER: it reads analytics.spend as the caller.
create function analytics.supplier_over_index(p_month date)
returns table (month date, category_id integer, category text, supplier_id integer, supplier text,
               spend_gbp numeric, share_pct numeric, same_month_last_year_gbp numeric,
               last_year_share_pct numeric, index numeric, over_indexed boolean)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  with m as (
    select f.month, f.category_id, f.supplier_id, sum(f.spend_gbp) as spend
      from analytics.spend f
     where f.month in (date_trunc('month', p_month)::date, (date_trunc('month', p_month) - interval '1 year')::date)
     group by 1, 2, 3
  ), share as (
    select m.*, m.spend / nullif(sum(m.spend) over (partition by m.month, m.category_id), 0) as share from m
  ), last_year_categories as (
    select distinct category_id from m where m.month < date_trunc('month', p_month)::date
  )
  select cur.month, cur.category_id, c.name, cur.supplier_id, su.name,
         cur.spend, round(100 * cur.share, 1), ly.spend,
         case when lyc.category_id is not null then round(100 * coalesce(ly.share, 0), 1) end,
         round(100 * cur.share / nullif(ly.share, 0)),
         cur.share >= 0.05 and lyc.category_id is not null and (ly.share is null or cur.share >= 1.2 * ly.share)
    from share cur
    left join last_year_categories lyc on lyc.category_id = cur.category_id
    left join share ly on ly.month = (cur.month - interval '1 year')::date
                      and ly.category_id = cur.category_id and ly.supplier_id = cur.supplier_id
    left join app.categories c on c.id = cur.category_id
    left join app.suppliers su on su.id = cur.supplier_id
   where cur.month = date_trunc('month', p_month)::date
$$;
comment on function analytics.supplier_over_index(date) is 'For the month of p_month, by category x supplier: the supplier''s share of the category''s spend (teams you may see) and its share in the same month last year; index = 100 x share / last year''s share; over_indexed when the share is at least 5% and at least 1.2 x last year''s (or it had none while the category had spend); a category without spend last year is not compared (null share, never over-indexed). Reads analytics.spend as the caller.';

-- the over-indexed rows only, which is what the overview shows: for the roles that see
-- every team from the precomputed all-teams shares (a lookup), for buyers computed live
-- from their own team's spend (a twentieth of the rows). SECURITY INVOKER.
create function analytics.over_indexed_suppliers(p_month date)
returns table (month date, category_id integer, category text, supplier_id integer, supplier text,
               spend_gbp numeric, share_pct numeric, same_month_last_year_gbp numeric,
               last_year_share_pct numeric, index numeric)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select l.month, l.category_id, l.category, l.supplier_id, l.supplier, l.spend_gbp, l.share_pct,
         l.same_month_last_year_gbp, l.last_year_share_pct, l.index
    from analytics.supplier_share_leaders l
   where l.month = date_trunc('month', p_month)::date and l.over_indexed
  union all
  select x.month, x.category_id, x.category, x.supplier_id, x.supplier, x.spend_gbp, x.share_pct,
         x.same_month_last_year_gbp, x.last_year_share_pct, x.index
    from analytics.supplier_over_index(p_month) x
   where x.over_indexed and (select app.current_staff_role()) in ('buyer', 'senior_buyer')
$$;
comment on function analytics.over_indexed_suppliers(date) is 'The over-indexed rows of analytics.supplier_over_index(p_month), fast: read from the precomputed all-teams shares for the roles that see every team, computed from the team''s spend for buyers and senior buyers.';

create view analytics.buyers_running_hot with (security_invoker) as
with spend as (
  select season_id, team_id, buyer_id, spend_gbp as spend, samples from analytics.buyer_season
), budget as (
  select season_id, team_id, sum(amount_gbp) as amount from app.budgets group by 1, 2
), buyers as (
  select team_id, count(*) as n from app.staff where active and role in ('buyer', 'senior_buyer') group by 1
)
select s.season_id, se.code as season, s.team_id, t.code as team, s.buyer_id, st.full_name as buyer,
       s.samples::integer as samples, s.spend as spend_gbp, bu.amount as team_budget_gbp,
       round(bu.amount / greatest(coalesce(n.n, 1), 1), 2) as budget_share_gbp,
       round(least(greatest((current_date - se.starts_on)::numeric / (se.ends_on - se.starts_on), 0.05), 1), 3)
         as season_elapsed,
       round(100 * s.spend / nullif(bu.amount / greatest(coalesce(n.n, 1), 1)
             * least(greatest((current_date - se.starts_on)::numeric / (se.ends_on - se.starts_on), 0.05), 1), 0))
         as pace_pct,
       coalesce(s.spend > 1.2 * bu.amount / greatest(coalesce(n.n, 1), 1)
             * least(greatest((current_date - se.starts_on)::numeric / (se.ends_on - se.starts_on), 0.05), 1), false)
         as running_hot
  from spend s
  join app.seasons se on se.id = s.season_id
  left join budget bu on bu.season_id = s.season_id and bu.team_id = s.team_id
  left join buyers n on n.team_id = s.team_id
  left join app.teams t on t.id = s.team_id
  left join app.staff st on st.id = s.buyer_id;
comment on view analytics.buyers_running_hot is 'Grain: season x buyer. Spend against the buyer''s share of the team''s season budget (the budget / active buyers and senior buyers of the team) scaled by how much of the season has passed (at least 5%): pace_pct 100 = on plan; running_hot above 120.';

-- season x supplier for whoever asks: the precomputed all-teams rows for the roles that see
-- every team (a lookup), the team's scorecard rolled up for buyers (a few thousand rows).
-- SECURITY INVOKER: each branch is scoped by the view it reads.
create view analytics.supplier_seasons with (security_invoker) as
select a.season_id, a.season, a.supplier_id, a.supplier, a.samples, a.received, a.lead_days_sum,
       a.late_deliveries, a.inspected, a.qc_rejected, a.returned, a.cut_for_production, a.spend_gbp, a.committed_gbp
  from analytics.supplier_season_all_teams a
union all
select f.season_id, f.season, f.supplier_id, f.supplier, sum(f.samples)::integer, sum(f.received)::integer,
       sum(f.lead_days_sum)::bigint, sum(f.late_deliveries)::integer, sum(f.inspected)::integer,
       sum(f.qc_rejected)::integer, sum(f.returned)::integer, sum(f.cut_for_production)::integer,
       sum(f.spend_gbp), sum(f.committed_gbp)
  from analytics.supplier_scorecard f
 where (select app.current_staff_role()) in ('buyer', 'senior_buyer')
 group by f.season_id, f.season, f.supplier_id, f.supplier;
comment on view analytics.supplier_seasons is 'Grain: season x supplier, the teams you may see together: the scorecard''s counts and sums (average lead days = lead_days_sum / received; QC reject % = qc_rejected / inspected). Read from the precomputed all-teams roll-up for the roles that see every team, summed from the team''s scorecard for buyers and senior buyers.';

------------------------------------------------------------------------------
-- grants: the roles that read costs (the cost policy of app.sample_costs)
------------------------------------------------------------------------------
grant usage on schema analytics to buyer, senior_buyer, sales_lead, finance, ops_director, md;
grant select on analytics.teams, analytics.data_as_of, analytics.spend, analytics.spend_monthly, analytics.buyer_season,
  analytics.supplier_scorecard, analytics.spend_category_month, analytics.spend_team_month, analytics.spend_season,
  analytics.supplier_share_leaders, analytics.supplier_season_all_teams, analytics.supplier_seasons,
  analytics.state_days, analytics.category_monthly, analytics.season_spend, analytics.budget_vs_actual,
  analytics.buyers_running_hot
  to buyer, senior_buyer, sales_lead, finance, ops_director, md;
revoke execute on function analytics.supplier_over_index(date), analytics.category_month(date),
  analytics.over_indexed_suppliers(date) from public;
grant execute on function analytics.supplier_over_index(date), analytics.category_month(date),
  analytics.over_indexed_suppliers(date)
  to buyer, senior_buyer, sales_lead, finance, ops_director, md;
-- NOTE: designers, sales executives, QC, factory liaisons, logistics and the system admin
--       read no costs, so they get no analytics at all (not even USAGE on the schema).
