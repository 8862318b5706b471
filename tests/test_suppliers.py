"""Supplier quality at order time, supplier holds and watching (issue 15, items 2-4),
in the database: the hold blocks requests and orders in SQL, a recent QC reject needs an
acknowledgement, the record and its rejects show what they may, watches are private."""
import psycopg
import pytest

from conftest import act_as
from helpers import Lifecycle


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def refused(lc, who, sql, params=()):
    with pytest.raises(psycopg.Error) as err:
        with lc.conn.transaction():
            lc.call(who, sql, params)
    return err.value


def reject(lc, sid, reason="seams open at the shoulder"):
    lc.call("qc", "select app.record_inspection(%s, 'reject', %s)", (sid, reason))


# ---------------------------------------------------------------- hold
def test_a_hold_blocks_requests_and_orders_in_the_database_until_lifted(lc, conn):
    requested = lc.make("requested")
    lc.call("senior_buyer", "select app.hold_supplier(%s, 'counterfeit labels found')", (lc.supplier,))
    name = conn.execute("select name from app.suppliers where id = %s", (lc.supplier,)).fetchone()[0]
    sb = conn.execute("select full_name from app.staff where email = 'senior_buyer@example.com'").fetchone()[0]
    err = refused(lc, "buyer", "select app.request_sample('Dress', %s, %s, %s)", (lc.category, lc.season, lc.supplier))
    assert err.sqlstate == "TR014"
    assert name in str(err) and sb in str(err) and "counterfeit labels found" in str(err)
    err = refused(lc, "buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s)", (requested, lc.supplier, lc.expected))
    assert err.sqlstate == "TR014" and f"order sample {requested}" in str(err)
    assert lc.state(requested) == "requested"
    # a request with no supplier yet is fine (positive control: the hold is about this supplier)
    lc.call("buyer", "select app.request_sample('Dress', %s, %s)", (lc.category, lc.season))
    lc.call("ops_director", "select app.lift_supplier_hold(%s, 'labels verified by the brand')", (lc.supplier,))
    lc.call("buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s)", (requested, lc.supplier, lc.expected))
    assert lc.state(requested) == "ordered"
    history = conn.execute("select action, reason from app.supplier_hold_events where supplier_id = %s order by id",
                           (lc.supplier,)).fetchall()
    assert history == [("hold", "counterfeit labels found"), ("lift", "labels verified by the brand")]
    audited = conn.execute("select count(*) from audit.log where table_name = 'app.suppliers' and row_id = %s "
                           "and op = 'UPDATE'", (str(lc.supplier),)).fetchone()[0]
    assert audited >= 2


@pytest.mark.parametrize("role,code", [("buyer", "42501"), ("designer", "42501"), ("logistics", "42501"),
                                       ("finance", "42501"), ("system_admin", "42501"),
                                       ("senior_buyer", None), ("ops_director", None), ("md", None)])
def test_who_may_put_a_supplier_on_hold(lc, conn, role, code):
    sql = "select app.hold_supplier(%s, 'late again')"
    if code:
        assert refused(lc, role, sql, (lc.supplier,)).sqlstate == code
        assert conn.execute("select on_hold_at from app.suppliers where id = %s", (lc.supplier,)).fetchone()[0] is None
    else:
        lc.call(role, sql, (lc.supplier,))
        assert conn.execute("select on_hold_by from app.suppliers where id = %s",
                            (lc.supplier,)).fetchone()[0] == lc.people.get(role)["id"]


def test_hold_needs_a_reason_and_cannot_be_doubled_or_set_directly(lc, conn):
    assert refused(lc, "senior_buyer", "select app.hold_supplier(%s, ' ')", (lc.supplier,)).sqlstate == "TR004"
    lc.call("senior_buyer", "select app.hold_supplier(%s, 'late')", (lc.supplier,))
    assert refused(lc, "senior_buyer", "select app.hold_supplier(%s, 'again')", (lc.supplier,)).sqlstate == "TR001"
    assert refused(lc, "senior_buyer", "update app.suppliers set on_hold_at = null where id = %s",
                   (lc.supplier,)).sqlstate == "42501"
    assert refused(lc, "md", "select app.lift_supplier_hold(-1, 'x')").sqlstate == "TR006"


# ---------------------------------------------------------------- risk at order time
def test_a_recent_reject_needs_an_acknowledgement_to_order(lc, conn):
    bad = lc.make("received")
    reject(lc, bad)
    sid = lc.make("requested")
    err = refused(lc, "buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s)", (sid, lc.supplier, lc.expected))
    assert err.sqlstate == "TR015" and "1 QC reject in the last 6 months" in str(err)
    assert lc.state(sid) == "requested"
    lc.call("buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s, p_accept_supplier_risk => true)",
            (sid, lc.supplier, lc.expected))
    details = conn.execute("select details from app.sample_events where sample_id = %s and action = 'order'",
                           (sid,)).fetchone()[0]
    assert details["accepted_supplier_risk"] is True and details["recent_rejects"] == 1


def test_an_old_reject_does_not_need_an_acknowledgement(lc, conn):
    bad = lc.make("received")
    reject(lc, bad)
    conn.execute("set session_replication_role = replica")  # back-date the inspection (append-only guard off)
    conn.execute("update app.qc_inspections set inspected_at = inspected_at - interval '7 months' where sample_id = %s",
                 (bad,))
    conn.execute("set session_replication_role = origin")
    sid = lc.make("requested")
    lc.call("buyer", "select app.order_sample(%s, %s, 10, 'GBP', %s)", (sid, lc.supplier, lc.expected))
    assert lc.state(sid) == "ordered"


def test_the_record_and_its_rejects_show_the_reason_but_a_sample_number_only_if_visible(lc, conn):
    bad = lc.make("received")
    reject(lc, bad, "colour bleeds in the wash")
    lc.call("logistics", "select app.return_to_supplier(%s, 'DHL 9')", (bad,))
    conn.execute("update app.samples set expected_on = received_on - 3 where id = %s", (bad,))  # it came 3 days late

    def as_(who, sql):
        act_as(conn, lc.people.get(who) if isinstance(who, str) else who)
        rows = conn.execute(sql, (lc.supplier,)).fetchall()
        act_as(conn, None)
        return rows

    rec = as_("designer", "select rejects, recent_rejects, late, returned from app.supplier_record(%s)")[0]
    assert rec[0] >= 1 and rec[1] >= 1 and rec[2] >= 1 and rec[3] >= 1
    mine = as_("buyer", "select reason, sample_id from app.supplier_recent_rejects(%s) where reason like 'colour%%'")
    assert mine == [("colour bleeds in the wash", bad)]  # own team: visible, numbered
    other = conn.execute("select id, role::text, team_id, email from app.staff where role = 'buyer' and active "
                         "and team_id <> %s limit 1", (lc.people.get("buyer")["team_id"],)).fetchone()
    theirs = as_(dict(zip(("id", "role", "team_id", "email"), other)),
                 "select reason, sample_id from app.supplier_recent_rejects(%s) where reason like 'colour%%'")
    assert theirs == [("colour bleeds in the wash", None)]  # the reason, not the returned sample they cannot see
    # the QC notes never appear
    cols = [c.name for c in conn.execute("select * from app.supplier_recent_rejects(1) limit 0").description]
    assert "notes" not in cols


# ---------------------------------------------------------------- watching
def test_watches_are_private_and_only_of_visible_samples(lc, conn):
    sid = lc.make("ordered")
    mine = "select count(*) from app.watches where sample_id = %s"
    lc.call("buyer", "insert into app.watches (staff_id, sample_id) values (app.current_staff_id(), %s) returning id",
            (sid,))
    assert lc.call("buyer", mine, (sid,)) == 1
    assert lc.call("designer", mine, (sid,)) == 0  # someone else's watch
    # every row a person reads is their own
    assert lc.call("designer", "select count(*) from app.watches where staff_id <> app.current_staff_id()") == 0
    # QC cannot see an ordered sample, so cannot watch it
    assert refused(lc, "qc", "insert into app.watches (staff_id, sample_id) values (app.current_staff_id(), %s)",
                   (sid,)).sqlstate == "42501"
    # nor watch on someone else's behalf
    assert refused(lc, "designer", "insert into app.watches (staff_id, supplier_id) values (%s, %s)",
                   (lc.people.get("buyer")["id"], lc.supplier)).sqlstate == "42501"
    lc.call("designer", "insert into app.watches (staff_id, supplier_id) values (app.current_staff_id(), %s) "
                        "returning id", (lc.supplier,))
    assert lc.call("designer", "delete from app.watches where supplier_id = %s returning id", (lc.supplier,))
    assert lc.call("buyer", "delete from app.watches where sample_id = %s returning 1", (sid,)) == 1


def test_a_watched_sample_that_becomes_hidden_drops_out_of_the_list(lc, conn):
    sid = lc.make("received")
    lc.call("factory_liaison", "insert into app.watches (staff_id, sample_id) values (app.current_staff_id(), %s) "
                               "returning id", (sid,))
    watched = "select count(*) from app.watches w join app.samples s on s.id = w.sample_id where w.sample_id = %s"
    assert lc.call("factory_liaison", watched, (sid,)) == 1
    lc.call("logistics", "select app.return_to_supplier(%s, 'UPS 1')", (sid,))  # never went to a factory
    assert lc.call("factory_liaison", watched, (sid,)) == 0
    assert conn.execute("select count(*) from app.watches where sample_id = %s", (sid,)).fetchone()[0] == 1
