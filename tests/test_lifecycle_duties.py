"""Everyday correctness of the lifecycle (issue 10, items 2-4, 6, 7): no lost return duty,
overrides that leave consistent facts, a way back to the sample room for every holder,
only valid holders offered, and refusals that name the real reason."""
from datetime import date, timedelta

import psycopg
import pytest

from helpers import Lifecycle


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def refused(lc, who, sql, params):
    with pytest.raises(psycopg.Error) as err:
        with lc.conn.transaction():
            lc.call(who, sql, params)
    return err.value


def facts(conn, sid):
    return conn.execute("select state::text, holder_id, location_id, factory_id, received_on, return_due_on, "
                        "production_approved_at, courier_ref, withdrawn_at, on_loan from app.samples where id = %s",
                        (sid,)).fetchone()


# ---------------------------------------------------------------- item 2: on loan
def test_an_on_loan_sample_cannot_be_cut_until_bought_out(lc, conn):
    sid = lc.make("at-factory", approved=True, on_loan=True)
    err = refused(lc, "factory_liaison", "select app.cut_for_production(%s)", (sid,))
    assert err.sqlstate == "TR009" and "on loan" in err.diag.message_primary
    assert lc.state(sid) == "at-factory"
    # the duty is still there: due back, on loan
    assert facts(conn, sid)[5] is not None
    lc.call("buyer", "select app.buy_out(%s, 'Agreed 80 EUR')", (sid,))
    assert facts(conn, sid)[5] is None and facts(conn, sid)[9] is False
    lc.call("factory_liaison", "select app.cut_for_production(%s)", (sid,))
    assert lc.state(sid) == "cut-for-production"


def test_buy_out_is_for_the_team_and_for_loans_only(lc):
    loaned, owned = lc.make("received", on_loan=True), lc.make("received")
    assert refused(lc, "designer", "select app.buy_out(%s)", (loaned,)).sqlstate == "TR002"
    assert refused(lc, "buyer", "select app.buy_out(%s)", (owned,)).sqlstate == "TR001"
    other_team = lc.conn.execute("select email from app.staff where role = 'senior_buyer' and team_id <> "
                                 "(select team_id from app.staff where email = 'buyer@example.com') limit 1").fetchone()[0]
    assert refused(lc, other_team, "select app.buy_out(%s)", (loaned,)).sqlstate == "TR003"


# ---------------------------------------------------------------- item 3: overrides
def test_override_back_to_received_asks_for_a_location_and_clears_the_holder(lc, conn):
    sid = lc.make("with-design")
    lc.call("md", "select app.override_state(%s, 'received', 'Found on the shelf', %s)", (sid, lc.location))
    state, holder, location, *_ = facts(conn, sid)
    assert (state, holder, location) == ("received", None, lc.location)


def test_override_to_requested_clears_order_receipt_approval_and_cost(lc, conn):
    sid = lc.make("received", approved=True)
    lc.call("md", "select app.override_state(%s, 'requested', 'Ordered by mistake')", (sid,))
    state, holder, location, factory, received, due, approved, courier, withdrawn, _ = facts(conn, sid)
    assert state == "requested" and received is None and approved is None and location is None
    assert conn.execute("select count(*) from app.sample_costs where sample_id = %s", (sid,)).fetchone()[0] == 0
    # the audit log kept the cost that was removed
    assert conn.execute("select count(*) from audit.log where table_name = 'app.sample_costs' and op = 'DELETE' "
                        "and row_id = %s", (str(sid),)).fetchone()[0] == 1


def test_override_out_of_cut_to_sales_needs_and_sets_a_holder(lc, conn):
    sid = lc.make("cut-for-production")
    assert refused(lc, "md", "select app.override_state(%s, 'with-sales', 'Cut by mistake')", (sid,)).sqlstate == "TR004"
    lc.call("md", "select app.override_state(%s, 'with-sales', 'Cut by mistake', p_holder_id => %s)",
            (sid, lc.sales_exec))
    assert facts(conn, sid)[:2] == ("with-sales", lc.sales_exec)


def test_override_cut_of_a_loaned_sample_is_refused(lc):
    sid = lc.make("received", on_loan=True)
    assert refused(lc, "md", "select app.override_state(%s, 'cut-for-production', 'Rush')", (sid,)).sqlstate == "TR009"


# ---------------------------------------------------------------- item 4: hand back, sales executives
@pytest.mark.parametrize("state,who", [("with-design", "designer"), ("with-sales", "sales_lead"),
                                       ("with-sales", "sales_executive"), ("with-design", "logistics")])
def test_every_holder_can_put_a_sample_back_in_the_sample_room(lc, conn, state, who):
    sid = lc.make(state)
    lc.call(who, "select app.hand_back(%s, %s, 'Done with it')", (sid, lc.location))
    assert facts(conn, sid)[:3] == ("received", None, lc.location)


def test_a_sales_executive_has_the_moves_of_a_holder(lc, conn):
    sid = lc.make("with-sales")
    actions = {r[0] for r in conn.execute("select action from app.available_actions(%s)", (sid,))}
    assert actions == set()  # the superuser is nobody: no actions (positive control below)
    exec_ = lc.people.get("sales_executive")
    from conftest import act_as
    act_as(conn, exec_)
    actions = {r[0] for r in conn.execute("select action from app.available_actions(%s)", (sid,))}
    act_as(conn, None)
    # handed to them by logistics: they also confirm they have it
    assert actions == {"hand_back", "hand_to_design", "hand_to_sales", "confirm_handover"}


# ---------------------------------------------------------------- item 6: valid holders only
@pytest.mark.parametrize("who,action,want", [
    ("logistics", "hand_to_design", {"designer"}),
    ("designer", "hand_to_design", {"designer"}),
    ("logistics", "hand_to_sales", {"sales_lead", "sales_executive"}),
    ("qc", "hand_to_design", set()),  # not QC's move: nobody offered
])
def test_holder_choices_are_people_who_can_hold_it(lc, conn, who, action, want):
    from conftest import act_as
    sid = lc.make("received")
    person = lc.people.get(who)
    act_as(conn, person)
    rows = conn.execute("select id, role::text from app.holder_choices(%s, %s)", (sid, action)).fetchall()
    act_as(conn, None)
    assert {r[1] for r in rows} == want
    if who == "designer":
        assert rows[0][0] == person["id"]  # the designer themselves first, once
        assert [r[0] for r in rows].count(person["id"]) == 1


def test_logistics_handing_to_design_without_a_holder_is_told_to_pick_one(lc):
    err = refused(lc, "logistics", "select app.hand_to_design(%s)", (lc.make("received"),))
    assert err.sqlstate == "TR004" and "needs a holder" in err.diag.message_primary


# ---------------------------------------------------------------- item 7: the real reason
def test_a_visible_sample_gets_the_real_reason_not_not_found(lc):
    sid = lc.make("ordered")  # designers see ordered samples
    err = refused(lc, "designer", "select app.withdraw_request(%s, 'changed my mind')", (sid,))
    assert err.sqlstate == "TR001" and "not found" not in err.diag.message_primary
    # positive control: a hidden one is "not found"
    hidden = lc.make("requested")
    assert refused(lc, "designer", "select app.withdraw_request(%s, 'x')", (hidden,)).sqlstate == "TR006"


def test_receiving_an_on_loan_sample_sets_the_duty_once(lc, conn):
    sid = lc.make("received", on_loan=True)
    assert facts(conn, sid)[5] == date.today() + timedelta(days=21)
