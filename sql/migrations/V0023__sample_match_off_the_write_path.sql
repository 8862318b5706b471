-- V0023: what the near-duplicate check matches on, in a table of its own (issue 18).
-- Every transition is a non-HOT update of app.samples (its state, holder and dates are
-- indexed), so every index of the table gets a new entry at every move, whether or not its
-- columns changed. Three of them index what a sample is called, which a move never changes:
-- the trigram GiST indexes on the title, the style code, and the category with the title
-- (V0012, V0018), the dearest of all to insert into (8% of a transition's CPU, perf). They
-- move to app_private.sample_match, one narrow row per sample, written when a sample is
-- created, renamed, re-categorised, or closed (returned / cut) or reopened: a handful of times
-- in its life instead of at every move.
-- NOTE: the full-text document (samples.search) and its GIN index stay: GIN defers its
--       entries to a pending list (fastupdate), so a move costs it little (2-3% of a transition,
--       measured), and search keeps reading one table (its visibility check on the same row).
-- squawk: the new table is created here and nobody can read or write it before commit, so
-- CONCURRENTLY (impossible in a transaction) would change nothing for its indexes. The three
-- indexes dropped from app.samples are replaced by those on the new table in the same
-- transaction: dropped CONCURRENTLY (outside it), the near-duplicate check would walk every
-- sample between the steps. Dropping an index is quick (its file goes at commit); the ACCESS
-- EXCLUSIVE lock on app.samples waits at most lock_timeout.
-- squawk-ignore-file require-concurrent-index-creation, require-concurrent-index-deletion
set lock_timeout = '5s';
set statement_timeout = '600s';
set role tracker_owner;

create table app_private.sample_match (
  sample_id bigint primary key references app.samples (id) on delete cascade,
  category_id integer not null,
  title text not null,
  style_code text,
  in_flight boolean not null
);
comment on table app_private.sample_match is 'What the near-duplicate check (app.similar_samples, app.duplicate_pairs) matches a sample on: its title, style code and category, and whether it is in flight (not returned or cut), with the trigram indexes, off the write path of a move. Kept by triggers on app.samples; read only by those SECURITY DEFINER functions, which apply the samples policies'' predicate.';

insert into app_private.sample_match (sample_id, category_id, title, style_code, in_flight)
select id, category_id, title, style_code, state not in ('returned', 'cut-for-production')
  from app.samples;

create index sample_match_title_trgm_idx on app_private.sample_match
  using gist (lower(title) extensions.gist_trgm_ops(siglen = 1024)) where in_flight;
create index sample_match_style_trgm_idx on app_private.sample_match
  using gist (lower(style_code) extensions.gist_trgm_ops) where style_code is not null and in_flight;
create index sample_match_category_title_idx on app_private.sample_match
  using gist (category_id, lower(title) extensions.gist_trgm_ops(siglen = 128)) where in_flight;

drop index app.samples_title_trgm_idx;
drop index app.samples_style_trgm_idx;
drop index app.samples_similar_category_title_idx;
reset role;
