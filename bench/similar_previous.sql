-- The near-duplicate lookup as it was before V0018 (issue 15's first version), for the
-- before/after comparison in bench/bench_similar.py only: applied to a copy of the bench
-- database (tracker_bench_prev) together with V0012's GiST index (default signal length),
-- never to a real database. Candidates: the 60 nearest titles by GiST <->, then scored.
set local role tracker_owner;
drop index if exists app.samples_similar_category_title_idx;
drop index if exists app.samples_title_trgm_idx;
create index samples_title_trgm_idx on app.samples using gist (lower(title) extensions.gist_trgm_ops)
  where state not in ('returned', 'cut-for-production');
create or replace function app.similar_samples(
  p_title text, p_category_id integer default null, p_season_id integer default null,
  p_supplier_id integer default null, p_style_code text default null, p_exclude_sample bigint default null,
  p_limit integer default 5)
returns table (id bigint, title text, style_code text, state app.sample_state, team_code text,
               requested_by_name text, category text, season text, supplier text, score real, reasons text[])
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, extensions, pg_temp
as $$
declare
  v_me app.staff;
  v_title text := lower(btrim(coalesce(p_title, '')));
  v_style text := lower(nullif(btrim(coalesce(p_style_code, '')), ''));
begin
  select * into v_me from app.staff s where s.id = app.current_staff_id();
  if v_me.id is null or (length(v_title) < 4 and v_style is null) then
    return;  -- nobody signed in, or too little typed to compare
  end if;
  if length(v_title) > 200 or length(v_style) > 40 then
    raise exception using errcode = 'TR005', message = 'a title can be at most 200 characters and a style code 40';
  end if;
  return query
  -- the nearest titles and style codes first (GiST <->), then scored; a person who sees
  -- only part of what is in flight gets the visible ones among the nearest 60
  with candidates as (
    (select s.* from app.samples s
      where s.state not in ('returned', 'cut-for-production')
      order by lower(s.title) <-> v_title limit 60)
    union
    (select s.* from app.samples s
      where v_style is not null and s.style_code is not null and s.state not in ('returned', 'cut-for-production')
      order by lower(s.style_code) <-> v_style limit 20)
  ), scored as (
    select c.*, (app_private.similarity_score(c.title, p_title, c.style_code, p_style_code, c.category_id,
                                              p_category_id, c.season_id, p_season_id, c.supplier_id,
                                              p_supplier_id)).*
      from candidates c
     where (p_exclude_sample is null or c.id <> p_exclude_sample)
       and app_private.can_see_sample(c::app.samples, v_me)
  )
  select sc.id, sc.title, sc.style_code, sc.state, t.code, rb.full_name, cat.name, se.code, su.name,
         sc.score, sc.reasons
    from scored sc
    join app.teams t on t.id = sc.team_id
    join app.staff rb on rb.id = sc.requested_by
    join app.categories cat on cat.id = sc.category_id
    join app.seasons se on se.id = sc.season_id
    left join app.suppliers su on su.id = sc.supplier_id
   where sc.score >= app_private.similar_threshold()
   order by sc.score desc, sc.id desc
   limit least(greatest(coalesce(p_limit, 5), 1), 50);
end
$$;
