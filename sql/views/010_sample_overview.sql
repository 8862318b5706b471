-- app.sample_overview: one row per visible sample with the names a person reads
-- and the cost fields, which read as NULL for anyone sample_costs' policies hide
-- them from. security_invoker, so the caller's RLS applies to every table joined.
set local role tracker_owner;

create view app.sample_overview with (security_invoker = true) as
select s.id,
       s.title,
       s.style_code,
       s.state,
       -- what a person reads: a withdrawn request is 'withdrawn', not 'returned' (the
       -- lifecycle keeps its eight states; withdrawn_at tells the two apart)
       case when s.state = 'returned' and s.withdrawn_at is not null then 'withdrawn'
            else s.state::text end as display_state,
       s.team_id,
       t.code as team_code,
       s.category_id,
       c.name as category,
       s.season_id,
       se.code as season,
       s.supplier_id,
       su.name as supplier,
       s.requested_by,
       rb.full_name as requested_by_name,
       s.holder_id,
       h.full_name as holder_name,
       s.location_id,
       l.code as location,
       s.factory_id,
       f.name as factory,
       s.on_loan,
       s.expected_on,
       s.received_on,
       s.return_due_on,
       s.qc_rejected,
       s.production_approved_at,
       s.courier_ref,
       s.withdrawn_at,
       s.state_changed_at,
       (current_date - s.state_changed_at::date) as days_in_state,
       -- one definition of overdue: the rules in app.overdue_rules (app.overdue_hits),
       -- the same the morning mail uses (sql/functions/090_overdue.sql)
       -- (scalar subqueries, not a join: a list that does not read these columns - a
       -- count, another tab - does not compute them)
       s.state not in ('returned', 'cut-for-production')
         and exists (select from app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on,
                                                  s.on_loan, current_date, s.transit_since)) as is_overdue,
       case when s.state not in ('returned', 'cut-for-production') then
         (select string_agg(h.reason, '; ' order by h.days_overdue desc)
            from app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on, s.on_loan,
                                  current_date, s.transit_since) h) end as overdue_reason,
       case when s.state not in ('returned', 'cut-for-production') then
         (select max(h.days_overdue)
            from app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on, s.on_loan,
                                  current_date, s.transit_since) h) end as days_overdue,
       s.last_qc_result,
       s.version,
       s.created_at,
       k.unit_cost,
       k.quantity,
       k.currency,
       k.fx_rate_to_gbp,
       k.total_gbp,
       k.po_number,
       -- a handover the receiver has not confirmed yet (issue 14)
       s.transit_from,
       tf.full_name as transit_from_name,
       s.transit_since
  from app.samples s
  join app.teams t on t.id = s.team_id
  join app.categories c on c.id = s.category_id
  join app.seasons se on se.id = s.season_id
  join app.staff rb on rb.id = s.requested_by
  left join app.suppliers su on su.id = s.supplier_id
  left join app.staff h on h.id = s.holder_id
  left join app.locations l on l.id = s.location_id
  left join app.factories f on f.id = s.factory_id
  left join app.sample_costs k on k.sample_id = s.id
  left join app.staff tf on tf.id = s.transit_from;
comment on view app.sample_overview is 'Samples with names resolved and costs joined; select * works for every role, hidden cost fields read as NULL.';

grant select on app.sample_overview to staff;
