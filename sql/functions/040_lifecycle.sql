-- The lifecycle: one path for every action.
--
--   app.<action>(sample number, values…)      public API (SECURITY DEFINER, pinned search_path)
--        takes no identity and no row: it packs its values and calls
--   app_private.perform_action(sample, action, values, note), which
--        1. finds who is acting from the session             app_private.require_staff()   TR010
--        2. validates what needs no row                      app_private.validate_values() TR004/TR005
--        3. locks the sample, if the caller can see it       app_private.lock_sample()     TR006/TR007
--        4. checks the rule: state, QC, role, scope          app_private.check_rule()      TR001/TR008/TR002/TR003
--        5. works out the action's changes                   app_private.plan_changes()    TR005/TR009
--        6. writes one UPDATE and one event                  app_private.apply_change()
--   and deferred triggers (080_realtime.sql) signal the change to the realtime outbox by id alone.
--
-- Staff roles execute only the app.* entry points (sql/policies/000); nothing in
-- app_private is granted to them, and the internals below are SECURITY INVOKER, so
-- they work only when called by a definer entry point. Any failure raises one of our
-- SQLSTATEs (sql/CONVENTIONS.md) and the whole call changes nothing.
set local role tracker_owner;

------------------------------------------------------------------------------
-- Words for messages
------------------------------------------------------------------------------
create or replace function app_private.role_label(p_role app.staff_role) returns text
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
comment on function app_private.role_label(app.staff_role) is 'A role as it reads in a sentence ("a factory liaison").';

create or replace function app_private.words_or(p_words text[]) returns text
language sql immutable parallel safe
as $$
  select case
    when cardinality(p_words) <= 1 then coalesce(p_words[1], '')
    else array_to_string(p_words[1:cardinality(p_words) - 1], ', ') || ' or ' || p_words[cardinality(p_words)]
  end
$$;
comment on function app_private.words_or(text[]) is 'Joins words as "a, b or c".';

create or replace function app_private.roles_phrase(p_roles app.staff_role[]) returns text
language sql immutable parallel safe
as $$ select app_private.words_or(array(select app_private.role_label(r) from unnest(p_roles) r)) $$;
comment on function app_private.roles_phrase(app.staff_role[]) is 'Roles as they read in a sentence ("logistics or a factory liaison").';

-- a request or order made despite similar samples (sql/functions/075_repeat_mistakes.sql)
create or replace function app_private.despite_note(p_stage text, p_similar bigint[], p_note text) returns text
language sql immutable parallel safe
as $$
  select nullif(concat_ws(' · ',
           case when cardinality(p_similar) > 0 then
             format('%s despite %s similar: %s', p_stage, cardinality(p_similar), array_to_string(p_similar, ', ')) end,
           nullif(btrim(p_note), '')), '')
$$;
comment on function app_private.despite_note(text, bigint[], text) is 'The timeline note of a request or order made despite similar samples ("ordered despite 2 similar: 4421, 4430"), followed by the person''s own note.';

create or replace function app_private.despite_details(p_similar bigint[]) returns jsonb
language sql immutable parallel safe
as $$ select case when cardinality(p_similar) > 0 then jsonb_build_object('despite_similar', to_jsonb(p_similar))
                  else '{}'::jsonb end $$;
comment on function app_private.despite_details(bigint[]) is 'Event details recording the similar samples acknowledged.';

------------------------------------------------------------------------------
-- Who is acting, and may they see this sample?
------------------------------------------------------------------------------
create or replace function app_private.require_staff() returns app.staff
language plpgsql stable
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
comment on function app_private.require_staff() is 'The staff row behind this session (app.current_staff_id()), or TR010.';

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
comment on function app_private.can_see_sample(app.samples, app.staff) is 'The SELECT policies of app.samples as one predicate, for the definer entry points (which bypass RLS); tests/test_identity.py proves it equal to RLS for every role over generated rows.';

create or replace function app_private.lock_sample(p_sample_id bigint, p_me app.staff) returns app.samples
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_s app.samples;
begin
  -- one statement on the common path: SKIP LOCKED refuses to wait as NOWAIT does, without the
  -- subtransaction an exception block costs every call. Visibility is part of the locking
  -- query, so a sample the caller cannot see is never locked (nobody can keep it "busy" for
  -- those who may act on it) and never checked for changes since a REPEATABLE READ snapshot
  -- (no 40001 telling that it exists): it is "not found", never "busy" or "in state X".
  select * into v_s from app.samples s
   where s.id = p_sample_id and app_private.can_see_sample(s, p_me)
     for update skip locked;
  if found then
    return v_s;
  end if;
  select * into v_s from app.samples where id = p_sample_id;  -- missing, hidden, or held by someone else?
  if not found or not app_private.can_see_sample(v_s, p_me) then
    raise exception using errcode = 'TR006', message = format('sample %s not found', p_sample_id),
      hint = 'Check the number on the tag; you can only act on samples you can see.';
  end if;
  raise exception using errcode = 'TR007',
    message = format('sample %s is being changed by someone else right now', p_sample_id),
    hint = 'Reload the sample and try again.';
end
$$;
comment on function app_private.lock_sample(bigint, app.staff) is 'Locks one sample row the caller can see, without waiting (SKIP LOCKED): TR006 if missing or hidden, TR007 if someone else holds it.';

create or replace function app_private.action_in_scope(p_s app.samples, p_action text, p_me app.staff)
returns boolean
language sql stable parallel safe
as $$
  select case
    when p_action in ('order', 'withdraw', 'buy_out', 'correct', 'cancel_order') then
      (p_me.role = 'buyer' and p_s.requested_by = p_me.id)
      or (p_me.role = 'senior_buyer' and p_s.team_id = p_me.team_id)
    when p_action = 'approve_for_production' then
      p_me.role = 'senior_buyer' and p_s.team_id = p_me.team_id
    when p_action = 'confirm_handover' then
      p_s.holder_id = p_me.id or (p_s.state = 'at-factory' and p_me.role = 'factory_liaison')
    else true
  end
$$;
comment on function app_private.action_in_scope(app.samples, text, app.staff) is 'Scope rules beyond the role: only the requesting buyer or a senior buyer of the team may order, withdraw, correct, cancel the order or buy out; only a senior buyer of the team may approve; only the person a sample was handed to (a factory liaison for a sample at a factory) confirms the handover.';

------------------------------------------------------------------------------
-- Checks
------------------------------------------------------------------------------
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

create or replace function app.holder_roles(p_state app.sample_state) returns app.staff_role[]
language sql immutable parallel safe
as $$
  select case p_state when 'with-design' then '{designer}'::app.staff_role[]
                      when 'with-sales' then '{sales_lead,sales_executive}'::app.staff_role[] end
$$;
comment on function app.holder_roles(app.sample_state) is 'Who can hold a sample in a state: designers with design, sales leads and executives with sales (nobody in any other state). The one place this rule lives; the web app asks it for its pick lists.';

create or replace function app.loan_days() returns integer
language sql immutable parallel safe
as $$ select 21 $$;
comment on function app.loan_days() is 'An on-loan sample is due back this many days after receipt unless logistics gives another date.';

create or replace function app_private.value_text(p_values jsonb, p_key text) returns text
language sql immutable parallel safe
as $$ select nullif(btrim(p_values ->> p_key), '') $$;
comment on function app_private.value_text(jsonb, text) is 'A value handed to an action, trimmed, blank as null.';

create or replace function app_private.check_order_amounts(
  p_what text, p_cost numeric, p_quantity integer, p_rate numeric, p_po text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  -- each bound is what the sample_costs columns hold once rounded (numeric(12,2), (14,6), total (14,2));
  -- NaN and infinities fall outside every range
  if round(p_cost, 2) not between 0.01 and 9999999999.99 then
    raise exception using errcode = 'TR005', message = format('%s: the unit cost must be above zero', p_what),
      detail = 'A unit cost is between 0.01 and 9,999,999,999.99.';
  end if;
  if p_quantity <= 0 then
    raise exception using errcode = 'TR005', message = format('%s: the quantity must be at least 1', p_what);
  end if;
  if round(p_rate, 6) not between 0.000001 and 99999999.999999 then
    raise exception using errcode = 'TR005', message = format('%s: the exchange rate must be above zero', p_what),
      detail = 'An exchange rate to GBP is between 0.000001 and 99,999,999.999999.';
  end if;
  if round(p_cost * coalesce(p_quantity, 1) * p_rate, 2) >= 1000000000000 then
    raise exception using errcode = 'TR005', message = format('%s: the order''s total is too large', p_what),
      detail = 'Unit cost times quantity, in GBP, must stay below 1,000,000,000,000.',
      hint = 'Check the unit cost, the quantity and the exchange rate.';
  end if;
  if length(p_po) > 40 then
    raise exception using errcode = 'TR005', message = format('%s: a PO number can be at most 40 characters', p_what);
  end if;
end
$$;
comment on function app_private.check_order_amounts(text, numeric, integer, numeric, text) is 'TR005 unless an order''s unit cost, quantity, exchange rate, total and PO number fit their columns (NaN and infinities never do): checked before any write, so no constraint name reaches a person.';

create or replace function app_private.validate_values(p_sample_id bigint, p_action text, p_values jsonb)
returns void
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_today date := app.clock()::date;
  v_what text := format('%s sample %s', case p_action
      when 'order' then 'ordering' when 'withdraw' then 'withdrawing' when 'receive' then 'receiving'
      when 'hand_to_design' then 'hand to design' when 'hand_to_sales' then 'hand to sales'
      when 'hand_back' then 'handing back' when 'send_to_factory' then 'sending'
      when 'return_from_factory' then 'bringing back' when 'return_to_supplier' then 'returning'
      when 'inspect' then 'inspecting' when 'override' then 'overriding' when 'correct' then 'correcting'
      when 'cancel_order' then 'cancelling the order of' else replace(p_action, '_', ' ') end,
    p_sample_id);
  v_to app.sample_state := (p_values ->> 'to_state')::app.sample_state;
  v_cost numeric := (p_values ->> 'unit_cost')::numeric;
begin
  if p_sample_id is null then
    raise exception using errcode = 'TR004', message = 'which sample? a sample number is required';
  end if;
  case p_action
  when 'order' then
    perform app_private.require_value(p_values ->> 'supplier_id' is null, 'a supplier', v_what);
    perform app_private.require_value(v_cost is null, 'a unit cost', v_what);
    perform app_private.require_value(app_private.value_text(p_values, 'currency') is null, 'a currency', v_what);
    perform app_private.require_value(p_values ->> 'expected_on' is null, 'an expected date', v_what);
    perform app_private.check_order_amounts(v_what, v_cost, coalesce((p_values ->> 'quantity')::integer, 1),
      coalesce((p_values ->> 'fx_rate')::numeric,
               (select gbp_rate from app.currencies where code = upper(app_private.value_text(p_values, 'currency'))),
               1),
      app_private.value_text(p_values, 'po_number'));
    if (p_values ->> 'expected_on')::date < v_today then
      raise exception using errcode = 'TR005',
        message = format('%s: the expected date %s is in the past', v_what, p_values ->> 'expected_on');
    end if;
  when 'withdraw', 'cancel_order' then
    perform app_private.require_value(app_private.value_text(p_values, 'reason') is null, 'a reason', v_what);
  when 'correct' then
    if p_values ? 'title' and btrim(coalesce(p_values ->> 'title', '')) = '' then
      raise exception using errcode = 'TR004', message = format('%s needs a title', v_what),
        hint = 'A sample keeps a title; type the corrected one.';
    end if;
    if length(p_values ->> 'title') > 200 then
      raise exception using errcode = 'TR005', message = format('%s: a title can be at most 200 characters', v_what);
    end if;
    if length(p_values ->> 'style_code') > 40 then
      raise exception using errcode = 'TR005', message = format('%s: a style code can be at most 40 characters', v_what);
    end if;
    if round(v_cost, 2) not between 0.01 and 9999999999.99 then
      raise exception using errcode = 'TR005', message = format('%s: the unit cost must be above zero', v_what),
        detail = 'A unit cost is between 0.01 and 9,999,999,999.99.';
    end if;
    if (p_values ->> 'quantity')::integer <= 0 then
      raise exception using errcode = 'TR005', message = format('%s: the quantity must be at least 1', v_what);
    end if;
    if length(p_values ->> 'po_number') > 40 then
      raise exception using errcode = 'TR005', message = format('%s: a PO number can be at most 40 characters', v_what);
    end if;
  when 'receive' then
    perform app_private.require_value(p_values ->> 'location_id' is null, 'a location', v_what);
    if (p_values ->> 'return_due_on')::date < v_today then
      raise exception using errcode = 'TR005',
        message = format('%s: the return-due date %s is in the past', v_what, p_values ->> 'return_due_on');
    end if;
  when 'hand_to_design', 'hand_to_sales' then
    perform app_private.require_value(p_values ->> 'holder_id' is null, 'a holder', v_what);
  when 'hand_back', 'return_from_factory' then
    perform app_private.require_value(p_values ->> 'location_id' is null, 'a location', v_what);
  when 'send_to_factory' then
    perform app_private.require_value(p_values ->> 'factory_id' is null, 'a factory',
                                      format('sending sample %s to a factory', p_sample_id));
  when 'return_to_supplier' then
    perform app_private.require_value(app_private.value_text(p_values, 'courier_ref') is null,
                                      'a courier reference', v_what);
  when 'inspect' then
    perform app_private.require_value(p_values ->> 'result' is null, 'a result (pass or reject)', v_what);
    perform app_private.require_value(p_values ->> 'result' = 'reject'
                                      and app_private.value_text(p_values, 'reason') is null,
                                      'a reason for the rejection', v_what);
    -- a rejection's reason also becomes a comment (at most 4,000 characters with its prefix)
    if length(app_private.value_text(p_values, 'reason')) > 2000 then
      raise exception using errcode = 'TR005', message = format('%s: a reason can be at most 2,000 characters', v_what),
        hint = 'Put the details in the inspector''s notes.';
    end if;
  when 'override' then
    perform app_private.require_value(v_to is null, 'a target state', v_what);
    perform app_private.require_value(app_private.value_text(p_values, 'reason') is null, 'a reason', v_what);
    -- the target state asks for what a normal move into it asks for
    case v_to
    when 'ordered' then
      perform app_private.require_value(p_values ->> 'expected_on' is null, 'an expected date', v_what);
    when 'received' then
      perform app_private.require_value(p_values ->> 'location_id' is null, 'a location', v_what);
    when 'with-design', 'with-sales' then
      perform app_private.require_value(p_values ->> 'holder_id' is null, 'a holder', v_what);
    when 'at-factory' then
      perform app_private.require_value(p_values ->> 'factory_id' is null, 'a factory', v_what);
    else null;
    end case;
  else null;
  end case;
end
$$;
comment on function app_private.validate_values(bigint, text, jsonb) is 'Step 2: the checks of an action''s values that need no sample row (required fields TR004, ranges and dates TR005).';

create or replace function app_private.allowed_when_qc_rejected(p_action text) returns boolean
language sql immutable parallel safe
as $$ select p_action in ('return_to_supplier', 'override') $$;
comment on function app_private.allowed_when_qc_rejected(text) is 'A sample that failed QC can only be returned to its supplier (or moved by a director''s override); every other action is refused (TR008) and not offered.';

create or replace function app_private.unmet_precondition(p_s app.samples, p_action text)
returns table (errcode text, message text, hint text)
language sql stable parallel safe
as $$
  select v.errcode, v.message, v.hint
    from (values
      (1, 'confirm_handover', p_s.transit_from is null, 'TR001',
       format('sample %s is not waiting for a confirmation', p_s.id), null::text),
      (2, 'approve_for_production', p_s.production_approved_at is not null, 'TR001',
       format('sample %s is already approved for production', p_s.id), null),
      (3, 'buy_out', not p_s.on_loan, 'TR001', format('sample %s is not on loan; it is ours already', p_s.id), null),
      (4, 'cut_for_production', p_s.production_approved_at is null, 'TR009',
       format('sample %s has no production approval; a senior buyer of its team must approve it first', p_s.id), null),
      (5, 'cut_for_production', p_s.on_loan, 'TR009',
       format('sample %s is on loan from its supplier; a buyer of its team must buy it out before it is cut', p_s.id),
       'Ask the buyer to record the buy-out, or return the sample to the supplier.')
    ) v(n, action, unmet, errcode, message, hint)
   where v.action = p_action and v.unmet
   order by v.n
   limit 1
$$;
comment on function app_private.unmet_precondition(app.samples, text) is 'What a sample still lacks for an action the rules allow from its state (no row when nothing): confirm only what is in transit, approve once, buy out only what is on loan, cut only when approved and bought out. plan_changes raises it; available_actions leaves the action out.';

create or replace function app_private.check_rule(p_s app.samples, p_action text, p_me app.staff)
returns app.transition_rules
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_rule app.transition_rules;
  v_any app.transition_rules;
  v_from text[];
  v_requester text;
  v_team text;
begin
  -- the common case first, in one query: a known action, allowed from this state to this role
  -- in its scope (what follows finds the first reason it is not, in the order callers see)
  if not p_s.qc_rejected or app_private.allowed_when_qc_rejected(p_action) then
    select * into v_rule from app.transition_rules where action = p_action and from_state = p_s.state;
    if found and p_me.role = any (v_rule.roles) and app_private.action_in_scope(p_s, p_action, p_me) then
      return v_rule;
    end if;
  end if;
  select * into v_any from app.transition_rules where action = p_action limit 1;
  if not found then
    raise exception using errcode = 'TR005', message = format('unknown action "%s"', p_action);
  end if;
  -- the director's override stands above the QC rule; everything else yields to it
  if p_s.qc_rejected and not app_private.allowed_when_qc_rejected(p_action) then
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
                       p_s.id, p_s.state, v_any.verb, app_private.words_or(v_from)),
      detail = format('action %s, current state %s', p_action, p_s.state);
  end if;
  if not (p_me.role = any (v_rule.roles)) then
    raise exception using errcode = 'TR002',
      message = format('sample %s is %s; only %s can %s', p_s.id, p_s.state,
                       app_private.roles_phrase(v_rule.roles), v_rule.verb),
      detail = format('you are signed in as %s', app_private.role_label(p_me.role));
  end if;
  if not app_private.action_in_scope(p_s, p_action, p_me) then
    select full_name into v_requester from app.staff where id = p_s.requested_by;
    select code into v_team from app.teams where id = p_s.team_id;
    raise exception using errcode = 'TR003',
      message = case when p_action = 'confirm_handover'
        then format('sample %s was handed to someone else; only they can confirm they have it', p_s.id)
        when p_action = 'approve_for_production'
        then format('sample %s belongs to team %s; only a senior buyer of that team can %s', p_s.id, v_team, v_rule.verb)
        else format('sample %s was requested by %s; only they or a senior buyer of team %s can %s',
                    p_s.id, v_requester, v_team, v_rule.verb) end;
  end if;
  return v_rule;
end
$$;
comment on function app_private.check_rule(app.samples, text, app.staff) is 'Step 4: checks QC rejection (TR008), state (TR001), role (TR002) and scope (TR003) for an action on a locked sample, from app.transition_rules; returns the rule.';

create or replace function app_private.check_holder(p_s app.samples, p_holder bigint, p_state app.sample_state)
returns void
language plpgsql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_roles app.staff_role[] := app.holder_roles(p_state);
begin
  if not exists (select 1 from app.staff where id = p_holder and active and role = any (v_roles)) then
    raise exception using errcode = 'TR005',
      message = format('sample %s: staff %s is not an active %s', p_s.id, p_holder,
                       app_private.words_or(array(select replace(r::text, '_', ' ') from unnest(v_roles) r))),
      hint = case p_state when 'with-design' then 'Hand it to a designer.'
                          else 'Hand it to a sales lead or sales executive.' end;
  end if;
end
$$;
comment on function app_private.check_holder(app.samples, bigint, app.sample_state) is 'TR005 unless the holder is an active member of a role that can hold a sample in that state.';

-- What each state means on the row: the facts that no longer apply are cleared, so
-- a sample never shows a shelf while a designer holds it, or a cost while requested.
create or replace function app_private.arrival_changes(p_s app.samples, p_to app.sample_state, p_values jsonb)
returns jsonb
language sql stable
as $$
  select case p_to
    when 'requested' then jsonb_build_object('holder_id', null, 'location_id', null, 'factory_id', null,
      'expected_on', null, 'received_on', null, 'return_due_on', null, 'production_approved_by', null,
      'production_approved_at', null, 'courier_ref', null, 'withdrawn_at', null)
    when 'ordered' then jsonb_build_object('holder_id', null, 'location_id', null, 'received_on', null,
      'return_due_on', null, 'production_approved_by', null, 'production_approved_at', null,
      'courier_ref', null, 'withdrawn_at', null, 'expected_on', p_values -> 'expected_on')
    when 'received' then jsonb_build_object('holder_id', null, 'courier_ref', null, 'withdrawn_at', null,
      'location_id', p_values -> 'location_id')
    when 'with-design' then jsonb_build_object('location_id', null, 'courier_ref', null, 'withdrawn_at', null,
      'holder_id', p_values -> 'holder_id')
    when 'with-sales' then jsonb_build_object('location_id', null, 'courier_ref', null, 'withdrawn_at', null,
      'holder_id', p_values -> 'holder_id')
    when 'at-factory' then jsonb_build_object('holder_id', null, 'location_id', null, 'courier_ref', null,
      'withdrawn_at', null, 'factory_id', p_values -> 'factory_id')
    when 'returned' then jsonb_build_object('holder_id', null, 'location_id', null)
    when 'cut-for-production' then jsonb_build_object('holder_id', null, 'location_id', null)
  end
  -- a sample in the building has a receipt date, and an on-loan one a return-due date
  || case when p_to in ('received', 'with-design', 'with-sales', 'at-factory') and p_s.received_on is null
          then jsonb_build_object('received_on', app.clock()::date) else '{}'::jsonb end
  || case when p_to in ('received', 'with-design', 'with-sales', 'at-factory') and p_s.on_loan
               and p_s.return_due_on is null
          then jsonb_build_object('return_due_on', app.clock()::date + app.loan_days()) else '{}'::jsonb end
$$;
comment on function app_private.arrival_changes(app.samples, app.sample_state, jsonb) is 'The facts a sample has in a state: what is set from the values and what is cleared because it no longer applies (shelf, holder, courier, approval, …).';

create or replace function app_private.transit(p_in_transit boolean, p_me app.staff) returns jsonb
language sql stable
as $$ select case when p_in_transit then jsonb_build_object('transit_from', p_me.id, 'transit_since', app.clock())
                  else jsonb_build_object('transit_from', null, 'transit_since', null) end $$;
comment on function app_private.transit(boolean, app.staff) is 'The transit columns of a move: set (from this person, now) for a handover the receiver must confirm, cleared otherwise.';

create or replace function app_private.plan_changes(
  p_s app.samples, p_rule app.transition_rules, p_values jsonb, p_me app.staff,
  out changes jsonb, out details jsonb, out to_state app.sample_state)
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_today date := app.clock()::date;
  v_holder bigint;
  v_rate numeric;
  v_inspection bigint;
  v_reason text := app_private.value_text(p_values, 'reason');
  v_unmet record;
begin
  select * into v_unmet from app_private.unmet_precondition(p_s, p_rule.action);
  if found and v_unmet.hint is null then
    raise exception using errcode = v_unmet.errcode, message = v_unmet.message;
  elsif found then
    raise exception using errcode = v_unmet.errcode, message = v_unmet.message, hint = v_unmet.hint;
  end if;
  to_state := coalesce(p_rule.to_state, p_s.state);
  details := '{}';
  case p_rule.action
  when 'order' then
    perform app_private.require_ref(exists (select 1 from app.suppliers where id = (p_values ->> 'supplier_id')::int and active),
                                    'supplier', (p_values ->> 'supplier_id')::bigint, p_s.id);
    perform app_private.check_supplier_hold((p_values ->> 'supplier_id')::int, format('order sample %s', p_s.id));
    details := app_private.check_supplier_risk((p_values ->> 'supplier_id')::int, p_s.id,
                                               coalesce((p_values ->> 'accept_supplier_risk')::boolean, false))
               || app_private.despite_details(array(select jsonb_array_elements_text(
                    coalesce(nullif(p_values -> 'despite_similar', 'null'), '[]')))::bigint[]);
    select gbp_rate into v_rate from app.currencies where code = upper(app_private.value_text(p_values, 'currency'));
    if not found then
      raise exception using errcode = 'TR005',
        message = format('ordering sample %s: unknown currency "%s"', p_s.id, p_values ->> 'currency'),
        hint = 'Use a three-letter ISO code such as GBP, EUR or USD.';
    end if;
    -- the amounts were checked against the columns' ranges by check_order_amounts (validate_values)
    insert into app.sample_costs (sample_id, team_id, unit_cost, quantity, currency, fx_rate_to_gbp, po_number, updated_at)
    values (p_s.id, p_s.team_id, (p_values ->> 'unit_cost')::numeric, coalesce((p_values ->> 'quantity')::int, 1),
            upper(app_private.value_text(p_values, 'currency')), coalesce((p_values ->> 'fx_rate')::numeric, v_rate),
            app_private.value_text(p_values, 'po_number'), app.clock())
    on conflict (sample_id) do update
       set unit_cost = excluded.unit_cost, quantity = excluded.quantity, currency = excluded.currency,
           fx_rate_to_gbp = excluded.fx_rate_to_gbp, po_number = excluded.po_number, updated_at = excluded.updated_at;
    -- NOTE: the event carries no cost; costs are visible only through sample_costs' policies
    changes := jsonb_build_object('supplier_id', (p_values ->> 'supplier_id')::int,
                                  'expected_on', p_values -> 'expected_on',
                                  'on_loan', coalesce((p_values ->> 'on_loan')::boolean, p_s.on_loan));
  when 'withdraw' then
    changes := jsonb_build_object('withdrawn_at', app.clock());
  when 'confirm_handover' then
    changes := app_private.transit(false, p_me);
    details := jsonb_build_object('handed_over_by', p_s.transit_from, 'handed_over_at', p_s.transit_since);
  when 'cancel_order' then
    -- the order is called off before the sample arrives: shown as withdrawn, like a
    -- withdrawn request; the cost row stays as the record of what was ordered
    changes := app_private.arrival_changes(p_s, 'returned', p_values)
               || jsonb_build_object('withdrawn_at', app.clock());
  when 'correct' then
    select c.changes, c.details into changes, details from app_private.plan_correction(p_s, p_values) c;
  when 'receive' then
    perform app_private.require_ref(exists (select 1 from app.locations where id = (p_values ->> 'location_id')::int),
                                    'location', (p_values ->> 'location_id')::bigint, p_s.id);
    changes := jsonb_build_object('location_id', (p_values ->> 'location_id')::int, 'received_on', v_today,
                                  'holder_id', null,
                                  -- an on-loan sample is due back app.loan_days() after receipt unless told otherwise
                                  'return_due_on', case when p_s.on_loan
                                    then coalesce((p_values ->> 'return_due_on')::date, v_today + app.loan_days()) end);
  when 'hand_to_design', 'hand_to_sales' then
    v_holder := (p_values ->> 'holder_id')::bigint;
    perform app_private.check_holder(p_s, v_holder, to_state);
    -- handed to someone else: in transit until they confirm; taken by the holder: no transit
    changes := jsonb_build_object('holder_id', v_holder, 'location_id', null)
               || app_private.transit(v_holder <> p_me.id, p_me);
  when 'hand_back', 'return_from_factory' then
    perform app_private.require_ref(exists (select 1 from app.locations where id = (p_values ->> 'location_id')::int),
                                    'location', (p_values ->> 'location_id')::bigint, p_s.id);
    changes := jsonb_build_object('location_id', (p_values ->> 'location_id')::int, 'holder_id', null);
  when 'send_to_factory' then
    perform app_private.require_ref(exists (select 1 from app.factories where id = (p_values ->> 'factory_id')::int and active),
                                    'factory', (p_values ->> 'factory_id')::bigint, p_s.id);
    changes := jsonb_build_object('factory_id', (p_values ->> 'factory_id')::int, 'holder_id', null, 'location_id', null)
               || app_private.transit(p_me.role <> 'factory_liaison', p_me);
  when 'return_to_supplier' then
    changes := jsonb_build_object('courier_ref', app_private.value_text(p_values, 'courier_ref'),
                                  'holder_id', null, 'location_id', null);
  when 'approve_for_production' then
    changes := jsonb_build_object('production_approved_by', p_me.id, 'production_approved_at', app.clock());
  when 'buy_out' then
    changes := jsonb_build_object('on_loan', false, 'return_due_on', null);
  when 'cut_for_production' then
    changes := '{}';
  when 'inspect' then
    insert into app.qc_inspections (sample_id, inspector_id, result, reason, inspected_at)
    values (p_s.id, p_me.id, (p_values ->> 'result')::app.qc_result, v_reason, app.clock())
    returning id into v_inspection;
    if app_private.value_text(p_values, 'notes') is not null then
      insert into app.qc_inspection_notes (inspection_id, notes) values (v_inspection, app_private.value_text(p_values, 'notes'));
    end if;
    if p_values ->> 'result' = 'reject' then
      -- the rejection joins the comment thread, marked, and stays there forever
      insert into app.sample_comments (sample_id, author_id, body, is_qc_rejection, created_at)
      values (p_s.id, p_me.id, 'QC rejected: ' || v_reason, true, app.clock());
    end if;
    if p_s.supplier_id is not null then
      insert into app.supplier_quality (supplier_id, inspections, rejects, updated_at)
      values (p_s.supplier_id, 1, (p_values ->> 'result' = 'reject')::int, app.clock())
      on conflict (supplier_id) do update
         set inspections = app.supplier_quality.inspections + 1,
             rejects = app.supplier_quality.rejects + excluded.rejects, updated_at = excluded.updated_at;
    end if;
    -- NOTE: the event carries the result and the reason, never the inspector's notes (QC notes are sensitive)
    changes := jsonb_build_object('last_qc_result', p_values ->> 'result')
               || case when p_values ->> 'result' = 'reject' then '{"qc_rejected": true}'::jsonb else '{}'::jsonb end;
    details := jsonb_build_object('inspection_id', v_inspection, 'result', p_values ->> 'result', 'reason', v_reason);
  when 'override' then
    to_state := (p_values ->> 'to_state')::app.sample_state;
    if p_s.state = to_state then
      raise exception using errcode = 'TR001', message = format('sample %s is already %s', p_s.id, to_state);
    end if;
    -- the same checks as a normal move into the target state
    if to_state not in ('requested', 'returned') and p_s.supplier_id is null then
      raise exception using errcode = 'TR005',
        message = format('sample %s has no supplier; it cannot be moved past requested', p_s.id),
        hint = 'Withdraw it, or let the buyer order it.';
    end if;
    case to_state
    when 'ordered' then
      if not exists (select 1 from app.sample_costs where sample_id = p_s.id) then
        raise exception using errcode = 'TR005',
          message = format('sample %s has no order on record; its buyer must order it', p_s.id);
      end if;
    when 'received' then
      perform app_private.require_ref(exists (select 1 from app.locations where id = (p_values ->> 'location_id')::int),
                                      'location', (p_values ->> 'location_id')::bigint, p_s.id);
    when 'with-design', 'with-sales' then
      perform app_private.check_holder(p_s, (p_values ->> 'holder_id')::bigint, to_state);
    when 'at-factory' then
      perform app_private.require_ref(exists (select 1 from app.factories where id = (p_values ->> 'factory_id')::int and active),
                                      'factory', (p_values ->> 'factory_id')::bigint, p_s.id);
    when 'cut-for-production' then
      if p_s.on_loan then
        raise exception using errcode = 'TR009',
          message = format('sample %s is on loan from its supplier; a buyer of its team must buy it out before it is cut', p_s.id);
      end if;
    else null;
    end case;
    changes := app_private.arrival_changes(p_s, to_state, p_values)
      -- a courier reference for a sample that left the building; a never-received one was withdrawn
      || case when to_state = 'returned' then
           case when p_s.received_on is null then jsonb_build_object('withdrawn_at', app.clock())
                else jsonb_build_object('courier_ref', app_private.value_text(p_values, 'courier_ref')) end
         else '{}'::jsonb end
      -- the director's override is the approval to cut
      || case when to_state = 'cut-for-production' and p_s.production_approved_at is null
           then jsonb_build_object('production_approved_by', p_me.id, 'production_approved_at', app.clock())
           else '{}'::jsonb end;
    if to_state = 'requested' then
      -- back before the order: the order's cost no longer applies (the audit log keeps it)
      delete from app.sample_costs where sample_id = p_s.id;
    end if;
    details := jsonb_build_object('reason', v_reason);
  else
    raise exception using errcode = 'TR005', message = format('unknown action "%s"', p_rule.action);
  end case;
end
$$;
comment on function app_private.plan_changes(app.samples, app.transition_rules, jsonb, app.staff) is 'Step 5: the checks that need the locked row and the action''s own records (cost, inspection); returns the columns to change, the event details and the state to move to.';

create or replace function app_private.apply_change(
  p_s app.samples, p_action text, p_to_state app.sample_state, p_changes jsonb,
  p_me app.staff, p_note text, p_details jsonb, p_override boolean)
returns bigint
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_new app.samples := jsonb_populate_record(p_s, p_changes);
  v_now timestamptz := app.clock();
  v_moves boolean := p_to_state is distinct from p_s.state;
  v_event_id bigint;
begin
  update app.samples
     set (title, style_code, category_id, season_id, supplier_id, state, holder_id, location_id, factory_id, on_loan, expected_on, received_on,
          return_due_on, qc_rejected, last_qc_result, production_approved_by, production_approved_at, courier_ref,
          withdrawn_at, transit_from, transit_since, state_changed_at, updated_at)
       = (v_new.title, v_new.style_code, v_new.category_id, v_new.season_id,
          v_new.supplier_id, p_to_state, v_new.holder_id, v_new.location_id, v_new.factory_id,
          v_new.on_loan, v_new.expected_on, v_new.received_on, v_new.return_due_on, v_new.qc_rejected,
          v_new.last_qc_result,
          v_new.production_approved_by, v_new.production_approved_at, v_new.courier_ref,
          v_new.withdrawn_at, v_new.transit_from, v_new.transit_since,
          case when v_moves then v_now else p_s.state_changed_at end,
          v_now)
   where id = p_s.id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at,
                                 note, details, is_override)
  values (p_s.id, p_action, p_s.state, p_to_state, p_me.id, p_me.role::text, v_now,
          nullif(btrim(p_note), ''), p_changes || coalesce(p_details, '{}'), p_override)
  returning id into v_event_id;
  return v_event_id;
end
$$;
comment on function app_private.apply_change(app.samples, text, app.sample_state, jsonb, app.staff, text, jsonb, boolean) is 'Step 6: one UPDATE of the sample and one event (the NOTIFY follows from the event''s trigger).';

create or replace function app_private.perform_action(p_sample_id bigint, p_action text, p_values jsonb, p_note text)
returns bigint
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_rule app.transition_rules;
  v_plan record;
  v_event bigint;
begin
  perform app_private.validate_values(p_sample_id, p_action, p_values);
  v_s := app_private.lock_sample(p_sample_id, v_me);
  v_rule := app_private.check_rule(v_s, p_action, v_me);
  v_plan := app_private.plan_changes(v_s, v_rule, p_values, v_me);
  -- a sample that moves on is no longer waiting for the last handover's confirmation
  if v_plan.to_state is distinct from v_s.state and not (v_plan.changes ? 'transit_from') then
    v_plan.changes := v_plan.changes || app_private.transit(false, v_me);
  end if;
  v_event := app_private.apply_change(v_s, p_action, v_plan.to_state, v_plan.changes, v_me,
                                      coalesce(p_note, case when p_action in ('withdraw', 'override', 'cancel_order')
                                                            then p_values ->> 'reason' end),
                                      v_plan.details, p_action = 'override');
  -- the inspection's own id is what its caller wants back
  return coalesce((v_plan.details ->> 'inspection_id')::bigint, v_event);
end
$$;
comment on function app_private.perform_action(bigint, text, jsonb, text) is 'The one path of every action on an existing sample: who (TR010), values (TR004/TR005), lock (TR006/TR007), rule (TR001/TR008/TR002/TR003), plan (TR005/TR009), apply. Returns the event id (the inspection id for inspect).';

------------------------------------------------------------------------------
-- Realtime: the sample's update and its event each leave a signal in the outbox
-- app.realtime_events (sql/functions/080_realtime.sql), NOTIFYed by id alone.
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- The public API: one entry point per action. Each is SECURITY DEFINER so it
-- can reach app_private; none takes an identity or a row, and each hands over
-- to perform_action, which finds the caller from the session.
------------------------------------------------------------------------------
create or replace function app.request_sample(
  p_title text, p_category_id integer, p_season_id integer, p_supplier_id integer default null,
  p_style_code text default null, p_on_loan boolean default false, p_note text default null,
  p_despite_similar bigint[] default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_rule app.transition_rules;
  v_id bigint;
  v_now timestamptz := app.clock();
begin
  perform app_private.require_value(btrim(coalesce(p_title, '')) = '', 'a title', 'a sample request');
  perform app_private.require_value(p_category_id is null, 'a category', 'a sample request');
  perform app_private.require_value(p_season_id is null, 'a season', 'a sample request');
  if length(p_title) > 200 then
    raise exception using errcode = 'TR005', message = 'a title can be at most 200 characters';
  end if;
  if length(p_style_code) > 40 then
    raise exception using errcode = 'TR005', message = 'a style code can be at most 40 characters';
  end if;
  select * into v_rule from app.transition_rules where action = 'request' and from_state is null;
  if not (v_me.role = any (v_rule.roles)) then
    raise exception using errcode = 'TR002',
      message = format('only %s can request a sample', app_private.roles_phrase(v_rule.roles)),
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
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
  perform app_private.check_supplier_hold(p_supplier_id, 'request a sample');

  insert into app.samples (title, style_code, category_id, season_id, team_id, requested_by, supplier_id,
                           on_loan, state, state_changed_at, created_at, updated_at)
  values (btrim(p_title), nullif(btrim(p_style_code), ''), p_category_id, p_season_id, v_me.team_id, v_me.id,
          p_supplier_id, coalesce(p_on_loan, false), 'requested', v_now, v_now, v_now)
  returning id into v_id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at, note, details)
  values (v_id, 'request', null, 'requested', v_me.id, v_me.role::text, v_now,
          app_private.despite_note('requested', p_despite_similar, p_note),
          jsonb_build_object('title', btrim(p_title), 'category_id', p_category_id, 'season_id', p_season_id,
                             'supplier_id', p_supplier_id)
          || app_private.despite_details(p_despite_similar));
  return v_id;
end
$$;
comment on function app.request_sample(text, integer, integer, integer, text, boolean, text, bigint[]) is 'Buyer or senior buyer: creates a sample request for their own team (never from a supplier on hold, TR014). p_despite_similar records the similar samples the buyer was shown and went ahead despite. Returns the new sample number.';

create or replace function app.order_sample(
  p_sample_id bigint, p_supplier_id integer, p_unit_cost numeric, p_currency text, p_expected_on date,
  p_quantity integer default 1, p_fx_rate numeric default null, p_po_number text default null,
  p_on_loan boolean default null, p_note text default null, p_despite_similar bigint[] default null,
  p_accept_supplier_risk boolean default false)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'order', jsonb_build_object(
        'supplier_id', p_supplier_id, 'unit_cost', p_unit_cost, 'currency', p_currency, 'expected_on', p_expected_on,
        'quantity', p_quantity, 'fx_rate', p_fx_rate, 'po_number', p_po_number, 'on_loan', p_on_loan,
        'despite_similar', to_jsonb(p_despite_similar), 'accept_supplier_risk', p_accept_supplier_risk),
        app_private.despite_note('ordered', p_despite_similar, p_note)); end $$;
comment on function app.order_sample(bigint, integer, numeric, text, date, integer, numeric, text, boolean, text, bigint[], boolean) is 'Requesting buyer or senior buyer of the team: requested -> ordered, recording supplier, cost and expected date. Never from a supplier on hold (TR014); from one with a QC reject in the last months only with p_accept_supplier_risk (TR015). p_despite_similar records the similar samples shown. Returns the event id.';

create or replace function app.withdraw_request(p_sample_id bigint, p_reason text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'withdraw', jsonb_build_object('reason', p_reason), null); end $$;
comment on function app.withdraw_request(bigint, text) is 'Requesting buyer or senior buyer of the team: withdraws a request never ordered (requested -> returned, withdrawn), with a reason.';

create or replace function app.receive_sample(
  p_sample_id bigint, p_location_id integer, p_return_due_on date default null, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'receive', jsonb_build_object(
        'location_id', p_location_id, 'return_due_on', p_return_due_on), p_note); end $$;
comment on function app.receive_sample(bigint, integer, date, text) is 'Logistics: ordered -> received at a location; an on-loan sample gets its return-due date (default: app.loan_days() after receipt).';

create or replace function app.hand_to_design(p_sample_id bigint, p_holder_id bigint default null, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'hand_to_design', jsonb_build_object(
        -- a designer acting without naming a holder takes the sample themselves
        'holder_id', coalesce(p_holder_id, case when app.current_staff_role() = 'designer' then app.current_staff_id() end)),
        p_note); end $$;
comment on function app.hand_to_design(bigint, bigint, text) is 'Passes the sample to a designer (a designer acting takes it by default); see app.transition_rules for who may, from where.';

create or replace function app.hand_to_sales(p_sample_id bigint, p_holder_id bigint default null, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'hand_to_sales', jsonb_build_object(
        -- a sales lead or executive acting without naming a holder takes the sample themselves
        'holder_id', coalesce(p_holder_id, case when app.current_staff_role() in ('sales_lead', 'sales_executive')
                                                then app.current_staff_id() end)),
        p_note); end $$;
comment on function app.hand_to_sales(bigint, bigint, text) is 'Passes the sample to a sales lead or executive (a sales person acting takes it by default); see app.transition_rules for who may, from where.';

create or replace function app.hand_back(p_sample_id bigint, p_location_id integer, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'hand_back', jsonb_build_object('location_id', p_location_id), p_note); end $$;
comment on function app.hand_back(bigint, integer, text) is 'The holder (or logistics) puts a sample back in the sample room: with-design/with-sales -> received at a location.';

create or replace function app.send_to_factory(p_sample_id bigint, p_factory_id integer, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'send_to_factory', jsonb_build_object('factory_id', p_factory_id), p_note); end $$;
comment on function app.send_to_factory(bigint, integer, text) is 'Logistics or factory liaison: received/with-design/with-sales -> at-factory.';

create or replace function app.return_from_factory(p_sample_id bigint, p_location_id integer, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'return_from_factory', jsonb_build_object('location_id', p_location_id), p_note); end $$;
comment on function app.return_from_factory(bigint, integer, text) is 'Logistics or factory liaison: at-factory -> received at a location.';

create or replace function app.return_to_supplier(p_sample_id bigint, p_courier_ref text, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'return_to_supplier', jsonb_build_object('courier_ref', p_courier_ref), p_note); end $$;
comment on function app.return_to_supplier(bigint, text, text) is 'Logistics: any state after receipt -> returned, with a courier reference. The only action left for a QC-rejected sample.';

create or replace function app.approve_for_production(p_sample_id bigint, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'approve_for_production', '{}', p_note); end $$;
comment on function app.approve_for_production(bigint, text) is 'Senior buyer of the team: records approval to cut the sample for production (state unchanged).';

create or replace function app.buy_out(p_sample_id bigint, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'buy_out', '{}', p_note); end $$;
comment on function app.buy_out(bigint, text) is 'Requesting buyer or senior buyer of the team: records that an on-loan sample was bought from the supplier (no return due any more; it may then be cut).';

create or replace function app.confirm_handover(p_sample_id bigint, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'confirm_handover', '{}', p_note); end $$;
comment on function app.confirm_handover(bigint, text) is 'The person a sample was handed to (or a factory liaison, for a sample sent to a factory): confirms it arrived; until then it shows as in transit from the sender.';

create or replace function app.cut_for_production(p_sample_id bigint, p_note text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'cut_for_production', '{}', p_note); end $$;
comment on function app.cut_for_production(bigint, text) is 'Factory liaison: at-factory -> cut-for-production, only after a senior buyer''s approval and never while on loan.';

create or replace function app.record_inspection(
  p_sample_id bigint, p_result app.qc_result, p_reason text default null, p_notes text default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'inspect', jsonb_build_object(
        'result', p_result, 'reason', p_reason, 'notes', p_notes), null); end $$;
comment on function app.record_inspection(bigint, app.qc_result, text, text) is 'QC: records pass or reject (reject needs a reason and leaves the sample returnable only). Returns the inspection id.';

create or replace function app.override_state(
  p_sample_id bigint, p_to_state app.sample_state, p_reason text,
  p_location_id integer default null, p_holder_id bigint default null, p_factory_id integer default null,
  p_courier_ref text default null, p_expected_on date default null)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ begin return app_private.perform_action(p_sample_id, 'override', jsonb_build_object(
        'to_state', p_to_state, 'reason', p_reason, 'location_id', p_location_id, 'holder_id', p_holder_id,
        'factory_id', p_factory_id, 'courier_ref', p_courier_ref, 'expected_on', p_expected_on), null); end $$;
comment on function app.override_state(bigint, app.sample_state, text, integer, bigint, integer, text, date) is 'Ops director or MD: moves a sample to any other state with a mandatory reason, giving what the target state needs (location, holder, factory, expected date); facts that no longer apply are cleared.';

------------------------------------------------------------------------------
-- Optimistic concurrency: every change bumps the row's version; a form sends the
-- version it showed, and acting on a sample that changed since is refused (TR017)
------------------------------------------------------------------------------
create or replace function app_private.tg_any__bump_version() returns trigger
language plpgsql
as $$
begin
  new.version := old.version + 1;
  return new;
end
$$;
comment on function app_private.tg_any__bump_version() is 'BEFORE UPDATE on app.samples and app.staff: every change bumps version (the one optimistic-concurrency mechanism).';

create or replace function app.expect_sample_version(p_sample_id bigint, p_version integer) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
begin
  if p_version is null then
    raise exception using errcode = 'TR004', message = 'the version of the sample you saw is missing',
      hint = 'Reload the sample and try again.';
  end if;
  -- locks the row (TR006 hidden or missing, TR007 busy) for the rest of the transaction, so
  -- the action that follows in it acts on exactly the version checked here
  v_s := app_private.lock_sample(p_sample_id, v_me);
  if v_s.version <> p_version then
    raise exception using errcode = 'TR017',
      message = format('someone changed sample %s since you opened it', p_sample_id),
      detail = format('you saw version %s; it is now version %s', p_version, v_s.version),
      hint = 'Look at the sample as it is now, then try again.';
  end if;
end
$$;
comment on function app.expect_sample_version(bigint, integer) is 'Call first, in the transaction of a lifecycle action taken from a form: locks the sample and refuses (TR017) when its version is not the one the form showed.';

------------------------------------------------------------------------------
-- What may I do now, and with whom?
------------------------------------------------------------------------------
create or replace function app.available_actions(p_sample_id bigint)
returns table (action text, to_state app.sample_state, verb text, required text[])
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff;
  v_s app.samples;
begin
  select * into v_me from app.staff where id = app.current_staff_id();
  select * into v_s from app.samples where id = p_sample_id;
  if v_me.id is null or v_s.id is null or not app_private.can_see_sample(v_s, v_me) then
    return;  -- nothing for a sample the caller cannot see
  end if;
  return query
  select r.action, r.to_state, r.verb, r.required
    from app.transition_rules r
   where r.from_state = v_s.state
     and v_me.role = any (r.roles)
     and app_private.action_in_scope(v_s, r.action, v_me)
     and (not v_s.qc_rejected or app_private.allowed_when_qc_rejected(r.action))
     and not exists (select 1 from app_private.unmet_precondition(v_s, r.action))
   -- moves first; then corrections, calling the order off, and the director's override
   order by r.action = 'override', r.action = 'cancel_order', r.action = 'correct', r.action;
end
$$;
comment on function app.available_actions(bigint) is 'The actions the signed-in person may take on a sample now, with the fields each needs (empty if they cannot see it).';

create or replace function app.holder_choices(p_sample_id bigint, p_action text)
returns table (id bigint, full_name text, role app.staff_role)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_to app.sample_state;
begin
  select a.to_state into v_to from app.available_actions(p_sample_id) a
   where a.action = p_action and p_action in ('hand_to_design', 'hand_to_sales');
  if v_to is null then
    return;
  end if;
  return query
  select s.id, s.full_name, s.role from app.staff s
   where s.active and s.role = any (app.holder_roles(v_to))
   order by s.id <> app.current_staff_id(), s.full_name;
end
$$;
comment on function app.holder_choices(bigint, text) is 'The people the signed-in person may hand a sample to with hand_to_design / hand_to_sales (the caller first when they can hold it); empty when the action is not available.';
