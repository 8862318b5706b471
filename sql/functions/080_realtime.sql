-- Realtime signals: every change a page shows leaves one row in app.realtime_events
-- and NOTIFY realtime_events carries an id and nothing else (any login can LISTEN to
-- any channel). The web process's relay (tracker/web/realtime.py) reads the rows back
-- through each subscriber's own role and session, so RLS decides what anyone receives.
--
-- Two steps, so that writers never wait for each other (issue 18):
-- * Writers append. The signal triggers are DEFERRABLE INITIALLY DEFERRED constraint
--   triggers: at commit they insert one row per changed row into
--   app_private.realtime_inbox, with no lock and no NOTIFY (a NOTIFY at every commit
--   serialised every signalling commit in the building on one instance-wide lock).
-- * A sequencer moves. app_private.sequence_realtime() takes the committed inbox rows (the
--   ones its snapshot sees), inserts them into app.realtime_events in one statement under
--   a transaction advisory lock, and NOTIFYs the batch's newest id. One sequencer at a time
--   holds the lock until its commit is visible, so a later id can never become visible
--   before an earlier one: committed ids form a prefix, and "every id after N" is an exact
--   resume cursor. Each web process's relay runs it every REALTIME_SEQUENCE_SECONDS (a
--   few tens of milliseconds: the latency it adds); pg_cron runs it as a backstop.
set local role tracker_owner;

create or replace function app_private.tg_any__realtime_signal() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_kind text := tg_argv[0];
  v_sample bigint;
  v_ref bigint;
begin
  if tg_table_name = 'samples' then
    v_sample := new.id;
  elsif tg_table_name = 'suppliers' then
    v_ref := new.id;  -- a supplier signal has no sample (its watchers follow it live)
  else
    v_sample := new.sample_id;  -- every other signalling table hangs off a sample
  end if;
  if v_kind in ('comment', 'photo', 'inspection') then
    v_ref := new.id;
  end if;
  insert into app_private.realtime_inbox (sample_id, kind, ref_id) values (v_sample, v_kind, v_ref);
  return null;
end
$$;
comment on function app_private.tg_any__realtime_signal() is 'Deferred (at commit) AFTER INSERT/UPDATE trigger: one app_private.realtime_inbox row per changed row, without a lock, a key check or a NOTIFY (app_private.sequence_realtime() keeps one per thing per transaction, orders and announces them).';

create or replace function app_private.sequence_realtime(p_max_rows integer default 10000) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_moved integer;
  v_top bigint;
begin
  if p_max_rows is null or p_max_rows < 1 then
    raise exception using errcode = 'TR020', message = 'the realtime sequencer moves at least one signal per batch',
      detail = format('p_max_rows was %s', coalesce(p_max_rows::text, 'null')),
      hint = 'Call app_private.sequence_realtime() without an argument for the default batch of 10,000.';
  end if;
  -- NOTE: a caller that keeps its transaction open keeps the lock, and every other sequencer
  --       idle, until it ends; /readyz reports such a stall (app_private.realtime_backlog()).
  -- one sequencer at a time; one that finds the lock taken leaves the rows to the holder
  if not pg_try_advisory_xact_lock(hashtext('tracker.realtime_events')) then
    return 0;
  end if;
  -- one per thing per transaction is kept here (the first), in the inbox's order. A
  -- transaction's signals commit together, so they share a batch, unless a capped batch ends
  -- among them: then a thing may be signalled once in each of two batches (two ids, which a
  -- page takes as one more refresh; nothing is lost)
  with batch as (
    delete from app_private.realtime_inbox
     where id in (select id from app_private.realtime_inbox order by id limit p_max_rows)
    returning xact, sample_id, kind, ref_id, at, id
  ), once as (
    select distinct on (xact, sample_id, kind, ref_id) xact, sample_id, kind, ref_id, at, id
      from batch order by xact, sample_id, kind, ref_id, id
  ), moved as (
    insert into app.realtime_events (xact, sample_id, kind, ref_id, at)
    select xact, sample_id, kind, ref_id, at from once order by id
    returning id
  )
  select count(*), max(id) into v_moved, v_top from moved;
  if v_top is not null then
    perform pg_notify('realtime_events', v_top::text);
  end if;
  return v_moved;
end
$$;
comment on function app_private.sequence_realtime(integer) is 'The realtime sequencer: moves committed signals (at most p_max_rows, oldest first) from app_private.realtime_inbox into app.realtime_events under an advisory lock, so ids become visible in commit order, and NOTIFYs realtime_events with the newest id once per batch. Returns how many it moved (0 when another sequencer holds the lock). Run by each relay (authenticator) and by pg_cron (tracker-realtime-sequence).';

-- NOTE: the signal triggers are attached beside their tables (sql/policies/), one per table:
--       samples, sample_costs, sample_comments, sample_photos, qc_inspections, suppliers (an event
--       needs none: it is always written with a change of its sample or photo that signals).

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

create or replace function app_private.realtime_backlog() returns double precision
language sql stable security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
  select extract(epoch from clock_timestamp() - min(at))::double precision from app_private.realtime_inbox
$$;
comment on function app_private.realtime_backlog() is 'Seconds the oldest committed signal has waited for the sequencer (its transaction''s start), or null when none waits (authenticator only: /readyz says "not ready" past REALTIME_BACKLOG_SECONDS). Reveals timing, never what changed.';

create or replace function app_private.realtime_high_water() returns bigint
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
  select coalesce(max(id), 0) from app.realtime_events
$$;
comment on function app_private.realtime_high_water() is 'The newest committed realtime event id (authenticator only: the relay''s catch-up point after its LISTEN connection comes back). Reveals the number of changes, never what changed.';
