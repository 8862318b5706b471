"""Watches live (issue 15, item 4): changes to a watched sample or supplier reach the
watcher through the realtime relay (real websockets against the app served on loopback),
only as the watcher's own policies show them. Every "receives nothing" has a positive
control: a director on the same relay receives the same change."""
import json
import threading

import psycopg
import pytest
from werkzeug.serving import make_server

from conftest import _url, act_as, cloned_web_app
from test_realtime import Live

SUPPLIER_KEYS = {"id", "name", "active", "on_hold", "on_hold_at", "hold_reason"}


@pytest.fixture(scope="module")
def live(template):
    with cloned_web_app(template, "tracker_test_watch_live") as app:
        srv = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        lv = Live(f"http://127.0.0.1:{srv.server_port}", app, app.dbname, "werkzeug")
        try:
            yield lv
        finally:
            lv.close()
            srv.shutdown()
            if "realtime" in app.extensions:
                app.extensions["realtime"].stop()


def watch(live, who, sample=None, supplier=None):
    live.act(who, "insert into app.watches (staff_id, sample_id, supplier_id) "
                  "values (app.current_staff_id(), %s, %s) on conflict do nothing", (sample, supplier))


def other_team_buyer(live) -> str:
    return live.admin.execute("select email from app.staff where role = 'buyer' and active and team_id <> "
                              "(select team_id from app.staff where email = 'buyer@example.com') "
                              "order by id limit 1").fetchone()[0]


def about(client, sample=None, supplier=None):
    return [e for e in client.events
            if (sample is not None and e["sample"] == sample)
            or (supplier is not None and e["kind"] == "supplier" and e["data"]["id"] == supplier)]


def test_a_watched_supplier_is_followed_live_without_its_contacts(live):
    supplier = live.admin.execute("select min(id) from app.suppliers where on_hold_at is null and active").fetchone()[0]
    contact = live.admin.execute("select email from app.supplier_contacts where supplier_id = %s limit 1",
                                 (supplier,)).fetchone()
    watch(live, "designer", supplier=supplier)
    designer, md = live.client("designer"), live.client("md")
    live.act("senior_buyer", "select app.hold_supplier(%s, 'Watch-live: quality review')", (supplier,))
    assert designer.pump(5, until=lambda c: about(c, supplier=supplier))
    (ev,) = about(designer, supplier=supplier)
    assert ev["sample"] is None and set(ev["data"]) == SUPPLIER_KEYS
    assert ev["data"]["on_hold"] is True and ev["data"]["hold_reason"] == "Watch-live: quality review"
    if contact:
        assert contact[0] not in json.dumps(designer.events)
    assert md.pump(5, until=lambda c: about(c, supplier=supplier))  # every role reads suppliers
    live.act("senior_buyer", "select app.lift_supplier_hold(%s, 'Watch-live: passed')", (supplier,))
    assert designer.pump(5, until=lambda c: len(about(c, supplier=supplier)) == 2)
    assert about(designer, supplier=supplier)[-1]["data"]["on_hold"] is False


def test_a_sample_of_a_watched_supplier_carries_the_supplier_for_the_page_to_match(live):
    sid = live.make("ordered")
    supplier = live.admin.execute("select supplier_id from app.samples where id = %s", (sid,)).fetchone()[0]
    logistics = live.client("logistics")
    live.act("logistics", "select app.receive_sample(%s, (select min(id) from app.locations))", (sid,))
    assert logistics.pump(5, until=lambda c: about(c, sample=sid))
    assert {e["data"]["supplier_id"] for e in about(logistics, sample=sid) if e["kind"] == "sample"} == {supplier}


def test_a_watched_sample_reaches_the_watcher_only_while_they_may_see_it_and_never_its_cost(live):
    """A buyer watches another team's sample in flight: its comments and moves reach them
    (no cost); once it leaves flight (cancelled) they may no longer see it, and nothing
    about it - not even that it changed - reaches them; the director gets all of it."""
    theirs_buyer = other_team_buyer(live)
    sid = live.make("ordered", requester=theirs_buyer)  # its own signals sequenced before anyone listens
    watch(live, "buyer", sample=sid)
    buyer, md = live.client("buyer"), live.client("md")
    start = buyer.cursor
    md_person = live.people.get("md")
    # 1. in flight: a comment and a costing change
    live.act(md_person, "insert into app.sample_comments (sample_id, author_id, body) "
                        "values (%s, %s, 'Watch-live hem')", (sid, md_person["id"]))
    live.act("finance", "update app.sample_costs set po_number = 'PO-WATCH-LIVE-9' where sample_id = %s returning 1",
             (sid,))
    assert md.pump(5, until=lambda c: {"comment", "cost"} <= {e["kind"] for e in about(c, sample=sid)})
    assert buyer.pump(5, until=lambda c: "comment" in {e["kind"] for e in about(c, sample=sid)})
    buyer.pump(0.5)
    assert {e["kind"] for e in about(buyer, sample=sid)} == {"comment"}  # no cost signal for another team's buyer
    assert "PO-WATCH-LIVE-9" not in json.dumps(buyer.events) and "PO-WATCH-LIVE-9" in json.dumps(md.events)
    # 2. cancelled by its own team: returned, out of flight, out of the buyer's sight
    seen_before = len(about(buyer, sample=sid))
    phase2 = max(md.ids())
    live.act(theirs_buyer, "select app.cancel_order(%s, 'Watch-live: cancelled')", (sid,))
    live.act(md_person, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'After the end')",
             (sid, md_person["id"]))
    assert md.pump(5, until=lambda c: any(e["kind"] == "comment" and e["data"]["body"] == "After the end"
                                          for e in about(c, sample=sid)))
    buyer.pump(1.0)
    assert len(about(buyer, sample=sid)) == seen_before
    assert "After the end" not in json.dumps(buyer.events) and "Watch-live: cancelled" not in json.dumps(buyer.events)
    # from the cancellation on, exactly what the buyer may SELECT from the outbox, none extra
    # (what came before was visible then: the view reads each thing as it is now)
    top = max(md.ids())
    assert start < phase2
    assert [i for i in buyer.ids() if phase2 < i <= top] == [i for i in live.visible_ids("buyer", phase2) if i <= top]


def test_the_page_lists_only_watched_samples_the_person_can_see(live):
    """The ids the page gives realtime.js (data-watch-samples) come through RLS too."""
    from realtime_support import session_cookie
    theirs_buyer = other_team_buyer(live)
    with psycopg.connect(_url(live.dbname)) as c:
        from helpers import Lifecycle
        lc = Lifecycle(c)
        visible = lc.make("ordered", requester=theirs_buyer)
        gone = lc.make("ordered", requester=theirs_buyer)
        c.commit()
    for sid in (visible, gone):
        watch(live, "buyer", sample=sid)
    live.act(theirs_buyer, "select app.cancel_order(%s, 'out of flight')", (gone,))
    client = live.app.test_client()
    client.set_cookie("session", session_cookie(live.app, live.token("buyer")))
    html = client.get("/watching/").get_data(as_text=True)
    samples = html.split('data-watch-samples="', 1)[1].split('"', 1)[0].split(",")
    assert str(visible) in samples and str(gone) not in samples
