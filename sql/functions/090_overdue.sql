-- Overdue monitoring (issue 12): one definition of "overdue" (app.overdue_hits, used
-- by app.sample_overview's highlight and by app_private.overdue_for, the morning
-- mail), who must chase what, extensions with a reason, "chased today" marks.
set local role tracker_owner;

-- The rules that a sample breaks on a day. Scalars in, so staff may execute it (the
-- dashboards' view is security_invoker); SQL, stable, one SELECT: it is inlined into
-- the view and into overdue_for. Extensions are read under the caller's RLS (one sees
-- a sample's extensions with the sample).
create or replace function app.overdue_hits(p_sample_id bigint, p_state app.sample_state, p_state_since timestamptz,
                                            p_expected_on date, p_return_due_on date, p_on_loan boolean, p_day date,
                                            p_transit_since timestamptz default null)
returns table (rule_id integer, rule_code text, responsible_role app.staff_role, due_on date, days_overdue integer,
               extended boolean, reason text)
language sql stable
as $$
  -- infinite dates (extend_due_date asks with p_day = 'infinity') give no day count instead of an error (issue 16 fuzz)
  select r.id, r.code, r.responsible_role, greatest(b.base_due, x.ext_due),
         case when isfinite(p_day) and isfinite(greatest(b.base_due, x.ext_due))
              then p_day - greatest(b.base_due, x.ext_due) end,
         coalesce(x.ext_due > b.base_due, false),
         case r.condition
           when 'in_state' then format('%s for %s days (%s allowed)', p_state,
                                       case when isfinite(p_day) and isfinite(p_state_since)
                                            then p_day - p_state_since::date end, r.days_allowed)
           when 'past_expected' then format('expected %s, not received', to_char(p_expected_on, 'DD Mon YYYY'))
           when 'unconfirmed_handover' then format('handed over %s, not confirmed by the receiver',
                                                   to_char(p_transit_since, 'DD Mon YYYY'))
           else format('on loan, due back %s', to_char(p_return_due_on, 'DD Mon YYYY'))
         end || case when x.ext_due > b.base_due then format(', extended to %s', to_char(x.ext_due, 'DD Mon YYYY'))
                     else '' end
    from app.overdue_rules r
    cross join lateral (select case r.condition
                                 when 'in_state' then p_state_since::date + r.days_allowed
                                 when 'past_expected' then p_expected_on + r.days_allowed
                                 when 'past_return_due' then case when p_on_loan then p_return_due_on + r.days_allowed end
                                 -- issue 14: handed over and not confirmed (null once confirmed or moved on)
                                 when 'unconfirmed_handover' then p_transit_since::date + r.days_allowed
                               end as base_due) b
    -- extensions are looked up only for a sample already past its rule's own due day
    left join lateral (select max(e.due_on) as ext_due from app.overdue_extensions e
                        where e.sample_id = p_sample_id and e.rule_id = r.id
                          -- an extension holds for the state it was given in (for a handover: that handover)
                          and e.state_since = case when r.condition = 'unconfirmed_handover' then p_transit_since
                                                   else p_state_since end) x
           on true
   where r.active
     and p_state = any(r.states)
     and b.base_due < p_day
     and (x.ext_due is null or x.ext_due < p_day)
$$;
comment on function app.overdue_hits(bigint, app.sample_state, timestamptz, date, date, boolean, date, timestamptz) is 'The active overdue rules a sample with these facts breaks on p_day (overdue from the day after its due day; a due day extended in this state counts): the one definition behind the dashboards'' highlight and the morning mail. p_transit_since (samples.transit_since) drives the unconfirmed-handover rule; a caller that leaves it out never sees that rule.';

-- Who must chase what on a day: the holder, else (an unconfirmed handover) the person who
-- handed it over, else the requester, when they hold the responsible role; else that role's active staff in the sample's team; else (no one of
-- that role in the team) the role's staff without a team. Only samples the person can
-- see (the samples policies as one predicate, app_private.can_see_sample, which reads
-- only a person's role and team: so it is asked once per role-and-team group, then the
-- group is expanded to its members), never a CC. A sample marked chased the day before
-- (or the same day) and unchanged since is left out.
create or replace function app_private.overdue_for(p_day date, p_sample_id bigint default null,
                                                   p_include_chased boolean default false)
returns table (staff_id bigint, sample_id bigint, rule_id integer, rule_code text, responsible_role app.staff_role,
               due_on date, days_overdue integer, reason text, via text)
language sql stable
as $$
  with hits as materialized (
    select s as srow, s.id as sid, s.team_id, s.holder_id, s.requested_by, s.transit_from, s.version, h.*
      from app.samples s
      cross join lateral app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on,
                                          s.on_loan, p_day, s.transit_since) h
     where s.state not in ('returned', 'cut-for-production')
       and (p_sample_id is null or s.id = p_sample_id)
  ),
  direct as materialized (
    select hits.*, coalesce(ph.id, ps.id, pr.id) as direct_id, coalesce(ph, ps, pr) as direct_row,
           case when ph.id is not null then 'holder' when ps.id is not null then 'sender' else 'requester' end
             as direct_via
      from hits
      left join app.staff ph on ph.id = hits.holder_id and ph.active and ph.role = hits.responsible_role
      -- an unconfirmed handover: the person who handed it over, when they hold the responsible role
      left join app.staff ps on ps.id = hits.transit_from and ps.active and ps.role = hits.responsible_role
                            and hits.rule_id in (select r.id from app.overdue_rules r
                                                  where r.condition = 'unconfirmed_handover')
      left join app.staff pr on pr.id = hits.requested_by and pr.active and pr.role = hits.responsible_role
     where p_include_chased or not exists (
             select 1 from app.overdue_chases c
              where c.sample_id = hits.sid and c.rule_id = hits.rule_id and c.chased_on in (p_day - 1, p_day)
                and c.sample_version = hits.version)
  ),
  groups as (  -- active staff by role and team: one member to ask can_see_sample for, and all of them
    select p.role, p.team_id, (array_agg(p order by p.id))[1] as rep, array_agg(p.id order by p.id) as members
      from app.staff p where p.active group by p.role, p.team_id
  ),
  fallback as (
    select d.sid, d.rule_id, d.rule_code, d.responsible_role, d.due_on, d.days_overdue, d.reason,
           g.members, g.team_id is null as teamless
      from direct d
      join groups g on g.role = d.responsible_role
                   and (g.team_id = d.team_id
                        or (g.team_id is null
                            and not exists (select 1 from groups t where t.role = d.responsible_role
                                                                      and t.team_id = d.team_id)))
     where d.direct_id is null
       and app_private.can_see_sample(d.srow, g.rep)
  )
  select d.direct_id, d.sid, d.rule_id, d.rule_code, d.responsible_role, d.due_on, d.days_overdue, d.reason, d.direct_via
    from direct d
   where d.direct_id is not null and app_private.can_see_sample(d.srow, d.direct_row)
  union all
  select m.id, f.sid, f.rule_id, f.rule_code, f.responsible_role, f.due_on, f.days_overdue, f.reason,
         case when f.teamless then 'role' else 'team' end
    from fallback f
    cross join lateral unnest(f.members) m(id)
$$;
comment on function app_private.overdue_for(date, bigint, boolean) is 'Exactly who must chase which sample on p_day, under which rule (via: holder, sender, requester, team or role). Owner only: the morning job and the definer entry points.';

-- The morning job: one outbox row per person with anything to chase; the unique
-- dedupe key makes a second run the same day add nothing. A mail lists the
-- p_max_lines most overdue samples and says how many there are in all (the rest are
-- on the person's dashboard and in their overdue list PDF).
create or replace function app_private.queue_overdue_mail(p_day date, p_max_lines integer default 100) returns integer
language plpgsql volatile
set jit = off
set work_mem = '256MB'
as $$
declare
  v_rows integer;
begin
  insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload)
  select 'overdue', o.staff_id, p_day, format('overdue:%s:%s', o.staff_id, p_day), p.email,
         format('%s overdue sample%s to chase, %s', max(o.total), case when max(o.total) > 1 then 's' else '' end,
                to_char(p_day, 'DD Mon YYYY')),
         jsonb_build_object('full_name', p.full_name, 'total', max(o.total), 'lines', jsonb_agg(jsonb_build_object(
           'sample_id', s.id, 'title', s.title,
           'state', case when s.state = 'returned' and s.withdrawn_at is not null then 'withdrawn' else s.state::text end,
           'days_overdue', o.days_overdue, 'due_on', o.due_on, 'reason', o.reason, 'rule', o.rule_code,
           'held_by', coalesce(h.full_name, f.name, l.code, case when s.state = 'ordered' then su.name end, '-'))
           order by o.n))
    from (select x.*, row_number() over w as n, count(*) over (partition by x.staff_id) as total
            from app_private.overdue_for(p_day) x
          window w as (partition by x.staff_id order by x.days_overdue desc, x.sample_id, x.rule_id)) o
    join app.staff p on p.id = o.staff_id
    join app.samples s on s.id = o.sample_id
    left join app.staff h on h.id = s.holder_id
    left join app.factories f on f.id = s.factory_id and s.state = 'at-factory'
    left join app.locations l on l.id = s.location_id
    left join app.suppliers su on su.id = s.supplier_id
   where o.n <= greatest(p_max_lines, 1)
   group by o.staff_id, p.email, p.full_name
  on conflict (dedupe_key) do nothing;
  get diagnostics v_rows = row_count;
  -- the Watching section (sql/functions/095_watch_mail.sql): into these mails, or a mail of its own
  return v_rows + app_private.queue_watch_mail(p_day);
end
$$;
comment on function app_private.queue_overdue_mail(date, integer) is 'The morning job (pg_cron tracker-alerts-morning): queues one overdue mail per person for p_day listing their p_max_lines most overdue samples (and the total), with the Watching section (app_private.queue_watch_mail); re-running the same day queues nothing new. Returns the rows queued.';

create or replace function app_private.queue_digests(p_day date) returns integer
language plpgsql volatile
as $$
declare
  v_rows integer;
begin
  insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload)
  select 'digest', p.id, p_day, format('digest:%s:%s', p.id, to_char(p_day, 'IYYY-"W"IW')), p.email,
         format('Weekly sample digest, week %s', to_char(p_day, 'IW IYYY')), jsonb_build_object('full_name', p.full_name)
    from app.staff p
   where p.active and p.role in ('ops_director', 'md')
  on conflict (dedupe_key) do nothing;
  get diagnostics v_rows = row_count;
  return v_rows;
end
$$;
comment on function app_private.queue_digests(date) is 'The weekly job (pg_cron tracker-alerts-weekly-digest): one digest mail per director per ISO week; the PDF is rendered as the recipient by the mailer.';

create or replace function app_private.queue_welcome_mail(p_staff app.staff, p_token text) returns void
language sql volatile
as $$
  insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload)
  values ('welcome', p_staff.id, current_date,
          format('welcome:%s:%s', p_staff.id, left(encode(sha256(convert_to(p_token, 'UTF8')), 'hex'), 16)),
          p_staff.email, 'Welcome to the sample tracker',
          jsonb_build_object('full_name', p_staff.full_name, 'role', p_staff.role, 'token', p_token,
                             'expires_at', now() + interval '7 days'))
  on conflict (dedupe_key) do nothing
$$;
comment on function app_private.queue_welcome_mail(app.staff, text) is 'Queues the role-aware welcome mail with the sign-up link (app.create_invite calls it); the mailer removes the token from the row once sent.';

-- The responsible person's check for extend / chased: are they (or a director) among
-- those who must chase this sample under this rule on the day it is or would be overdue?
create or replace function app_private.require_responsible(p_sample_id bigint, p_rule_code text, p_what text)
returns table (sample app.samples, rule_id integer, due_on date, responsible_id bigint)
language plpgsql volatile
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_s app.samples;
  v_rule app.overdue_rules;
  v_due date;
  v_today date := app.clock()::date;
  v_responsible bigint;
begin
  select * into v_s from app.samples s where s.id = p_sample_id for update;
  if not found or not app_private.can_see_sample(v_s, v_me) then
    raise exception using errcode = 'TR006', message = format('no sample %s', p_sample_id),
      hint = 'Check the number on the tag.';
  end if;
  select * into v_rule from app.overdue_rules r where r.code = p_rule_code and r.active;
  if not found then
    raise exception using errcode = 'TR005', message = format('there is no active overdue rule "%s"', p_rule_code),
      hint = 'Pick one of the rules listed on the sample page.';
  end if;
  -- the due day under the rule (with extensions), whether or not it has passed yet
  select h.due_on into v_due
    from app.overdue_hits(v_s.id, v_s.state, v_s.state_changed_at, v_s.expected_on, v_s.return_due_on, v_s.on_loan,
                          'infinity'::date, v_s.transit_since) h
   where h.rule_id = v_rule.id;
  if v_due is null then
    raise exception using errcode = 'TR030',
      message = format('sample %s is %s: the rule "%s" does not apply to it', v_s.id, v_s.state, v_rule.description),
      hint = 'Only a rule that applies to the sample in its current state can be extended or chased.';
  end if;
  select o.staff_id into v_responsible
    from app_private.overdue_for(greatest(v_today, v_due + 1), v_s.id, true) o
   where o.rule_id = v_rule.id
   order by o.staff_id = v_me.id desc
   limit 1;
  if v_responsible is distinct from v_me.id and not app.current_staff_is_director() then
    raise exception using errcode = 'TR031',
      message = format('only the person who must chase sample %s (a %s) or a director can %s', v_s.id,
                       replace(v_rule.responsible_role::text, '_', ' '), p_what),
      detail = format('rule: %s', v_rule.description),
      hint = 'Ask the person named in the overdue mail, or a director.';
  end if;
  return query select v_s, v_rule.id, v_due, coalesce(v_responsible, v_me.id);
end
$$;
comment on function app_private.require_responsible(bigint, text, text) is 'Locks the sample and checks that the caller must chase it under the rule (or is a director); TR006, TR005, TR030, TR031 otherwise.';

create or replace function app.extend_due_date(p_sample_id bigint, p_rule_code text, p_due_on date, p_reason text)
returns date
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_r record;
  v_today date := app.clock()::date;
begin
  if btrim(coalesce(p_reason, '')) = '' then
    raise exception using errcode = 'TR004', message = format('a reason is needed to extend the due date of sample %s', p_sample_id),
      hint = 'Say why, e.g. "supplier asked for two more weeks".';
  end if;
  if p_due_on is null then
    raise exception using errcode = 'TR004', message = format('a new due date is needed for sample %s', p_sample_id);
  end if;
  select * into v_r from app_private.require_responsible(p_sample_id, p_rule_code, 'extend its due date');
  if p_due_on <= greatest(v_r.due_on, v_today - 1) or p_due_on > v_today + 90 then
    raise exception using errcode = 'TR032',
      message = format('sample %s: the new due date %s must be after %s and at most 90 days from today',
                       p_sample_id, to_char(p_due_on, 'DD Mon YYYY'), to_char(greatest(v_r.due_on, v_today - 1), 'DD Mon YYYY')),
      hint = 'Pick a later date, no more than 90 days ahead.';
  end if;
  insert into app.overdue_extensions (sample_id, rule_id, state_since, due_before, due_on, reason, supplier_id,
                                      responsible_id, extended_by)
  values (p_sample_id, v_r.rule_id,
          -- the extension holds while the sample stays in this state (for a handover rule: this handover)
          (select case when r.condition = 'unconfirmed_handover' then (v_r.sample).transit_since
                       else (v_r.sample).state_changed_at end from app.overdue_rules r where r.id = v_r.rule_id),
          v_r.due_on, p_due_on, btrim(p_reason),
          (v_r.sample).supplier_id, v_r.responsible_id, v_me.id);
  return p_due_on;
end
$$;
comment on function app.extend_due_date(bigint, text, date, text) is 'The person who must chase a sample (or a director) moves its due day under a rule, with a reason; kept as lateness history (app.overdue_extensions, audited). TR004, TR006, TR030, TR031, TR032.';

create or replace function app.mark_chased(p_sample_id bigint, p_rule_code text, p_note text default null)
returns date
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_r record;
  v_today date := app.clock()::date;
begin
  select * into v_r from app_private.require_responsible(p_sample_id, p_rule_code, 'mark it chased');
  if v_r.due_on >= v_today then
    raise exception using errcode = 'TR030', message = format('sample %s is not overdue yet (due %s)', p_sample_id,
                                                              to_char(v_r.due_on, 'DD Mon YYYY')),
      hint = 'Mark a sample chased once it is overdue.';
  end if;
  insert into app.overdue_chases (sample_id, rule_id, chased_by, chased_on, sample_version, note)
  values (p_sample_id, v_r.rule_id, v_me.id, v_today, (v_r.sample).version, nullif(btrim(p_note), ''))
  on conflict (sample_id, rule_id, chased_on) do nothing;
  return v_today;
end
$$;
comment on function app.mark_chased(bigint, text, text) is '"Chased today": the sample leaves tomorrow''s mail unless it changes before then. Same who-may as app.extend_due_date.';

create or replace function app.my_overdue(p_day date default null, p_sample_id bigint default null)
returns table (sample_id bigint, rule_code text, due_on date, days_overdue integer, reason text, via text)
language sql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
  select o.sample_id, o.rule_code, o.due_on, o.days_overdue, o.reason, o.via
    from app_private.overdue_for(coalesce(p_day, app.clock()::date), p_sample_id, true) o
   where o.staff_id = app.current_staff_id()
$$;
comment on function app.my_overdue(date, bigint) is 'What the person signed in must chase on a day (default today; one sample or all), chased ones included: the sample page''s extend/chased forms and the "my overdue list" PDF.';

-- Rule edits (ops director, UPDATE on a few columns): refused in our own words.
create or replace function app.overdue_responsible_roles() returns app.staff_role[]
language sql immutable parallel safe
as $$ select array(select r from unnest(enum_range(null::app.staff_role)) r where r <> 'system_admin') $$;
comment on function app.overdue_responsible_roles() is 'The roles an overdue rule may name as the one that chases: every role but the system admin, who neither holds nor handles samples. The rule editor offers these; the update trigger refuses any other (TR033).';

create or replace function app_private.tg_overdue_rules__check_update() returns trigger
language plpgsql
as $$
begin
  if new.days_allowed is null or new.days_allowed not between 0 and 365 then
    raise exception using errcode = 'TR033',
      message = format('rule "%s": days allowed must be between 0 and 365, not %s', old.code, coalesce(new.days_allowed::text, 'empty')),
      hint = 'Give a number of days from 0 to 365.';
  end if;
  if btrim(coalesce(new.description, '')) = '' then
    raise exception using errcode = 'TR033', message = format('rule "%s" needs a description', old.code);
  end if;
  if not (new.responsible_role = any (app.overdue_responsible_roles())) then
    raise exception using errcode = 'TR033',
      message = format('rule "%s": the system admin cannot be the role that chases samples', old.code),
      hint = 'Pick the role whose people hold or handle the sample.';
  end if;
  new.updated_at := now();
  return new;
end
$$;

-- The local capture server's mail, for the system admin's page.
create or replace function app.captured_mail(p_limit integer default 50, p_offset integer default 0)
returns table (id bigint, received_at timestamptz, mail_from text, rcpt_to text[], subject text, message text,
               total bigint)
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
begin
  if (app_private.require_staff()).role <> 'system_admin' then
    raise exception using errcode = 'TR002', message = 'only the system admin can read captured mail';
  end if;
  return query
    select c.id, c.received_at, c.mail_from, c.rcpt_to, c.subject, convert_from(c.message, 'UTF8'), count(*) over ()
      from app_private.mail_capture c
     order by c.id desc
     limit least(greatest(coalesce(p_limit, 50), 1), 500) offset greatest(coalesce(p_offset, 0), 0);
end
$$;
comment on function app.captured_mail(integer, integer) is 'Mail received by the local capture server (make run), newest first, with the total; system admin only.';

-- "Mail me my overdue list": the PDF is rendered by the mailer as this person and
-- attached; at most one such mail per person per minute.
create or replace function app.queue_my_overdue_pdf() returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_id bigint;
begin
  insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload)
  values ('my_overdue', v_me.id, app.clock()::date,
          format('my_overdue:%s:%s', v_me.id, to_char(now(), 'YYYY-MM-DD"T"HH24:MI')), v_me.email,
          format('Your overdue list, %s', to_char(app.clock(), 'DD Mon YYYY')),
          jsonb_build_object('full_name', v_me.full_name))
  on conflict (dedupe_key) do nothing
  returning id into v_id;
  return v_id;
end
$$;
comment on function app.queue_my_overdue_pdf() is 'Queues a mail to the person signed in with their overdue list as a PDF, rendered as them by the mailer; null when one was queued in the same minute.';
