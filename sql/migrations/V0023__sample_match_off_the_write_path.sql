-- V0023: what search and the near-duplicate check match on, in a table of its own (issue 18).
-- Every transition is a non-HOT update of app.samples (its state, holder and dates are
-- indexed), so every index of the table gets a new entry at every move, whether or not its
-- columns changed. Four of them index what a sample is called, which a move never changes:
-- the full-text document (GIN) and three trigram GiST indexes (title, style code, category
-- with title), the GiST ones the dearest to insert into (8% of a transition's CPU, perf).
-- They move to app_private.sample_match, one narrow row per sample, written when a sample is
-- created, renamed, re-categorised, given a supplier, or closed (returned / cut) or reopened:
-- a handful of times in its life instead of at every move. samples.search goes with them,
-- which also narrows the row every move rewrites.
-- NOTE: the search documents are copied where the trigger made them; a sample loaded with
--       triggers off (as bench/generate.py did until now) has none, and gets one built here by
--       the same expression as app_private.search_document (created after the migrations).
-- squawk: the new table is created here and nobody can read or write it before commit, so
-- CONCURRENTLY (impossible in a transaction) would change nothing for its indexes. The four
-- indexes, the column and the trigger function dropped from app.samples are replaced by the new
-- table and its triggers in the same transaction: dropped one by one (CONCURRENTLY, outside it),
-- search would find nothing between the steps. Dropping an index or a column is quick (the
-- files go at commit); the ACCESS EXCLUSIVE lock on app.samples waits at most lock_timeout.
-- No client reads samples.search: search went through app.search_samples, which moves with it.
-- squawk-ignore-file require-concurrent-index-creation, require-concurrent-index-deletion, ban-drop-function, ban-drop-column
set lock_timeout = '5s';
set statement_timeout = '600s';
set role tracker_owner;

create table app_private.sample_match (
  sample_id bigint primary key references app.samples (id) on delete cascade,
  category_id integer not null,
  title text not null,
  style_code text,
  in_flight boolean not null,
  search tsvector not null default ''
);
comment on table app_private.sample_match is 'What search (app.search_samples) and the near-duplicate check (app.similar_samples, app.duplicate_pairs) match a sample on: its title, style code and category, whether it is in flight (not returned or cut), and its search document (title, style code, category and supplier names). Kept by triggers on app.samples, suppliers and categories; read only by those SECURITY DEFINER functions, which apply the samples policies'' predicate.';

insert into app_private.sample_match (sample_id, category_id, title, style_code, in_flight, search)
select s.id, s.category_id, s.title, s.style_code, s.state not in ('returned', 'cut-for-production'),
       coalesce(s.search,
                setweight(to_tsvector('english', coalesce(s.title, '')), 'A')
                || setweight(to_tsvector('simple', coalesce(s.style_code, '')), 'A')
                || setweight(to_tsvector('english', coalesce(c.name, '')), 'B')
                || setweight(to_tsvector('english', coalesce(su.name, '')), 'B'))
  from app.samples s
  join app.categories c on c.id = s.category_id
  left join app.suppliers su on su.id = s.supplier_id;

create index sample_match_search_idx on app_private.sample_match using gin (search);
create index sample_match_title_trgm_idx on app_private.sample_match
  using gist (lower(title) extensions.gist_trgm_ops(siglen = 1024)) where in_flight;
create index sample_match_style_trgm_idx on app_private.sample_match
  using gist (lower(style_code) extensions.gist_trgm_ops) where style_code is not null and in_flight;
create index sample_match_category_title_idx on app_private.sample_match
  using gist (category_id, lower(title) extensions.gist_trgm_ops(siglen = 128)) where in_flight;

-- the triggers that kept samples.search are replaced by those that keep sample_match
-- (sql/policies/030_samples.sql, re-applied after this migration)
drop trigger if exists before_write_search on app.samples;  -- its name until V0021
drop trigger if exists before_insert_search on app.samples;
drop trigger if exists before_update_search on app.samples;
drop index app.samples_search_idx;
drop index app.samples_title_trgm_idx;
drop index app.samples_style_trgm_idx;
drop index app.samples_similar_category_title_idx;
drop function if exists app_private.tg_samples__set_search();
alter table app.samples drop column search;
reset role;
