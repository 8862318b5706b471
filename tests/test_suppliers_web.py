"""Issue 15 through Flask's test client on a private clone of the demo database: the
near-duplicate warning without JavaScript, supplier risk and holds in the forms, the
supplier page, the duplicates review, and watching."""
import re

import pytest

from conftest import signed_in_client, cloned_web_app


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_suppliers_web") as app:
        yield app



def one(db, sql, *params):
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


client_for = signed_in_client


def text(r):
    return r.get_data(as_text=True)


def in_flight_elsewhere(db):
    """A sample another team has in flight: (id, title, category, season)."""
    return db.execute("select s.id, s.title, s.category_id, s.season_id from app.samples s where s.state = 'ordered' "
                      "and s.team_id <> (select team_id from app.staff where email = 'buyer@example.com') "
                      "order by s.id limit 1").fetchone()


def test_a_request_like_one_in_flight_needs_the_tick_and_records_it(app, db):
    sid, title, cat, season = in_flight_elsewhere(db)
    c = client_for(app, "buyer")
    form = {"csrf": c.csrf, "title": title, "category": cat, "season": season}
    before = one(db, "select count(*) from app.samples")
    r = c.post("/samples/new", data=form)
    page = text(c.get(r.location))
    assert "similar" in page and "already in flight" in page and f'/samples/{sid}"' in page  # shown without JS
    assert one(db, "select count(*) from app.samples") == before
    shown = re.findall(r'name="despite_similar" value="(\d+)"', page)
    r = c.post("/samples/new", data={**form, "ack_similar": "1", "despite_similar": shown})
    new = int(r.location.rsplit("/", 1)[1])
    note = one(db, "select note from app.sample_events where sample_id = %s and action = 'request'", new)
    assert note.startswith(f"requested despite {len(shown)} similar") and str(sid) in note


def test_the_live_fragment_and_its_bad_input(app, db):
    sid, title, cat, season = in_flight_elsewhere(db)
    c = client_for(app, "buyer")
    frag = text(c.get("/duplicates/similar", query_string={"title": title, "category": cat, "season": season}))
    assert f'/samples/{sid}"' in frag
    assert text(c.get("/duplicates/similar", query_string={"title": "ab"})).strip() == ""
    assert c.get("/duplicates/similar", query_string={"title": "x\x00y"}).status_code == 400
    assert c.get("/duplicates/similar", query_string={"title": "dress", "category": "-1; drop"}).status_code == 400


def test_ordering_from_a_supplier_with_a_recent_reject_needs_the_tick(app, db):
    # the demo's bad suppliers have recent rejects; one of the buyer's requests
    sid = one(db, "select s.id from app.samples s join app.staff st on st.id = s.requested_by "
                  "where st.email = 'buyer@example.com' and s.state = 'requested' order by s.id limit 1")
    risky = one(db, "select s.supplier_id from app.qc_inspections i join app.samples s on s.id = i.sample_id "
                    "join app.suppliers su on su.id = s.supplier_id "
                    "where i.result = 'reject' and i.inspected_at > now() - interval '6 months' "
                    "and su.on_hold_at is null group by 1 order by count(*) desc limit 1")
    c = client_for(app, "buyer")
    page = text(c.get(f"/samples/{sid}"))
    assert "I have read this supplier" in page
    form = {"csrf": c.csrf, "supplier": risky, "unit_cost": "20", "currency": "GBP", "expected_on": "2099-01-01",
            "ack_similar": "1"}
    form["despite_similar"] = re.findall(r'name="despite_similar" value="(\d+)"', page)
    r = c.post(f"/samples/{sid}/act/order", data=form)
    assert "needs your acknowledgement" in text(c.get(r.location))
    assert one(db, "select state::text from app.samples where id = %s", sid) == "requested"
    r = c.post(f"/samples/{sid}/act/order", data={**form, "accept_supplier_risk": "on"})
    assert f"Sample {sid} ordered." in text(c.get(r.location))
    # the record fragment the form shows as the supplier is chosen names the rejects
    frag = text(c.get(f"/suppliers/{risky}/record"))
    assert "QC reject" in frag and "<q>" in frag


def test_supplier_page_hold_and_lift_by_a_senior_buyer_not_a_buyer(app, db):
    sup = one(db, "select min(id) from app.suppliers where active and on_hold_at is null")
    b = client_for(app, "buyer")
    assert "Put on hold" not in text(b.get(f"/suppliers/{sup}"))
    r = b.post(f"/suppliers/{sup}/hold", data={"csrf": b.csrf, "reason": "not mine to decide"})
    assert "You are not allowed" in text(b.get(r.location))
    assert one(db, "select on_hold_at is null from app.suppliers where id = %s", sup)
    sb = client_for(app, "senior_buyer")
    page = text(sb.get(f"/suppliers/{sup}"))
    assert "Put on hold" in page and "Quality record" in page
    r = sb.post(f"/suppliers/{sup}/hold", data={"csrf": sb.csrf, "reason": "audit failed"})
    page = text(sb.get(r.location))
    assert "on hold" in page and "audit failed" in page and "Lift the hold" in page
    # the request form marks it and the database refuses it, with the hold's sentence
    assert "(on hold)" in text(b.get("/samples/new"))
    name = one(db, "select name from app.suppliers where id = %s", sup)
    r = b.post("/samples/new", data={"csrf": b.csrf, "title": "Unique zebra print kaftan", "category": "1",
                                     "season": one(db, "select max(id) from app.seasons"), "supplier": sup})
    page = text(b.get(r.location))
    assert f"{name} is on hold" in page and "audit failed" in page
    r = sb.post(f"/suppliers/{sup}/hold", data={"csrf": sb.csrf, "reason": "re-audited", "lift": "1"})
    assert "Hold lifted." in text(sb.get(r.location))
    csv = sb.get(f"/suppliers/{sup}/samples.csv")
    assert csv.status_code == 200 and text(csv).startswith("No.,Title,State")


def test_duplicates_review_for_senior_buyers_only_and_dismissal(app, db):
    assert client_for(app, "buyer").get("/duplicates/").status_code == 403
    sb = client_for(app, "senior_buyer")
    page = text(sb.get("/duplicates/"))
    assert "Likely duplicates across teams" in page
    pairs = re.findall(r'name="a" value="(\d+)"><input type="hidden" name="b" value="(\d+)"', page)
    assert pairs, "the demo has same-titled samples in flight in two teams"
    a, b = pairs[0]
    r = sb.post("/duplicates/dismiss", data={"csrf": sb.csrf, "a": a, "b": b})
    page = text(sb.get(r.location))
    assert f"{a} and {b} are not duplicates" in page
    assert f'name="a" value="{a}"><input type="hidden" name="b" value="{b}"' not in page
    assert sb.get("/duplicates/pairs.csv").status_code == 200


def test_watching_a_sample_and_a_supplier(app, db):
    sid = one(db, "select min(id) from app.samples where state = 'received'")
    sup = one(db, "select min(id) from app.suppliers")
    c = client_for(app, "designer")
    r = c.post("/watching/toggle", data={"csrf": c.csrf, "sample_id": sid, "watch": "1"})
    assert "Stop watching" in text(c.get(r.location))
    c.post("/watching/toggle", data={"csrf": c.csrf, "supplier_id": sup, "watch": "1"})
    page = text(c.get("/watching/"))
    assert f'/samples/{sid}"' in page and f'/suppliers/{sup}"' in page
    assert f'/samples/{sid}"' not in text(client_for(app, "logistics").get("/watching/"))  # private
    c.post("/watching/toggle", data={"csrf": c.csrf, "sample_id": sid, "watch": "0", "back": "watching"})
    assert f'/samples/{sid}"' not in text(c.get("/watching/"))
    assert c.post("/watching/toggle", data={"csrf": c.csrf, "sample_id": "abc"}).status_code == 400
