"""The lifecycle's finer rules: required fields, bad values, scope, QC rejection,
production approval, withdrawal, override, terminal states, identity, and the
promise that a failed call changes nothing."""
from datetime import date, timedelta

import psycopg
import pytest

from conftest import act_as
from helpers import Lifecycle
from tracker.roles import ROLES as ALL_ROLES


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def fails(lc, who, sql, params, code, match=None):
    """Assert that the call fails with our SQLSTATE and changes nothing."""
    conn = lc.conn
    before = conn.execute("select (select count(*) from app.sample_events), (select count(*) from audit.log), "
                          "(select count(*) from app.samples)").fetchone()
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call(who, sql, params)
    act_as(conn, None)
    assert err.value.sqlstate == code, str(err.value)
    if match:
        assert match in str(err.value), str(err.value)
    after = conn.execute("select (select count(*) from app.sample_events), (select count(*) from audit.log), "
                         "(select count(*) from app.samples)").fetchone()
    assert after == before
    return err.value


# ------------------------------------------------------------------ messages
def test_wrong_role_message_names_the_sample_state_and_who_can(lc):
    sid = lc.make("at-factory")
    e = fails(lc, "designer", "select app.return_from_factory(%s, %s)", (sid, lc.location), "TR002")
    assert e.diag.message_primary == (f"sample {sid} is at-factory; only logistics or a factory liaison can "
                      "bring it back from the factory")
    assert e.diag.message_detail == "you are signed in as a designer"


def test_wrong_state_message_says_when_it_is_possible(lc):
    sid = lc.make("ordered")
    e = fails(lc, "logistics", "select app.send_to_factory(%s, %s)", (sid, lc.factory), "TR001")
    assert e.diag.message_primary == f"sample {sid} is ordered; you can send it to a factory only when it is received, with-design or with-sales"


@pytest.mark.parametrize("state", ["returned", "cut-for-production"])
def test_terminal_states_are_final(lc, state):
    sid = lc.make(state)
    fails(lc, "logistics", "select app.return_to_supplier(%s, 'X1')", (sid,), "TR001", "which is final")
    fails(lc, "logistics", "select app.receive_sample(%s, %s)", (sid, lc.location), "TR001", "which is final")


# ------------------------------------------------------------------ required fields and values
REQUIRED = [
    ("buyer", "select app.request_sample('  ', %(cat)s, %(season)s)", "a title"),
    ("buyer", "select app.request_sample('Dress', null, %(season)s)", "a category"),
    ("buyer", "select app.request_sample('Dress', %(cat)s, null)", "a season"),
    ("buyer", "select app.order_sample(%(requested)s, null, 10, 'GBP', %(exp)s)", "a supplier"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, null, 'GBP', %(exp)s)", "a unit cost"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, 10, '', %(exp)s)", "a currency"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, 10, 'GBP', null)", "an expected date"),
    ("buyer", "select app.withdraw_request(%(requested)s, ' ')", "a reason"),
    ("logistics", "select app.receive_sample(%(ordered)s, null)", "a location"),
    ("logistics", "select app.hand_to_design(%(received)s, null)", "a holder"),
    ("logistics", "select app.hand_to_sales(%(received)s, null)", "a holder"),
    ("logistics", "select app.send_to_factory(%(received)s, null)", "a factory"),
    ("logistics", "select app.return_from_factory(%(factory)s, null)", "a location"),
    ("logistics", "select app.return_to_supplier(%(received)s, '')", "a courier reference"),
    ("qc", "select app.record_inspection(%(received)s, null)", "a result"),
    ("qc", "select app.record_inspection(%(received)s, 'reject', '  ')", "a reason for the rejection"),
    ("md", "select app.override_state(%(received)s, 'returned', '')", "a reason"),
    ("md", "select app.override_state(%(received)s, null, 'because')", "a target state"),
    # an override asks for what the target state needs
    ("md", "select app.override_state(%(factory)s, 'received', 'back early')", "a location"),
    ("md", "select app.override_state(%(received)s, 'with-design', 'typo')", "a holder"),
    ("md", "select app.override_state(%(received)s, 'with-sales', 'typo')", "a holder"),
    ("md", "select app.override_state(%(received)s, 'at-factory', 'typo')", "a factory"),
    ("md", "select app.override_state(%(received)s, 'ordered', 'typo')", "an expected date"),
    ("logistics", "select app.hand_back(%(received)s, null)", "a location"),
]


@pytest.mark.parametrize("who,sql,field", REQUIRED, ids=[f"{s.split('(')[0][10:]}-{f}" for _, s, f in REQUIRED])
def test_missing_required_field(lc, who, sql, field):
    p = {"cat": lc.category, "season": lc.season, "sup": lc.supplier, "exp": lc.expected,
         "requested": lc.make("requested"), "ordered": lc.make("ordered"), "received": lc.make("received"),
         "factory": lc.make("at-factory")}
    fails(lc, who, sql, p, "TR004", f"needs {field}")


INVALID = [
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, -5, 'GBP', %(exp)s)", "above zero"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, 10, 'XYZ', %(exp)s)", "unknown currency"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, 10, 'GBP', %(past)s)", "in the past"),
    ("buyer", "select app.order_sample(%(requested)s, %(sup)s, 10, 'GBP', %(exp)s, 0)", "at least 1"),
    ("buyer", "select app.order_sample(%(requested)s, -1, 10, 'GBP', %(exp)s)", "does not exist"),
    ("buyer", "select app.request_sample('Dress', -1, %(season)s)", "category -1 does not exist"),
    ("logistics", "select app.receive_sample(%(ordered)s, -1)", "location -1 does not exist"),
    ("logistics", "select app.hand_to_design(%(received)s, %(sales_exec)s)", "is not an active designer"),
    ("logistics", "select app.hand_to_sales(%(received)s, %(designer)s)", "is not an active sales lead"),
    ("logistics", "select app.send_to_factory(%(received)s, -1)", "factory -1 does not exist"),
    ("md", "select app.override_state(%(requested)s, 'received', 'typo', %(loc)s)", "has no supplier"),
    ("md", "select app.override_state(%(received)s, 'at-factory', 'typo', p_factory_id => -1)", "factory -1 does not exist"),
    ("md", "select app.override_state(%(received)s, 'with-design', 'typo', p_holder_id => %(sales_exec)s)",
     "is not an active designer"),
]


@pytest.mark.parametrize("who,sql,why", INVALID, ids=[w for _, _, w in INVALID])
def test_invalid_value(lc, who, sql, why):
    p = {"cat": lc.category, "season": lc.season, "sup": lc.supplier, "exp": lc.expected,
         "past": date.today() - timedelta(days=1), "requested": lc.make("requested"),
         "ordered": lc.make("ordered"), "received": lc.make("received"),
         "designer": lc.designer, "sales_exec": lc.sales_exec, "loc": lc.location}
    fails(lc, who, sql, p, "TR005", why)


def test_inactive_supplier_cannot_be_ordered_from(lc, conn):
    sid = lc.make("requested")
    conn.execute("update app.suppliers set active = false where id = %s", (lc.supplier,))
    fails(lc, "buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s)", (sid, lc.supplier, lc.expected),
          "TR005", "inactive")


@pytest.mark.parametrize("fn", ["order_sample(%s, 1, 1, 'GBP', current_date)", "receive_sample(%s, 1)",
                                "return_to_supplier(%s, 'X')", "withdraw_request(%s, 'x')"])
def test_unknown_sample(lc, fn):
    fails(lc, "md", f"select app.{fn}", (99999999,), "TR006", "sample 99999999 not found")


# ------------------------------------------------------------------ scope
def test_only_the_requesting_buyer_or_a_team_senior_buyer_may_order(lc, conn):
    sid = lc.make("requested")
    other_ww_buyer = conn.execute(
        "select email from app.staff where role = 'buyer' and active and team_id = "
        "(select team_id from app.staff where email = 'buyer@example.com') and email <> 'buyer@example.com' "
        "limit 1").fetchone()[0]
    other_team_senior = conn.execute(
        "select email from app.staff where role = 'senior_buyer' and team_id <> "
        "(select team_id from app.staff where email = 'buyer@example.com') limit 1").fetchone()[0]
    args = (sid, lc.supplier, lc.expected)
    sql = "select app.order_sample(%s, %s, 10, 'GBP', %s)"
    fails(lc, other_ww_buyer, sql, args, "TR003", "only they or a senior buyer of team WW can order it")
    fails(lc, other_team_senior, sql, args, "TR003")
    # positive controls: the team's senior buyer can
    lc.call("senior_buyer", sql, args)
    assert lc.state(sid) == "ordered"


def test_only_a_senior_buyer_of_the_team_approves(lc, conn):
    sid = lc.make("at-factory")
    other_senior = conn.execute("select email from app.staff where role = 'senior_buyer' and team_id <> "
                                "(select team_id from app.samples where id = %s) limit 1", (sid,)).fetchone()[0]
    fails(lc, other_senior, "select app.approve_for_production(%s)", (sid,), "TR003", "team WW")
    lc.call("senior_buyer", "select app.approve_for_production(%s)", (sid,))
    fails(lc, "senior_buyer", "select app.approve_for_production(%s)", (sid,), "TR001", "already approved")


# ------------------------------------------------------------------ QC
def test_rejected_sample_can_only_be_returned_and_the_rejection_stays(lc, conn):
    sid = lc.make("received")
    lc.call("qc", "select app.record_inspection(%s, 'reject', 'Seams open', 'photo 3 shows it')", (sid,))
    for who, sql, args in [("logistics", "select app.hand_to_design(%s, %s)", (sid, lc.designer)),
                           ("logistics", "select app.send_to_factory(%s, %s)", (sid, lc.factory)),
                           ("qc", "select app.record_inspection(%s, 'pass')", (sid,)),
                           ("senior_buyer", "select app.approve_for_production(%s)", (sid,))]:
        fails(lc, who, sql, args, "TR008", "failed QC")
    lc.call("logistics", "select app.return_to_supplier(%s, 'DHL 9')", (sid,))
    assert lc.state(sid) == "returned"
    row = conn.execute("select s.qc_rejected, i.result::text, i.reason, n.notes from app.samples s "
                       "join app.qc_inspections i on i.sample_id = s.id "
                       "left join app.qc_inspection_notes n on n.inspection_id = i.id where s.id = %s",
                       (sid,)).fetchone()
    assert row == (True, "reject", "Seams open", "photo 3 shows it")
    # the rejection cannot be edited or removed, by anyone, the owner included
    for sql in ["update app.qc_inspections set result = 'pass' where sample_id = %s",
                "delete from app.qc_inspections where sample_id = %s"]:
        with pytest.raises(psycopg.Error) as err:
            with conn.transaction():
                conn.execute("set local role tracker_owner")
                conn.execute(sql, (sid,))
        assert err.value.sqlstate == "TR011"
    event = conn.execute("select details from app.sample_events where sample_id = %s and action = 'inspect'",
                         (sid,)).fetchone()[0]
    assert event["result"] == "reject" and "notes" not in event and "photo" not in str(event)


def test_cut_needs_approval_first(lc):
    sid = lc.make("at-factory")
    fails(lc, "factory_liaison", "select app.cut_for_production(%s)", (sid,), "TR009", "approve it first")
    lc.call("senior_buyer", "select app.approve_for_production(%s)", (sid,))
    lc.call("factory_liaison", "select app.cut_for_production(%s)", (sid,))
    assert lc.state(sid) == "cut-for-production"


# ------------------------------------------------------------------ loans, withdrawal, override
def test_on_loan_sample_gets_return_due_21_days_after_receipt(lc, conn):
    sid = lc.make("received", on_loan=True)
    due, received = conn.execute("select return_due_on, received_on from app.samples where id = %s",
                                 (sid,)).fetchone()
    assert received == date.today() and due == date.today() + timedelta(days=21)
    sid2 = lc.make("received")
    assert conn.execute("select return_due_on from app.samples where id = %s", (sid2,)).fetchone()[0] is None


def test_withdraw_a_request(lc, conn):
    sid = lc.make("requested")
    lc.call("buyer", "select app.withdraw_request(%s, 'Duplicate of 1042')", (sid,))
    state, withdrawn = conn.execute("select state::text, withdrawn_at from app.samples where id = %s",
                                    (sid,)).fetchone()
    assert state == "returned" and withdrawn is not None
    assert conn.execute("select note from app.sample_events where sample_id = %s and action = 'withdraw'",
                        (sid,)).fetchone()[0] == "Duplicate of 1042"


@pytest.mark.parametrize("director", ["ops_director", "md"])
def test_director_override_from_a_terminal_state_with_reason(lc, conn, director):
    sid = lc.make("returned")
    lc.call(director, "select app.override_state(%s, 'received', 'Courier never collected it', %s)",
            (sid, lc.location))
    assert lc.state(sid) == "received"
    ev = conn.execute("select is_override, note, actor_role from app.sample_events where sample_id = %s "
                      "order by id desc limit 1", (sid,)).fetchone()
    assert ev == (True, "Courier never collected it", director)


@pytest.mark.parametrize("role", ["buyer", "senior_buyer", "designer", "sales_lead", "sales_executive", "qc",
                                  "factory_liaison", "logistics", "finance", "system_admin"])
def test_only_directors_override(lc, role):
    sid = lc.make("received")
    fails(lc, role, "select app.override_state(%s, 'returned', 'tidy up')", (sid,), "TR002")


def test_request_by_non_buyer_refused_and_by_buyer_lands_in_own_team(lc, conn):
    fails(lc, "designer", "select app.request_sample('Dress', %s, %s)", (lc.category, lc.season), "TR002",
          "only a buyer or a senior buyer can request a sample")
    sid = lc.make("requested")
    team, by = conn.execute("select t.code, s.requested_by from app.samples s join app.teams t on t.id = s.team_id "
                            "where s.id = %s", (sid,)).fetchone()
    assert team == "WW" and by == lc.people.get("buyer")["id"]


# ------------------------------------------------------------------ nobody updates state directly
@pytest.mark.parametrize("role", ALL_ROLES)
def test_nobody_can_update_the_state_column(lc, conn, role):
    sid = lc.make("received")
    act_as(conn, lc.people.get(role))
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("update app.samples set state = 'returned' where id = %s", (sid,))
    act_as(conn, None)
    assert err.value.sqlstate == "42501"
    assert lc.state(sid) == "received"


# ------------------------------------------------------------------ identity
def test_inactive_staff_cannot_act(lc, conn):
    sid = lc.make("ordered")
    logistics = lc.people.get("logistics")
    conn.execute("update app.staff set active = false where id = %s", (logistics["id"],))
    fails(lc, logistics, "select app.receive_sample(%s, %s)", (sid, lc.location), "TR010")


def test_staff_id_for_a_different_role_is_no_identity(lc, conn):
    """The app switched to role logistics but claims the MD's staff id: nobody."""
    sid = lc.make("ordered")
    md = lc.people.get("md")
    fails(lc, dict(md, role="logistics"), "select app.receive_sample(%s, %s)", (sid, lc.location), "TR010")


def test_direct_login_cannot_become_someone_else_with_the_guc(conn):
    """A personal login that is a member of logistics but has no staff row gets no identity,
    whatever it writes into tracker.session (here: the MD's live session token)."""
    conn.execute("create role test_intruder login")
    conn.execute("grant logistics to test_intruder")
    md_id = conn.execute("select id from app.staff where email = 'md@example.com'").fetchone()[0]
    md_session = conn.execute("select app_private.start_session(%s)", (md_id,)).fetchone()[0]
    conn.execute("set local session authorization test_intruder")
    conn.execute("select set_config('tracker.session', %s, true)", (md_session,))
    assert conn.execute("select app.current_staff_id()").fetchone()[0] is None
    conn.execute("set local session authorization default")


def test_inspection_keeps_the_supplier_record_and_the_last_result(lc, conn):
    before = conn.execute("select coalesce((select inspections from app.supplier_quality where supplier_id = %s), 0), "
                          "coalesce((select rejects from app.supplier_quality where supplier_id = %s), 0)",
                          (lc.supplier, lc.supplier)).fetchone()
    a, b = lc.make("received"), lc.make("received")
    lc.call("qc", "select app.record_inspection(%s, 'pass')", (a,))
    lc.call("qc", "select app.record_inspection(%s, 'reject', 'Wrong label')", (b,))
    after = conn.execute("select inspections, rejects from app.supplier_quality where supplier_id = %s",
                         (lc.supplier,)).fetchone()
    assert after == (before[0] + 2, before[1] + 1)
    assert conn.execute("select last_qc_result::text from app.samples where id = %s", (a,)).fetchone()[0] == "pass"
    assert conn.execute("select last_qc_result::text from app.samples where id = %s", (b,)).fetchone()[0] == "reject"
    # the rejection joined the comment thread, marked
    assert conn.execute("select body, is_qc_rejection from app.sample_comments where sample_id = %s",
                        (b,)).fetchone() == ("QC rejected: Wrong label", True)
