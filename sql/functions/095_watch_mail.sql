-- The "Watching" section of the daily mail (issue 15, item 4): what changed on the
-- samples and suppliers a person watches since their last mail, limited to what that
-- person may see (the samples policies as one predicate, app_private.can_see_sample,
-- on each sample as it is now), and never a cost: a change is named by its action,
-- states, who and when, never by its details or notes.
--
-- The morning job (app_private.queue_overdue_mail) calls app_private.queue_watch_mail
-- after queueing the overdue mails: the section is merged into the person's overdue
-- mail of the day while it is still waiting to be sent, or queued as a mail of its own
-- (same kind and dedupe key, no overdue lines) for someone with nothing overdue. Each
-- mail records the point up to which it reported (payload watch_until); the next one
-- starts there (or where the person started watching, if later).
set local role tracker_owner;

create or replace function app_private.watch_changes(p_staff_id bigint, p_day date, p_upto timestamptz,
                                                     p_max_items integer default 50)
returns jsonb
language sql stable
set search_path = pg_catalog, app, app_private, pg_temp
as $$
  with me as (
    select p from app.staff p where p.id = p_staff_id and p.active
  ), since as (  -- where the last earlier mail's section ended (the day's own mail is being rewritten)
    select max((o.payload ->> 'watch_until')::timestamptz) as t
      from app_private.mail_outbox o
     where o.staff_id = p_staff_id and o.kind = 'overdue' and o.payload ? 'watch_until' and o.day < p_day
       and o.failed_at is null
  ), watched_samples as (
    select s, s.id, s.title, greatest(w.created_at, (select t from since)) as after
      from app.watches w
      join app.samples s on s.id = w.sample_id
      cross join me
     where w.staff_id = p_staff_id
       and app_private.can_see_sample(s, me.p)
  ), sample_changes as (
    select ws.id, x.at, x.what, x.who
      from watched_samples ws
      cross join lateral (
        select e.at, case when e.from_state is distinct from e.to_state and e.to_state is not null
                          then format('%s: %s → %s', replace(e.action, '_', ' '), coalesce(e.from_state::text, 'new'),
                                      e.to_state)
                          else replace(e.action, '_', ' ') end as what,
               st.full_name as who
          from app.sample_events e left join app.staff st on st.id = e.actor_id
         where e.sample_id = ws.id and e.at > coalesce(ws.after, '-infinity') and e.at <= p_upto
        union all
        select c.created_at, 'commented', st.full_name
          from app.sample_comments c join app.staff st on st.id = c.author_id
         where c.sample_id = ws.id and c.created_at > coalesce(ws.after, '-infinity') and c.created_at <= p_upto
      ) x
  ), sample_items as (
    select ws.id, ws.title,
           case when (ws.s).state = 'returned' and (ws.s).withdrawn_at is not null then 'withdrawn'
                else (ws.s).state::text end as state,
           max(c.at) as latest, count(*) as n,
           jsonb_agg(jsonb_build_object('at', c.at, 'what', c.what, 'by', c.who) order by c.at desc) as changes
      from watched_samples ws join sample_changes c on c.id = ws.id
     group by ws.id, ws.title, ws.s
  ), watched_suppliers as (
    select su.id, su.name, su.on_hold_at, su.hold_reason, greatest(w.created_at, (select t from since)) as after
      from app.watches w join app.suppliers su on su.id = w.supplier_id
     where w.staff_id = p_staff_id and exists (select 1 from me)
  ), window_start as (
    select coalesce(min(after), '-infinity') as t from watched_suppliers
  ), day_rejects as materialized (  -- the window's QC rejects by date (qc_inspections_reject_at_idx) ...
    select i.inspected_at, i.reason, i.sample_id from app.qc_inspections i
     where i.result = 'reject' and i.inspected_at > (select t from window_start) and i.inspected_at <= p_upto
  ), recent_rejects as materialized (  -- ... then those of the watched suppliers
    select r.inspected_at, r.reason, x.s as srow, r.sample_id, (x.s).supplier_id
      from day_rejects r
      cross join lateral (select s from app.samples s where s.id = r.sample_id offset 0) x  -- by key, row by row
     where (x.s).supplier_id in (select id from watched_suppliers)
  ), day_orders as materialized (  -- the window's requests and orders by action and date (sample_events_action_at_idx) ...
    select e.at, e.action, e.actor_id, e.sample_id from app.sample_events e
     where e.action in ('request', 'order') and e.at > (select t from window_start) and e.at <= p_upto
  ), recent_orders as materialized (  -- ... then those of the watched suppliers
    select o.at, o.action, o.actor_id, x.s as srow, o.sample_id, (x.s).title, (x.s).supplier_id
      from day_orders o
      cross join lateral (select s from app.samples s where s.id = o.sample_id offset 0) x  -- by key, row by row
     where (x.s).supplier_id in (select id from watched_suppliers)
  ), supplier_changes as (
    select ws.id, x.at, x.what, x.who
      from watched_suppliers ws
      cross join lateral (
        -- holds and lifts, with the reason (the supplier's record is shared with everyone)
        select h.at, format('%s: %s', case h.action when 'hold' then 'put on hold' else 'hold lifted' end, h.reason) as what,
               st.full_name as who
          from app.supplier_hold_events h join app.staff st on st.id = h.actor_id
         where h.supplier_id = ws.id and h.at > coalesce(ws.after, '-infinity') and h.at <= p_upto
        union all
        -- QC rejects: the reason is on the supplier's record; the sample only if visible
        select r.inspected_at, format('QC reject%s: %s', case when app_private.can_see_sample(r.srow, me.p)
                                                              then format(' of sample %s', r.sample_id) else '' end,
                                      r.reason),
               null
          from recent_rejects r cross join me
         where r.supplier_id = ws.id and r.inspected_at > coalesce(ws.after, '-infinity')
        union all
        -- new requests and orders from it that this person can see
        select o.at, format('sample %s %s: %s', o.sample_id,
                            case o.action when 'request' then 'requested' else 'ordered' end, o.title), st.full_name
          from recent_orders o cross join me
          left join app.staff st on st.id = o.actor_id
         where o.supplier_id = ws.id and o.at > coalesce(ws.after, '-infinity')
           and app_private.can_see_sample(o.srow, me.p)
      ) x
  ), supplier_items as (
    select ws.id, max(c.at) as latest, count(*) as n,
           jsonb_agg(jsonb_build_object('at', c.at, 'what', c.what, 'by', c.who) order by c.at desc) as changes,
           ws.name, ws.on_hold_at
      from watched_suppliers ws join supplier_changes c on c.id = ws.id
     group by ws.id, ws.name, ws.on_hold_at
  ), items as (
    select latest, jsonb_build_object('kind', 'sample', 'id', id, 'title', title, 'state', state, 'count', n,
                                      'changes', jsonb_path_query_array(changes, '$[0 to 9]')) as item
      from sample_items
    union all
    select latest, jsonb_build_object('kind', 'supplier', 'id', id, 'title', name,
                                      'state', case when on_hold_at is not null then 'on hold' else 'active' end,
                                      'count', n, 'changes', jsonb_path_query_array(changes, '$[0 to 9]'))
      from supplier_items
  )
  select jsonb_build_object(
           'items', coalesce((select jsonb_agg(i.item order by i.latest desc)
                                from (select * from items order by latest desc
                                       limit greatest(coalesce(p_max_items, 50), 1)) i), '[]'),
           'total', (select count(*) from items),
           'changes', coalesce((select sum((item ->> 'count')::int) from items), 0))
$$;
comment on function app_private.watch_changes(bigint, date, timestamptz, integer) is 'What changed, up to p_upto and since the person''s last mail (or since they started watching), on the samples they watch and can see now and on the suppliers they watch: actions, states, who and when, never a cost, a note or a hidden sample. Owner only: the morning job.';

create or replace function app_private.queue_watch_mail(p_day date, p_upto timestamptz default now(),
                                                        p_max_items integer default 50)
returns integer
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_new integer := 0;
  r record;
  v_row app_private.mail_outbox;
begin
  for r in
    select p.id, p.email, p.full_name, app_private.watch_changes(p.id, p_day, p_upto, p_max_items) as w
      from app.staff p
     where p.active and exists (select 1 from app.watches w where w.staff_id = p.id)
  loop
    continue when (r.w ->> 'total')::int = 0;
    select * into v_row from app_private.mail_outbox o where o.dedupe_key = format('overdue:%s:%s', r.id, p_day);
    if v_row.id is null then
      insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload)
      values ('overdue', r.id, p_day, format('overdue:%s:%s', r.id, p_day), r.email,
              format('Watching: %s change%s, %s', r.w ->> 'changes', case when (r.w ->> 'changes')::int > 1 then 's' else '' end,
                     to_char(p_day, 'DD Mon YYYY')),
              jsonb_build_object('full_name', r.full_name, 'total', 0, 'lines', '[]'::jsonb,
                                 'watching', r.w, 'watch_until', p_upto));
      v_new := v_new + 1;
    elsif v_row.sent_at is null and v_row.sending_since is null and v_row.failed_at is null then
      -- the day's mail is still waiting: (re)write its Watching section
      update app_private.mail_outbox
         set payload = payload || jsonb_build_object('watching', r.w, 'watch_until', p_upto)
       where id = v_row.id;
    end if;
    -- a mail already sent today keeps its content; these changes go in tomorrow's
  end loop;
  return v_new;
end
$$;
comment on function app_private.queue_watch_mail(date, timestamptz, integer) is 'The Watching section of the morning mail: for each person watching something that changed since their last mail, merged into their overdue mail of p_day while it waits to be sent, or queued as a mail of its own (same kind and dedupe key) when nothing is overdue. Returns the mails newly queued.';
