-- app.missing_samples (issue 14): samples a closed stocktake expected and did not find,
-- until they are accounted for. security_invoker: the caller's RLS decides (stocktakes are
-- read by logistics and the directors; samples by their own policies), so nobody learns of
-- a count or a sample they could not read anyway.
--
-- A sample stops being missing as soon as anything shows where it is: any action on it since
-- the count started (its version moved on: handed over, returned, overridden, confirmed ...), or
-- a later count (of any location, open or closed) that found it. A sample missed by
-- several counts is listed once, with the latest of them.
set local role tracker_owner;

create view app.missing_samples with (security_invoker = true) as
select m.sample_id,
       s.title,
       case when s.state = 'returned' and s.withdrawn_at is not null then 'withdrawn' else s.state::text end
         as display_state,
       t.id as stocktake_id,
       l.code as location_code,
       l.name as location_name,
       t.started_at as counted_at,
       t.closed_at,
       cb.full_name as counted_by,
       h.full_name as holder,
       e.action as last_action,
       e.at as last_at,
       current_date - t.closed_at::date as days_missing
  from app.stocktakes t
  -- expected and not found: a join of the two lists (hashed), not "<> all" per element
  cross join lateral (select e.sample_id, e.version
                        from unnest(t.expected, t.expected_versions) e(sample_id, version)
                        left join unnest(t.found) f(sample_id) on f.sample_id = e.sample_id
                       where f.sample_id is null) m
  join app.samples s on s.id = m.sample_id
  join app.locations l on l.id = t.location_id
  join app.staff cb on cb.id = t.started_by
  left join app.staff h on h.id = s.holder_id
  left join lateral (select ev.action, ev.at from app.sample_events ev where ev.sample_id = s.id
                      order by ev.at desc, ev.id desc limit 1) e on true
 where t.closed_at is not null
   -- unchanged since the count started (every action bumps the version; counts from before
   -- V0017 kept no versions: there, no event since the start)
   and (s.version = m.version
        or (m.version is null
            and not exists (select from app.sample_events ev where ev.sample_id = m.sample_id and ev.at > t.started_at)))
   and not exists (select from app.stocktakes t2
                    where t2.id > t.id  -- a later count
                      and (m.sample_id = any (t2.found)
                           or (t2.closed_at is not null and m.sample_id = any (t2.expected))));
comment on view app.missing_samples is 'Samples a closed stocktake expected and did not find, until an action on the sample (its version moved on) or a later count accounts for them (one row per sample, the latest count that missed it); under the caller''s RLS: logistics and directors.';

grant select on app.missing_samples to staff;
