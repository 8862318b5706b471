-- V0018: issue 15's leftovers.
--
-- 1. The near-duplicate lookup finds its candidates by trigram similarity with a bound
--    instead of "the 60 nearest titles" (sql/functions/075_repeat_mistakes.sql): the same
--    category through a GIN index on (category, title) - btree_gin lets the category and
--    the trigrams share one index, so a common title costs what its category holds - and
--    any category through the title's GiST index, rebuilt with a 128-byte signature
--    (the default 12 bytes made every bench title look alike to the index: 50 ms for the
--    five nearest at 1M, now a few ms for the similarity search).
-- 2. Realtime signals for suppliers (watchers follow a supplier live): a 'supplier' event
--    has no sample and carries the supplier's id in ref_id.
--
-- The index builds lock writes to app.samples briefly: they cover only the samples in
-- flight (91k of 1M in the bench data: 5 s together on the loaded bench machine).
set local lock_timeout = '5s';
set local statement_timeout = '10min';

create extension if not exists btree_gin with schema extensions;

set local role tracker_owner;

-- squawk-ignore require-concurrent-index-creation
create index samples_similar_category_title_idx on app.samples
  using gin (category_id, lower(title) extensions.gin_trgm_ops)
  where state not in ('returned', 'cut-for-production');
comment on index app.samples_similar_category_title_idx is 'Near-duplicates of the same category (app.similar_samples): samples in flight whose title shares enough trigrams, within one category.';

-- a moment's exclusive lock (catalogue only), within the 5 s lock timeout
-- squawk-ignore require-concurrent-index-deletion
drop index app.samples_title_trgm_idx;
-- squawk-ignore require-concurrent-index-creation
create index samples_title_trgm_idx on app.samples using gist (lower(title) extensions.gist_trgm_ops(siglen = 128))
  where state not in ('returned', 'cut-for-production');
comment on index app.samples_title_trgm_idx is 'Near-duplicates of any category and likely duplicate pairs (% with a threshold): titles of samples in flight, with a 128-byte trigram signature.';

-- realtime: supplier signals. The new checks are NOT VALID and stay so: every existing row
-- satisfies them (the constraints they replace were stricter), and validating would scan
-- the outbox while holding a lock that blocks its writers.
-- the relay and realtime.js read the sample as optional (a supplier signal has none)
-- squawk-ignore ban-drop-not-null
alter table app.realtime_events alter column sample_id drop not null;
-- replaced at once by a wider check (one more kind)
-- squawk-ignore ban-drop-constraint
alter table app.realtime_events drop constraint realtime_events_kind_check;
alter table app.realtime_events add constraint realtime_events_kind_check
  check (kind in ('sample', 'comment', 'photo', 'inspection', 'cost', 'supplier')) not valid;
-- squawk-ignore ban-drop-constraint
alter table app.realtime_events drop constraint realtime_events_ref_for_kind;
alter table app.realtime_events add constraint realtime_events_ref_for_kind
  check ((kind in ('comment', 'photo', 'inspection', 'supplier')) = (ref_id is not null)) not valid;
alter table app.realtime_events add constraint realtime_events_sample_for_kind
  check ((kind = 'supplier') = (sample_id is null)) not valid;
comment on column app.realtime_events.ref_id is 'The comment, photo or inspection that changed; for a supplier signal, the supplier.';

reset role;
