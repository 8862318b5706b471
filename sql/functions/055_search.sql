-- Full-text search over samples and their comments.
set local role tracker_owner;

------------------------------------------------------------------------------
-- Search
------------------------------------------------------------------------------
create or replace function app_private.tg_samples__set_search() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, pg_temp
as $$
begin
  new.search := setweight(to_tsvector('english', coalesce(new.title, '')), 'A')
             || setweight(to_tsvector('simple', coalesce(new.style_code, '')), 'A')
             || setweight(to_tsvector('english', coalesce((select name from app.categories where id = new.category_id), '')), 'B')
             || setweight(to_tsvector('english', coalesce((select name from app.suppliers where id = new.supplier_id), '')), 'B');
  return new;
end
$$;
comment on function app_private.tg_samples__set_search() is 'BEFORE trigger: keeps samples.search (title, style code, category and supplier names) current.';

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
