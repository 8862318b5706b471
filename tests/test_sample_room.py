"""The sample room (issue 14): bulk actions and stocktakes in the database, and the scan
and stocktake pages through Flask's test client."""
import re
import threading

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import signed_in_client, _url, act_as, cloned_web_app, db_url
from helpers import Lifecycle


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def bulk(lc, who, action, ids, values, all_or_nothing=False):
    person = lc.people.get(who)
    act_as(lc.conn, person)
    rows = lc.conn.execute("select sample_id, ok, code, message from app.bulk_act(%s, %s, %s, %s)",
                           (action, ids, Jsonb(values), all_or_nothing)).fetchall()
    act_as(lc.conn, None)
    return {r[0]: r[1:] for r in rows}


# ---------------------------------------------------------------- bulk, in the database
def test_a_mixed_selection_applies_the_legal_ones_and_says_why_not_for_the_rest(lc, conn):
    ordered = [lc.make("ordered") for _ in range(3)]
    received = lc.make("received")
    requested = lc.make("requested")
    out = bulk(lc, "logistics", "receive", ordered + [received, requested, 99999999], {"location_id": lc.location})
    assert all(out[s][0] for s in ordered)
    assert [lc.state(s) for s in ordered] == ["received"] * 3
    assert out[received][:2] == (False, "TR001") and "received" in out[received][2]
    assert out[requested][:2] == (False, "TR001")  # logistics sees it, but it was never ordered
    assert out[99999999][:2] == (False, "TR006") and "not found" in out[99999999][2]
    # one event per sample done, none for the refused
    assert conn.execute("select count(*) from app.sample_events where sample_id = any(%s) and action = 'receive'",
                        (ordered + [requested],)).fetchone()[0] == 3


def test_all_or_nothing_changes_none_when_one_is_refused(lc, conn):
    ordered = [lc.make("ordered") for _ in range(3)]
    received = lc.make("received")
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            bulk(lc, "logistics", "receive", ordered + [received], {"location_id": lc.location}, True)
    assert err.value.sqlstate == "TR016"
    assert "1 of 4 samples cannot be receive" in str(err.value) and str(received) in err.value.diag.message_detail
    assert [lc.state(s) for s in ordered] == ["ordered"] * 3
    # positive control: the same selection without the refused sample goes through whole
    out = bulk(lc, "logistics", "receive", ordered, {"location_id": lc.location}, True)
    assert all(v[0] for v in out.values()) and [lc.state(s) for s in ordered] == ["received"] * 3


def test_a_bulk_selection_cannot_touch_a_sample_the_person_cannot_see(lc, conn):
    hidden = lc.make("ordered")       # QC cannot see ordered samples
    visible = lc.make("received")
    out = bulk(lc, "qc", "hand_to_design", [hidden, visible], {"holder_id": lc.designer})
    assert out[hidden][:2] == (False, "TR006") and "not found" in out[hidden][2]
    assert out[visible][:2] == (False, "TR002")  # seen, but QC does not hand samples around
    assert lc.state(hidden) == "ordered" and lc.state(visible) == "received"


def test_only_the_moves_and_only_their_fields(lc, conn):
    sid = lc.make("received")
    for action, code in (("override", "TR005"), ("approve_for_production", "TR005"), (None, "TR005")):
        with pytest.raises(psycopg.Error) as err:
            with conn.transaction():
                bulk(lc, "ops_director", action, [sid], {"to_state": "returned", "reason": "x"})
        assert err.value.sqlstate == code
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            bulk(lc, "logistics", "receive", list(range(1, 502)), {"location_id": lc.location})
    assert err.value.sqlstate == "TR005" and "at most 500" in str(err.value)
    # a value for another action is ignored, not applied: hand back needs a location
    out = bulk(lc, "designer", "hand_back", [sid], {"holder_id": lc.designer, "to_state": "returned"})
    assert out[sid][:2] == (False, "TR004") and "needs a location" in out[sid][2]
    assert lc.state(sid) == "received"


def test_a_sample_locked_by_a_single_action_is_reported_and_the_rest_go_through(shared_db):
    """Two real connections: one holds a sample's row lock (a single action in progress)
    while a bulk receive runs; that sample says "being changed", the others are received."""
    with psycopg.connect(_url(shared_db)) as setup:
        lc = Lifecycle(setup)
        ids = [lc.make("ordered") for _ in range(4)]
        setup.commit()
        try:
            with psycopg.connect(_url(shared_db)) as holder, psycopg.connect(_url(shared_db)) as bulker:
                holder.execute("select 1 from app.samples where id = %s for update", (ids[0],))
                blc = Lifecycle(bulker)
                out = bulk(blc, "logistics", "receive", ids, {"location_id": blc.location})
                assert out[ids[0]][:2] == (False, "TR007") and "someone else" in out[ids[0]][2]
                assert all(out[i][0] for i in ids[1:])
                bulker.rollback()
                holder.rollback()
        finally:
            setup.rollback()
            setup.execute("set session_replication_role = replica")
            setup.execute("delete from app.sample_events where sample_id = any(%s)", (ids,))
            setup.execute("delete from app.sample_costs where sample_id = any(%s)", (ids,))
            setup.execute("delete from app.samples where id = any(%s)", (ids,))
            setup.execute("set session_replication_role = origin")
            setup.commit()


# ---------------------------------------------------------------- stocktake, in the database
def test_stocktake_found_missing_and_unexpected(lc, conn):
    loc = conn.execute("insert into app.locations (code, name, kind) values ('ST-TEST', 'Count shelf', 'shelf') "
                       "returning id").fetchone()[0]
    here = [lc.make("received") for _ in range(3)]
    conn.execute("update app.samples set location_id = %s where id = any(%s)", (loc, here))
    elsewhere = lc.make("received")
    take = lc.call("logistics", "select app.start_stocktake(%s)", (loc,))
    for sid in (here[0], here[1], elsewhere, here[0]):  # scanned twice: counted once
        lc.call("logistics", "select expected from app.count_sample(%s, %s)", (take, sid))
    act_as(conn, lc.people.get("logistics"))
    report = {r[0]: r[1] for r in conn.execute("select sample_id, outcome from app.stocktake_report(%s)", (take,))}
    act_as(conn, None)
    assert report == {here[0]: "found", here[1]: "found", here[2]: "missing", elsewhere: "unexpected"}
    lc.call("logistics", "select app.close_stocktake(%s)", (take,))
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call("logistics", "select app.count_sample(%s, %s)", (take, here[2]))
    assert err.value.sqlstate == "TR001"
    # only logistics and directors count
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call("designer", "select app.start_stocktake(%s)", (loc,))
    assert err.value.sqlstate == "42501"


# ---------------------------------------------------------------- the pages
@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_sample_room") as app:
        yield app



client_for = signed_in_client


def test_scan_page_receives_a_box_and_keeps_the_refused_in_the_basket(app, db):
    ordered = [r[0] for r in db.execute("select id from app.samples where state = 'ordered' order by id limit 5")]
    received = db.execute("select min(id) from app.samples where state = 'received'").fetchone()[0]
    loc = db.execute("select min(id) from app.locations").fetchone()[0]
    c = client_for(app, "logistics")
    page = c.get("/scan", query_string=[("id", i) for i in ordered]).get_data(as_text=True)
    assert all(str(i) in page for i in ordered)
    r = c.post("/scan", data={"csrf": c.csrf, "basket": " ".join(map(str, ordered + [received])),
                              "action": "receive", "location_id": loc, "mode": "some"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "5 of 6 samples" in page
    assert f"{received}</a>\n      not done" in page
    assert re.search(r'<textarea id="basket"[^>]*>' + str(received) + "</textarea>", page)
    assert db.execute("select count(*) from app.samples where id = any(%s) and state = 'received'",
                      (ordered,)).fetchone()[0] == 5
    assert c.post("/scan", data={"csrf": c.csrf, "basket": "4421 nonsense", "action": "receive"}).status_code == 400
    assert c.post("/scan", data={"csrf": c.csrf, "basket": "4421", "action": "override"}).status_code == 400


def test_stocktake_pages(app, db):
    c = client_for(app, "logistics")
    loc = db.execute("select location_id from app.samples where state = 'received' and location_id is not null "
                     "group by 1 order by count(*) desc limit 1").fetchone()[0]
    r = c.post("/stocktake", data={"csrf": c.csrf, "location": loc})
    take = int(r.location.rsplit("/", 1)[1])
    expected = db.execute("select expected from app.stocktakes where id = %s", (take,)).fetchone()[0]
    r = c.post(f"/stocktake/{take}", data={"csrf": c.csrf, "number": str(expected[0])})
    page = c.get(r.location).get_data(as_text=True)
    assert f"{expected[0]}: found." in page and f"{len(expected) - 1} missing" in page
    assert c.get(f"/stocktake/{take}.csv").status_code == 200
    assert client_for(app, "designer").get(f"/stocktake/{take}").status_code in (403, 404)


# ---------------------------------------------------------------- confirmed handovers
def transit(conn, sid):
    return conn.execute("select transit_from, transit_since is not null from app.samples where id = %s",
                        (sid,)).fetchone()


def test_a_handover_is_in_transit_until_the_receiver_confirms(lc, conn):
    sid = lc.make("received")
    lc.call("logistics", "select app.hand_to_design(%s, %s)", (sid, lc.designer))
    assert transit(conn, sid) == (lc.people.get("logistics")["id"], True)
    assert lc.state(sid) == "with-design"  # still one of the eight states
    # another designer cannot confirm for the holder
    other = conn.execute("select id, role::text, team_id, email from app.staff where role = 'designer' and active "
                         "and id <> %s limit 1", (lc.designer,)).fetchone()
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call(dict(zip(("id", "role", "team_id", "email"), other)), "select app.confirm_handover(%s)", (sid,))
    assert err.value.sqlstate == "TR003" and "only they can confirm" in str(err.value)
    lc.call("designer", "select app.confirm_handover(%s)", (sid,))
    assert transit(conn, sid) == (None, False)
    ev = conn.execute("select action, details ->> 'handed_over_by' from app.sample_events where sample_id = %s "
                      "order by id desc limit 1", (sid,)).fetchone()
    assert ev == ("confirm_handover", str(lc.people.get("logistics")["id"]))
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call("designer", "select app.confirm_handover(%s)", (sid,))
    assert err.value.sqlstate == "TR001"


def test_taking_a_sample_yourself_needs_no_confirmation_and_moving_on_clears_it(lc, conn):
    sid = lc.make("received")
    lc.call("designer", "select app.hand_to_design(%s, %s)", (sid, lc.designer))
    assert transit(conn, sid) == (None, False)
    lc.call("designer", "select app.hand_to_sales(%s, %s)", (sid, lc.sales_exec))
    assert transit(conn, sid)[0] == lc.people.get("designer")["id"]
    lc.call("logistics", "select app.send_to_factory(%s, %s)", (sid, lc.factory))
    assert transit(conn, sid)[0] == lc.people.get("logistics")["id"]  # a new handover: to the factory
    lc.call("factory_liaison", "select app.confirm_handover(%s)", (sid,))
    assert transit(conn, sid) == (None, False)
