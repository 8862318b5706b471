-- Realtime signals: every change a page shows leaves one row in app.realtime_events
-- and NOTIFY realtime_events carries that row's id and nothing else (any login can
-- LISTEN to any channel). The web process's relay (tracker/web/realtime.py) reads the
-- rows back through each subscriber's own role and session, so RLS decides what
-- anyone receives.
--
-- The signal triggers are DEFERRABLE INITIALLY DEFERRED constraint triggers: they run
-- at commit, take one transaction-level advisory lock, and only then draw the id. The
-- lock is held until the commit is visible, so a later id can never become visible
-- before an earlier one: committed ids form a prefix (rolled-back ones leave holes
-- that nothing fills later), and "every id after N" is an exact resume cursor.
-- NOTIFY itself already serialises notifying commits on one instance-wide lock, so
-- this adds an ordering, not a new bottleneck (bench/bench_realtime.py measures it).
set local role tracker_owner;

create or replace function app_private.tg_any__realtime_signal() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_kind text := tg_argv[0];
  v_row jsonb := to_jsonb(new);
  v_sample bigint;
  v_ref bigint;
  v_id bigint;
begin
  if tg_table_name = 'samples' then
    v_sample := (v_row ->> 'id')::bigint;
  elsif tg_table_name = 'suppliers' then
    v_ref := (v_row ->> 'id')::bigint;  -- a supplier signal has no sample (its watchers follow it live)
  else
    v_sample := (v_row ->> 'sample_id')::bigint;
  end if;
  if v_kind in ('comment', 'photo', 'inspection') then
    v_ref := (v_row ->> 'id')::bigint;
  end if;
  -- commit order = id order (see the top of this file)
  perform pg_advisory_xact_lock(hashtext('tracker.realtime_events'));
  insert into app.realtime_events (sample_id, kind, ref_id)
  values (v_sample, v_kind, v_ref)
  on conflict on constraint realtime_events_once_per_xact do nothing
  returning id into v_id;
  if v_id is not null then
    perform pg_notify('realtime_events', v_id::text);
  end if;
  return null;
end
$$;
comment on function app_private.tg_any__realtime_signal() is 'Deferred (at commit) AFTER INSERT/UPDATE trigger: one app.realtime_events row per changed thing per transaction, ids drawn under an advisory lock so they become visible in commit order; NOTIFY realtime_events with the id alone.';

-- NOTE: the signal triggers are attached beside their tables (sql/policies/), one per table:
--       samples, sample_events, sample_costs, sample_comments, sample_photos, qc_inspections, suppliers.

create or replace function app_private.tg_web_sessions__signal_end() returns trigger
language plpgsql volatile
as $$
begin
  -- no payload: the relays re-check every socket's session at once
  perform pg_notify('realtime_sessions', '');
  return null;
end
$$;
comment on function app_private.tg_web_sessions__signal_end() is 'AFTER UPDATE OF ended_at on web_sessions: NOTIFY realtime_sessions (empty payload), so every relay re-checks its sockets'' sessions within moments of a sign-out, deactivation, role or password change.';

create or replace function app_private.realtime_high_water() returns bigint
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
  select coalesce(max(id), 0) from app.realtime_events
$$;
comment on function app_private.realtime_high_water() is 'The newest committed realtime event id (authenticator only: the relay''s catch-up point after its LISTEN connection comes back). Reveals the number of changes, never what changed.';
