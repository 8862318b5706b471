-- V0015: the audit chain no longer serialises writers (issue 18, item 1).
-- Writers append audit rows with no hash (no shared row is touched by every writer);
-- a sealer (audit.seal, sql/functions/020_audit.sql) links the committed unsealed rows
-- into the hash chain in batches, in commit order, and gives each its place `seq`.
-- The rows that exist today were chained in id order under the old chain-head lock:
-- they keep their hashes and take seq = id, so the chain continues unbroken.
--
-- Locks: audit.log is locked (ACCESS EXCLUSIVE) for the whole migration on purpose. Every
-- audited write inserts into it, and the new writer (sql/functions/020_audit.sql) must not
-- run against the old columns, nor the old one against the new: the backfill below, the
-- constraint and the two indexes are built while writers wait (seconds at a million
-- audit rows), which no concurrent index build could avoid, since the release swaps the
-- trigger function in the same transaction.
set lock_timeout = '30s';
set statement_timeout = '30min';
set role audit_owner;

alter table audit.log add column seq bigint;
-- squawk-ignore ban-drop-not-null
alter table audit.log alter column prev_hash drop not null;  -- NULL until sealed; only the sealer and verifier read these
-- squawk-ignore ban-drop-not-null
alter table audit.log alter column hash drop not null;
comment on column audit.log.seq is 'The row''s place in the hash chain, given when it is sealed (NULL until then). Commit order, not id order: id is drawn at insert.';
comment on column audit.log.prev_hash is 'Hash of the previous row in seq order (32 zero bytes for the first row); NULL until sealed.';
comment on column audit.log.hash is 'sha256(prev_hash || canonical row): set by the sealer, NULL until sealed.';
comment on table audit.log is 'Every insert/update/delete on business tables. Append-only; writers insert unsealed rows, the sealer (audit.seal) chains them: hash = sha256(prev_hash || canonical row), in seq order.';

alter table audit.chain_head add column last_seq bigint;
alter table audit.chain_head add column sealed_at timestamptz;
alter table audit.chain_head add column cut pg_snapshot;
comment on table audit.chain_head is 'The newest link of the hash chain, moved only by the sealer (audit.seal); tail deletion is detectable against it.';
comment on column audit.chain_head.last_id is 'The audit.log id of the newest sealed row.';
comment on column audit.chain_head.last_seq is 'The chain position (seq) of the newest sealed row.';
comment on column audit.chain_head.sealed_at is 'When the sealer last committed a batch.';
comment on column audit.chain_head.cut is 'Set when a batch was capped: the snapshot whose remaining rows are sealed next, before anything committed after it.';
reset role;

-- existing rows: their place is their id (the old chain was serial in id order)
set session_replication_role = replica;  -- the append-only guard would refuse the backfill
update audit.log set seq = id where seq is null and hash is not null;
set session_replication_role = origin;
update audit.chain_head set last_seq = last_id;

set role audit_owner;
-- squawk-ignore constraint-missing-not-valid
alter table audit.log add constraint log_sealed_all_or_nothing
  check ((seq is null) = (hash is null) and (hash is null) = (prev_hash is null));
-- the chain in order (verify walks it), and the unsealed rows (the sealer's queue);
-- partial, so an insert touches only the small queue index, not the seq index
-- squawk-ignore require-concurrent-index-creation
create unique index audit_log_seq_key on audit.log (seq) where seq is not null;
-- squawk-ignore require-concurrent-index-creation
create index audit_log_unsealed_idx on audit.log (id) where hash is null;
reset role;
reset statement_timeout;

-- Upgrading: the migrations after this one run before sql/functions/ is re-applied, and a
-- later one may write an audited row (V0017 adds an overdue rule). The release's trigger
-- function would still write a sealed-style row, which the constraint above refuses, so
-- until the re-applied functions replace it (the reset drops it by name) it appends
-- unsealed rows like audit.tg_any__record_change. Its triggers pass the key column.
do $shim$
begin
  if to_regprocedure('audit.record_change()') is null then
    return;  -- a fresh database: no trigger exists before sql/functions/
  end if;
  execute $fn$
    create or replace function audit.record_change() returns trigger
    language plpgsql volatile security definer
    set search_path = pg_catalog, audit, pg_temp
    as $body$
    declare
      v_old jsonb;
      v_new jsonb;
    begin
      if tg_op in ('UPDATE', 'DELETE') then v_old := to_jsonb(old) - 'search'; end if;
      if tg_op in ('INSERT', 'UPDATE') then v_new := to_jsonb(new) - 'search'; end if;
      if tg_op = 'UPDATE' and v_old = v_new then
        return null;
      end if;
      insert into audit.log (at, txid, staff_id, db_role, session_role, table_name, op, row_id, old_row, new_row)
      values (clock_timestamp(), txid_current(), app.current_staff_id(),
              case when current_setting('role') <> 'none' then current_setting('role') else session_user::text end,
              session_user::text, tg_table_schema || '.' || tg_table_name, tg_op,
              coalesce(v_new, v_old) ->> tg_argv[0], v_old, v_new);
      return null;
    end
    $body$;
  $fn$;
end
$shim$;

-- The sealer's schedule (pg_cron, in the database cron.database_name names; skipped with a
-- notice elsewhere, e.g. the test clones, which seal with `python -m tracker.cli seal-audit`).
-- * pg_cron 1.5 and later schedule in seconds: `select audit.seal()` every 2 seconds.
-- * Older pg_cron (Debian 12 ships 1.4) has minutes only. With cron.use_background_workers
--   off (libpq mode) a job every minute runs audit.run_sealer for 55 seconds, sealing and
--   committing every 2 seconds. With background workers on, pg_cron 1.4's scheduler waits
--   for a running job's output (a blocking read) and would start no other job while such
--   a loop runs, so there the job seals once a minute and the window is up to a minute;
--   `make seal-audit ARGS="--every 2"` beside the app (or pg_cron 1.5) brings it under 10 s.
do $do$
declare
  v_version text;
begin
  if current_database() is distinct from current_setting('cron.database_name', true) then
    raise notice 'pg_cron is not in this database (cron.database_name = %); the audit sealer is not scheduled here',
      coalesce(current_setting('cron.database_name', true), 'unset');
    return;
  end if;
  create extension if not exists pg_cron;
  select extversion into v_version from pg_extension where extname = 'pg_cron';
  if string_to_array(split_part(v_version, '-', 1), '.')::int[] >= array[1, 5] then
    perform cron.schedule('tracker-audit-seal', '2 seconds', $$select audit.seal()$$);
  elsif coalesce(current_setting('cron.use_background_workers', true), 'off') = 'on' then
    perform cron.schedule('tracker-audit-seal', '* * * * *', $$select audit.seal()$$);
    raise notice 'pg_cron % with background workers: the audit sealer runs once a minute (run seal-audit --every 2 for a shorter window)', v_version;
  else
    perform cron.schedule('tracker-audit-seal', '* * * * *',
                          $$call audit.run_sealer(interval '55 seconds', interval '2 seconds')$$);
  end if;
end
$do$;
