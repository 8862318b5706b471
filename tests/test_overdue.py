"""Overdue monitoring in the database (issue 12): each rule fires on the right day and
not the day before, to the right person only; holder vs team fallback; only samples
the person can see; the morning job queues one mail per person per day and nothing
on a re-run; extensions and "chased today"; rule edits by the ops director; the
dashboards' highlight is the same definition. The day is passed in: no sleeping."""
from datetime import date, datetime, time, timedelta, timezone

import psycopg
import pytest

from conftest import act_as

D0 = date(2030, 3, 2)  # a day in the future of the demo data: nothing of the demo is "changed since"


def ts(d: date) -> datetime:
    return datetime.combine(d, time(10, 0), tzinfo=timezone.utc)


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def person(conn, email):
    r = conn.execute("select id, role::text, team_id from app.staff where email = %s", (email,)).fetchone()
    return {"id": r[0], "role": r[1], "team_id": r[2], "email": email}


def active_ids(conn, role, team=None):
    return {r[0] for r in conn.execute(
        "select id from app.staff where active and role = %s and team_id is not distinct from %s", (role, team))}


def make_sample(conn, state, since: date, requested_by, holder=None, on_loan=False, expected_on=None,
                return_due_on=None, factory=False, received=None):
    """A sample in a given state since a given day, inserted as the owner."""
    team = one(conn, "select team_id from app.staff where id = %s", (requested_by,))
    return one(conn, """
        insert into app.samples (title, category_id, season_id, team_id, requested_by, supplier_id, state, holder_id,
                                 factory_id, on_loan, expected_on, received_on, return_due_on, state_changed_at,
                                 location_id)
        values ('Overdue test sample', (select min(id) from app.categories), (select min(id) from app.seasons),
                %(team)s, %(req)s, (select min(id) from app.suppliers), %(state)s::app.sample_state, %(holder)s,
                case when %(factory)s then (select min(id) from app.factories) end, %(loan)s, %(exp)s, %(rec)s, %(due)s,
                %(since)s, case when %(state)s::app.sample_state = 'received' then (select min(id) from app.locations) end)
        returning id""", {"team": team, "req": requested_by, "state": state, "holder": holder, "factory": factory,
                          "loan": on_loan, "exp": expected_on, "rec": received, "due": return_due_on,
                          "since": ts(since)})


def chasers(conn, sample, day, rule=None):
    rows = conn.execute("select staff_id, rule_code, via from app_private.overdue_for(%s, %s)", (day, sample)).fetchall()
    return {r[0] for r in rows if rule is None or r[1] == rule}, {r[2] for r in rows}


# ------------------------------------------------------------------ each rule, its day
# rule, state, how the sample is built from (conn, buyer id), the due day, who must chase
def _who_requester(conn, buyer, holder):
    return {buyer}


def _who_role(role):
    return lambda conn, buyer, holder: active_ids(conn, role)


RULES = [
    ("requested-too-long", dict(state="requested"), D0 + timedelta(days=7), _who_requester),
    ("ordered-past-expected", dict(state="ordered", expected_on=D0 + timedelta(days=5)), D0 + timedelta(days=5),
     _who_requester),
    ("received-not-routed", dict(state="received", received=D0), D0 + timedelta(days=3), _who_role("logistics")),
    ("with-design-too-long", dict(state="with-design", holder="designer@example.com", received=D0),
     D0 + timedelta(days=10), lambda conn, buyer, holder: {holder}),
    ("with-sales-too-long", dict(state="with-sales", holder="sales_lead@example.com", received=D0),
     D0 + timedelta(days=10), lambda conn, buyer, holder: {holder}),
    ("at-factory-too-long", dict(state="at-factory", factory=True, received=D0), D0 + timedelta(days=14),
     _who_role("factory_liaison")),
    ("on-loan-past-return-due", dict(state="received", on_loan=True, received=D0, return_due_on=D0 + timedelta(days=21)),
     D0 + timedelta(days=21), _who_role("logistics")),
]


@pytest.mark.parametrize("rule,spec,due,who", RULES, ids=[r[0] for r in RULES])
def test_each_rule_fires_the_day_after_its_due_day_to_the_right_people_only(conn, rule, spec, due, who):
    buyer = person(conn, "buyer@example.com")["id"]
    spec = dict(spec)
    holder = person(conn, spec.pop("holder"))["id"] if "holder" in spec else None
    sid = make_sample(conn, since=D0, requested_by=buyer, holder=holder, **spec)
    assert chasers(conn, sid, due, rule)[0] == set(), "fired on its due day"
    got, _ = chasers(conn, sid, due + timedelta(days=1), rule)
    expected = who(conn, buyer, holder)
    assert expected and got == expected
    # only the responsible role: nobody of another role is told
    roles = {r[0] for r in conn.execute("select role::text from app.staff where id = any(%s)", (list(got),))}
    assert roles == {one(conn, "select responsible_role::text from app.overdue_rules where code = %s", (rule,))}
    days = one(conn, "select days_overdue from app_private.overdue_for(%s, %s) where rule_code = %s limit 1",
               (due + timedelta(days=9), sid, rule))
    assert days == 9


def test_holder_of_another_role_falls_back_to_the_responsible_role(conn):
    """A with-sales sample held by a sales executive: the sales lead(s) chase it, not the holder."""
    buyer = person(conn, "buyer@example.com")["id"]
    exec_ = person(conn, "sales_executive@example.com")["id"]
    sid = make_sample(conn, "with-sales", D0, buyer, holder=exec_, received=D0)
    got, via = chasers(conn, sid, D0 + timedelta(days=11))
    assert got == active_ids(conn, "sales_lead") and exec_ not in got and via == {"role"}
    # positive control: held by a sales lead, only that person
    lead = person(conn, "sales_lead@example.com")["id"]
    sid2 = make_sample(conn, "with-sales", D0, buyer, holder=lead, received=D0)
    assert chasers(conn, sid2, D0 + timedelta(days=11)) == ({lead}, {"holder"})


def test_requester_of_another_role_falls_back_to_the_buyers_of_the_samples_team(conn):
    senior = person(conn, "senior_buyer@example.com")
    sid = make_sample(conn, "requested", D0, senior["id"])
    got, via = chasers(conn, sid, D0 + timedelta(days=8))
    team_buyers = active_ids(conn, "buyer", senior["team_id"])
    other_buyers = {r[0] for r in conn.execute("select id from app.staff where role = 'buyer' and team_id <> %s",
                                               (senior["team_id"],))}
    assert team_buyers and other_buyers
    assert got == team_buyers and not (got & other_buyers) and via == {"team"}


def test_a_team_of_its_own_takes_precedence_over_the_teamless_staff_of_the_role(conn):
    """The role's staff in the sample's team chase it; the role's staff without a team only when the team has none."""
    buyer = person(conn, "buyer@example.com")
    new_liaison = one(conn, "insert into app.staff (email, full_name, role, team_id) values "
                            "('team.liaison@example.com', 'Team Liaison', 'factory_liaison', %s) returning id",
                      (buyer["team_id"],))
    sid = make_sample(conn, "at-factory", D0, buyer["id"], factory=True, received=D0)
    assert chasers(conn, sid, D0 + timedelta(days=15)) == ({new_liaison}, {"team"})
    other_team_buyer = one(conn, "select id from app.staff where role = 'buyer' and team_id <> %s limit 1",
                           (buyer["team_id"],))
    sid2 = make_sample(conn, "at-factory", D0, other_team_buyer, factory=True, received=D0)
    got, via = chasers(conn, sid2, D0 + timedelta(days=15))
    assert got == active_ids(conn, "factory_liaison") and new_liaison not in got and via == {"role"}


def test_an_inactive_holder_is_replaced_by_the_role(conn):
    buyer = person(conn, "buyer@example.com")["id"]
    designer = person(conn, "designer@example.com")["id"]
    sid = make_sample(conn, "with-design", D0, buyer, holder=designer, received=D0)
    conn.execute("update app.staff set active = false where id = %s", (designer,))
    got, via = chasers(conn, sid, D0 + timedelta(days=11))
    assert designer not in got and got == active_ids(conn, "designer") and via == {"role"}


def test_a_person_is_never_told_about_a_sample_they_cannot_see(conn):
    """Make QC responsible for requests (QC sees samples only from receipt): nobody is told;
    the positive control is the same rule with logistics, who see every sample."""
    buyer = person(conn, "buyer@example.com")["id"]
    sid = make_sample(conn, "requested", D0, buyer)
    conn.execute("update app.overdue_rules set responsible_role = 'qc' where code = 'requested-too-long'")
    assert chasers(conn, sid, D0 + timedelta(days=8))[0] == set()
    conn.execute("update app.overdue_rules set responsible_role = 'logistics' where code = 'requested-too-long'")
    assert chasers(conn, sid, D0 + timedelta(days=8))[0] == active_ids(conn, "logistics")


def test_every_demo_line_is_visible_to_its_recipient_through_rls(conn, today):
    rows = conn.execute("select staff_id, array_agg(sample_id) from app_private.overdue_for(%s) group by 1",
                        (today,)).fetchall()
    assert len(rows) >= 5
    for staff_id, samples in rows:
        p = conn.execute("select id, role::text, team_id from app.staff where id = %s", (staff_id,)).fetchone()
        act_as(conn, {"id": p[0], "role": p[1], "team_id": p[2]})
        seen = {r[0] for r in conn.execute("select id from app.samples where id = any(%s)", (samples,))}
        act_as(conn, None)
        assert seen == set(samples), f"staff {staff_id} would be mailed samples they cannot see"


# ------------------------------------------------------------------ the morning job
def test_the_morning_job_queues_one_mail_per_person_and_nothing_on_a_rerun(conn, today):
    expected = {r[0]: r[1] for r in conn.execute(
        "select staff_id, count(*) from app_private.overdue_for(%s) group by 1", (today,))}
    n = one(conn, "select app_private.queue_overdue_mail(%s)", (today,))
    assert n == len(expected) > 0
    rows = conn.execute("select staff_id, jsonb_array_length(payload->'lines') from app_private.mail_outbox "
                        "where kind = 'overdue' and day = %s", (today,)).fetchall()
    assert dict(rows) == expected
    assert one(conn, "select app_private.queue_overdue_mail(%s)", (today,)) == 0
    assert one(conn, "select count(*) from app_private.mail_outbox where kind = 'overdue' and day = %s", (today,)) == n
    # a person with nothing overdue gets no mail (and someone with something does: above)
    finance = person(conn, "finance@example.com")["id"]
    assert finance not in expected
    assert one(conn, "select count(*) from app_private.mail_outbox where staff_id = %s", (finance,)) == 0
    # the next day is a new mail
    assert one(conn, "select app_private.queue_overdue_mail(%s)", (today + timedelta(days=1),)) > 0


def test_mail_lines_carry_what_the_mail_shows(conn, today):
    conn.execute("select app_private.queue_overdue_mail(%s)", (today,))
    line = one(conn, "select payload->'lines'->0 from app_private.mail_outbox where kind = 'overdue' and day = %s "
                     "order by id limit 1", (today,))
    assert set(line) >= {"sample_id", "title", "state", "days_overdue", "held_by", "reason"}
    assert line["days_overdue"] > 0


# ------------------------------------------------------------------ one definition
def test_the_dashboards_highlight_is_the_same_definition_as_the_mail(conn, today):
    md = person(conn, "md@example.com")
    act_as(conn, md)
    highlighted = {r[0] for r in conn.execute("select id from app.sample_overview where is_overdue")}
    act_as(conn, None)
    mailed = {r[0] for r in conn.execute("select sample_id from app_private.overdue_for(%s, null, true)", (today,))}
    assert highlighted and highlighted == mailed
    # changing a rule changes both
    conn.execute("update app.overdue_rules set active = false where code = 'on-loan-past-return-due'")
    act_as(conn, md)
    after = {r[0] for r in conn.execute("select id from app.sample_overview where is_overdue")}
    act_as(conn, None)
    mailed_after = {r[0] for r in conn.execute("select sample_id from app_private.overdue_for(%s, null, true)", (today,))}
    assert after == mailed_after and after < highlighted


# ------------------------------------------------------------------ extend and chased
def late_received(conn, today):
    """A demo sample overdue today under received-not-routed, with logistics responsible."""
    return one(conn, "select sample_id from app_private.overdue_for(%s) where rule_code = 'received-not-routed' "
                     "order by sample_id limit 1", (today,))


def call_as(conn, who, sql, params):
    try:
        with conn.transaction():
            act_as(conn, who)
            result = conn.execute(sql, params).fetchone()
            act_as(conn, None)
            return result[0] if result else None
    except psycopg.Error as exc:
        act_as(conn, None)
        return exc


def test_the_responsible_person_extends_a_due_date_with_a_reason_and_it_is_audited(conn, today):
    sid = late_received(conn, today)
    logistics = person(conn, "logistics@example.com")
    new_due = today + timedelta(days=5)
    assert call_as(conn, logistics, "select app.extend_due_date(%s, 'received-not-routed', %s, %s)",
                   (sid, new_due, "Shelving arrives on Monday")) == new_due
    logi = active_ids(conn, "logistics")
    assert not (chasers(conn, sid, today, "received-not-routed")[0] & logi)
    assert not (chasers(conn, sid, new_due, "received-not-routed")[0] & logi)
    assert chasers(conn, sid, new_due + timedelta(days=1), "received-not-routed")[0] == logi
    row = conn.execute("select reason, responsible_id, extended_by, supplier_id is not distinct from "
                       "(select supplier_id from app.samples where id = %s) from app.overdue_extensions "
                       "where sample_id = %s", (sid, sid)).fetchone()
    assert row == ("Shelving arrives on Monday", logistics["id"], logistics["id"], True)
    assert one(conn, "select count(*) from audit.log where table_name = 'app.overdue_extensions' "
                     "and new_row->>'sample_id' = %s", (str(sid),)) == 1
    # the dashboards stop highlighting it for that rule
    act_as(conn, logistics)
    reason = one(conn, "select coalesce(overdue_reason, '') from app.sample_overview where id = %s", (sid,))
    act_as(conn, None)
    assert "received for" not in reason


@pytest.mark.parametrize("who,args,sqlstate", [
    ("designer", None, "TR031"),                         # not responsible for routing
    ("logistics", {"reason": ""}, "TR004"),              # no reason
    ("logistics", {"due": -1}, "TR032"),                 # in the past
    ("logistics", {"due": 200}, "TR032"),                # too far ahead
    ("logistics", {"rule": "at-factory-too-long"}, "TR030"),  # rule does not apply in this state
    ("logistics", {"rule": "no-such-rule"}, "TR005"),
    ("factory_liaison", {"sample": 0}, "TR006"),
], ids=["not-responsible", "no-reason", "past", "too-far", "rule-not-applying", "unknown-rule", "no-sample"])
def test_bad_extensions_are_refused_in_our_words_and_change_nothing(conn, today, who, args, sqlstate):
    args = args or {}
    sid = late_received(conn, today) if args.get("sample") is None else args["sample"]
    before = one(conn, "select count(*) from app.overdue_extensions")
    got = call_as(conn, person(conn, f"{who}@example.com"), "select app.extend_due_date(%s, %s, %s, %s)",
                  (sid, args.get("rule", "received-not-routed"), today + timedelta(days=args.get("due", 5)),
                   args.get("reason", "because")))
    assert isinstance(got, psycopg.Error) and got.sqlstate == sqlstate, got
    assert got.diag.message_primary and (sqlstate != "TR031" or got.diag.message_hint)
    assert one(conn, "select count(*) from app.overdue_extensions") == before


def test_a_director_may_extend_any_overdue_sample(conn, today):
    sid = late_received(conn, today)
    got = call_as(conn, person(conn, "ops_director@example.com"),
                  "select app.extend_due_date(%s, 'received-not-routed', %s, 'agreed with the supplier')",
                  (sid, today + timedelta(days=3)))
    assert got == today + timedelta(days=3)


def test_chased_today_leaves_tomorrows_mail_unless_the_sample_changes(conn, today):
    sid = late_received(conn, today)
    logistics = person(conn, "logistics@example.com")
    assert call_as(conn, logistics, "select app.mark_chased(%s, 'received-not-routed', 'rang the studio')",
                   (sid,)) == today
    tomorrow, after = today + timedelta(days=1), today + timedelta(days=2)
    assert chasers(conn, sid, tomorrow, "received-not-routed")[0] == set()
    assert chasers(conn, sid, after, "received-not-routed")[0] == active_ids(conn, "logistics")
    # it changed since (any update bumps nothing here; a transition bumps the version)
    conn.execute("update app.samples set version = version + 1 where id = %s", (sid,))
    assert chasers(conn, sid, tomorrow, "received-not-routed")[0] == active_ids(conn, "logistics")
    # someone who is not responsible cannot mark it
    got = call_as(conn, person(conn, "designer@example.com"), "select app.mark_chased(%s, 'received-not-routed', null)",
                  (sid,))
    assert isinstance(got, psycopg.Error) and got.sqlstate == "TR031"


# ------------------------------------------------------------------ the rules, as data
@pytest.mark.parametrize("role", ["buyer", "logistics", "md", "system_admin"])
def test_only_the_ops_director_edits_the_rules(conn, role):
    got = call_as(conn, person(conn, f"{role}@example.com"),
                  "update app.overdue_rules set days_allowed = 20 where code = 'at-factory-too-long' returning 1", None)
    assert isinstance(got, psycopg.Error) and got.sqlstate == "42501"


def test_the_ops_director_edits_a_rule_the_change_applies_and_is_audited(conn):
    director = person(conn, "ops_director@example.com")
    buyer = person(conn, "buyer@example.com")["id"]
    sid = make_sample(conn, "at-factory", D0, buyer, factory=True, received=D0)
    day = D0 + timedelta(days=16)
    assert chasers(conn, sid, day)[0]
    assert call_as(conn, director, "update app.overdue_rules set days_allowed = 20 where code = 'at-factory-too-long' "
                                   "returning days_allowed", None) == 20
    assert chasers(conn, sid, day)[0] == set()
    assert chasers(conn, sid, D0 + timedelta(days=21))[0]
    assert one(conn, "select count(*) from audit.log where table_name = 'app.overdue_rules' and op = 'UPDATE' "
                     "and new_row->>'days_allowed' = '20'") == 1
    bad = call_as(conn, director, "update app.overdue_rules set days_allowed = 400 where code = 'at-factory-too-long' "
                                  "returning 1", None)
    assert isinstance(bad, psycopg.Error) and bad.sqlstate == "TR033" and "0 and 365" in bad.diag.message_primary
