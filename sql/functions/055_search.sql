-- Full-text search over samples and their comments.
set local role tracker_owner;

------------------------------------------------------------------------------
-- Search
------------------------------------------------------------------------------
create or replace function app_private.search_document(p_title text, p_style_code text, p_category_id integer,
                                                        p_supplier_id integer) returns tsvector
language sql stable
set search_path = pg_catalog, app, pg_temp
as $$
  select setweight(to_tsvector('english', coalesce(p_title, '')), 'A')
         || setweight(to_tsvector('simple', coalesce(p_style_code, '')), 'A')
         || setweight(to_tsvector('english', coalesce((select name from app.categories where id = p_category_id), '')), 'B')
         || setweight(to_tsvector('english', coalesce((select name from app.suppliers where id = p_supplier_id), '')), 'B')
$$;
comment on function app_private.search_document(text, text, integer, integer) is 'A sample''s search document: title and style code (weight A), category and supplier names (weight B).';

create or replace function app_private.tg_samples__set_search() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  new.search := app_private.search_document(new.title, new.style_code, new.category_id, new.supplier_id);
  return new;
end
$$;
comment on function app_private.tg_samples__set_search() is 'BEFORE INSERT, and BEFORE UPDATE when a searched value changes: keeps samples.search (title, style code, category and supplier names) current.';

create or replace function app_private.tg_any__refresh_search() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  -- only the search document changes: no version bump (before_update_bump_version names the
  -- columns it watches), no audit row (the log leaves search out), one realtime signal each
  if tg_table_name = 'suppliers' then
    update app.samples s set search = app_private.search_document(s.title, s.style_code, s.category_id, s.supplier_id)
     where s.supplier_id = new.id;
  else
    update app.samples s set search = app_private.search_document(s.title, s.style_code, s.category_id, s.supplier_id)
     where s.category_id = new.id;
  end if;
  return null;
end
$$;
comment on function app_private.tg_any__refresh_search() is 'AFTER UPDATE OF name on suppliers and categories (when the name changes): rebuilds the search document of their samples, so the new name finds them at once and the old one no longer does.';

create or replace function app.search_samples(p_query text, p_limit integer default 50, p_offset integer default 0)
returns table (id bigint, title text, state app.sample_state, rank real, matched_in text)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
begin
  -- A definer, so the GIN indexes serve the match (tsvector @@ is not leakproof: under
  -- RLS it would run after the policy filter, and marking it leakproof let EXPLAIN
  -- tell whether a hidden row contains a word - see V0005). Visibility is applied
  -- here with the samples policies' predicate; a comment is visible with its sample.
  select * into v_me from app.staff where staff.id = app.current_staff_id();
  if v_me.id is null or btrim(coalesce(p_query, '')) = '' then
    return;
  end if;
  -- EXECUTE plans with the query's real value, so the planner can tell a word that
  -- matches a tenth of a million samples (walk the newest first) from a rare one (use GIN).
  -- Ranked among the 1,000 newest visible matches of each source: recent samples are
  -- what people look for, and ranking 100,000 matches is what makes search slow.
  return query execute $q$
    with sample_hits as (
      select s.id, s.search from app.samples s
       where s.search @@ websearch_to_tsquery('english', $1) and app_private.can_see_sample(s, $4)
       order by s.id desc limit 1000
    ),
    comment_hits as (
      select c.sample_id, c.search from app.sample_comments c join app.samples s on s.id = c.sample_id
       where c.search @@ websearch_to_tsquery('english', $1) and app_private.can_see_sample(s, $4)
       order by c.id desc limit 1000
    ),
    hits as (
      select h.id, ts_rank(h.search, websearch_to_tsquery('english', $1)) as rank, 'sample' as matched_in
        from sample_hits h
      union all
      select h.sample_id, ts_rank(h.search, websearch_to_tsquery('english', $1)) * 0.8, 'comment'
        from comment_hits h
    ),
    best as (
      select distinct on (h.id) h.id, h.rank, h.matched_in from hits h order by h.id, h.rank desc
    )
    select s.id, s.title, s.state, b.rank::real, b.matched_in
      from best b join app.samples s on s.id = b.id
     order by b.rank desc, s.id desc
     limit $2 offset $3
  $q$ using p_query, least(greatest(coalesce(p_limit, 50), 1), 500), greatest(coalesce(p_offset, 0), 0), v_me;
end
$$;
comment on function app.search_samples(text, integer, integer) is 'Full-text search over sample titles, style codes, categories, suppliers and comments of the samples the signed-in person can see, ranked. Returns only id, title and state (fields everyone who sees a sample may read).';
