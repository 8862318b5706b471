-- V0024: an idle realtime sequencer run stays cheap while a snapshot is held.
-- Each run moved `... where id in (select id from app_private.realtime_inbox order by id limit n)`.
-- While any snapshot in the database stays open (an analyst's REPEATABLE READ transaction, a
-- pg_dump, a long report) no inbox row deleted since then can be pruned or hinted dead in the
-- index, so every run walked all of them: ~4 ms per idle run at 50,000 moved signals, 50 runs
-- a second per web process. Now the sequencer keeps a watermark: a floor below which no inbox
-- row can still appear, so a run reads `where id > floor` only. The rule that makes a floor
-- safe, and when it rises, is in sql/functions/080_realtime.sql (app_private.sequence_realtime).
-- The state lives here, in one private row that only the sequencer (a definer) reads and
-- writes, in the same transaction as its moves: a caller cannot supply or forge a floor, and
-- a run that rolls back takes its floor back with the rows it had moved.
set lock_timeout = '5s';
set statement_timeout = '60s';
set role tracker_owner;

-- the floor rule needs the inbox's ids drawn one at a time and upward, so that the sequence's
-- position (pg_sequence_last_value) bounds every id already handed out; the sequencer checks
-- it at every run too (and ignores its floor when it no longer holds)
do $do$
declare
  v_ok boolean;
begin
  select seqcache = 1 and seqincrement = 1 and not seqcycle into v_ok
    from pg_sequence where seqrelid = 'app_private.realtime_inbox_id_seq'::regclass;
  if v_ok is not true then
    raise exception 'app_private.realtime_inbox_id_seq must be CACHE 1, INCREMENT 1, NO CYCLE for the realtime watermark';
  end if;
end
$do$;

create table app_private.realtime_watermark (
  id boolean primary key default true check (id),  -- one row
  -- every inbox row that is, or will ever be, waiting to be moved has an id above this
  floor_id bigint not null default 0 check (floor_id >= 0),
  -- a floor to be: every id up to pending_id was drawn by a transaction whose xid is below
  -- pending_xact (the sequencer run that read the position, its xid assigned after the read)
  pending_id bigint check (pending_id >= 0),
  pending_xact xid8,
  -- the inbox's id sequence these were computed from (a TRUNCATE ... RESTART IDENTITY, an
  -- ALTER SEQUENCE ... RESTART or a restore gives it a new file: the floor is then ignored)
  seq_filenode oid not null default 0,
  constraint realtime_watermark_pending_whole check ((pending_id is null) = (pending_xact is null))
);
comment on table app_private.realtime_watermark is 'The realtime sequencer''s watermark (one row, V0024): floor_id, below which no inbox row can still appear, so a run reads only ids above it; pending_id/pending_xact, the next floor once every transaction older than pending_xact has ended. Read and written only by app_private.sequence_realtime(), in the transaction of its moves.';
insert into app_private.realtime_watermark (floor_id) values (0);

-- NOTE: no policy and no grant: only the sequencer (a definer) reads and writes the watermark,
--       so no caller can hand it a floor; RLS is enabled and forced here and again by
--       sql/policies/053_realtime_watermark.sql, re-applied after every migration.
alter table app_private.realtime_watermark enable row level security;
alter table app_private.realtime_watermark force row level security;

reset role;
