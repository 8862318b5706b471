-- Spend analytics (issue 13): refreshing the materialised views in analytics_private
-- and recording "data as of"; the budget trigger. The scoped views are in
-- sql/views/050_analytics.sql.
set local role tracker_owner;

-- A table of analytics_private kept equal to its definition, the view <table>_query, by
-- writing only the difference (V0022): one hash full join of the table with the query on the
-- key (the columns of its unique index <table>_key, all NOT NULL) keeps the rows that differ:
-- an old row to delete (by its ctid: only the refresh writes these tables, under its lock), a
-- new row to insert, or both for a changed row. REFRESH ... CONCURRENTLY of a materialised
-- view writes the whole result to a temporary table, checks it for duplicates and matches
-- whole rows by a sort-merge join: at 1M samples that was two thirds of spend_facts' time.
-- Readers only ever see row changes: never blocked, the old figures until commit. ANALYZEd
-- when rows changed. Returns the rows deleted + inserted. SECURITY INVOKER, granted to nobody.
create or replace function app_private.refresh_table_by_difference(p_table text)
returns bigint
language plpgsql volatile
set search_path = pg_catalog, analytics_private, pg_temp
as $$
declare
  v_keys text[];
  v_cols text[];
  v_vals text[];
  v_keys_not_null boolean;
  v_deleted bigint;
  v_inserted bigint;
begin
  if p_table is not null then
    select array_agg(a.attname::text order by k.n), bool_and(a.attnotnull)
      into v_keys, v_keys_not_null
      from pg_index i
      cross join lateral unnest(i.indkey) with ordinality k(attnum, n)
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indexrelid = to_regclass(format('analytics_private.%I', p_table || '_key')) and i.indisunique;
  end if;
  if v_keys is null or not v_keys_not_null  -- (null: no such name, no key index)
     or to_regclass(format('analytics_private.%I', p_table)) is null
     or to_regclass(format('analytics_private.%I', p_table || '_query')) is null then
    raise exception using errcode = 'TR043',
      message = format('analytics_private.%s cannot be refreshed by its difference', coalesce(p_table, 'null')),
      detail = 'It needs the table, its definition (the view <table>_query) and a unique index <table>_key on NOT NULL columns.',
      hint = 'Refresh a materialised view with REFRESH MATERIALIZED VIEW CONCURRENTLY instead.';
  end if;
  select array_agg(a.attname::text order by a.attnum) into v_cols
    from pg_attribute a
   where a.attrelid = format('analytics_private.%I', p_table)::regclass and a.attnum > 0 and not a.attisdropped;
  select array_agg(c) into v_vals from unnest(v_cols) c where c <> all (v_keys);

  if to_regclass('pg_temp.refresh_difference') is not null then  -- a second refresh in one transaction
    drop table pg_temp.refresh_difference;
  end if;
  execute format(
    'create temporary table refresh_difference on commit drop as
     select f.ctid as old_row, n.*
       from analytics_private.%1$I f
       full join analytics_private.%2$I n on %3$s
      where f.ctid is null or n.%4$I is null or (%5$s) is distinct from (%6$s)',
    p_table, p_table || '_query',
    (select string_agg(format('n.%1$I = f.%1$I', k), ' and ') from unnest(v_keys) k),
    v_keys[1],
    (select string_agg(format('n.%I', v), ', ') from unnest(v_vals) v),
    (select string_agg(format('f.%I', v), ', ') from unnest(v_vals) v));
  execute format('delete from analytics_private.%I f
                   where f.ctid = any (array(select d.old_row from pg_temp.refresh_difference d
                                              where d.old_row is not null))', p_table);
  get diagnostics v_deleted = row_count;
  execute format('insert into analytics_private.%1$I (%2$s) select %3$s from pg_temp.refresh_difference d
                   where d.%4$I is not null',
                 p_table, (select string_agg(format('%I', c), ', ') from unnest(v_cols) c),
                 (select string_agg(format('d.%I', c), ', ') from unnest(v_cols) c), v_keys[1]);
  get diagnostics v_inserted = row_count;
  drop table pg_temp.refresh_difference;
  if v_deleted + v_inserted > 0 then
    execute format('analyze analytics_private.%I', p_table);
  end if;
  return v_deleted + v_inserted;
end
$$;
comment on function app_private.refresh_table_by_difference(text) is 'Make a table of analytics_private equal to its definition (the view <table>_query) by writing only the rows that differ, matched on its unique index <table>_key (NOT NULL columns); readers are never blocked. TR043 for anything else. Called by app_private.refresh_analytics().';

-- The refresh itself, in one transaction, so readers see the old figures until it commits
-- and are never blocked (nothing here takes more than a row lock on what they read):
--  1. spend_facts (a table) by its difference from its definition;
--  2. its roll-ups in dependency order: supplier_scorecard (a table, 227k rows at 1M samples)
--     by its difference too, the others (materialised views) CONCURRENTLY;
--  3. state_days (a table of sums): the samples queued since the last refresh
--     (analytics_private.stays_queue) have their stays summed again; the groups get the
--     difference. Closed stays never change (events are append-only), so nothing else is read.
-- Each step timed; the refresh recorded ("data as of" = its start; open stays are counted to
-- it when read). SECURITY INVOKER and granted to nobody: pg_cron runs it as the scheduling
-- superuser, app.refresh_analytics() as the owner. One refresh at a time (a transaction-level
-- advisory lock). work_mem is raised for the refresh alone: at the default 4 MB the
-- million-row sorts and hashes spill to disk.
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
  v_ids bigint[];
begin
  if not pg_try_advisory_xact_lock(hashtext('tracker.analytics.refresh')) then
    raise exception using errcode = 'TR041',
      message = 'the analytics figures are being refreshed right now',
      hint = 'Wait a minute and reload the page; the refresh that is running will bring the figures up to date.';
  end if;

  -- 1-2. spend_facts and its roll-ups, in dependency order: the tables by their difference
  -- from their definitions, the materialised views CONCURRENTLY
  foreach v_view in array array['spend_facts', 'spend_monthly', 'spend_buyer_season', 'supplier_scorecard',
                                'supplier_season', 'spend_category_month', 'spend_team_month', 'spend_season',
                                'supplier_share_leaders'] loop
    v_t := clock_timestamp();
    if (select c.relkind from pg_class c where c.oid = format('analytics_private.%I', v_view)::regclass) = 'r' then
      perform app_private.refresh_table_by_difference(v_view);
    else
      execute format('refresh materialized view concurrently analytics_private.%I', v_view);
      -- fresh statistics, or the planner guesses a few dozen rows and joins names row by row
      execute format('analyze analytics_private.%I', v_view);
    end if;
    v_seconds := v_seconds || jsonb_build_object(v_view,
                   round(extract(epoch from clock_timestamp() - v_t)::numeric, 3));
  end loop;

  -- 3. state_days: the queued samples' stays again, the groups by the difference
  v_t := clock_timestamp();
  with q as (delete from analytics_private.stays_queue returning sample_id)
  select coalesce(array_agg(distinct q.sample_id), '{}') into v_ids from q;
  if cardinality(v_ids) > 0 then
    if to_regclass('pg_temp.refresh_stays_delta') is not null then
      drop table pg_temp.refresh_stays_delta;
    end if;
    create temporary table refresh_stays_delta (
      team_id integer, category_id integer, supplier_id integer, state app.sample_state,
      stays integer, seconds double precision, open_stays integer, open_since double precision
    ) on commit drop;
    with old as (
      delete from analytics_private.sample_stays ss where ss.sample_id = any (v_ids) returning ss.*
    )
    insert into pg_temp.refresh_stays_delta
    select team_id, category_id, supplier_id, state, -(stays + (open_since is not null)::integer), -seconds,
           -(open_since is not null)::integer, -coalesce(open_since, 0)
      from old;
    with new as (
      insert into analytics_private.sample_stays
      select * from analytics_private.sample_stays_query q where q.sample_id = any (v_ids)
      returning *
    )
    insert into pg_temp.refresh_stays_delta
    select team_id, category_id, supplier_id, state, stays + (open_since is not null)::integer, seconds,
           (open_since is not null)::integer, coalesce(open_since, 0)
      from new;
    insert into analytics_private.state_days as d
      (team_id, category_id, supplier_id, state, stays, closed_seconds, open_stays, open_since_sum)
    select team_id, coalesce(case when grouping(category_id) = 0 then category_id end, 0),
           coalesce(case when grouping(supplier_id) = 0 then supplier_id end, 0), state,
           sum(stays), sum(seconds), sum(open_stays), sum(open_since)
      from pg_temp.refresh_stays_delta
     group by grouping sets ((team_id, category_id, state), (team_id, supplier_id, state))
    on conflict (team_id, category_id, supplier_id, state) do update
       set stays = d.stays + excluded.stays,
           closed_seconds = case when d.stays + excluded.stays = 0 then 0
                                 else d.closed_seconds + excluded.closed_seconds end,
           open_stays = d.open_stays + excluded.open_stays,
           -- exactly 0 without open stays (no rounding left over from the differences)
           open_since_sum = case when d.open_stays + excluded.open_stays = 0 then 0
                                 else d.open_since_sum + excluded.open_since_sum end;
    delete from analytics_private.state_days where stays = 0;
    drop table pg_temp.refresh_stays_delta;
    -- (sample_stays is only ever read by its key: its statistics are left to autovacuum)
    analyze analytics_private.state_days;
  end if;
  v_seconds := v_seconds || jsonb_build_object('state_days', round(extract(epoch from clock_timestamp() - v_t)::numeric, 3));

  insert into analytics_private.refreshes (started_at, finished_at, trigger, staff_id, seconds)
  values (v_started, clock_timestamp(), p_trigger, p_staff_id, v_seconds);
  return v_started;
end
$$;
comment on function app_private.refresh_analytics(text, bigint) is 'Refresh the analytics figures and record the refresh ("data as of" = its start): spend_facts by its difference from its definition, its roll-ups (materialised views) CONCURRENTLY, state_days from the samples queued since the last refresh; readers are never blocked. Run nightly by pg_cron (job tracker-analytics-refresh) and by app.refresh_analytics().';

-- the samples whose stays must be summed again at the next refresh: a new move (statement
-- level: one insert per statement, however many events) ...
create or replace function app_private.tg_sample_events__queue_stays() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, analytics_private, pg_temp
as $$
begin
  insert into analytics_private.stays_queue (sample_id)
  select distinct n.sample_id from new_events n where n.to_state is not null and n.from_state is distinct from n.to_state;
  return null;
end
$$;
comment on function app_private.tg_sample_events__queue_stays() is 'Trigger on app.sample_events (after insert, per statement): queues the samples that moved, for the next analytics refresh (state_days). SECURITY DEFINER: the queue is private.';

-- ... or a sample counted under another team, category or supplier (a correction; buyers may
-- change a category directly)
create or replace function app_private.tg_samples__queue_stays() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, analytics_private, pg_temp
as $$
begin
  insert into analytics_private.stays_queue (sample_id) values (new.id);
  return null;
end
$$;
comment on function app_private.tg_samples__queue_stays() is 'Trigger on app.samples (after a change of team, category or supplier): queues the sample for the next analytics refresh (state_days). SECURITY DEFINER: the queue is private, and buyers change categories directly.';

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

