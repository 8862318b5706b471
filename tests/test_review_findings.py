"""Findings of the insider review of the corrections, repeat-mistakes and sample-room
commits, each named for the attack: hostile arguments that surfaced as raw PostgreSQL
errors (22003 numeric overflow, 23514 check violation, 22004 null FOREACH) instead of our
own refusal, and a location code that broke a CSV download's header."""
import re

import psycopg
import pytest

from conftest import _url, cloned_web_app
from helpers import Lifecycle
from tracker.demo import demo_password


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def refused(lc, who, sql, params=()):
    with pytest.raises(psycopg.Error) as err:
        with lc.conn.transaction():
            lc.call(who, sql, params)
    return err.value


# ---------------------------------------------------------------- correcting an order's cost
@pytest.mark.parametrize("args", [
    "p_unit_cost => 9999999999.99, p_quantity => 2147483647",  # the total overflows numeric(14, 2): was 22003
    "p_unit_cost => 0.001",                                    # rounds to 0.00 pence: was 23514
    "p_unit_cost => 0.004, p_quantity => 7",
])
def test_buyer_correcting_a_cost_with_hostile_numbers_gets_a_refusal_not_a_raw_error(lc, args):
    sid = lc.make("ordered")
    err = refused(lc, "buyer", f"select app.correct_sample(%s, {args})", (sid,))
    assert err.sqlstate == "TR005", (err.sqlstate, str(err))


def test_buyer_correcting_quantity_alone_into_an_overflowing_total_is_refused(lc, conn):
    sid = lc.make("ordered")
    lc.call("buyer", "select app.correct_sample(%s, p_unit_cost => 9999999999.99)", (sid,))
    err = refused(lc, "buyer", "select app.correct_sample(%s, p_quantity => 1000)", (sid,))
    assert err.sqlstate == "TR005", (err.sqlstate, str(err))


# ---------------------------------------------------------------- ordering (the same columns)
@pytest.mark.parametrize("args", [
    "p_unit_cost => 0.001",                                    # was 23514
    "p_unit_cost => 9999999999, p_quantity => 1000",           # was 22003
    "p_unit_cost => 10, p_fx_rate => 1000000000",              # was 22003 (numeric(14, 6))
    "p_unit_cost => 10, p_fx_rate => 0.0000001",               # was 23514 (rounds to zero)
])
def test_buyer_ordering_with_hostile_numbers_gets_a_refusal_not_a_raw_error(lc, args):
    sid = lc.make("requested")
    err = refused(lc, "buyer", f"select app.order_sample(p_sample_id => %s, p_supplier_id => %s, p_currency => 'EUR', "
                               f"p_expected_on => %s, {args})", (sid, lc.supplier, lc.expected))
    assert err.sqlstate == "TR005", (err.sqlstate, str(err))


# ---------------------------------------------------------------- bulk actions
@pytest.mark.parametrize("ids", ["array[null]::bigint[]", "array[null, null]::bigint[]"])
def test_logistics_bulk_act_with_only_null_numbers_is_a_refusal_not_an_internal_error(lc, ids):
    err = refused(lc, "logistics", f"select * from app.bulk_act('receive', {ids}, '{{}}')")
    assert err.sqlstate == "TR004", (err.sqlstate, str(err))


# ---------------------------------------------------------------- stocktake export
@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_review_findings") as app:
        yield app


def client_for(app, who):
    c = app.test_client()
    t = re.search(r'name="csrf" value="([^"]+)"', c.get("/auth/login").get_data(as_text=True)).group(1)
    r = c.post("/auth/login", data={"email": f"{who}@example.com", "password": demo_password(), "csrf": t})
    assert r.status_code == 302, who
    c.csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
    return c


def test_logistics_location_code_with_quotes_and_newlines_does_not_break_the_stocktake_csv(app):
    c = client_for(app, "logistics")
    # logistics adds locations (reference data); a code is any non-blank text
    r = c.post("/reference/locations", data={"code": 'SR"Z\r\nX-Evil: 1', "name": "Odd shelf", "kind": "shelf",
                                             "csrf": c.csrf})
    assert r.status_code == 303
    with psycopg.connect(_url(app.dbname), autocommit=True) as db:
        loc = db.execute("select id from app.locations where name = 'Odd shelf'").fetchone()[0]
    r = c.post("/stocktake", data={"location": str(loc), "csrf": c.csrf})
    assert r.status_code == 303, r.status_code
    take = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    r = c.get(f"/stocktake/{take}.csv")
    assert r.status_code == 200
    disposition = r.headers["Content-Disposition"]
    assert "\n" not in disposition and "\r" not in disposition and "X-Evil" not in r.headers
    assert re.fullmatch(r'attachment; filename="stocktake-[A-Za-z0-9._-]+-\d+\.csv"', disposition), disposition
