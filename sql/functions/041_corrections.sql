-- Corrections: what people get wrong and must put right (issue 10, item 14).
--
--   app.correct_sample(...)   the requesting buyer or a senior buyer of the team corrects
--                             title, style, category, season, expected date and the order's
--                             cost, currency, quantity or PO while the sample is requested or
--                             ordered: an action of the lifecycle ('correct', no move), so the
--                             same checks apply and the timeline shows what was corrected
--   app.cancel_order(...)     the same people call off an order before it arrives
--                             (ordered -> returned, shown as withdrawn)
--   app.remove_photo(...)     a photo added by mistake is hidden, never deleted: the row
--                             stays in the table and its change in the audit log
--   app.last_sign_ins()       when each person last signed in, for those who administer staff
set local role tracker_owner;

------------------------------------------------------------------------------
-- Correcting a sample's details and its order
------------------------------------------------------------------------------
create or replace function app_private.plan_correction(
  p_s app.samples, p_values jsonb, out changes jsonb, out details jsonb)
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_cost app.sample_costs;
  v_new app.sample_costs;
  v_fields text[] := '{}';
  v_cost_fields text[] := '{}';
  v_currency text := upper(app_private.value_text(p_values, 'currency'));
begin
  changes := '{}';
  if p_values ? 'title' and btrim(p_values ->> 'title') is distinct from p_s.title then
    changes := changes || jsonb_build_object('title', btrim(p_values ->> 'title'));
  end if;
  if p_values ? 'style_code' and app_private.value_text(p_values, 'style_code') is distinct from p_s.style_code then
    changes := changes || jsonb_build_object('style_code', app_private.value_text(p_values, 'style_code'));
  end if;
  if p_values ->> 'category_id' is not null and (p_values ->> 'category_id')::int <> p_s.category_id then
    perform app_private.require_ref(exists (select 1 from app.categories where id = (p_values ->> 'category_id')::int),
                                    'category', (p_values ->> 'category_id')::bigint, p_s.id);
    changes := changes || jsonb_build_object('category_id', (p_values ->> 'category_id')::int);
  end if;
  if p_values ->> 'season_id' is not null and (p_values ->> 'season_id')::int <> p_s.season_id then
    perform app_private.require_ref(exists (select 1 from app.seasons where id = (p_values ->> 'season_id')::int),
                                    'season', (p_values ->> 'season_id')::bigint, p_s.id);
    changes := changes || jsonb_build_object('season_id', (p_values ->> 'season_id')::int);
  end if;
  if p_values ->> 'expected_on' is not null and (p_values ->> 'expected_on')::date is distinct from p_s.expected_on then
    if p_s.state <> 'ordered' then
      raise exception using errcode = 'TR005',
        message = format('sample %s is %s; an expected date belongs to an order', p_s.id, p_s.state),
        hint = 'Give the expected date when you order the sample.';
    end if;
    if (p_values ->> 'expected_on')::date < app.clock()::date then
      raise exception using errcode = 'TR005',
        message = format('correcting sample %s: the expected date %s is in the past', p_s.id, p_values ->> 'expected_on');
    end if;
    changes := changes || jsonb_build_object('expected_on', (p_values ->> 'expected_on')::date);
  end if;
  select array_agg(k order by k) into v_fields from jsonb_object_keys(changes) k;

  -- the order's cost: only an ordered sample has one
  if coalesce(p_values ->> 'unit_cost', v_currency, p_values ->> 'quantity', p_values ->> 'po_number') is not null then
    select * into v_cost from app.sample_costs where sample_id = p_s.id for update;
    if not found then
      raise exception using errcode = 'TR005',
        message = format('sample %s is %s and has no order; cost, currency, quantity and PO are given when ordering',
                         p_s.id, p_s.state),
        hint = 'Order the sample to record its cost.';
    end if;
    v_new := v_cost;
    v_new.unit_cost := coalesce((p_values ->> 'unit_cost')::numeric, v_cost.unit_cost);
    v_new.quantity := coalesce((p_values ->> 'quantity')::int, v_cost.quantity);
    if v_currency is not null and v_currency <> v_cost.currency then
      select code, gbp_rate into v_new.currency, v_new.fx_rate_to_gbp from app.currencies where code = v_currency;
      if not found then
        raise exception using errcode = 'TR005',
          message = format('correcting sample %s: unknown currency "%s"', p_s.id, p_values ->> 'currency'),
          hint = 'Use a three-letter ISO code such as GBP, EUR or USD.';
      end if;
    end if;
    if p_values ? 'po_number' then
      v_new.po_number := app_private.value_text(p_values, 'po_number');
    end if;
    v_cost_fields := array_remove(array[
      case when v_new.unit_cost <> v_cost.unit_cost then 'unit_cost' end,
      case when v_new.quantity <> v_cost.quantity then 'quantity' end,
      case when v_new.currency <> v_cost.currency then 'currency' end,
      case when v_new.po_number is distinct from v_cost.po_number then 'po_number' end], null);
    if cardinality(v_cost_fields) > 0 then
      -- what the cost row will hold, against the columns' ranges (TR005, never a raw 22003/23514)
      perform app_private.check_order_amounts(format('correcting sample %s', p_s.id), v_new.unit_cost,
                                              v_new.quantity, v_new.fx_rate_to_gbp, v_new.po_number);
      update app.sample_costs
         set unit_cost = v_new.unit_cost, quantity = v_new.quantity, currency = v_new.currency,
             fx_rate_to_gbp = v_new.fx_rate_to_gbp, po_number = v_new.po_number, updated_at = app.clock()
       where sample_id = p_s.id;
    end if;
  end if;

  if coalesce(cardinality(v_fields), 0) + cardinality(v_cost_fields) = 0 then
    raise exception using errcode = 'TR005',
      message = format('correcting sample %s: nothing differs from what is recorded', p_s.id),
      hint = 'Change at least one field.';
  end if;
  -- NOTE: the event names the corrected cost fields but never their values (costs are
  --       visible only through sample_costs' policies; the audit log keeps the values)
  details := jsonb_build_object('corrected', to_jsonb(coalesce(v_fields, '{}') || v_cost_fields),
                                'was', (select coalesce(jsonb_object_agg(k, to_jsonb(p_s) -> k), '{}')
                                          from unnest(coalesce(v_fields, '{}')) k));
end
$$;
comment on function app_private.plan_correction(app.samples, jsonb) is 'The changes of a correction: sample fields that differ (with what they were), and the order''s cost row updated in place; TR005 when nothing differs or a cost is corrected on a sample with no order.';

create or replace function app.correct_sample(
  p_sample_id bigint, p_title text default null, p_style_code text default null,
  p_category_id integer default null, p_season_id integer default null, p_expected_on date default null,
  p_unit_cost numeric default null, p_currency text default null, p_quantity integer default null,
  p_po_number text default null, p_note text default null)
returns bigint
language sql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ select app_private.perform_action(p_sample_id, 'correct', jsonb_strip_nulls(jsonb_build_object(
        'title', p_title, 'style_code', p_style_code, 'category_id', p_category_id, 'season_id', p_season_id,
        'expected_on', p_expected_on, 'unit_cost', p_unit_cost, 'currency', p_currency, 'quantity', p_quantity,
        'po_number', p_po_number)), p_note) $$;
comment on function app.correct_sample(bigint, text, text, integer, integer, date, numeric, text, integer, text, text) is 'Requesting buyer or senior buyer of the team, while requested or ordered: corrects title, style code, category, season, expected date, and the order''s unit cost, currency (rate re-read), quantity or PO number. A null leaves a field as it is (a blank style code or PO clears it); the event lists what was corrected.';

create or replace function app.cancel_order(p_sample_id bigint, p_reason text)
returns bigint
language sql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$ select app_private.perform_action(p_sample_id, 'cancel_order', jsonb_build_object('reason', p_reason), null) $$;
comment on function app.cancel_order(bigint, text) is 'Requesting buyer or senior buyer of the team: calls off an order that has not arrived (ordered -> returned, shown as withdrawn), with a reason.';

------------------------------------------------------------------------------
-- Removing a photo added by mistake
------------------------------------------------------------------------------
create or replace function app_private.photo_window() returns interval
language sql immutable parallel safe
as $$ select interval '24 hours' $$;
comment on function app_private.photo_window() is 'How long after uploading a person may remove their own photo (directors may remove any photo).';

create or replace function app_private.may_remove_photo(p_photo app.sample_photos, p_me app.staff)
returns boolean
language sql stable
as $$
  select p_photo.removed_at is null
     and ((p_photo.uploaded_by = p_me.id and p_photo.created_at > app.clock() - app_private.photo_window())
          or p_me.role in ('ops_director', 'md'))
$$;
comment on function app_private.may_remove_photo(app.sample_photos, app.staff) is 'The rule: the person who uploaded a photo may remove it within photo_window(); the ops director and the MD may remove any photo.';

create or replace function app.remove_photo(p_photo_id bigint, p_reason text)
returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_photo app.sample_photos;
  v_s app.samples;
  v_event bigint;
begin
  perform app_private.require_value(btrim(coalesce(p_reason, '')) = '', 'a reason',
                                    format('removing photo %s', p_photo_id));
  if length(p_reason) > 500 then
    raise exception using errcode = 'TR005', message = 'a reason can be at most 500 characters';
  end if;
  select * into v_photo from app.sample_photos where id = p_photo_id;
  select * into v_s from app.samples where id = v_photo.sample_id;
  if v_photo.id is null or v_photo.removed_at is not null or not app_private.can_see_sample(v_s, v_me) then
    raise exception using errcode = 'TR006', message = format('photo %s not found', p_photo_id),
      hint = 'It may have been removed already.';
  end if;
  if not app_private.may_remove_photo(v_photo, v_me) then
    raise exception using errcode = 'TR002',
      message = format('photo %s of sample %s: only the person who added it (within %s) or a director can remove it',
                       p_photo_id, v_s.id, app_private.photo_window()),
      hint = 'Ask the ops director to remove it.';
  end if;
  -- lock the sample like every lifecycle action, so the event order is the change order
  perform app_private.lock_sample(v_s.id, v_me);
  update app.sample_photos set removed_at = app.clock(), removed_by = v_me.id, removed_reason = btrim(p_reason)
   where id = p_photo_id;
  insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at, note, details)
  values (v_s.id, 'remove_photo', v_s.state, v_s.state, v_me.id, v_me.role::text, app.clock(), btrim(p_reason),
          jsonb_build_object('photo_id', p_photo_id))
  returning id into v_event;
  return v_event;
end
$$;
comment on function app.remove_photo(bigint, text) is 'Removes a photo added by mistake, with a reason: hidden from everyone, kept in the table and the audit log, noted on the timeline. The uploader within 24 hours, or a director.';

create or replace function app.removable_photos(p_sample_id bigint)
returns setof bigint
language sql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
  select p.id from app.sample_photos p
    join app.samples s on s.id = p.sample_id
    join app.staff me on me.id = app.current_staff_id()
   where p.sample_id = p_sample_id
     and app_private.can_see_sample(s, me)
     and app_private.may_remove_photo(p, me)
$$;
comment on function app.removable_photos(bigint) is 'The ids of the photos of a sample the signed-in person may remove now (empty when they cannot see the sample).';

------------------------------------------------------------------------------
-- When did each person last sign in? (for those who administer staff)
------------------------------------------------------------------------------
create or replace function app.last_sign_ins()
returns table (staff_id bigint, signed_in_at timestamptz)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
begin
  if v_me.role not in ('system_admin', 'ops_director', 'md') then
    raise exception using errcode = 'TR002', message = 'only a system admin or a director sees when people signed in',
      detail = format('you are signed in as %s', app_private.role_label(v_me.role));
  end if;
  return query select w.staff_id, max(w.created_at) from app_private.web_sessions w group by w.staff_id;
end
$$;
comment on function app.last_sign_ins() is 'System admin and directors: each person''s latest web sign-in (people who never signed in are absent).';
