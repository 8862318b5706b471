-- Stopping repeat mistakes (issue 15).
--
--   app.similar_samples(...)       near-duplicates in flight across every team, for the request
--                                  and order forms: trigram similarity of title and style code,
--                                  category, season, supplier and colour words
--   app.duplicate_pairs(...)       likely duplicate pairs across teams in a season (senior buyers
--                                  for their team, directors for all), minus dismissed pairs
--   app.dismiss_duplicate(...)     "not a duplicate", remembered
--   app.hold_supplier / app.lift_supplier_hold
--                                  a senior buyer or director stops requests and orders from a
--                                  supplier (TR014), with a reason; both audited and kept
--   app.supplier_record(...)       a supplier's quality record at order time
--   app.supplier_recent_rejects()  its QC rejections with reasons; an order from a supplier with
--                                  a reject in supplier_risk_months() needs an explicit tick (TR015)
--
-- The matching functions are SECURITY DEFINER (so the trigram indexes of app_private.sample_match
-- serve the match, as the GIN index does in search) and apply the samples policies' predicate,
-- app_private.can_see_sample(); they return only columns every role that sees a sample may read
-- (never a cost).
set local role tracker_owner;

------------------------------------------------------------------------------
-- What is matched (V0023): app_private.sample_match, off the write path of a move
------------------------------------------------------------------------------
create or replace function app_private.tg_samples__keep_match() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  insert into app_private.sample_match (sample_id, category_id, title, style_code, in_flight)
  values (new.id, new.category_id, new.title, new.style_code, new.state not in ('returned', 'cut-for-production'))
  on conflict (sample_id) do update
     set category_id = excluded.category_id, title = excluded.title, style_code = excluded.style_code,
         in_flight = excluded.in_flight;
  return null;
end
$$;
comment on function app_private.tg_samples__keep_match() is 'AFTER INSERT on app.samples, and AFTER UPDATE when a matched value changes (title, style code, category, in flight or not): keeps the sample''s row of app_private.sample_match current.';

------------------------------------------------------------------------------
-- Similarity
------------------------------------------------------------------------------
create or replace function app_private.colour_list() returns text[]
language sql immutable parallel safe
as $$
  select '{black,white,ivory,cream,ecru,beige,camel,tan,brown,chocolate,grey,gray,charcoal,silver,gold,navy,blue,cobalt,teal,green,olive,khaki,sage,mint,yellow,mustard,orange,rust,red,burgundy,wine,pink,blush,fuchsia,purple,lilac,lavender,plum,coral,stone,taupe,denim,indigo}'::text[]
$$;
comment on function app_private.colour_list() is 'The colour words the near-duplicate score knows.';

create or replace function app_private.garment_list() returns text[]
language sql immutable parallel safe
as $$
  -- normalised: hyphens joined, a plural's s dropped ("dress" is "dres")
  select '{dres,skirt,shirt,tshirt,tee,top,blouse,jacket,blazer,coat,overcoat,trench,parka,gilet,jumper,sweater,cardigan,vest,hoodie,jean,trouser,chino,short,legging,jumpsuit,suit,boot,loafer,trainer,sneaker,sandal,heel,mule,pump,bag,tote,weekender,crossbody,clutch,backpack,belt,scarf,hat,cap,glove,earring,ring,necklace,bracelet,pendant,swatch}'::text[]
$$;
comment on function app_private.garment_list() is 'The garment words the near-duplicate score knows, normalised (hyphens joined, a final s dropped).';

create or replace function app_private.colour_words(p_text text) returns text[]
language sql immutable parallel safe
as $$
  select coalesce(array_agg(distinct w order by w), '{}') from regexp_split_to_table(lower(coalesce(p_text, '')), '[^a-z]+') w
   where w = any(app_private.colour_list())
$$;
comment on function app_private.colour_words(text) is 'The colour words in a title (a "red dress" and a "navy dress" are different colourways, not duplicates).';

create or replace function app_private.garment_words(p_text text) returns text[]
language sql immutable parallel safe
as $$
  -- hyphens joined ("over-coat" = "overcoat"), a plural's s dropped ("earrings" = "earring")
  select coalesce(array_agg(distinct regexp_replace(w, 's$', '') order by regexp_replace(w, 's$', '')), '{}')
    from regexp_split_to_table(replace(lower(coalesce(p_text, '')), '-', ''), '[^a-z]+') w
   where regexp_replace(w, 's$', '') = any(app_private.garment_list())
$$;
comment on function app_private.garment_words(text) is 'The garment words in a title, normalised (a "cable knit scarf" is not a "cable knit jumper").';

create or replace function app_private.similarity_score(
  p_title_a text, p_title_b text, p_style_a text, p_style_b text, p_category_a integer, p_category_b integer,
  p_season_a integer, p_season_b integer, p_supplier_a integer, p_supplier_b integer,
  p_colours_b text[] default null, p_garments_b text[] default null,
  out score real, out reasons text[])
language plpgsql immutable parallel safe
set search_path = pg_catalog, extensions, pg_temp
as $$
declare
  v_title real := similarity(lower(p_title_a), lower(p_title_b));
  v_style real := case when btrim(coalesce(p_style_a, '')) <> '' and btrim(coalesce(p_style_b, '')) <> ''
                       then similarity(lower(p_style_a), lower(p_style_b)) else 0 end;
  v_colours_a text[] := app_private.colour_words(p_title_a);
  -- b's words may come precomputed (app.similar_samples scores many samples against one query)
  v_colours_b text[] := coalesce(p_colours_b, app_private.colour_words(p_title_b));
  v_garments_a text[] := app_private.garment_words(p_title_a);
  v_garments_b text[] := coalesce(p_garments_b, app_private.garment_words(p_title_b));
begin
  score := greatest(v_title, v_style);
  reasons := '{}';
  if v_title >= 0.3 then reasons := reasons || format('title %s%% alike', round(v_title * 100)); end if;
  if v_style >= 0.5 then reasons := reasons || 'style code alike'::text; end if;
  if p_category_a = p_category_b then
    score := score + 0.1; reasons := reasons || 'same category'::text;
  else
    score := score - 0.3;
  end if;
  if p_season_a = p_season_b then score := score + 0.05; reasons := reasons || 'same season'::text; end if;
  if p_supplier_a = p_supplier_b then score := score + 0.05; reasons := reasons || 'same supplier'::text; end if;
  -- another colourway, or another garment sharing the other words, is not a duplicate
  -- (unless the style code says it is)
  if cardinality(v_colours_a) > 0 and cardinality(v_colours_b) > 0 then
    if v_colours_a && v_colours_b then
      score := score + 0.05; reasons := reasons || 'same colour'::text;
    elsif v_style < 0.8 then
      score := score - 0.4;
    end if;
  end if;
  if cardinality(v_garments_a) > 0 and cardinality(v_garments_b) > 0 and not (v_garments_a && v_garments_b)
     and v_style < 0.8 then
    score := score - 0.4;
  end if;
  score := least(greatest(score, 0), 1);
end
$$;
comment on function app_private.similarity_score(text, text, text, text, integer, integer, integer, integer, integer, integer, text[], text[]) is 'How alike two samples are (0-1) and why: trigram similarity of title or style code, plus same category, season, supplier and colour; another category, colourway or garment counts against.';

create or replace function app_private.similar_threshold() returns real
language sql immutable parallel safe
as $$ select 0.6::real $$;
comment on function app_private.similar_threshold() is 'The score from which two samples are shown as possible duplicates (tuned on tests/test_duplicates.py''s labelled fixture).';

-- The trigram similarity a candidate needs before its score can reach the threshold,
-- read off app_private.similarity_score's weights: the most a candidate can add to
-- max(title, style) is +0.1 for the same category, and +0.05 each for the same season,
-- the same supplier and the same colour - only when the query names a season, a
-- supplier or a colour at all; another category costs 0.3. So a sample of the same
-- category needs at least threshold - 0.1 - those, any other (or when no category is
-- given) threshold + 0.3 - those. tests/test_duplicates.py proves the lookup equal to
-- scoring every sample in flight.
create or replace function app_private.similar_bounds(p_season boolean, p_supplier boolean, p_colour boolean,
                                                      out same_category real, out other_category real)
language sql immutable parallel safe
as $$
  -- less a thousandth, so float rounding at the bound never drops a sample that scores exactly the threshold
  select (app_private.similar_threshold() - 0.1 - b - 0.001)::real, (app_private.similar_threshold() + 0.3 - b - 0.001)::real
    from (select 0.05 * (p_season::int + p_supplier::int + p_colour::int) as b) x
$$;
comment on function app_private.similar_bounds(boolean, boolean, boolean) is 'The least trigram similarity (title or style code) with which a sample of the same category, and of another category, can still score app_private.similar_threshold(), given whether the query names a season, a supplier and a colour: the candidate filters of app.similar_samples.';

create or replace function app_private.similar_upper_bound(
  p_title_similarity real, p_style_similarity real, p_same_category boolean, p_same_season boolean,
  p_same_supplier boolean, p_query_has_colour boolean)
returns float8
language sql immutable parallel safe
as $$
  -- app_private.similarity_score without its penalties, with the colour bonus whenever
  -- the query names a colour: never below the score (tests/test_duplicates.py checks)
  select greatest(p_title_similarity, p_style_similarity)::float8
         + case when p_same_category then 0.1 else -0.3 end
         + case when p_same_season then 0.05 else 0 end
         + case when p_same_supplier then 0.05 else 0 end
         + case when p_query_has_colour then 0.05 else 0 end
$$;
comment on function app_private.similar_upper_bound(real, real, boolean, boolean, boolean, boolean) is 'The most a candidate can score (app_private.similarity_score before its penalties): app.similar_samples scores candidates exactly in this order and stops when no bound left beats the best few.';

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
  v_colours text[] := app_private.colour_words(p_title);     -- the query's words, once
  v_garments text[] := app_private.garment_words(p_title);
  v_has_colour boolean := cardinality(v_colours) > 0;
  v_bounds record := app_private.similar_bounds(p_season_id is not null, p_supplier_id is not null, v_has_colour);
  v_threshold real := app_private.similar_threshold();
  v_limit integer := least(greatest(coalesce(p_limit, 5), 1), 50);
  v_saved text := coalesce(nullif(current_setting('pg_trgm.similarity_threshold', true), ''), '0.3');
  v_ids bigint[] := '{}';     -- candidates found by bound: ids and score bounds
  v_ubs float8[] := '{}';
  v_found bigint[] := '{}';   -- scored at or above the threshold: ids, scores, reasons
  v_scores real[] := '{}';
  v_reasons text[] := '{}';
  v_kth real;                 -- the v_limit-th best so far (score desc, id desc): a candidate
  v_kth_id bigint;            -- must beat it (or tie it with a higher number) to matter
  v_scan text[];
  c record;
  v_s app.samples;
  v_sc record;
begin
  select * into v_me from app.staff s where s.id = app.current_staff_id();
  if v_me.id is null or (length(v_title) < 4 and v_style is null) then
    return;  -- nobody signed in, or too little typed to compare
  end if;
  if length(v_title) > 200 or length(v_style) > 40 then
    raise exception using errcode = 'TR005', message = 'a title can be at most 200 characters and a style code 40';
  end if;
  -- 1. candidates found by bound (similar_bounds), through pg_trgm's % with a threshold set
  --    for this function only (restored below): style codes alike enough for the same
  --    category or any other, and titles alike enough for another category (the title's
  --    GiST index). Each comes with the most it can score (similar_upper_bound).
  if v_style is not null then
    perform set_config('pg_trgm.similarity_threshold', v_bounds.same_category::text, true);
    for c in
      select s.id, app_private.similar_upper_bound(similarity(lower(s.title), lower(p_title)),
               similarity(lower(s.style_code), lower(p_style_code)),
               s.category_id = p_category_id, s.season_id = p_season_id, s.supplier_id = p_supplier_id, v_has_colour) as ub
        from app_private.sample_match m join app.samples s on s.id = m.sample_id
       where lower(m.style_code) % v_style and m.style_code is not null and m.in_flight
         and (p_exclude_sample is null or m.sample_id <> p_exclude_sample) and app_private.can_see_sample(s, v_me)
    loop
      v_ids := v_ids || c.id; v_ubs := v_ubs || c.ub;
    end loop;
  end if;
  perform set_config('pg_trgm.similarity_threshold', v_bounds.other_category::text, true);
  for c in
    select s.id, app_private.similar_upper_bound(similarity(lower(s.title), lower(p_title)),
               case when v_style is not null and btrim(coalesce(s.style_code, '')) <> '' then similarity(lower(s.style_code), lower(p_style_code)) else 0 end,
               s.category_id = p_category_id, s.season_id = p_season_id, s.supplier_id = p_supplier_id, v_has_colour) as ub
      from app_private.sample_match m join app.samples s on s.id = m.sample_id
     where lower(m.title) % v_title and m.sample_id <> all(v_ids) and m.in_flight
       and (p_exclude_sample is null or m.sample_id <> p_exclude_sample) and app_private.can_see_sample(s, v_me)
  loop
    v_ids := v_ids || c.id; v_ubs := v_ubs || c.ub;
  end loop;
  perform set_config('pg_trgm.similarity_threshold', v_saved, true);
  -- 2. those scored exactly, highest bound first, while a bound can still matter
  for c in select u.id, u.ub from unnest(v_ids, v_ubs) u(id, ub) order by u.ub desc, u.id desc
  loop
    exit when c.ub < greatest(v_threshold, v_kth) - 1e-5;  -- (1e-5: float rounding, far below any real difference)
    continue when c.ub <= v_kth + 1e-5 and c.id < v_kth_id;
    select * into v_s from app.samples s where s.id = c.id;
    select * into v_sc from app_private.similarity_score(v_s.title, p_title, v_s.style_code, p_style_code,
                                                         v_s.category_id, p_category_id, v_s.season_id, p_season_id,
                                                         v_s.supplier_id, p_supplier_id, v_colours, v_garments);
    if v_sc.score >= v_threshold then
      v_found := v_found || c.id; v_scores := v_scores || v_sc.score;
      v_reasons := v_reasons || array_to_string(v_sc.reasons, chr(31));
      select x.score, x.id into v_kth, v_kth_id from unnest(v_scores, v_found) x(score, id)
       order by x.score desc, x.id desc offset v_limit - 1 limit 1;
    end if;
  end loop;
  -- 3. the same category: titles nearest first (the GiST index on category and title),
  --    until even the nearest left could not beat the best so far with every bonus
  if p_category_id is not null then
    -- the walk is cheap only as an index scan in distance order: without a LIMIT the
    -- planner would rather sort the whole category, so bitmap and sequential scans are
    -- off for this one query (restored right after)
    v_scan := array[current_setting('enable_bitmapscan'), current_setting('enable_seqscan')];
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true);
    for c in
      select s.id, similarity(lower(s.title), lower(p_title)) as t,
             app_private.similar_upper_bound(similarity(lower(s.title), lower(p_title)),
               case when v_style is not null and btrim(coalesce(s.style_code, '')) <> '' then similarity(lower(s.style_code), lower(p_style_code)) else 0 end,
               true, s.season_id = p_season_id, s.supplier_id = p_supplier_id, v_has_colour) as ub
        from app_private.sample_match m join app.samples s on s.id = m.sample_id
       where m.category_id = p_category_id and m.in_flight
         and (p_exclude_sample is null or m.sample_id <> p_exclude_sample) and app_private.can_see_sample(s, v_me)
       order by lower(m.title) <-> v_title
    loop
      -- a title further down is no more alike; a style code alike enough was found in 1.
      exit when c.t < greatest(v_threshold, v_kth) - (v_threshold - v_bounds.same_category) - 1e-5;
      continue when c.ub < greatest(v_threshold, v_kth) - 1e-5 or (c.ub <= v_kth + 1e-5 and c.id < v_kth_id)
                    or c.id = any(v_ids);
      select * into v_s from app.samples s where s.id = c.id;
      select * into v_sc from app_private.similarity_score(v_s.title, p_title, v_s.style_code, p_style_code,
                                                           v_s.category_id, p_category_id, v_s.season_id,
                                                           p_season_id, v_s.supplier_id, p_supplier_id, v_colours, v_garments);
      if v_sc.score >= v_threshold then
        v_found := v_found || c.id; v_scores := v_scores || v_sc.score;
        v_reasons := v_reasons || array_to_string(v_sc.reasons, chr(31));
        select x.score, x.id into v_kth, v_kth_id from unnest(v_scores, v_found) x(score, id)
         order by x.score desc, x.id desc offset v_limit - 1 limit 1;
      end if;
    end loop;
    perform set_config('enable_bitmapscan', v_scan[1], true), set_config('enable_seqscan', v_scan[2], true);
  end if;
  return query
  select s.id, s.title, s.style_code, s.state, t.code, rb.full_name, cat.name, se.code, su.name,
         f.score, string_to_array(f.reasons, chr(31))
    from unnest(v_found, v_scores, v_reasons) f(id, score, reasons)
    join app.samples s on s.id = f.id
    join app.teams t on t.id = s.team_id
    join app.staff rb on rb.id = s.requested_by
    join app.categories cat on cat.id = s.category_id
    join app.seasons se on se.id = s.season_id
    left join app.suppliers su on su.id = s.supplier_id
   order by f.score desc, s.id desc
   limit v_limit;
end
$$;
comment on function app.similar_samples(text, integer, integer, integer, text, bigint, integer) is 'Possible duplicates in flight, across every team, of what is being requested or ordered: number, title, style, state, team, buyer, category, season, supplier, score and reasons, best first; only samples the caller can see and never a cost.';

------------------------------------------------------------------------------
-- Likely duplicate pairs across teams, and "not a duplicate"
------------------------------------------------------------------------------
create or replace function app.duplicate_pairs(p_season_id integer, p_limit integer default 50)
returns table (a_id bigint, a_title text, a_team text, a_buyer text, b_id bigint, b_title text, b_team text,
               b_buyer text, score real, reasons text[])
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, extensions, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
begin
  if v_me.role not in ('senior_buyer', 'ops_director', 'md') then
    raise exception using errcode = 'TR002', message = 'only a senior buyer or a director reviews likely duplicates',
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
  end if;
  perform set_config('pg_trgm.similarity_threshold', '0.3', true);
  return query
  with mine as (  -- a senior buyer reviews pairs that involve their own team; directors every team
    select s.* from app.samples s
     where s.season_id = p_season_id and s.state not in ('returned', 'cut-for-production')
       and (v_me.role <> 'senior_buyer' or s.team_id = v_me.team_id)
  ), pairs as (
    select a.id as a, b.id as b, a.title as at, b.title as bt, a.team_id as ateam, b.team_id as bteam,
           a.requested_by as abuyer, b.requested_by as bbuyer,
           (app_private.similarity_score(a.title, b.title, a.style_code, b.style_code, a.category_id, b.category_id,
                                         a.season_id, b.season_id, a.supplier_id, b.supplier_id)).*
      from mine a
      join app_private.sample_match bm on lower(bm.title) % lower(a.title) and bm.in_flight
      join app.samples b on b.id = bm.sample_id
                        and b.season_id = p_season_id and b.team_id <> a.team_id
                        and (v_me.role = 'senior_buyer' or a.id < b.id)
     where app_private.can_see_sample(b, v_me)
  )
  select least(p.a, p.b), case when p.a < p.b then p.at else p.bt end,
         (select code from app.teams where id = case when p.a < p.b then p.ateam else p.bteam end),
         (select full_name from app.staff where id = case when p.a < p.b then p.abuyer else p.bbuyer end),
         greatest(p.a, p.b), case when p.a < p.b then p.bt else p.at end,
         (select code from app.teams where id = case when p.a < p.b then p.bteam else p.ateam end),
         (select full_name from app.staff where id = case when p.a < p.b then p.bbuyer else p.abuyer end),
         p.score, p.reasons
    from pairs p
   where p.score >= app_private.similar_threshold()
     and not exists (select 1 from app.duplicate_dismissals d
                      where d.sample_a = least(p.a, p.b) and d.sample_b = greatest(p.a, p.b))
   order by p.score desc, 1, 5
   limit least(greatest(coalesce(p_limit, 50), 1), 500);
end
$$;
comment on function app.duplicate_pairs(integer, integer) is 'Senior buyers (pairs involving their team) and directors (every team): likely duplicate pairs of in-flight samples of different teams in a season, best first, without the pairs dismissed as not duplicates.';

create or replace function app.dismiss_duplicate(p_sample_a bigint, p_sample_b bigint, p_reason text default null)
returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_a app.samples;
  v_b app.samples;
begin
  if p_sample_a is null or p_sample_b is null or p_sample_a = p_sample_b then
    raise exception using errcode = 'TR004', message = 'a pair of two different samples is needed';
  end if;
  if length(p_reason) > 500 then
    raise exception using errcode = 'TR005', message = 'a reason can be at most 500 characters';
  end if;
  select * into v_a from app.samples where id = least(p_sample_a, p_sample_b);
  select * into v_b from app.samples where id = greatest(p_sample_a, p_sample_b);
  if v_a.id is null or v_b.id is null or not app_private.can_see_sample(v_a, v_me)
     or not app_private.can_see_sample(v_b, v_me) then
    raise exception using errcode = 'TR006',
      message = format('sample %s or %s not found', least(p_sample_a, p_sample_b), greatest(p_sample_a, p_sample_b));
  end if;
  if not (v_me.role in ('ops_director', 'md')
          or (v_me.role = 'senior_buyer' and v_me.team_id in (v_a.team_id, v_b.team_id))) then
    raise exception using errcode = 'TR002',
      message = format('only a senior buyer of team %s or %s, or a director, can dismiss this pair',
                       (select code from app.teams where id = v_a.team_id), (select code from app.teams where id = v_b.team_id));
  end if;
  insert into app.duplicate_dismissals (sample_a, sample_b, dismissed_by, dismissed_at, reason)
  values (v_a.id, v_b.id, v_me.id, app.clock(), nullif(btrim(p_reason), ''))
  on conflict (sample_a, sample_b) do nothing;
end
$$;
comment on function app.dismiss_duplicate(bigint, bigint, text) is 'A senior buyer of either team, or a director: this pair is not a duplicate; it is never suggested again.';

------------------------------------------------------------------------------
-- Supplier hold
------------------------------------------------------------------------------
create or replace function app_private.check_supplier_hold(p_supplier_id integer, p_what text) returns void
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_sup app.suppliers;
  v_by text;
begin
  select * into v_sup from app.suppliers where id = p_supplier_id;
  if v_sup.on_hold_at is not null then
    select full_name into v_by from app.staff where id = v_sup.on_hold_by;
    raise exception using errcode = 'TR014',
      message = format('%s is on hold since %s (set by %s: %s); nobody can %s from it', v_sup.name,
                       to_char(v_sup.on_hold_at, 'DD Mon YYYY'), v_by, v_sup.hold_reason, p_what),
      hint = 'Choose another supplier, or ask a senior buyer or the ops director to lift the hold.';
  end if;
end
$$;
comment on function app_private.check_supplier_hold(integer, text) is 'TR014, naming the hold, its reason and who set it, when the supplier is on hold.';

create or replace function app_private.require_supplier_admin(p_supplier_id integer, p_what text)
returns app.suppliers
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_sup app.suppliers;
begin
  if v_me.role not in ('senior_buyer', 'ops_director', 'md') then
    raise exception using errcode = 'TR002', message = format('only a senior buyer or a director can %s', p_what),
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
  end if;
  select * into v_sup from app.suppliers where id = p_supplier_id for update;
  if not found then
    raise exception using errcode = 'TR006', message = format('supplier %s not found', p_supplier_id);
  end if;
  return v_sup;
end
$$;
comment on function app_private.require_supplier_admin(integer, text) is 'The supplier row, locked, if the caller is a senior buyer or a director (TR002) and it exists (TR006).';

create or replace function app.hold_supplier(p_supplier_id integer, p_reason text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_sup app.suppliers;
begin
  perform app_private.require_value(btrim(coalesce(p_reason, '')) = '', 'a reason', 'putting a supplier on hold');
  if length(p_reason) > 500 then
    raise exception using errcode = 'TR005', message = 'a reason can be at most 500 characters';
  end if;
  v_sup := app_private.require_supplier_admin(p_supplier_id, 'put a supplier on hold');
  if v_sup.on_hold_at is not null then
    raise exception using errcode = 'TR001', message = format('%s is already on hold', v_sup.name);
  end if;
  update app.suppliers set on_hold_at = app.clock(), on_hold_by = app.current_staff_id(), hold_reason = btrim(p_reason)
   where id = p_supplier_id;
  insert into app.supplier_hold_events (supplier_id, action, reason, actor_id, at)
  values (p_supplier_id, 'hold', btrim(p_reason), app.current_staff_id(), app.clock());
end
$$;
comment on function app.hold_supplier(integer, text) is 'Senior buyer or director: puts a supplier on hold with a reason; requesting or ordering from it then fails (TR014).';

create or replace function app.lift_supplier_hold(p_supplier_id integer, p_reason text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_sup app.suppliers;
begin
  perform app_private.require_value(btrim(coalesce(p_reason, '')) = '', 'a reason', 'lifting a supplier''s hold');
  if length(p_reason) > 500 then
    raise exception using errcode = 'TR005', message = 'a reason can be at most 500 characters';
  end if;
  v_sup := app_private.require_supplier_admin(p_supplier_id, 'lift a supplier''s hold');
  if v_sup.on_hold_at is null then
    raise exception using errcode = 'TR001', message = format('%s is not on hold', v_sup.name);
  end if;
  update app.suppliers set on_hold_at = null, on_hold_by = null, hold_reason = null where id = p_supplier_id;
  insert into app.supplier_hold_events (supplier_id, action, reason, actor_id, at)
  values (p_supplier_id, 'lift', btrim(p_reason), app.current_staff_id(), app.clock());
end
$$;
comment on function app.lift_supplier_hold(integer, text) is 'Senior buyer or director: lifts a supplier''s hold with a reason.';

------------------------------------------------------------------------------
-- Supplier quality at order time
------------------------------------------------------------------------------
create or replace function app_private.supplier_risk_months() returns integer
language sql immutable parallel safe
as $$ select 6 $$;
comment on function app_private.supplier_risk_months() is 'A QC reject within this many months makes ordering from the supplier need an explicit acknowledgement.';

create or replace function app_private.check_supplier_risk(p_supplier_id integer, p_sample_id bigint, p_accepted boolean)
returns jsonb
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_rejects integer;
  v_name text;
begin
  select count(*) into v_rejects from app.qc_inspections i join app.samples s on s.id = i.sample_id
   where s.supplier_id = p_supplier_id and i.result = 'reject'
     and i.inspected_at > app.clock() - make_interval(months => app_private.supplier_risk_months())
     and s.id <> p_sample_id;
  if v_rejects = 0 then
    return '{}';
  end if;
  if not p_accepted then
    select name into v_name from app.suppliers where id = p_supplier_id;
    raise exception using errcode = 'TR015',
      message = format('%s had %s QC %s in the last %s months; ordering sample %s from it needs your acknowledgement',
                       v_name, v_rejects, case when v_rejects = 1 then 'reject' else 'rejects' end,
                       app_private.supplier_risk_months(), p_sample_id),
      hint = 'Read the rejection reasons on the order form and tick that you order anyway.';
  end if;
  return jsonb_build_object('accepted_supplier_risk', true, 'recent_rejects', v_rejects);
end
$$;
comment on function app_private.check_supplier_risk(integer, bigint, boolean) is 'TR015 unless acknowledged, when the supplier had a QC reject within supplier_risk_months(); returns the acknowledgement for the order event.';

create or replace function app.supplier_record(p_supplier_id integer)
returns table (supplier_id integer, name text, active boolean, inspections bigint, rejects bigint,
               recent_rejects bigint, last_reject_at timestamptz, received bigint, late bigint,
               average_days_late numeric, returned bigint, on_hold_at timestamptz, on_hold_by text, hold_reason text,
               risk_months integer)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  if app.current_staff_id() is null then
    return;
  end if;
  -- NOTE: a supplier's record is shared with everyone who may order: counts, lateness and
  --       hold across every team's samples (never which samples, costs or QC notes)
  return query
  select su.id, su.name, su.active,
         (select count(*) from app.qc_inspections i join app.samples s on s.id = i.sample_id where s.supplier_id = su.id),
         (select count(*) from app.qc_inspections i join app.samples s on s.id = i.sample_id
           where s.supplier_id = su.id and i.result = 'reject'),
         (select count(*) from app.qc_inspections i join app.samples s on s.id = i.sample_id
           where s.supplier_id = su.id and i.result = 'reject'
             and i.inspected_at > app.clock() - make_interval(months => app_private.supplier_risk_months())),
         (select max(i.inspected_at) from app.qc_inspections i join app.samples s on s.id = i.sample_id
           where s.supplier_id = su.id and i.result = 'reject'),
         d.received, d.late, d.average_days_late,
         (select count(*) from app.samples s where s.supplier_id = su.id and s.courier_ref is not null),
         su.on_hold_at, (select full_name from app.staff where id = su.on_hold_by), su.hold_reason,
         app_private.supplier_risk_months()
    from app.suppliers su
    cross join lateral (
      select count(*) as received, count(*) filter (where s.received_on > s.expected_on) as late,
             round(avg(s.received_on - s.expected_on) filter (where s.received_on > s.expected_on), 1)
               as average_days_late
        from app.samples s where s.supplier_id = su.id and s.received_on is not null and s.expected_on is not null) d
   where su.id = p_supplier_id;
end
$$;
comment on function app.supplier_record(integer) is 'A supplier''s quality record for every signed-in role: QC inspections and rejects (all time, and within the risk window), deliveries received late and by how much, samples returned, and any hold with who set it and why.';

create or replace function app.supplier_recent_rejects(p_supplier_id integer, p_limit integer default 10)
returns table (inspected_at timestamptz, reason text, category text, sample_id bigint)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
begin
  select * into v_me from app.staff s where s.id = app.current_staff_id();
  if v_me.id is null then
    return;
  end if;
  -- the reason is the supplier's record; the sample number only for those who can see it
  return query
  select i.inspected_at, i.reason, c.name, case when app_private.can_see_sample(s, v_me) then s.id end
    from app.qc_inspections i join app.samples s on s.id = i.sample_id join app.categories c on c.id = s.category_id
   where s.supplier_id = p_supplier_id and i.result = 'reject'
   order by i.inspected_at desc
   limit least(greatest(coalesce(p_limit, 10), 1), 100);
end
$$;
comment on function app.supplier_recent_rejects(integer, integer) is 'A supplier''s QC rejections, newest first: when, the reason and the category; the sample number only when the caller can see that sample (the inspector''s notes never).';
