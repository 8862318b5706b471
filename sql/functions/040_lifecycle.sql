-- The lifecycle: one function per action. Public functions in schema app are
-- SECURITY INVOKER wrappers: they prove the caller can see the sample (RLS) and
-- hand over to the SECURITY DEFINER internal of the same name in app_private,
-- which locks the row, validates role, scope, state and fields, then acts and
-- writes exactly one event - or raises one of our SQLSTATEs and changes nothing.
set local role tracker_owner;

------------------------------------------------------------------------------
-- Words for messages
------------------------------------------------------------------------------
create or replace function app.role_label(p_role app.staff_role) returns text
language sql immutable parallel safe
as $$
  select case p_role
    when 'buyer' then 'a buyer' when 'senior_buyer' then 'a senior buyer'
    when 'designer' then 'a designer' when 'sales_lead' then 'a sales lead'
    when 'sales_executive' then 'a sales executive' when 'qc' then 'QC'
    when 'factory_liaison' then 'a factory liaison' when 'logistics' then 'logistics'
    when 'finance' then 'finance' when 'ops_director' then 'the ops director'
    when 'md' then 'the MD' when 'system_admin' then 'a system admin' end
$$;
comment on function app.role_label(app.staff_role) is 'A role as it reads in a sentence ("a factory liaison").';

create or replace function app.words_or(p_words text[]) returns text
language sql immutable parallel safe
as $$
  select case
    when cardinality(p_words) <= 1 then coalesce(p_words[1], '')
    else array_to_string(p_words[1:cardinality(p_words) - 1], ', ') || ' or ' || p_words[cardinality(p_words)]
  end
$$;
comment on function app.words_or(text[]) is 'Joins words as "a, b or c".';

------------------------------------------------------------------------------
-- Internals shared by every action
------------------------------------------------------------------------------
create or replace function app_private.require_staff() returns app.staff
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
begin
  select * into v_me from app.staff where id = app.current_staff_id();
  if not found then
    raise exception using errcode = 'TR010',
      message = 'no active staff member is signed in to this session',
      hint = 'Sign in again; an inactive account cannot change samples.';
  end if;
  return v_me;
end
$$;
comment on function app_private.require_staff() is 'The staff row behind this session, or TR010.';

create or replace function app_private.require_value(p_missing boolean, p_field text, p_what text)
returns void
language plpgsql immutable
as $$
begin
  if p_missing then
    raise exception using errcode = 'TR004',
      message = format('%s needs %s', p_what, p_field),
      hint = format('Fill in %s and try again.', p_field);
  end if;
end
$$;
comment on function app_private.require_value(boolean, text, text) is 'Raises TR004 "<what> needs <field>" when p_missing.';

create or replace function app_private.can_see_sample(p_s app.samples, p_me app.staff) returns boolean
language sql stable parallel safe
as $$
  select case
    when p_me.role in ('buyer', 'senior_buyer')
      then p_s.team_id = p_me.team_id or p_s.state not in ('returned', 'cut-for-production')
    when p_me.role in ('designer', 'sales_lead', 'sales_executive') then p_s.state <> 'requested'
    when p_me.role = 'qc' then p_s.received_on is not null
    when p_me.role = 'factory_liaison'
      then p_s.factory_id is not null or p_s.state in ('received', 'with-design', 'with-sales')
    else p_me.role in ('logistics', 'finance', 'ops_director', 'md', 'system_admin')
  end
$$;
comment on function app_private.can_see_sample(app.samples, app.staff) is 'The SELECT policies of app.samples as one predicate, for the definer functions (which bypass RLS); tests/test_identity.py proves it equal to RLS for every role and state.';

create or replace function app_private.lock_sample(p_sample_id bigint, p_me app.staff) returns app.samples
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_s app.samples;
begin
  -- visibility first, so a hidden sample is "not found" - never "busy" or "in state X"
  select * into v_s from app.samples where id = p_sample_id;
  if not found or not app_private.can_see_sample(v_s, p_me) then
    raise exception using errcode = 'TR006', message = format('sample %s not found', p_sample_id),
      hint = 'Check the number on the tag; you can only act on samples you can see.';
  end if;
  begin
    select * into v_s from app.samples where id = p_sample_id for update nowait;
  exception when lock_not_available then
    raise exception using errcode = 'TR007',
      message = format('sample %s is being changed by someone else right now', p_sample_id),
      hint = 'Reload the sample and try again.';
  end;
  return v_s;
end
$$;
comment on function app_private.lock_sample(bigint, app.staff) is 'Locks one sample row the caller can see (NOWAIT): TR006 if missing or hidden, TR007 if someone else holds it.';

create or replace function app.action_in_scope(p_s app.samples, p_action text, p_me app.staff)
returns boolean
language sql stable parallel safe
as $$
  select case
    when p_action in ('order', 'withdraw') then
      (p_me.role = 'buyer' and p_s.requested_by = p_me.id)
      or (p_me.role = 'senior_buyer' and p_s.team_id = p_me.team_id)
    when p_action = 'approve_for_production' then
      p_me.role = 'senior_buyer' and p_s.team_id = p_me.team_id
    else true
  end
$$;
comment on function app.action_in_scope(app.samples, text, app.staff) is 'Scope rules beyond the role: only the requesting buyer or a senior buyer of the team may order or withdraw; only a senior buyer of the team may approve.';

create or replace function app_private.check_rule(p_s app.samples, p_action text, p_me app.staff)
returns app.transition_rules
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_rule app.transition_rules;
  v_any app.transition_rules;
  v_from text[];
  v_requester text;
  v_team text;
begin
  select * into v_any from app.transition_rules where action = p_action limit 1;
  if not found then
    raise exception using errcode = 'TR005', message = format('unknown action "%s"', p_action);
  end if;
  if p_s.qc_rejected and p_action <> 'return_to_supplier' then
    raise exception using errcode = 'TR008',
      message = format('sample %s failed QC; it can only be returned to the supplier', p_s.id),
      hint = 'Ask logistics to return it.';
  end if;
  select * into v_rule from app.transition_rules where action = p_action and from_state = p_s.state;
  if not found then
    select array_agg(from_state::text order by from_state) into v_from
      from app.transition_rules where action = p_action;
    if p_s.state in ('returned', 'cut-for-production') then
      raise exception using errcode = 'TR001',
        message = format('sample %s is %s, which is final; nobody can %s now', p_s.id, p_s.state, v_any.verb),
        hint = 'Only a director''s override can move a sample out of a final state.';
    end if;
    raise exception using errcode = 'TR001',
      message = format('sample %s is %s; you can %s only when it is %s',
                       p_s.id, p_s.state, v_any.verb, app.words_or(v_from)),
      detail = format('action %s, current state %s', p_action, p_s.state);
  end if;
  if not (p_me.role = any (v_rule.roles)) then
    raise exception using errcode = 'TR002',
      message = format('sample %s is %s; only %s can %s', p_s.id, p_s.state,
                       app.words_or(array(select app.role_label(r) from unnest(v_rule.roles) r)), v_rule.verb),
      detail = format('you are signed in as %s', app.role_label(p_me.role));
  end if;
  if not app.action_in_scope(p_s, p_action, p_me) then
    select full_name into v_requester from app.staff where id = p_s.requested_by;
    select code into v_team from app.teams where id = p_s.team_id;
    raise exception using errcode = 'TR003',
      message = case when p_action = 'approve_for_production'
        then format('sample %s belongs to team %s; only a senior buyer of that team can %s', p_s.id, v_team, v_rule.verb)
        else format('sample %s was requested by %s; only they or a senior buyer of team %s can %s',
                    p_s.id, v_requester, v_team, v_rule.verb) end;
  end if;
  return v_rule;
end
$$;
comment on function app_private.check_rule(app.samples, text, app.staff) is 'Checks state (TR001), QC rejection (TR008), role (TR002) and scope (TR003) for an action on a locked sample; returns the rule.';

create or replace function app_private.apply_change(
  p_s app.samples, p_action text, p_to_state app.sample_state, p_changes jsonb,
  p_me app.staff, p_note text, p_details jsonb default '{}', p_override boolean default false)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_new app.samples := jsonb_populate_record(p_s, p_changes);
  v_now timestamptz := app.clock();
  v_moves boolean := p_to_state is distinct from p_s.state;
  v_event_id bigint;
begin
  update app.samples
     set (supplier_id, state, holder_id, location_id, factory_id, on_loan, expected_on, received_on,
          return_due_on, qc_rejected, last_qc_result, production_approved_by, production_approved_at, courier_ref,
          withdrawn_at, state_changed_at, version, updated_at)
       = (v_new.supplier_id, p_to_state, v_new.holder_id, v_new.location_id, v_new.factory_id,
          v_new.on_loan, v_new.expected_on, v_new.received_on, v_new.return_due_on, v_new.qc_rejected,
          v_new.last_qc_result,
          v_new.production_approved_by, v_new.production_approved_at, v_new.courier_ref,
          v_new.withdrawn_at, case when v_moves then v_now else p_s.state_changed_at end,
          p_s.version + 1, v_now)
   where id = p_s.id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at,
                                 note, details, is_override)
  values (p_s.id, p_action, p_s.state, p_to_state, p_me.id, p_me.role::text, v_now,
          nullif(btrim(p_note), ''), p_changes || coalesce(p_details, '{}'), p_override)
  returning id into v_event_id;
  perform pg_notify('sample_events',
    json_build_object('event_id', v_event_id, 'sample_id', p_s.id, 'kind', p_action)::text);
  return v_event_id;
end
$$;
comment on function app_private.apply_change(app.samples, text, app.sample_state, jsonb, app.staff, text, jsonb, boolean) is 'Writes a validated action: one UPDATE of the sample, one event, one NOTIFY (ids only, never the row).';

create or replace function app_private.require_ref(p_exists boolean, p_what text, p_id bigint, p_sample_id bigint)
returns void
language plpgsql immutable
as $$
begin
  if not p_exists then
    raise exception using errcode = 'TR005',
      message = format('sample %s: %s %s does not exist or is inactive', p_sample_id, p_what, p_id);
  end if;
end
$$;
comment on function app_private.require_ref(boolean, text, bigint, bigint) is 'Raises TR005 when a referenced row (location, factory, holder, …) is unknown or inactive.';

create or replace function app.visible_sample(p_sample_id bigint) returns bigint
language plpgsql stable security invoker
as $$
begin
  if p_sample_id is null then
    raise exception using errcode = 'TR004', message = 'which sample? a sample number is required';
  end if;
  if not exists (select 1 from app.samples where id = p_sample_id) then
    raise exception using errcode = 'TR006', message = format('sample %s not found', p_sample_id),
      hint = 'Check the number on the tag; you can only act on samples you can see.';
  end if;
  return p_sample_id;
end
$$;
comment on function app.visible_sample(bigint) is 'Returns the id if the caller can see the sample through RLS, else TR006 (missing and hidden are indistinguishable).';

------------------------------------------------------------------------------
-- request: (new) -> requested
------------------------------------------------------------------------------
create or replace function app_private.request_sample(
  p_title text, p_category_id integer, p_season_id integer, p_supplier_id integer,
  p_style_code text, p_on_loan boolean, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_rule app.transition_rules;
  v_id bigint;
  v_now timestamptz := app.clock();
  v_event_id bigint;
begin
  perform app_private.require_value(btrim(coalesce(p_title, '')) = '', 'a title', 'a sample request');
  perform app_private.require_value(p_category_id is null, 'a category', 'a sample request');
  perform app_private.require_value(p_season_id is null, 'a season', 'a sample request');
  if length(p_title) > 200 then
    raise exception using errcode = 'TR005', message = 'a title can be at most 200 characters';
  end if;
  select * into v_rule from app.transition_rules where action = 'request' and from_state is null;
  if not (v_me.role = any (v_rule.roles)) then
    raise exception using errcode = 'TR002',
      message = format('only %s can request a sample',
                       app.words_or(array(select app.role_label(r) from unnest(v_rule.roles) r))),
      detail = format('you are signed in as %s', app.role_label(v_me.role));
  end if;
  if not exists (select 1 from app.categories where id = p_category_id) then
    raise exception using errcode = 'TR005', message = format('category %s does not exist', p_category_id);
  end if;
  if not exists (select 1 from app.seasons where id = p_season_id) then
    raise exception using errcode = 'TR005', message = format('season %s does not exist', p_season_id);
  end if;
  if p_supplier_id is not null and not exists (select 1 from app.suppliers where id = p_supplier_id and active) then
    raise exception using errcode = 'TR005', message = format('supplier %s does not exist or is inactive', p_supplier_id);
  end if;

  insert into app.samples (title, style_code, category_id, season_id, team_id, requested_by, supplier_id,
                           on_loan, state, state_changed_at, created_at, updated_at)
  values (btrim(p_title), nullif(btrim(p_style_code), ''), p_category_id, p_season_id, v_me.team_id, v_me.id,
          p_supplier_id, coalesce(p_on_loan, false), 'requested', v_now, v_now, v_now)
  returning id into v_id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at, note, details)
  values (v_id, 'request', null, 'requested', v_me.id, v_me.role::text, v_now, nullif(btrim(p_note), ''),
          jsonb_build_object('title', btrim(p_title), 'category_id', p_category_id, 'season_id', p_season_id,
                             'supplier_id', p_supplier_id))
  returning id into v_event_id;
  perform pg_notify('sample_events',
    json_build_object('event_id', v_event_id, 'sample_id', v_id, 'kind', 'request')::text);
  return v_id;
end
$$;

create or replace function app.request_sample(
  p_title text, p_category_id integer, p_season_id integer, p_supplier_id integer default null,
  p_style_code text default null, p_on_loan boolean default false, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.request_sample(p_title, p_category_id, p_season_id, p_supplier_id, p_style_code, p_on_loan, p_note) $$;
comment on function app.request_sample(text, integer, integer, integer, text, boolean, text) is 'Buyer or senior buyer: creates a sample request for their own team. Returns the new sample number.';

------------------------------------------------------------------------------
-- order: requested -> ordered
------------------------------------------------------------------------------
create or replace function app_private.order_sample(
  p_sample_id bigint, p_supplier_id integer, p_unit_cost numeric, p_currency text, p_expected_on date,
  p_quantity integer, p_fx_rate numeric, p_po_number text, p_on_loan boolean, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_rate numeric;
  v_what text := format('ordering sample %s', p_sample_id);
begin
  perform app_private.require_value(p_supplier_id is null, 'a supplier', v_what);
  perform app_private.require_value(p_unit_cost is null, 'a unit cost', v_what);
  perform app_private.require_value(btrim(coalesce(p_currency, '')) = '', 'a currency', v_what);
  perform app_private.require_value(p_expected_on is null, 'an expected date', v_what);
  if p_unit_cost <= 0 or p_unit_cost >= 10000000000 then
    raise exception using errcode = 'TR005', message = format('%s: the unit cost must be above zero', v_what);
  end if;
  if coalesce(p_quantity, 1) <= 0 then
    raise exception using errcode = 'TR005', message = format('%s: the quantity must be at least 1', v_what);
  end if;
  if p_fx_rate is not null and p_fx_rate <= 0 then
    raise exception using errcode = 'TR005', message = format('%s: the exchange rate must be above zero', v_what);
  end if;
  if p_expected_on < app.clock()::date then
    raise exception using errcode = 'TR005',
      message = format('%s: the expected date %s is in the past', v_what, p_expected_on);
  end if;

  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'order', v_me);
  perform app_private.require_ref(exists (select 1 from app.suppliers where id = p_supplier_id and active),
                                  'supplier', p_supplier_id, v_s.id);
  select gbp_rate into v_rate from app.currencies where code = upper(btrim(p_currency));
  if not found then
    raise exception using errcode = 'TR005',
      message = format('%s: unknown currency "%s"', v_what, p_currency),
      hint = 'Use a three-letter ISO code such as GBP, EUR or USD.';
  end if;

  insert into app.sample_costs (sample_id, team_id, unit_cost, quantity, currency, fx_rate_to_gbp, po_number,
                                updated_at)
  values (v_s.id, v_s.team_id, p_unit_cost, coalesce(p_quantity, 1), upper(btrim(p_currency)), coalesce(p_fx_rate, v_rate),
          nullif(btrim(p_po_number), ''), app.clock())
  on conflict (sample_id) do update
     set unit_cost = excluded.unit_cost, quantity = excluded.quantity, currency = excluded.currency,
         fx_rate_to_gbp = excluded.fx_rate_to_gbp, po_number = excluded.po_number, updated_at = excluded.updated_at;
  -- NOTE: the event carries no cost; costs are visible only through sample_costs' policies
  return app_private.apply_change(v_s, 'order', 'ordered',
    jsonb_build_object('supplier_id', p_supplier_id, 'expected_on', p_expected_on,
                       'on_loan', coalesce(p_on_loan, v_s.on_loan)),
    v_me, p_note);
end
$$;

create or replace function app.order_sample(
  p_sample_id bigint, p_supplier_id integer, p_unit_cost numeric, p_currency text, p_expected_on date,
  p_quantity integer default 1, p_fx_rate numeric default null, p_po_number text default null,
  p_on_loan boolean default null, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.order_sample(app.visible_sample(p_sample_id), p_supplier_id, p_unit_cost, p_currency,
                                      p_expected_on, p_quantity, p_fx_rate, p_po_number, p_on_loan, p_note) $$;
comment on function app.order_sample(bigint, integer, numeric, text, date, integer, numeric, text, boolean, text) is 'Requesting buyer or senior buyer of the team: requested -> ordered, recording supplier, cost and expected date. Returns the event id.';

------------------------------------------------------------------------------
-- withdraw: requested -> returned (terminal, flagged as withdrawn)
------------------------------------------------------------------------------
create or replace function app_private.withdraw_request(p_sample_id bigint, p_reason text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  perform app_private.require_value(btrim(coalesce(p_reason, '')) = '', 'a reason',
                                    format('withdrawing sample %s', p_sample_id));
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'withdraw', v_me);
  return app_private.apply_change(v_s, 'withdraw', 'returned',
    jsonb_build_object('withdrawn_at', app.clock()), v_me, p_reason);
end
$$;

create or replace function app.withdraw_request(p_sample_id bigint, p_reason text)
returns bigint
language sql volatile security invoker
as $$ select app_private.withdraw_request(app.visible_sample(p_sample_id), p_reason) $$;
comment on function app.withdraw_request(bigint, text) is 'Requesting buyer or senior buyer of the team: withdraws a request never ordered (requested -> returned, withdrawn), with a reason.';

------------------------------------------------------------------------------
-- receive: ordered -> received
------------------------------------------------------------------------------
create or replace function app_private.receive_sample(
  p_sample_id bigint, p_location_id integer, p_return_due_on date, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_today date := app.clock()::date;
begin
  perform app_private.require_value(p_location_id is null, 'a location', format('receiving sample %s', p_sample_id));
  if p_return_due_on < v_today then
    raise exception using errcode = 'TR005',
      message = format('receiving sample %s: the return-due date %s is in the past', p_sample_id, p_return_due_on);
  end if;
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'receive', v_me);
  perform app_private.require_ref(exists (select 1 from app.locations where id = p_location_id),
                                  'location', p_location_id, v_s.id);
  return app_private.apply_change(v_s, 'receive', 'received',
    jsonb_build_object('location_id', p_location_id, 'received_on', v_today,
                       -- an on-loan sample is due back 21 days after receipt unless told otherwise
                       'return_due_on', case when v_s.on_loan then coalesce(p_return_due_on, v_today + 21) end),
    v_me, p_note);
end
$$;

create or replace function app.receive_sample(
  p_sample_id bigint, p_location_id integer, p_return_due_on date default null, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.receive_sample(app.visible_sample(p_sample_id), p_location_id, p_return_due_on, p_note) $$;
comment on function app.receive_sample(bigint, integer, date, text) is 'Logistics: ordered -> received at a location; an on-loan sample gets its return-due date (default 21 days).';

------------------------------------------------------------------------------
-- hand to design / hand to sales: received|with-* -> with-design|with-sales
------------------------------------------------------------------------------
create or replace function app_private.hand_over(
  p_sample_id bigint, p_action text, p_holder_id bigint, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_rule app.transition_rules;
  v_holder_roles app.staff_role[] := case p_action when 'hand_to_design' then '{designer}'::app.staff_role[]
                                                   else '{sales_lead,sales_executive}'::app.staff_role[] end;
  v_holder bigint := p_holder_id;
begin
  -- the person acting takes the sample themselves when they can hold it
  if v_holder is null and v_me.role = any (v_holder_roles) then
    v_holder := v_me.id;
  end if;
  perform app_private.require_value(v_holder is null, 'a holder',
    format('%s sample %s', replace(p_action, '_', ' '), p_sample_id));
  v_s := app_private.lock_sample(p_sample_id, v_me);
  v_rule := app_private.check_rule(v_s, p_action, v_me);
  if not exists (select 1 from app.staff where id = v_holder and active and role = any (v_holder_roles)) then
    raise exception using errcode = 'TR005',
      message = format('sample %s: staff %s is not an active %s', v_s.id, v_holder,
                       app.words_or(array(select replace(r::text, '_', ' ') from unnest(v_holder_roles) r))),
      hint = case p_action when 'hand_to_design' then 'Hand it to a designer.'
                           else 'Hand it to a sales lead or sales executive.' end;
  end if;
  return app_private.apply_change(v_s, p_action, v_rule.to_state, jsonb_build_object('holder_id', v_holder),
                                  v_me, p_note);
end
$$;

create or replace function app.hand_to_design(p_sample_id bigint, p_holder_id bigint default null, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.hand_over(app.visible_sample(p_sample_id), 'hand_to_design', p_holder_id, p_note) $$;
comment on function app.hand_to_design(bigint, bigint, text) is 'Logistics, designer or sales lead: passes the sample to a designer (the acting designer by default).';

create or replace function app.hand_to_sales(p_sample_id bigint, p_holder_id bigint default null, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.hand_over(app.visible_sample(p_sample_id), 'hand_to_sales', p_holder_id, p_note) $$;
comment on function app.hand_to_sales(bigint, bigint, text) is 'Logistics, designer or sales lead: passes the sample to a sales lead or executive (the acting sales lead by default).';

------------------------------------------------------------------------------
-- factory: -> at-factory, at-factory -> received
------------------------------------------------------------------------------
create or replace function app_private.send_to_factory(p_sample_id bigint, p_factory_id integer, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  perform app_private.require_value(p_factory_id is null, 'a factory', format('sending sample %s to a factory', p_sample_id));
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'send_to_factory', v_me);
  perform app_private.require_ref(exists (select 1 from app.factories where id = p_factory_id and active),
                                  'factory', p_factory_id, v_s.id);
  return app_private.apply_change(v_s, 'send_to_factory', 'at-factory',
    jsonb_build_object('factory_id', p_factory_id, 'holder_id', null, 'location_id', null), v_me, p_note);
end
$$;

create or replace function app.send_to_factory(p_sample_id bigint, p_factory_id integer, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.send_to_factory(app.visible_sample(p_sample_id), p_factory_id, p_note) $$;
comment on function app.send_to_factory(bigint, integer, text) is 'Logistics or factory liaison: received/with-design/with-sales -> at-factory.';

create or replace function app_private.return_from_factory(p_sample_id bigint, p_location_id integer, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  perform app_private.require_value(p_location_id is null, 'a location',
                                    format('bringing sample %s back from the factory', p_sample_id));
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'return_from_factory', v_me);
  perform app_private.require_ref(exists (select 1 from app.locations where id = p_location_id),
                                  'location', p_location_id, v_s.id);
  return app_private.apply_change(v_s, 'return_from_factory', 'received',
    jsonb_build_object('location_id', p_location_id), v_me, p_note);
end
$$;

create or replace function app.return_from_factory(p_sample_id bigint, p_location_id integer, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.return_from_factory(app.visible_sample(p_sample_id), p_location_id, p_note) $$;
comment on function app.return_from_factory(bigint, integer, text) is 'Logistics or factory liaison: at-factory -> received at a location.';

------------------------------------------------------------------------------
-- return to supplier: received|with-*|at-factory -> returned
------------------------------------------------------------------------------
create or replace function app_private.return_to_supplier(p_sample_id bigint, p_courier_ref text, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  perform app_private.require_value(btrim(coalesce(p_courier_ref, '')) = '', 'a courier reference',
                                    format('returning sample %s', p_sample_id));
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'return_to_supplier', v_me);
  return app_private.apply_change(v_s, 'return_to_supplier', 'returned',
    jsonb_build_object('courier_ref', btrim(p_courier_ref), 'holder_id', null, 'location_id', null), v_me, p_note);
end
$$;

create or replace function app.return_to_supplier(p_sample_id bigint, p_courier_ref text, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.return_to_supplier(app.visible_sample(p_sample_id), p_courier_ref, p_note) $$;
comment on function app.return_to_supplier(bigint, text, text) is 'Logistics: any state after receipt -> returned, with a courier reference. The only action left for a QC-rejected sample.';

------------------------------------------------------------------------------
-- production: approval (no state change), then cut
------------------------------------------------------------------------------
create or replace function app_private.approve_for_production(p_sample_id bigint, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'approve_for_production', v_me);
  if v_s.production_approved_at is not null then
    raise exception using errcode = 'TR001',
      message = format('sample %s is already approved for production', v_s.id);
  end if;
  return app_private.apply_change(v_s, 'approve_for_production', v_s.state,
    jsonb_build_object('production_approved_by', v_me.id, 'production_approved_at', app.clock()), v_me, p_note);
end
$$;

create or replace function app.approve_for_production(p_sample_id bigint, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.approve_for_production(app.visible_sample(p_sample_id), p_note) $$;
comment on function app.approve_for_production(bigint, text) is 'Senior buyer of the team: records approval to cut the sample for production (state unchanged).';

create or replace function app_private.cut_for_production(p_sample_id bigint, p_note text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'cut_for_production', v_me);
  if v_s.production_approved_at is null then
    raise exception using errcode = 'TR009',
      message = format('sample %s has no production approval; a senior buyer of its team must approve it first', v_s.id);
  end if;
  return app_private.apply_change(v_s, 'cut_for_production', 'cut-for-production', '{}'::jsonb, v_me, p_note);
end
$$;

create or replace function app.cut_for_production(p_sample_id bigint, p_note text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.cut_for_production(app.visible_sample(p_sample_id), p_note) $$;
comment on function app.cut_for_production(bigint, text) is 'Factory liaison: at-factory -> cut-for-production, only after a senior buyer''s approval.';

------------------------------------------------------------------------------
-- QC inspection (no state change; a reject is permanent)
------------------------------------------------------------------------------
create or replace function app_private.record_inspection(
  p_sample_id bigint, p_result app.qc_result, p_reason text, p_notes text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_what text := format('inspecting sample %s', p_sample_id);
  v_inspection bigint;
begin
  perform app_private.require_value(p_result is null, 'a result (pass or reject)', v_what);
  perform app_private.require_value(p_result = 'reject' and btrim(coalesce(p_reason, '')) = '',
                                    'a reason for the rejection', v_what);
  v_s := app_private.lock_sample(p_sample_id, v_me);
  perform app_private.check_rule(v_s, 'inspect', v_me);
  insert into app.qc_inspections (sample_id, inspector_id, result, reason, inspected_at)
  values (v_s.id, v_me.id, p_result, nullif(btrim(p_reason), ''), app.clock())
  returning id into v_inspection;
  if btrim(coalesce(p_notes, '')) <> '' then
    insert into app.qc_inspection_notes (inspection_id, notes) values (v_inspection, btrim(p_notes));
  end if;
  if p_result = 'reject' then
    -- the rejection joins the comment thread, marked, and stays there forever
    insert into app.sample_comments (sample_id, author_id, body, is_qc_rejection, created_at)
    values (v_s.id, v_me.id, 'QC rejected: ' || btrim(p_reason), true, app.clock());
  end if;
  -- NOTE: the event carries the result and the reason, never the inspector's notes (QC notes are sensitive)
  if v_s.supplier_id is not null then
    insert into app.supplier_quality (supplier_id, inspections, rejects, updated_at)
    values (v_s.supplier_id, 1, (p_result = 'reject')::int, app.clock())
    on conflict (supplier_id) do update
       set inspections = app.supplier_quality.inspections + 1,
           rejects = app.supplier_quality.rejects + excluded.rejects, updated_at = excluded.updated_at;
  end if;
  perform app_private.apply_change(v_s, 'inspect', v_s.state,
    jsonb_build_object('last_qc_result', p_result)
      || case when p_result = 'reject' then '{"qc_rejected": true}'::jsonb else '{}'::jsonb end,
    v_me, null, jsonb_build_object('inspection_id', v_inspection, 'result', p_result,
                                   'reason', nullif(btrim(p_reason), '')));
  return v_inspection;
end
$$;

create or replace function app.record_inspection(
  p_sample_id bigint, p_result app.qc_result, p_reason text default null, p_notes text default null)
returns bigint
language sql volatile security invoker
as $$ select app_private.record_inspection(app.visible_sample(p_sample_id), p_result, p_reason, p_notes) $$;
comment on function app.record_inspection(bigint, app.qc_result, text, text) is 'QC: records pass or reject (reject needs a reason and leaves the sample returnable only). Returns the inspection id.';

------------------------------------------------------------------------------
-- director override: any state -> any other state, with a reason
------------------------------------------------------------------------------
create or replace function app_private.override_state(
  p_sample_id bigint, p_to_state app.sample_state, p_reason text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  perform app_private.require_value(p_to_state is null, 'a target state', format('overriding sample %s', p_sample_id));
  perform app_private.require_value(btrim(coalesce(p_reason, '')) = '', 'a reason',
                                    format('overriding sample %s', p_sample_id));
  if v_me.role not in ('ops_director', 'md') then
    raise exception using errcode = 'TR002',
      message = format('only the ops director or the MD can override the state of sample %s', p_sample_id),
      detail = format('you are signed in as %s', app.role_label(v_me.role));
  end if;
  v_s := app_private.lock_sample(p_sample_id, v_me);
  if v_s.state = p_to_state then
    raise exception using errcode = 'TR001', message = format('sample %s is already %s', v_s.id, p_to_state);
  end if;
  if p_to_state = 'at-factory' and v_s.factory_id is null then
    raise exception using errcode = 'TR005',
      message = format('sample %s has never been to a factory; send it with send_to_factory instead', v_s.id);
  end if;
  if p_to_state <> 'requested' and v_s.supplier_id is null and v_s.withdrawn_at is null then
    raise exception using errcode = 'TR005',
      message = format('sample %s has no supplier; it cannot be moved past requested', v_s.id);
  end if;
  return app_private.apply_change(v_s, 'override', p_to_state, '{}'::jsonb, v_me, p_reason,
                                  '{}'::jsonb, true);
end
$$;

create or replace function app.override_state(p_sample_id bigint, p_to_state app.sample_state, p_reason text)
returns bigint
language sql volatile security invoker
as $$ select app_private.override_state(app.visible_sample(p_sample_id), p_to_state, p_reason) $$;
comment on function app.override_state(bigint, app.sample_state, text) is 'Ops director or MD: moves a sample to any other state, with a mandatory reason recorded on the event.';

------------------------------------------------------------------------------
-- What may I do now?
------------------------------------------------------------------------------
create or replace function app.available_actions(p_sample_id bigint)
returns table (action text, to_state app.sample_state, verb text, required text[])
language sql stable security invoker
as $$
  with me as (select * from app.staff where id = app.current_staff_id()),
       s as (select * from app.samples where id = p_sample_id)
  select r.action, r.to_state, r.verb, r.required
    from s, me, app.transition_rules r
   where r.from_state = s.state
     and me.role = any (r.roles)
     and app.action_in_scope(s, r.action, me)
     and (not s.qc_rejected or r.action = 'return_to_supplier')
     and not (r.action = 'approve_for_production' and s.production_approved_at is not null)
     and not (r.action = 'cut_for_production' and s.production_approved_at is null)
  union all
  select 'override', null, 'override the state', '{reason}'::text[]
    from s, me where me.role in ('ops_director', 'md')
  order by 1
$$;
comment on function app.available_actions(bigint) is 'The actions the signed-in person may take on a sample now (empty if they cannot see it).';
