-- Spend analytics (issue 13): refreshing the materialised views in analytics_private
-- and recording "data as of"; the budget trigger. The scoped views are in
-- sql/views/050_analytics.sql.
set local role tracker_owner;

-- The refresh itself: every materialised view CONCURRENTLY (readers are never
-- blocked), in dependency order, then ANALYZE it; timed, recorded. SECURITY INVOKER and granted to
-- nobody: pg_cron runs it as the scheduling superuser, app.refresh_analytics() as
-- the owner. One refresh at a time (a transaction-level advisory lock). work_mem is
-- raised for the refresh alone: at the default 4 MB the million-row sorts, hashes and
-- the concurrent refresh's diff spill to disk (spend_facts: 44 s at 4 MB, 31 s at 256 MB
-- on the loaded bench machine).
create or replace function app_private.refresh_analytics(p_trigger text, p_staff_id bigint default null)
returns timestamptz
language plpgsql volatile
set search_path = pg_catalog, analytics_private, pg_temp
set work_mem = '256MB'
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_t timestamptz;
  v_seconds jsonb := '{}';
  v_view text;
begin
  if not pg_try_advisory_xact_lock(hashtext('tracker.analytics.refresh')) then
    raise exception using errcode = 'TR041',
      message = 'the analytics figures are being refreshed right now',
      hint = 'Wait a minute and reload the page; the refresh that is running will bring the figures up to date.';
  end if;
  foreach v_view in array array['spend_facts', 'spend_monthly', 'spend_buyer_season', 'supplier_scorecard',
                                'spend_category_month', 'spend_team_month', 'spend_season', 'supplier_share_leaders',
                                'state_days'] loop
    v_t := clock_timestamp();
    execute format('refresh materialized view concurrently analytics_private.%I', v_view);
    -- fresh statistics, or the planner guesses a few dozen rows and joins names row by row
    execute format('analyze analytics_private.%I', v_view);
    v_seconds := v_seconds || jsonb_build_object(v_view,
                   round(extract(epoch from clock_timestamp() - v_t)::numeric, 3));
  end loop;
  insert into analytics_private.refreshes (started_at, finished_at, trigger, staff_id, seconds)
  values (v_started, clock_timestamp(), p_trigger, p_staff_id, v_seconds);
  return v_started;
end
$$;
comment on function app_private.refresh_analytics(text, bigint) is 'Refresh every analytics materialised view CONCURRENTLY and record the refresh ("data as of" = its start). Run nightly by pg_cron (job tracker-analytics-refresh) and by app.refresh_analytics().';

-- "refresh now" for directors
create or replace function app.refresh_analytics() returns timestamptz
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
begin
  v_me := app_private.require_staff();
  if not app.current_staff_is_director() then
    raise exception using errcode = 'TR040',
      message = 'only the ops director and the MD can refresh the analytics figures',
      detail = format('You are signed in as %s.', replace(v_me.role::text, '_', ' ')),
      hint = 'The figures refresh every night at 02:30; ask a director if you need them sooner.';
  end if;
  return app_private.refresh_analytics('manual', v_me.id);
end
$$;
comment on function app.refresh_analytics() is 'Directors (ops director, MD): refresh the analytics materialised views now; returns the new "data as of" time. TR040 for anyone else, TR041 while a refresh runs.';

-- budgets: who set the amount, when; a readable refusal of a bad amount
create or replace function app_private.tg_budgets__check_change() returns trigger
language plpgsql volatile
set search_path = pg_catalog, app, pg_temp
as $$
begin
  if new.amount_gbp is null or new.amount_gbp < 0 or new.amount_gbp > 1e11 then
    raise exception using errcode = 'TR042',
      message = format('a budget must be an amount in GBP from 0 to 100,000,000,000, not %s',
                       coalesce(new.amount_gbp::text, 'nothing')),
      hint = 'Enter the budget in pounds, e.g. 25000.';
  end if;
  new.updated_by := app.current_staff_id();
  new.updated_at := now();
  return new;
end
$$;
comment on function app_private.tg_budgets__check_change() is 'Trigger on app.budgets: refuses a negative or missing amount (TR042) and stamps who changed it and when.';

