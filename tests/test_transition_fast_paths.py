"""The fast paths of V0023 in the lifecycle (lock_sample with SKIP LOCKED and no subtransaction,
check_rule answering the common case in one query, app.clock() reading its table only when the
demo setting is set) against the definitions they replaced: every entry point, as every role,
on samples in every state, with NULL and with plausible values - the same outcome, SQLSTATE,
message, detail and hint."""
from helpers import Lifecycle
from test_review_rt import OLD_CLOCK, _battery

PREVIOUS = [
    """create or replace function app_private.lock_sample(p_sample_id bigint, p_me app.staff) returns app.samples
language plpgsql volatile
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
$$;""",
    """create or replace function app_private.check_rule(p_s app.samples, p_action text, p_me app.staff)
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
$$;""",
    OLD_CLOCK,
]


def test_the_fast_paths_decide_exactly_as_the_definitions_they_replaced(conn):
    life = Lifecycle(conn)
    samples = [None, 0] + [conn.execute("select min(s.id) from app.samples s join app.teams t on t.id = s.team_id "
                                        "where t.code = 'WW' and state = %s", (st,)).fetchone()[0]
                           for st in ("requested", "ordered", "received", "with-design", "with-sales",
                                      "at-factory", "returned")]
    # and one that failed QC (only a return to the supplier or an override may move it)
    samples.append(life.make("received"))
    life.call("qc", "select app.record_inspection(%s, 'reject', 'Seams open')", (samples[-1],))
    new = _battery(conn, samples, life)
    with conn.transaction(force_rollback=True):
        for ddl in PREVIOUS:
            conn.execute(ddl)
        assert "skip locked" not in conn.execute(
            "select prosrc from pg_proc where oid = 'app_private.lock_sample'::regproc").fetchone()[0]
        old = _battery(conn, samples, life)
    assert len(new) > 1000 and any(r[3] == "ok" for r in new)  # positive control
    assert [r for r in new if r not in old] == [] and new == old
