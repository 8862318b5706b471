-- The sample room (issue 14): bulk actions and stocktakes.
--
--   app.bulk_act(action, samples, values, all_or_nothing, note)
--       one call, one transaction: each sample goes through the steps of
--       app_private.perform_action() (the same checks as one at a time: values, visibility,
--       lock, rule, plan; then one UPDATE and one event) and the result says per sample what
--       happened and why not; with all_or_nothing any refusal changes nothing (TR016)
--   app.start_stocktake(location) / app.count_sample(stocktake, sample) / app.close_stocktake(...)
--       logistics counts a location: found, missing (expected there, not found) and unexpected
--       (found there, recorded elsewhere); closed counts are kept
set local role tracker_owner;

create or replace function app_private.bulk_actions() returns text[]
language sql immutable parallel safe
as $$ select '{receive,hand_to_design,hand_to_sales,hand_back,send_to_factory,return_from_factory,return_to_supplier,confirm_handover}'::text[] $$;
comment on function app_private.bulk_actions() is 'The actions a bulk call may apply: the moves of the sample room.';

create or replace function app_private.bulk_limit() returns integer
language sql immutable parallel safe
as $$ select 500 $$;
comment on function app_private.bulk_limit() is 'At most this many samples in one bulk call.';

create or replace function app.bulk_act(
  p_action text, p_sample_ids bigint[], p_values jsonb default '{}', p_all_or_nothing boolean default false,
  p_note text default null)
returns table (sample_id bigint, ok boolean, event_id bigint, code text, message text)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_values jsonb;
  v_selection bigint[];
  v_locked bigint[];
  v_s app.samples;
  v_rule app.transition_rules;
  v_plan record;
  v_n integer;
  v_i integer;
  v_failed integer := 0;
  v_ok boolean[];
  v_events bigint[];
  v_codes text[];
  v_messages text[];
  v_message text;
  v_to app.sample_state[];
  v_changes jsonb[];
  v_details jsonb[];
begin
  if p_action is null or not (p_action = any (app_private.bulk_actions())) then
    raise exception using errcode = 'TR005',
      message = format('"%s" cannot be applied to many samples at once', coalesce(p_action, '')),
      hint = 'Bulk actions: receive, hand to design or sales, hand back, send to or bring back from a factory, return to the supplier.';
  end if;
  -- the distinct sample numbers, nulls left out (an array of nulls is no selection)
  v_selection := array(select distinct x from unnest(p_sample_ids) x where x is not null order by x);
  v_n := cardinality(v_selection);
  if v_n = 0 then
    raise exception using errcode = 'TR004', message = 'a bulk action needs at least one sample';
  end if;
  if cardinality(p_sample_ids) > app_private.bulk_limit() then
    raise exception using errcode = 'TR005',
      message = format('at most %s samples at once; this was %s', app_private.bulk_limit(), cardinality(p_sample_ids));
  end if;
  if jsonb_typeof(coalesce(p_values, '{}')) <> 'object' then
    raise exception using errcode = 'TR005', message = 'the values of a bulk action are an object of named fields';
  end if;
  -- only the fields the moves take, whatever else was sent
  v_values := jsonb_strip_nulls(jsonb_build_object(
    'location_id', p_values -> 'location_id', 'holder_id', p_values -> 'holder_id',
    'factory_id', p_values -> 'factory_id', 'courier_ref', p_values -> 'courier_ref'));
  v_ok := array_fill(false, array[v_n]);
  v_events := array_fill(null::bigint, array[v_n]);
  v_codes := array_fill(null::text, array[v_n]);
  v_messages := array_fill(null::text, array[v_n]);
  v_to := array_fill(null::app.sample_state, array[v_n]);
  v_changes := array_fill(null::jsonb, array[v_n]);
  v_details := array_fill(null::jsonb, array[v_n]);

  -- Each sample goes through the steps of app_private.perform_action (040_lifecycle.sql) -
  -- values, visibility, lock, rule, plan, then one UPDATE and one event - in two passes, so
  -- that no write happens inside a subtransaction (issue 14: a savepoint per sample that
  -- writes made 500 samples slower than 500 single calls):
  -- 1. lock what the caller can see, at once and without waiting (a sample someone else is
  --    changing is reported, like lock_sample's NOWAIT); then check each sample, catching
  --    our refusals one by one - read-only, so the exception blocks assign no transaction id;
  -- 2. all or nothing: any refusal raises TR016 before anything was written; otherwise
  --    apply each planned change (the samples stay locked from pass 1).
  v_locked := array(select s.id from app.samples s
                     where s.id = any (v_selection) and app_private.can_see_sample(s, v_me)
                     order by s.id for update skip locked);
  for v_i in 1 .. v_n loop
    begin
      perform app_private.validate_values(v_selection[v_i], p_action, v_values);
      select * into v_s from app.samples s where s.id = v_selection[v_i];
      if v_s.id is null or not app_private.can_see_sample(v_s, v_me) then
        raise exception using errcode = 'TR006', message = format('sample %s not found', v_selection[v_i]),
          hint = 'Check the number on the tag; you can only act on samples you can see.';
      end if;
      if not (v_s.id = any (v_locked)) then
        raise exception using errcode = 'TR007',
          message = format('sample %s is being changed by someone else right now', v_s.id),
          hint = 'Reload the sample and try again.';
      end if;
      v_rule := app_private.check_rule(v_s, p_action, v_me);
      v_plan := app_private.plan_changes(v_s, v_rule, v_values, v_me);
      -- a sample that moves on is no longer waiting for the last handover's confirmation
      if v_plan.to_state is distinct from v_s.state and not (v_plan.changes ? 'transit_from') then
        v_plan.changes := v_plan.changes || app_private.transit(false, v_me);
      end if;
      v_ok[v_i] := true;
      v_to[v_i] := v_plan.to_state;
      v_changes[v_i] := v_plan.changes;
      v_details[v_i] := v_plan.details;
    exception when sqlstate 'TR001' or sqlstate 'TR002' or sqlstate 'TR003' or sqlstate 'TR004'
                   or sqlstate 'TR005' or sqlstate 'TR006' or sqlstate 'TR007' or sqlstate 'TR008'
                   or sqlstate 'TR009' or sqlstate 'TR014' or sqlstate 'TR015' or invalid_text_representation
                   or numeric_value_out_of_range or invalid_datetime_format then
      -- our refusal for this sample only; nothing was written for it
      v_failed := v_failed + 1;
      v_codes[v_i] := sqlstate;
      get stacked diagnostics v_message = message_text;
      v_messages[v_i] := v_message;
    end;
  end loop;
  if p_all_or_nothing and v_failed > 0 then
    raise exception using errcode = 'TR016',
      message = format('%s of %s samples cannot be %s, so none was changed', v_failed,
                       v_n, replace(p_action, '_', ' ')),
      detail = (select string_agg(format('%s: %s', u.u_id, u.u_message), '; ' order by u.u_id)
                  from unnest(v_selection, v_ok, v_messages) u(u_id, u_ok, u_message) where not u.u_ok),
      hint = 'Take the refused samples out of the selection, or apply the action to the legal ones only.';
  end if;
  for v_i in 1 .. v_n loop
    continue when not v_ok[v_i];
    select * into v_s from app.samples s where s.id = v_selection[v_i];
    v_events[v_i] := app_private.apply_change(v_s, p_action, v_to[v_i], v_changes[v_i], v_me, p_note,
                                              v_details[v_i], false);
  end loop;
  return query select * from unnest(v_selection, v_ok, v_events, v_codes, v_messages);
end
$$;
comment on function app.bulk_act(text, bigint[], jsonb, boolean, text) is 'Applies one sample-room move (receive, hand to design/sales, hand back, send to/bring back from a factory, return to supplier) to up to 500 samples in one transaction, each checked like a single action; returns per sample whether it was done and, if not, our SQLSTATE and sentence. All-or-nothing: any refusal changes nothing (TR016).';

------------------------------------------------------------------------------
-- Stocktake
------------------------------------------------------------------------------
create or replace function app_private.require_counter() returns app.staff
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
begin
  if v_me.role not in ('logistics', 'ops_director', 'md') then
    raise exception using errcode = 'TR002', message = 'only logistics or a director counts stock',
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
  end if;
  return v_me;
end
$$;
comment on function app_private.require_counter() is 'The signed-in person if they may count stock (logistics, directors), else TR002.';

create or replace function app.start_stocktake(p_location_id integer) returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_counter();
  v_id bigint;
begin
  perform app_private.require_value(p_location_id is null, 'a location', 'a stocktake');
  if not exists (select 1 from app.locations where id = p_location_id) then
    raise exception using errcode = 'TR005', message = format('location %s does not exist', p_location_id);
  end if;
  -- what the records say is there, and each sample's version now (app.missing_samples: changed since?)
  insert into app.stocktakes (location_id, started_by, started_at, expected, expected_versions)
  select p_location_id, v_me.id, app.clock(), coalesce(array_agg(s.id order by s.id), '{}'),
         coalesce(array_agg(s.version order by s.id), '{}')
    from app.samples s where s.location_id = p_location_id and s.state = 'received'
  returning id into v_id;
  return v_id;
end
$$;
comment on function app.start_stocktake(integer) is 'Logistics or a director starts counting a location; what the records say is there (received, at that location) is fixed now as "expected". Returns the count''s id.';

create or replace function app.count_sample(p_stocktake_id bigint, p_sample_id bigint)
returns table (sample_id bigint, expected boolean, recorded_location text, state app.sample_state)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_counter();
  v_take app.stocktakes;
  v_s app.samples;
begin
  select * into v_take from app.stocktakes where id = p_stocktake_id for update;
  if not found then
    raise exception using errcode = 'TR006', message = format('stocktake %s not found', p_stocktake_id);
  end if;
  if v_take.closed_at is not null then
    raise exception using errcode = 'TR001', message = format('stocktake %s is closed', p_stocktake_id),
      hint = 'Start a new count.';
  end if;
  select * into v_s from app.samples where id = p_sample_id;
  if v_s.id is null or not app_private.can_see_sample(v_s, v_me) then
    raise exception using errcode = 'TR006', message = format('sample %s not found', p_sample_id),
      hint = 'Check the number on the tag.';
  end if;
  if not (p_sample_id = any (v_take.found)) then
    update app.stocktakes t set found = t.found || p_sample_id where t.id = p_stocktake_id;
  end if;
  return query select v_s.id, v_s.id = any (v_take.expected), (select code from app.locations where id = v_s.location_id),
                      v_s.state;
end
$$;
comment on function app.count_sample(bigint, bigint) is 'Records a sample found during a count (once, however often it is scanned) and says whether it was expected there and where the records put it.';

create or replace function app.close_stocktake(p_stocktake_id bigint) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_counter();
begin
  update app.stocktakes set closed_at = app.clock(), closed_by = v_me.id
   where id = p_stocktake_id and closed_at is null;
  if not found then
    raise exception using errcode = 'TR001', message = format('stocktake %s is closed or does not exist', p_stocktake_id);
  end if;
end
$$;
comment on function app.close_stocktake(bigint) is 'Closes a count: its found, missing and unexpected lists are kept as they are.';

create or replace function app.stocktake_report(p_stocktake_id bigint)
returns table (sample_id bigint, outcome text, title text, state app.sample_state, recorded_location text,
               holder text, last_action text, last_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_take app.stocktakes;
begin
  select * into v_take from app.stocktakes where id = p_stocktake_id;
  if v_take.id is null then
    return;
  end if;
  return query
  -- a join of the two lists (hashed), not "= any" per element: a 5,000-sample shelf is 25M comparisons that way
  with ids as (
    select coalesce(e.id, f.id) as id,
           case when f.id is null then 'missing' when e.id is null then 'unexpected' else 'found' end as outcome
      from unnest(v_take.expected) e(id)
      full join unnest(v_take.found) f(id) on f.id = e.id
  )
  select s.id, ids.outcome, s.title, s.state, l.code, h.full_name, e.action, e.at
    from ids join app.samples s on s.id = ids.id
    left join app.locations l on l.id = s.location_id
    left join app.staff h on h.id = s.holder_id
    left join lateral (select ev.action, ev.at from app.sample_events ev where ev.sample_id = s.id
                        order by ev.at desc, ev.id desc limit 1) e on true
   where app_private.can_see_sample(s, v_me)
   order by ids.outcome = 'found', ids.outcome, s.id;
end
$$;
comment on function app.stocktake_report(bigint) is 'A count''s result: missing (expected, not found: with the holder and last event), unexpected (found, recorded elsewhere) and found; only samples the caller can see.';
