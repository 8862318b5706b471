-- Audit: the generic change trigger, the append-only guards, the sealer that links
-- committed rows into the hash chain in commit order, and the chain verifier.
set local role audit_owner;

create or replace function audit.link_hash(
  p_prev bytea, p_id bigint, p_at timestamptz, p_txid bigint, p_staff_id bigint,
  p_db_role text, p_session_role text, p_table text, p_op text, p_row_id text,
  p_old jsonb, p_new jsonb)
returns bytea
language sql immutable parallel safe
as $$
  select sha256(p_prev || convert_to(concat_ws(chr(31),
           p_id, (extract(epoch from p_at) * 1000000)::bigint, p_txid, coalesce(p_staff_id::text, ''),
           p_db_role, p_session_role, p_table, p_op, coalesce(p_row_id, ''),
           coalesce(p_old::text, ''), coalesce(p_new::text, '')), 'UTF8'))
$$;
comment on function audit.link_hash(bytea, bigint, timestamptz, bigint, bigint, text, text, text, text, text, jsonb, jsonb)
  is 'sha256(previous hash || canonical text of one audit row): one link of the chain.';

create or replace function audit.redact_secrets(p_row jsonb, p_before jsonb) returns jsonb
language sql immutable parallel safe
as $$
  -- each secret column becomes a marker: 'set', 'changed' (set, to another value than
  -- before) or 'cleared' (was set, now null); null stays null
  select p_row || coalesce(jsonb_object_agg(k, case
           when p_row ->> k is null then case when p_before ->> k is not null then to_jsonb('cleared'::text) else 'null'::jsonb end
           when p_before ->> k is not null and p_before ->> k <> p_row ->> k then to_jsonb('changed'::text)
           else to_jsonb('set'::text) end), '{}'::jsonb)
    from unnest(array['password_hash', 'invite_token_hash']) k
   where p_row ? k
$$;
comment on function audit.redact_secrets(jsonb, jsonb) is 'A staff_credentials row for the audit log: password and token hashes replaced by set/changed/cleared markers, so the log proves that a secret changed without holding it.';

create or replace function audit.tg_any__record_change() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, audit, pg_temp
as $$
declare
  v_old jsonb;
  v_new jsonb;
  v_table text := tg_table_schema || '.' || tg_table_name;
  v_row jsonb;
  v_row_id text;
begin
  -- derived search documents are not business data: left out of the log
  if tg_op in ('UPDATE', 'DELETE') then v_old := to_jsonb(old) - 'search'; end if;
  if tg_op in ('INSERT', 'UPDATE') then v_new := to_jsonb(new) - 'search'; end if;
  -- photo bytes are replaced by their digest (the log proves which image, without copying it)
  if v_new ? 'image' then
    v_new := v_new - 'image' - 'thumbnail'
             || jsonb_build_object('image_sha256', encode(sha256(decode(substr(v_new ->> 'image', 3), 'hex')), 'hex'));
  end if;
  -- credentials: the log says a hash was set, changed or cleared, never what it is
  if v_table = 'app_private.staff_credentials' then
    v_new := audit.redact_secrets(v_new, v_old);
    v_old := audit.redact_secrets(v_old, null);
  end if;
  if tg_op = 'UPDATE' and v_old = v_new then
    return null;  -- an update that changed nothing leaves no trace
  end if;
  -- the row's key: the trigger's arguments are the table's primary-key columns, read
  -- from pg_index when the trigger is attached (021_audit_triggers.sql). One column:
  -- its value as text ('4421', 'GBP'); several: a JSON array of the values in key order.
  v_row := coalesce(v_new, v_old);
  if tg_nargs = 1 then
    v_row_id := v_row ->> tg_argv[0];
  elsif tg_nargs > 1 then
    select jsonb_agg(v_row -> k order by n)::text into v_row_id
      from unnest(tg_argv) with ordinality a(k, n);
  end if;
  -- Appended unsealed: no hash yet, and no row that every writer shares. The sealer
  -- (audit.seal) chains committed rows in commit order; until then the row is in the
  -- unsealed window that audit.verify_chain() reports.
  insert into audit.log (at, txid, staff_id, db_role, session_role, table_name, op, row_id, old_row, new_row)
  values (clock_timestamp(), txid_current(), app.current_staff_id(),
          -- the role the change was made as: the staff role the app switched to, else the login
          case when current_setting('role') <> 'none' then current_setting('role') else session_user::text end,
          session_user::text, v_table, tg_op, v_row_id, v_old, v_new);
  return null;
end
$$;
comment on function audit.tg_any__record_change() is 'AFTER row trigger on every business table (arguments: its primary-key columns): appends who/when/old/new to audit.log, unsealed; audit.seal() chains it.';

create or replace function audit.tg_any__forbid_change() returns trigger
language plpgsql volatile
as $$
begin
  raise exception using
    errcode = 'TR011',
    message = format('%s.%s is append-only; %s is not allowed', tg_table_schema, tg_table_name, lower(tg_op)),
    hint = 'Record a correcting entry instead.';
end
$$;
comment on function audit.tg_any__forbid_change() is 'BEFORE UPDATE/DELETE/TRUNCATE guard for append-only tables; raises TR011 for every role, the owner included.';

drop trigger if exists before_change_forbid on audit.log;
-- written once: no update, not even the sealer's (V0025: a seal is a row of audit.seals)
create or replace trigger before_update_forbid before update on audit.log
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_delete_forbid before delete on audit.log
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_truncate_forbid before truncate on audit.log
  for each statement execute function audit.tg_any__forbid_change();
-- (the seals' own guards are beside them: sql/policies/006_audit_seals.sql)

create or replace function audit.seal(p_max_rows integer default 50000)
returns table (sealed integer, last_seq bigint, max_lag interval)
language plpgsql volatile security definer
set search_path = pg_catalog, audit, pg_temp
-- its row query is planned for each run's floor: a generic plan (a long-lived caller, such as a web
-- process's relay, gets one after five runs) can read the whole log by id when nothing is waiting
set plan_cache_mode = force_custom_plan
as $$
declare
  v_own bigint;
  v_zero bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
  v_head record;
  v_snap pg_snapshot;
  v_floor_xmax bigint;
  v_floor_xip bigint[];
  v_prev bytea;
  v_seq bigint;
  v_hash bytea;
  v_ids bigint[] := '{}';
  v_seqs bigint[] := '{}';
  v_prevs bytea[] := '{}';
  v_hashes bytea[] := '{}';
  v_oldest timestamptz;
  r record;
begin
  if p_max_rows is null or p_max_rows not between 1 and 1000000 then
    raise exception using errcode = 'TR050', message = format('A seal batch of %s rows is not possible.', coalesce(p_max_rows::text, 'no')),
      detail = 'audit.seal takes between 1 and 1,000,000 rows per batch.', hint = 'Call audit.seal() without an argument for the default.';
  end if;
  -- one sealer at a time (pg_cron, the CLI, a second CLI): the others wait here, then
  -- read the head the first one left
  perform pg_advisory_xact_lock(hashtextextended('tracker.audit.seal', 0));
  select h.last_seq, h.last_hash, h.cut, h.floor into v_head from audit.chain_head h for update;
  v_prev := coalesce(v_head.last_hash, v_zero);
  v_seq := coalesce(v_head.last_seq, 0);
  -- Commit order. The rows visible to a snapshot are exactly the rows whose transactions
  -- committed before it (and an aborted transaction's rows are never visible): every row
  -- committed later belongs after all of them. So a batch is "every unsealed row committed
  -- before this snapshot", in id order within the batch, appended after the last batch; a
  -- transaction still open - whatever ids it drew - is sealed in a later batch, after it
  -- commits. When a batch is capped (p_max_rows), the rest of that snapshot's rows are
  -- sealed first next time (chain_head.cut), before anything that committed since.
  -- A floor (or cut) beyond this cluster's next transaction id was not taken here: the database
  -- was restored from a dump of another cluster, whose transaction ids these are. It says
  -- nothing about this cluster's rows: read every unsealed row once (the next floor is ours).
  if pg_snapshot_xmax(v_head.floor) > pg_snapshot_xmax(pg_current_snapshot()) then
    v_head.floor := '1:1:'::pg_snapshot;
    v_head.cut := null;
  end if;
  v_snap := coalesce(v_head.cut, pg_current_snapshot());
  -- The sealer's own transaction (it has an id: it locked the head) is running, not ended, though
  -- its own snapshot leaves it out of the running list: put it in. Else a caller that seals and
  -- then writes more in the same transaction (anyone who may seal can do it on purpose) would
  -- leave those rows below the floor, never sealed. Its own rows are sealed after it commits.
  v_own := pg_current_xact_id()::text::bigint;
  if v_own < pg_snapshot_xmax(v_snap)::text::bigint and pg_visible_in_snapshot(v_own::text::xid8, v_snap) then
    select format('%s:%s:%s', least(pg_snapshot_xmin(v_snap)::text::bigint, v_own), pg_snapshot_xmax(v_snap),
                  string_agg(x::text, ',' order by x))::pg_snapshot
      into v_snap
      from (select x::text::bigint as x from pg_snapshot_xip(v_snap) x union select v_own) u;
  end if;
  -- Which rows to read (V0025). The floor is the snapshot of the last uncapped batch: every
  -- row of a transaction it counts as ended was sealed by that batch (it was visible) or is
  -- a rolled-back one (never visible). What is left to seal was written by a transaction the
  -- floor saw running (its xip) or that began after it (txid >= its xmax): those rows alone
  -- are read, by the txid index, and the ones a capped batch already sealed are skipped.
  -- An open transaction does not hold the others back: whatever committed is sealed now.
  v_floor_xmax := pg_snapshot_xmax(v_head.floor)::text::bigint;
  select coalesce(array_agg(x::text::bigint), '{}') into v_floor_xip from pg_snapshot_xip(v_head.floor) x;
  for r in
    select l.id, l.at, l.txid, l.staff_id, l.db_role, l.session_role, l.table_name, l.op, l.row_id, l.old_row, l.new_row
      from audit.log l
     where (l.txid >= v_floor_xmax or l.txid = any (v_floor_xip))
       and (pg_visible_in_snapshot(l.txid::text::xid8, v_snap)
            -- a committed row (this scan sees it) with an id at or above the scan's xmax, so not
            -- one of this cluster's committed transactions (the caller's own are left out below):
            -- written before a restore, by another cluster, long committed
            or l.txid >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
       -- never the caller's own rows (uncommitted yet; a snapshot's xmax is the last completed id
       -- + 1, so the caller's own id can be at or above it and pass the test just above)
       and l.txid <> v_own
       and not exists (select from audit.seals s where s.log_id = l.id)
     order by l.id
     limit p_max_rows
  loop
    v_seq := v_seq + 1;
    v_hash := audit.link_hash(v_prev, r.id, r.at, r.txid, r.staff_id, r.db_role, r.session_role,
                              r.table_name, r.op, r.row_id, r.old_row, r.new_row);
    v_ids := v_ids || r.id;
    v_seqs := v_seqs || v_seq;
    v_prevs := v_prevs || v_prev;
    v_hashes := v_hashes || v_hash;
    v_oldest := least(v_oldest, r.at);
    v_prev := v_hash;
  end loop;
  -- a row sealed twice would break the unique log_id: the whole batch fails, none is half-sealed
  insert into audit.seals (seq, log_id, prev_hash, hash)
  select u.seq, u.id, u.prev, u.hash from unnest(v_ids, v_seqs, v_prevs, v_hashes) u(id, seq, prev, hash);
  update audit.chain_head
     set last_id = coalesce(v_ids[cardinality(v_ids)], last_id), last_seq = v_seq, last_hash = v_prev,
         sealed_at = case when cardinality(v_ids) > 0 then clock_timestamp() else sealed_at end,
         -- capped: the same snapshot again next time, floor unchanged; else this snapshot is the floor
         cut = case when cardinality(v_ids) = p_max_rows then v_snap end,
         floor = case when cardinality(v_ids) = p_max_rows then v_head.floor else v_snap end;
  return query select cardinality(v_ids), v_seq, clock_timestamp() - v_oldest;
end
$$;
comment on function audit.seal(integer) is 'The sealer: links every committed unsealed audit row (at most p_max_rows) into the hash chain (audit.seals), in commit order, under an advisory lock; idempotent. Reads only the rows its floor (chain_head.floor) has not settled. Run by pg_cron (tracker-audit-seal), the web processes and `python -m tracker.cli seal-audit`.'; 

create or replace procedure audit.run_sealer(p_for interval, p_every interval)
language plpgsql
as $$
declare
  v_until timestamptz := clock_timestamp() + p_for;
  v_sealed integer;
begin
  if p_for is null or p_every is null or p_every <= interval '0' or p_every > interval '1 minute'
     or p_for < interval '0' or p_for > interval '1 hour' then
    raise exception using errcode = 'TR050', message = format('The audit sealer cannot run for %s every %s.', p_for, p_every),
      detail = 'It runs for up to an hour, sealing every 1 minute or more often.', hint = 'For example: call audit.run_sealer(interval ''55 seconds'', interval ''2 seconds'').';
  end if;
  loop
    -- drain: one committed batch after another until a batch is not full
    loop
      select s.sealed into v_sealed from audit.seal() s;
      commit;
      exit when v_sealed < 50000;
    end loop;
    exit when clock_timestamp() + p_every > v_until;
    perform pg_catalog.pg_sleep(extract(epoch from p_every));
  end loop;
end
$$;
comment on procedure audit.run_sealer(interval, interval) is 'pg_cron''s sealer where pg_cron has no second schedules (before 1.5): seals and commits every p_every for p_for, so the unsealed window stays a few seconds.';

create or replace function audit.verify_chain()
returns table (ok boolean, rows_checked bigint, first_broken_id bigint, problem text,
               unsealed bigint, oldest_unsealed interval)
language plpgsql stable security definer
set search_path = pg_catalog, audit, pg_temp
as $$
declare
  v_zero bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
  v_bad record;
  v_count bigint;
  v_head record;
  v_last record;
  v_unsealed bigint;
  v_age interval;
begin
  -- the unsealed window: committed rows the sealer has not linked yet (not yet tamper-evident)
  select count(*), clock_timestamp() - min(l.at) into v_unsealed, v_age
    from audit.log l where not exists (select from audit.seals s where s.log_id = l.id);
  select count(*) into v_count from audit.seals;
  with links as (
    select s.log_id as id, s.seq,
           l.id is null as missing,
           s.prev_hash is distinct from coalesce(lag(s.hash) over (order by s.seq), v_zero) as prev_mismatch,
           s.hash is distinct from audit.link_hash(s.prev_hash, l.id, l.at, l.txid, l.staff_id, l.db_role, l.session_role,
                                                   l.table_name, l.op, l.row_id, l.old_row, l.new_row) as hash_mismatch
      from audit.seals s
      left join audit.log l on l.id = s.log_id)
  select id, missing, prev_mismatch, hash_mismatch into v_bad
    from links
   where missing or prev_mismatch or hash_mismatch
   order by seq
   limit 1;
  if found and v_bad.missing then
    return query select false, v_count, v_bad.id, format('audit row %s was removed: it is sealed, but no longer in the log', v_bad.id),
                        v_unsealed, v_age;
    return;
  elsif found and v_bad.hash_mismatch then
    return query select false, v_count, v_bad.id, format('audit row %s was altered: its content no longer matches its hash', v_bad.id),
                        v_unsealed, v_age;
    return;
  elsif found and v_bad.prev_mismatch then
    return query select false, v_count, v_bad.id, format('the chain breaks before audit row %s: a row was removed, re-ordered or re-linked', v_bad.id),
                        v_unsealed, v_age;
    return;
  end if;
  select h.last_id, h.last_seq, h.last_hash into v_head from audit.chain_head h;
  select s.log_id as id, s.seq, s.hash into v_last from audit.seals s order by s.seq desc limit 1;
  if v_head.last_seq is distinct from v_last.seq or v_head.last_hash is distinct from coalesce(v_last.hash, v_zero) then
    return query select false, v_count, v_head.last_id,
      format('the chain head names row %s but the log ends at row %s: rows at the end were removed', v_head.last_id, v_last.id),
      v_unsealed, v_age;
    return;
  end if;
  return query select true, v_count, null::bigint, null::text, v_unsealed, v_age;
end
$$;
comment on function audit.verify_chain() is 'Recomputes every link of the sealed audit hash chain (audit.seals in seq order); reports the first row that was altered, removed, re-ordered or re-linked, a removed tail, and the unsealed window (rows not yet chained, age of the oldest).';

-- the table owner attaches these triggers to its tables (sql/functions/021_audit_triggers.sql)
grant usage on schema audit to tracker_owner;
grant execute on function audit.tg_any__record_change(), audit.tg_any__forbid_change() to tracker_owner;
