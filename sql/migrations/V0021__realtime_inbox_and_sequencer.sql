-- V0021: realtime signals without a commit-order lock (issue 18).
-- Until now every signalling commit took one advisory lock and sent one NOTIFY, so all
-- writers in the building queued behind one another at commit (NOTIFY itself serialises
-- notifying commits on an instance-wide lock). Now writers only append to an inbox, in
-- any order and without waiting for each other; a sequencer (each web process's relay
-- every few tens of milliseconds, pg_cron as a backstop) moves the committed rows into
-- app.realtime_events under its own lock and sends one NOTIFY per batch. The outbox ids
-- keep their meaning: they become visible in commit order of the sequencer's batches,
-- so "every id after N" is still an exact resume cursor (sql/functions/080_realtime.sql).
set lock_timeout = '5s';
set statement_timeout = '60s';
set role tracker_owner;

create table app_private.realtime_inbox (
  id bigint generated always as identity primary key,
  xact xid8 not null default pg_current_xact_id(),
  sample_id bigint,
  kind text not null check (kind in ('sample', 'comment', 'photo', 'inspection', 'cost', 'supplier')),
  ref_id bigint,
  at timestamptz not null default now(),
  -- the outbox's checks, here too: a malformed signal fails its writer's commit, as before
  -- V0021, instead of stopping the sequencer (and every signal behind it) at every run
  constraint realtime_inbox_ref_for_kind check ((kind in ('comment', 'photo', 'inspection', 'supplier')) = (ref_id is not null)),
  constraint realtime_inbox_sample_for_kind check ((kind = 'supplier') = (sample_id is null))
);
-- NOTE: no unique key per thing per transaction here: the sequencer keeps one of each within a
--       batch (a transaction's signals commit together, so they share one unless a capped batch
--       ends among them), and a writer then pays for one index (the primary key the sequencer
--       reads in order), not two.
-- NOTE: no foreign key to app.samples, here or (below) on app.realtime_events: a key check
--       takes FOR KEY SHARE on the sample, which would make the sequencer wait for every
--       writer holding a sample, and a writer's FOR UPDATE NOWAIT fail while the sequencer
--       holds one. Samples are never deleted; the ids come from the rows' own triggers.
comment on table app_private.realtime_inbox is 'Realtime signals as writers leave them (deferred triggers, at commit, no lock): one row per changed row, in no particular order. app_private.sequence_realtime() moves committed rows into app.realtime_events in batches.';

-- the sequencer's moves check no key (see the NOTE above), and it keeps one signal per thing per
-- transaction itself (DISTINCT ON within a batch), so the outbox's unique key has nothing to do
-- squawk-ignore ban-drop-constraint
alter table app.realtime_events drop constraint realtime_events_sample_id_fkey;
-- squawk-ignore ban-drop-constraint
alter table app.realtime_events drop constraint realtime_events_once_per_xact;
comment on table app.realtime_events is 'Realtime outbox: one row per changed thing per transaction, moved here from app_private.realtime_inbox by the sequencer, so ids become visible in commit order; NOTIFY realtime_events carries the newest id of each batch. Readable under RLS exactly when the thing it points at is.';

-- signals left before this migration are already in app.realtime_events; nothing to move

reset role;

-- pg_cron moves signals too, so the inbox stays small where no web process runs a relay
-- (each relay sequences every few tens of milliseconds while it serves; see V0015 for the
-- pg_cron versions: schedules in seconds from 1.5, minutes before).
do $do$
declare
  v_version text;
begin
  if current_database() is distinct from current_setting('cron.database_name', true) then
    raise notice 'pg_cron is not in this database (cron.database_name = %); the realtime backstop is not scheduled here',
      coalesce(current_setting('cron.database_name', true), 'unset');
    return;
  end if;
  create extension if not exists pg_cron;
  select extversion into v_version from pg_extension where extname = 'pg_cron';
  if string_to_array(split_part(v_version, '-', 1), '.')::int[] >= array[1, 5] then
    perform cron.schedule('tracker-realtime-sequence', '2 seconds', $$select app_private.sequence_realtime()$$);
  else
    perform cron.schedule('tracker-realtime-sequence', '* * * * *', $$select app_private.sequence_realtime()$$);
  end if;
end
$do$;
