-- app.realtime_messages: what one realtime event shows the person reading it, as JSON.
-- security_invoker, so every table behind it applies the reader's own policies: a
-- sample they cannot see gives no row, a cost they may not read gives no row (and
-- reads as NULL inside a sample's data). Each row is the thing as it is *now* (a
-- signal, not a snapshot): the relay reads it moments after the commit.
set local role tracker_owner;

create view app.realtime_messages with (security_invoker = true) as
select e.id, e.kind, e.sample_id, e.at, d.data
  from app.realtime_events e
  cross join lateral (
    select case e.kind
      when 'sample' then (
        -- the sample's own row (no names: the page re-reads itself; this keeps the query
        -- small enough to plan in a few ms under every role's policies)
        select jsonb_build_object(
                 'id', s.id, 'title', s.title, 'state', s.state,
                 'display_state', case when s.state = 'returned' and s.withdrawn_at is not null then 'withdrawn'
                                       else s.state::text end,
                 'team_id', s.team_id, 'holder_id', s.holder_id, 'location_id', s.location_id,
                 'factory_id', s.factory_id, 'on_loan', s.on_loan, 'expected_on', s.expected_on,
                 'return_due_on', s.return_due_on, 'qc_rejected', s.qc_rejected, 'version', s.version,
                 'supplier_id', s.supplier_id,
                 'total_gbp', (select k.total_gbp from app.sample_costs k where k.sample_id = s.id),
                 'last_event', (select jsonb_build_object('action', ev.action, 'from', ev.from_state,
                                                          'to', ev.to_state, 'at', ev.at)
                                  from app.sample_events ev where ev.sample_id = s.id
                                 order by ev.id desc limit 1))
          from app.samples s where s.id = e.sample_id)
      when 'cost' then (
        select jsonb_build_object('unit_cost', c.unit_cost, 'quantity', c.quantity, 'currency', c.currency,
                                  'fx_rate_to_gbp', c.fx_rate_to_gbp, 'total_gbp', c.total_gbp,
                                  'po_number', c.po_number)
          from app.sample_costs c where c.sample_id = e.sample_id)
      when 'comment' then (
        select jsonb_build_object('id', c.id, 'author', st.full_name, 'body', c.body,
                                  'created_at', c.created_at, 'edited_at', c.edited_at)
          from app.sample_comments c join app.staff st on st.id = c.author_id
         where c.id = e.ref_id and c.sample_id = e.sample_id)
      when 'photo' then (
        select jsonb_build_object('id', p.id, 'caption', p.caption, 'width', p.width, 'height', p.height)
          from app.sample_photos p where p.id = e.ref_id and p.sample_id = e.sample_id)
      when 'inspection' then (
        select jsonb_build_object('id', i.id, 'result', i.result, 'reason', i.reason,
                                  'inspected_at', i.inspected_at,
                                  'supplier_id', (select s.supplier_id from app.samples s where s.id = e.sample_id))
          from app.qc_inspections i where i.id = e.ref_id and i.sample_id = e.sample_id)
      when 'supplier' then (
        -- what the supplier page shows of a supplier (its contacts are in their own table)
        select jsonb_build_object('id', su.id, 'name', su.name, 'active', su.active,
                                  'on_hold', su.on_hold_at is not null, 'on_hold_at', su.on_hold_at,
                                  'hold_reason', su.hold_reason)
          from app.suppliers su where su.id = e.ref_id)
    end as data) d
 where d.data is not null;
comment on view app.realtime_messages is 'One realtime event as the reader may see it: id, kind, sample and the thing''s current visible fields as JSON; no row when the reader may not see it.';

grant select on app.realtime_messages to staff;
