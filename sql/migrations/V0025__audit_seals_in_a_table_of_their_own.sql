-- V0025: the audit log is written once and never rewritten; its seals live in a narrow
-- table of their own (issue 18: audited / unaudited UPDATE <= 1.5).
-- Until now the sealer gave each audit row its place by UPDATE audit.log set seq, prev_hash,
-- hash: a second full copy of a ~2 kB row (both row images), five index entries (seq is
-- indexed, so never a HOT update), its WAL, and a dead version for vacuum - 40 of the 54 us
-- the sealer spent on a row, and a fifth of the audited write rate while it ran. Now a seal
-- is an INSERT of (seq, log_id, prev_hash, hash) into audit.seals: ~100 bytes and two index
-- entries. audit.log takes no UPDATE at all any more, not even the sealer's.
--
-- The sealer's queue was the partial index "where hash is null". Now it is a floor: the
-- snapshot of the last batch that was not capped (audit.chain_head.floor). Every row whose
-- transaction that snapshot counts as ended is settled: committed before it, so visible to
-- it, so sealed in that batch, or aborted, so never to be sealed. A row still to be sealed
-- therefore comes from a transaction the floor saw running (its xip list) or that began
-- after it (txid >= its xmax), and the sealer reads only those rows, by a new index on
-- audit.log (txid), leaving out the ones already in audit.seals (its unique log_id index).
-- A transaction left open for hours keeps only its own rows in that set, not everything
-- written since it began. The rule and where it is applied: sql/functions/020_audit.sql.
--
-- Locks: audit.log is locked (ACCESS EXCLUSIVE) for the whole migration on purpose, as in
-- V0015: writers wait while the seals are copied and the txid index is built (seconds at a
-- million audit rows); the release's sealer and verifier (re-applied after the migrations)
-- read the new layout only.
-- The table is locked for the whole migration anyway (above), so dropping its indexes and
-- constraint and setting chain_head's one row NOT NULL block nothing that is not already waiting;
-- the dropped constraint guarded the seal columns, which go too.
-- squawk-ignore-file require-concurrent-index-deletion, ban-drop-constraint, adding-not-nullable-field
set lock_timeout = '30s';
set statement_timeout = '30min';
set role audit_owner;

lock table audit.log in access exclusive mode;

create table audit.seals (
  seq bigint primary key check (seq > 0),
  log_id bigint not null unique,
  prev_hash bytea not null check (octet_length(prev_hash) = 32),
  hash bytea not null check (octet_length(hash) = 32)
);
-- NOTE: no foreign key to audit.log: checking one takes a KEY SHARE lock on the audit row,
--       which writes that row again - the very rewrite this migration removes. A seal whose
--       row is gone is what audit.verify_chain() reports as a removed row.
comment on table audit.seals is 'The hash chain over audit.log (V0025): one row per sealed audit row, in commit order (seq); hash = sha256(prev_hash || canonical audit row). Appended only by the sealer (audit.seal); never updated or deleted.';
comment on column audit.seals.seq is 'The audit row''s place in the chain: commit order, not id order (an id is drawn at insert).';
comment on column audit.seals.log_id is 'The audit.log row this seal covers.';
comment on column audit.seals.prev_hash is 'The hash of the seal before (seq - 1); 32 zero bytes for the first.';
comment on column audit.seals.hash is 'sha256(prev_hash || canonical text of the audit row): see audit.link_hash.';

-- the seals the rows carry today, as they are (their hashes chain unchanged)
insert into audit.seals (seq, log_id, prev_hash, hash)
select seq, id, prev_hash, hash from audit.log where seq is not null order by seq;

alter table audit.chain_head add column floor pg_snapshot;
comment on column audit.chain_head.floor is 'The snapshot of the last batch that was not capped (V0025): every audit row of a transaction it counts as ended is sealed or was rolled back, so the sealer reads only the rows it does not count (audit.seal).';
-- today's floor: every transaction below m has ended, and every row below it is sealed
update audit.chain_head
   set floor = (m || ':' || m || ':')::pg_snapshot
  from (select least((select min(txid) from audit.log where hash is null),
                     pg_snapshot_xmin(pg_current_snapshot())::text::bigint)::text as m) f;
alter table audit.chain_head alter column floor set not null;

-- the sealer no longer updates audit.log: its policy, guard, constraint and indexes go (the
-- policy and the guard exist only where sql/policies and sql/functions were applied before)
drop policy if exists update_sealer on audit.log;
drop trigger if exists before_update_seal_only on audit.log;
alter table audit.log drop constraint log_sealed_all_or_nothing;
drop index audit.audit_log_seq_key;
drop index audit.audit_log_unsealed_idx;
-- squawk-ignore ban-drop-column
alter table audit.log drop column seq;
-- squawk-ignore ban-drop-column
alter table audit.log drop column prev_hash;
-- squawk-ignore ban-drop-column
alter table audit.log drop column hash;
comment on table audit.log is 'Every insert/update/delete on business tables. Written once, never updated or deleted (not even by the sealer); audit.seals chains the committed rows: hash = sha256(prev_hash || canonical row), in commit order.';
-- the sealer's queue: rows by writing transaction (the floor above), built under the lock
-- squawk-ignore require-concurrent-index-creation
create index audit_log_txid_idx on audit.log (txid);

-- NOTE: RLS on audit.seals is enabled and forced here and again, with its policies, by
--       sql/policies/006_audit_seals.sql, re-applied after every migration.
alter table audit.seals enable row level security;
alter table audit.seals force row level security;

reset role;
reset statement_timeout;
