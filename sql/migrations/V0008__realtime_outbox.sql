-- V0008: the realtime outbox. Every change a page shows (a transition or field edit
-- of a sample, a comment, a photo, an inspection, a costing change) leaves one row
-- here, and NOTIFY realtime_events carries only that row's id. Rows are written by
-- deferred constraint triggers (sql/functions/080_realtime.sql) at commit time, under
-- one transaction-level advisory lock, so ids become visible in commit order: the set
-- of committed ids is always a prefix, and "everything after id N" is a complete
-- resume cursor (tracker/web/realtime.py).
set role tracker_owner;

create table app.realtime_events (
  id bigint generated always as identity primary key,
  xact xid8 not null default pg_current_xact_id(),
  sample_id bigint not null references app.samples,
  kind text not null check (kind in ('sample', 'comment', 'photo', 'inspection', 'cost')),
  ref_id bigint,
  at timestamptz not null default now(),
  -- one signal per thing per transaction (a transition updates the sample and writes an event)
  constraint realtime_events_once_per_xact unique nulls not distinct (xact, sample_id, kind, ref_id),
  constraint realtime_events_ref_for_kind check ((kind in ('comment', 'photo', 'inspection')) = (ref_id is not null))
);
comment on table app.realtime_events is 'Realtime outbox: one row per changed thing per transaction, ids in commit order; NOTIFY realtime_events carries the id alone. Readable under RLS exactly when the thing it points at is.';
create index realtime_events_sample_id on app.realtime_events (sample_id);

reset role;
