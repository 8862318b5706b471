-- V0018: issue 15's leftovers.
--
-- 1. The near-duplicate lookup (sql/functions/075_repeat_mistakes.sql) no longer scores
--    "the 60 nearest titles of everything in flight": it walks the same category's titles
--    nearest first through a GiST index on (category, title) - btree_gist lets the category
--    and the trigrams share one index, so the walk stays inside the category and stops as
--    soon as nothing further can beat the best five - and finds the rare match in another
--    category by a similarity bound through the title's GiST index, rebuilt with a 1024-byte
--    signature (the default 12 bytes made every bench title look alike to the index).
-- 2. Realtime signals for suppliers (watchers follow a supplier live): a 'supplier' event
--    has no sample and carries the supplier's id in ref_id.
--
-- The index builds lock writes to app.samples briefly: they cover only the samples in
-- flight (91k of 1M in the bench data: a few seconds each on the loaded bench machine).
set local lock_timeout = '5s';
set local statement_timeout = '10min';

create extension if not exists btree_gist with schema extensions;

set local role tracker_owner;

-- squawk-ignore require-concurrent-index-creation
create index samples_similar_category_title_idx on app.samples
  using gist (category_id, lower(title) extensions.gist_trgm_ops(siglen = 128))
  where state not in ('returned', 'cut-for-production');
comment on index app.samples_similar_category_title_idx is 'Near-duplicates of the same category (app.similar_samples): titles of samples in flight nearest first (<->) within one category.';

-- a moment's exclusive lock (catalogue only), within the 5 s lock timeout
-- squawk-ignore require-concurrent-index-deletion
drop index app.samples_title_trgm_idx;
-- squawk-ignore require-concurrent-index-creation
create index samples_title_trgm_idx on app.samples using gist (lower(title) extensions.gist_trgm_ops(siglen = 1024))
  where state not in ('returned', 'cut-for-production');
comment on index app.samples_title_trgm_idx is 'Near-duplicates across categories and likely duplicate pairs (% with a threshold): titles of samples in flight, with a 1024-byte trigram signature (sparse enough for the upper levels of the tree to prune).';

-- the Watching section of the daily mail (sql/functions/095_watch_mail.sql) reads a watched
-- supplier's QC rejects of the last day: by date, not through every one of its samples
-- squawk-ignore require-concurrent-index-creation
create index qc_inspections_reject_at_idx on app.qc_inspections (inspected_at) where result = 'reject';

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
