-- Importing samples from the old spreadsheet (issue 14, item 5).
--
--   app.import_sample(external_ref, row[, check_only])   one spreadsheet row -> one sample, in the state the
--       row says, with the facts that state needs (as an override would ask for them), and an
--       "import" event carrying the row; an external reference already imported is skipped,
--       so re-importing a file creates nothing twice. Names are looked up as people type them
--       (case-insensitive), and a name that is not found gets a "did you mean" from pg_trgm.
-- Logistics, senior buyers (for their own team) and the system admin import. Costs are not
-- imported (they are entered by ordering, where the people who may see them are).
set local role tracker_owner;

create or replace function app_private.import_lookup(p_what text, p_value text, p_found boolean, p_suggestion text)
returns void
language plpgsql immutable
as $$
begin
  if not p_found then
    raise exception using errcode = 'TR005',
      message = format('%s ''%s'' does not exist%s', p_what, p_value,
                       case when p_suggestion is not null then format('; did you mean ''%s''?', p_suggestion) else '' end);
  end if;
end
$$;
comment on function app_private.import_lookup(text, text, boolean, text) is 'TR005 "season ''SS27'' does not exist; did you mean ''SS 2027''?" when an imported name is not found.';

create or replace function app_private.import_date(p_value text, p_what text) returns date
language plpgsql immutable
as $$
begin
  return nullif(btrim(coalesce(p_value, '')), '')::date;
exception when invalid_datetime_format or datetime_field_overflow then
  raise exception using errcode = 'TR005', message = format('%s ''%s'' is not a date', p_what, p_value),
    hint = 'Write dates as 2026-03-14, 14/03/2026 or 14 Mar 2026.';
end
$$;
comment on function app_private.import_date(text, text) is 'An imported date, or TR005 naming the field.';

create or replace function app.import_sample(p_external_ref text, p_row jsonb, p_check_only boolean default false)
returns table (sample_id bigint, created boolean)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, extensions, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_ref text := nullif(btrim(coalesce(p_external_ref, '')), '');
  v_title text := nullif(btrim(coalesce(p_row ->> 'title', '')), '');
  v_state app.sample_state;
  v_team app.teams;
  v_cat integer; v_season integer; v_supplier integer; v_location integer; v_factory integer;
  v_requester bigint; v_holder bigint;
  v_expected date; v_received date;
  v_id bigint;
  v_now timestamptz := app.clock();
  v_text text;
begin
  if v_me.role not in ('logistics', 'senior_buyer', 'system_admin') then
    raise exception using errcode = 'TR002', message = 'only logistics, a senior buyer or a system admin imports samples',
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
  end if;
  perform app_private.require_value(v_ref is null, 'a reference (the spreadsheet''s own number)', 'an imported row');
  if length(v_ref) > 100 then
    raise exception using errcode = 'TR005', message = 'a reference can be at most 100 characters';
  end if;
  declare
    v_seen app.samples;
  begin
    select * into v_seen from app.samples s where s.external_ref = v_ref;
    if found and app_private.can_see_sample(v_seen, v_me) then
      return query select v_seen.id, false;  -- imported before: nothing to do
      return;
    elsif found then
      -- imported before, as a sample this person cannot see: say so without its number or team
      -- (the reference is unique across teams; the attack review found the id leaking here)
      raise exception using errcode = 'TR005',
        message = format('the reference %s is already taken by a sample you cannot see', v_ref),
        hint = 'Give the row another reference, or ask whoever imported it.';
    end if;
  end;
  perform app_private.require_value(v_title is null, 'a title', 'an imported row');
  if length(v_title) > 200 then
    raise exception using errcode = 'TR005', message = 'a title can be at most 200 characters';
  end if;
  -- the state, as people write it
  v_text := lower(replace(btrim(coalesce(p_row ->> 'state', 'requested')), ' ', '-'));
  if v_text not in (select unnest(enum_range(null::app.sample_state))::text) then
    raise exception using errcode = 'TR005',
      message = format('state ''%s'' is not one of requested, ordered, received, with-design, with-sales, at-factory, returned, cut-for-production', p_row ->> 'state');
  end if;
  v_state := v_text::app.sample_state;
  -- team, category, season, supplier by name
  v_text := btrim(coalesce(p_row ->> 'team', ''));
  select * into v_team from app.teams t where lower(t.code) = lower(v_text) or lower(t.name) = lower(v_text);
  if not (v_team.id is not null) then  -- the "did you mean" is looked for only when needed
    perform app_private.import_lookup('team', v_text, v_team.id is not null,
      (select t.code from app.teams t order by similarity(lower(t.code || ' ' || t.name), lower(v_text)) desc limit 1));
  end if;
  if v_me.role = 'senior_buyer' and v_team.id <> v_me.team_id then
    raise exception using errcode = 'TR003', message = format('a senior buyer imports only their own team''s samples, not %s''s', v_team.code);
  end if;
  v_text := btrim(coalesce(p_row ->> 'category', ''));
  select c.id into v_cat from app.categories c where lower(c.name) = lower(v_text);
  if not (v_cat is not null) then  -- the "did you mean" is looked for only when needed
    perform app_private.import_lookup('category', v_text, v_cat is not null,
      (select c.name from app.categories c where similarity(lower(c.name), lower(v_text)) > 0.2
        order by similarity(lower(c.name), lower(v_text)) desc limit 1));
  end if;
  v_text := btrim(coalesce(p_row ->> 'season', ''));
  select se.id into v_season from app.seasons se where lower(se.code) = lower(replace(v_text, ' ', '')) or lower(se.name) = lower(v_text);
  if not (v_season is not null) then  -- the "did you mean" is looked for only when needed
    perform app_private.import_lookup('season', v_text, v_season is not null,
      (select se.code from app.seasons se where similarity(lower(se.code || ' ' || se.name), lower(v_text)) > 0.1
        order by similarity(lower(se.code || ' ' || se.name), lower(v_text)) desc limit 1));
  end if;
  v_text := nullif(btrim(coalesce(p_row ->> 'supplier', '')), '');
  if v_text is not null then
    select su.id into v_supplier from app.suppliers su where lower(su.name) = lower(v_text);
    if not (v_supplier is not null) then  -- the "did you mean" is looked for only when needed
      perform app_private.import_lookup('supplier', v_text, v_supplier is not null,
        (select su.name from app.suppliers su where similarity(lower(su.name), lower(v_text)) > 0.3
          order by similarity(lower(su.name), lower(v_text)) desc limit 1));
    end if;
  elsif v_state <> 'requested' then
    raise exception using errcode = 'TR004', message = format('a %s sample needs its supplier', v_state);
  end if;
  -- who asked for it: a buyer of the team by e-mail or name, else the team's first senior buyer
  v_text := nullif(btrim(coalesce(p_row ->> 'buyer', '')), '');
  select s.id into v_requester from app.staff s
   where s.role in ('buyer', 'senior_buyer') and s.team_id = v_team.id
     and (v_text is null and s.role = 'senior_buyer' or lower(s.email) = lower(v_text) or lower(s.full_name) = lower(v_text))
   order by s.active desc, s.id limit 1;
  if not (v_requester is not null) then  -- the "did you mean" is looked for only when needed
    perform app_private.import_lookup(format('buyer of team %s', v_team.code), coalesce(v_text, '(none given)'),
      v_requester is not null, null);
  end if;
  -- the facts the state needs
  v_expected := app_private.import_date(p_row ->> 'expected_on', 'expected date');
  v_received := app_private.import_date(p_row ->> 'received_on', 'received date');
  if v_state in ('received') then
    v_text := btrim(coalesce(p_row ->> 'location', ''));
    select l.id into v_location from app.locations l where lower(l.code) = lower(v_text);
    if not (v_location is not null) then  -- the "did you mean" is looked for only when needed
      perform app_private.import_lookup('location', v_text, v_location is not null,
        (select l.code from app.locations l order by similarity(lower(l.code), lower(v_text)) desc limit 1));
    end if;
  end if;
  if v_state in ('with-design', 'with-sales') then
    v_text := btrim(coalesce(p_row ->> 'holder', ''));
    select s.id into v_holder from app.staff s
     where s.active and s.role = any (app.holder_roles(v_state))
       and (lower(s.email) = lower(v_text) or lower(s.full_name) = lower(v_text));
    if not (v_holder is not null) then  -- the "did you mean" is looked for only when needed
      perform app_private.import_lookup(case when v_state = 'with-design' then 'designer' else 'sales person' end,
        v_text, v_holder is not null,
        (select s.full_name from app.staff s where s.active and s.role = any (app.holder_roles(v_state))
          order by similarity(lower(s.full_name), lower(v_text)) desc limit 1));
    end if;
  end if;
  if v_state in ('at-factory', 'cut-for-production') then
    v_text := btrim(coalesce(p_row ->> 'factory', ''));
    select f.id into v_factory from app.factories f where lower(f.name) = lower(v_text);
    if not (v_factory is not null) then  -- the "did you mean" is looked for only when needed
      perform app_private.import_lookup('factory', v_text, v_factory is not null,
        (select f.name from app.factories f order by similarity(lower(f.name), lower(v_text)) desc limit 1));
    end if;
  end if;
  if v_state not in ('requested', 'ordered') and v_received is null then
    v_received := v_now::date;  -- in the building or past it: received at the latest today
  end if;

  if p_check_only then
    -- the dry run's first pass: every check made, nothing written (so its savepoint stays cheap)
    return query select null::bigint, true;
    return;
  end if;
  insert into app.samples (title, style_code, category_id, season_id, team_id, requested_by, supplier_id, on_loan,
                           state, holder_id, location_id, factory_id, expected_on, received_on, courier_ref,
                           external_ref, state_changed_at, created_at, updated_at)
  values (v_title, nullif(btrim(coalesce(p_row ->> 'style_code', '')), ''), v_cat, v_season, v_team.id, v_requester,
          v_supplier, coalesce(lower(btrim(p_row ->> 'on_loan')) in ('yes', 'y', 'true', '1', 'x', 'on loan'), false), v_state, v_holder, v_location, v_factory,
          case when v_state <> 'requested' then v_expected end, case when v_state not in ('requested', 'ordered') then v_received end,
          case when v_state = 'returned' then nullif(btrim(coalesce(p_row ->> 'courier_ref', '')), '') end,
          v_ref, v_now, v_now, v_now)
  returning id into v_id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at, note, details)
  values (v_id, 'import', null, v_state, v_me.id, v_me.role::text, v_now,
          format('imported from the spreadsheet (%s)', v_ref), jsonb_build_object('row', p_row));
  return query select v_id, true;
end
$$;
comment on function app.import_sample(text, jsonb, boolean) is 'p_check_only: every check, nothing written (sample_id null, created true: it would be created). Logistics, a senior buyer (own team) or the system admin: one spreadsheet row becomes a sample in the state it gives, with the facts that state needs (names looked up, "did you mean" when not found) and an import event carrying the row; a reference imported before is skipped. Costs are not imported.';

create or replace function app_private.tg_import_layouts__stamp() returns trigger
language plpgsql volatile
as $$
begin
  new.updated_by := app.current_staff_id();
  new.updated_at := now();
  return new;
end
$$;
comment on function app_private.tg_import_layouts__stamp() is 'BEFORE INSERT OR UPDATE on import_layouts: who mapped the layout and when, from the session.';
