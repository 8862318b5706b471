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

-- The watermark (V0024). While any snapshot stays open (an analyst's REPEATABLE READ
-- transaction, a pg_dump) the inbox rows moved since then stay in the index as not yet
-- removable, and `order by id limit n` from the start walked every one of them at every run.
-- So a run reads only `id > floor`, where floor_id (app_private.realtime_watermark) is an id
-- below which no row can still appear. Max-id-moved is no such floor: a transaction draws its
-- inbox ids late (the deferred triggers, at commit), so a low id can commit after higher ones.
-- The rule, for a run R that sets a pending floor and a later run R' that makes it the floor:
--  1. R reads the inbox sequence's position P (pg_sequence_last_value, not transactional)
--     while its transaction has no xid, then takes its xid X (pg_current_xact_id()). With
--     CACHE 1 (checked whenever the sequence's file changes, which every ALTER SEQUENCE does)
--     every id <= P was handed out before the read. Only the signal triggers write the inbox,
--     AFTER a write of their own transaction, which assigned its xid first: so every id <= P
--     belongs to a transaction whose xid was assigned before X, i.e. is below X (xids are
--     handed out in order). Not pg_snapshot_xmax for X: it is one past the latest *completed*
--     xid, and a transaction still running may hold a later one.
--  2. R' takes a snapshot whose xmin is >= X: no transaction below X is running (a running one
--     would be in the snapshot, at or above its xmin), so each writer of an id <= P has
--     committed (its rows visible to every later snapshot) or rolled back (never visible).
--  3. R' then moves, in that snapshot or a later one (a REPEATABLE READ caller's is the same),
--     every visible row above the old floor, or at least every one up to P (its batch was not
--     full, or reached P). Every row <= P that will ever exist has now been moved, and
--     floor_id := P is written in the same transaction: if R' rolls back, its moves and its
--     floor go back together.
-- A transaction that holds an xid (it wrote) and stays open holds the floor where it is (it
-- could still commit a low id); a read-only snapshot does not: xmin counts running xids only.
-- The floor rises in steps of at least c_step ids: the watermark row is written at most twice
-- per c_step ids (once per run while batches are larger), only by runs that set or raise the
-- floor (once it has caught up after a burst, idle runs write nothing), and an idle run walks
-- fewer than c_step moved ids. A caller cannot supply a floor.
create or replace function app_private.sequence_realtime(p_max_rows integer default 10000) returns integer
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  c_step constant bigint := 1000;  -- the least the floor rises by (the idle walk's bound)
  v_fresh boolean;                 -- no xid yet when the position was read
  v_pos bigint;                    -- the inbox sequence's position
  v_filenode oid;                  -- its file (null: it does not draw ids one at a time, upward)
  v_mark app_private.realtime_watermark;
  v_floor bigint := 0;
  v_pending bigint;
  v_pending_xact xid8;
  v_xmin xid8;
  v_taken integer;
  v_last bigint;
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
  -- (1) the position first, then (if this transaction has no xid yet) any xid taken later is above its writers'
  v_fresh := pg_current_xact_id_if_assigned() is null;
  v_pos := coalesce(pg_sequence_last_value('app_private.realtime_inbox_id_seq'::regclass), 0);
  v_filenode := pg_relation_filenode('app_private.realtime_inbox_id_seq'::regclass);
  select * into v_mark from app_private.realtime_watermark;
  if v_mark.seq_filenode is distinct from v_filenode then
    -- a sequence file the watermark was not computed from: every ALTER SEQUENCE, a TRUNCATE ...
    -- RESTART IDENTITY and a restore make a new one. Its floor is dropped (start again from 0),
    -- and one that does not draw one id at a time, upward, gets no watermark at all
    if not exists (select from pg_sequence
                    where seqrelid = 'app_private.realtime_inbox_id_seq'::regclass
                      and seqcache = 1 and seqincrement = 1 and not seqcycle) then
      v_filenode := null;
    end if;
  elsif v_mark.floor_id <= v_pos and coalesce(v_mark.pending_id, 0) <= v_pos then
    -- (and behind the position: a floor above it was not computed from these ids either)
    v_floor := v_mark.floor_id;
    v_pending := v_mark.pending_id;
    v_pending_xact := v_mark.pending_xact;
  end if;
  -- (2) the oldest running xid, in a snapshot taken before the move's
  v_xmin := pg_snapshot_xmin(pg_current_snapshot());
  -- (3) one per thing per transaction is kept here (the first), in the inbox's order. A
  -- transaction's signals commit together, so they share a batch, unless a capped batch ends
  -- among them: then a thing may be signalled once in each of two batches (two ids, which a
  -- page takes as one more refresh; nothing is lost)
  with batch as (
    -- the first p_max_rows visible ids above the floor, as one range of the index (an `id in
    -- (...)` here was planned as a hash join over a scan of the whole inbox, moved rows and all)
    delete from app_private.realtime_inbox
     where id > v_floor
       and id <= (select max(id) from (select id from app_private.realtime_inbox
                                         where id > v_floor order by id limit p_max_rows) f)
    returning xact, sample_id, kind, ref_id, at, id
  ), once as (
    select distinct on (xact, sample_id, kind, ref_id) xact, sample_id, kind, ref_id, at, id
      from batch order by xact, sample_id, kind, ref_id, id
  ), moved as (
    insert into app.realtime_events (xact, sample_id, kind, ref_id, at)
    select xact, sample_id, kind, ref_id, at from once order by id
    returning id
  )
  select b.taken, b.last, m.moved, m.top into v_taken, v_last, v_moved, v_top
    from (select count(*)::integer as taken, max(id) as last from batch) b,
         (select count(*)::integer as moved, max(id) as top from moved) m;
  if v_top is not null then
    perform pg_notify('realtime_events', v_top::text);
  end if;
  -- the pending floor becomes the floor once its writers have all ended and this run moved
  -- every visible row up to it
  if v_pending is not null and v_xmin >= v_pending_xact and (v_taken < p_max_rows or v_last >= v_pending) then
    v_floor := v_pending;
    v_pending := null;
    v_pending_xact := null;
  end if;
  -- a new pending floor, a step ahead at least (pg_current_xact_id() assigns this run's xid
  -- now when its move did not already: after the position was read, either way)
  if v_pending is null and v_fresh and v_filenode is not null and v_pos - v_floor >= c_step then
    v_pending := v_pos;
    v_pending_xact := pg_current_xact_id();
  end if;
  if v_filenode is not null
     and (v_floor, v_pending, v_pending_xact, v_filenode)
         is distinct from (v_mark.floor_id, v_mark.pending_id, v_mark.pending_xact, v_mark.seq_filenode) then
    insert into app_private.realtime_watermark as w (id, floor_id, pending_id, pending_xact, seq_filenode)
    values (true, v_floor, v_pending, v_pending_xact, v_filenode)
    on conflict (id) do update
      set floor_id = excluded.floor_id, pending_id = excluded.pending_id,
          pending_xact = excluded.pending_xact, seq_filenode = excluded.seq_filenode;
  end if;
  return v_moved;
end
$$;
comment on function app_private.sequence_realtime(integer) is 'The realtime sequencer: moves committed signals (at most p_max_rows, oldest first) from app_private.realtime_inbox into app.realtime_events under an advisory lock, so ids become visible in commit order, and NOTIFYs realtime_events with the newest id once per batch. Reads only ids above its own watermark (app_private.realtime_watermark, V0024), so an idle run stays cheap while a snapshot is held. Returns how many it moved (0 when another sequencer holds the lock). Run by each relay (authenticator) and by pg_cron (tracker-realtime-sequence).';

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
  -- above the sequencer's floor only (every row below it has moved): while a snapshot is held,
  -- the rows moved since then are still in the table, and /readyz would read them all
  select extract(epoch from clock_timestamp() - min(i.at))::double precision
    from app_private.realtime_inbox i
   where i.id > coalesce((select w.floor_id from app_private.realtime_watermark w
                           where w.seq_filenode = pg_relation_filenode('app_private.realtime_inbox_id_seq')), 0)
$$;
comment on function app_private.realtime_backlog() is 'Seconds the oldest committed signal has waited for the sequencer (its transaction''s start), or null when none waits (authenticator only: /readyz says "not ready" past REALTIME_BACKLOG_SECONDS). Reads only above the sequencer''s watermark. Reveals timing, never what changed.';

create or replace function app_private.realtime_high_water() returns bigint
language sql stable security definer
set search_path = pg_catalog, app, pg_temp
as $$
  select coalesce(max(id), 0) from app.realtime_events
$$;
comment on function app_private.realtime_high_water() is 'The newest committed realtime event id (authenticator only: the relay''s catch-up point after its LISTEN connection comes back). Reveals the number of changes, never what changed.';
