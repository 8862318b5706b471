"""The sample room in real Chromium (issue 14): a box of 30 samples received on a phone
(390 px) by typing each tag's number into scan mode, as a USB scanner or a thumb would;
and the scan, stocktake and import pages at 390 px and on a desktop, as logistics and as a
buyer. Screenshots land in test-artifacts/ for a person to look at."""
import re
import time
from pathlib import Path

import psycopg
import pytest

from conftest import _url, served_clone
from helpers import Lifecycle
from tracker.demo import demo_password

from conftest import ARTIFACTS
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(template):
    """A fresh database cloned from the template, and the app serving it on 127.0.0.1."""
    with served_clone(template, "tracker_test_room_browser") as served:
        yield served



def open_as(browser, base, role, viewport):
    ctx = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500,
                              has_touch=viewport["width"] < 500)
    page = ctx.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(demo_password())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$|/\?"))
    return ctx, page


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def thirty_ordered(dbname):
    """30 samples ordered through the real lifecycle (the demo has fewer): the box that arrives."""
    with psycopg.connect(_url(dbname)) as conn:
        lc = Lifecycle(conn)
        ids = [lc.make("ordered") for _ in range(30)]
        conn.commit()
    return ids


def test_a_box_of_30_is_received_on_a_phone_by_typing_each_tag(server, browser):
    base, name = server
    box = thirty_ordered(name)
    ctx, page = open_as(browser, base, "logistics", PHONE)
    try:
        t0 = time.perf_counter()
        page.get_by_role("link", name="Scan").first.click()
        page.wait_for_url(re.compile(r"/scan"))
        scan = page.get_by_label("Scan a tag or type a number, then Enter")
        for n in box:
            scan.fill(str(n))
            scan.press("Enter")
        assert page.locator(".scan-status").inner_text() == f"{box[-1]} added · 30 in the basket"
        scan.fill(str(box[3]))  # the same tag twice is kept once
        scan.press("Enter")
        assert "already in the basket" in page.locator(".scan-status").inner_text()
        page.get_by_label("What to do with them").select_option("receive")
        location = page.get_by_label("Location (receive, put back, bring back)")
        assert location.is_visible() and not page.get_by_label("Factory (send to a factory)").is_visible()
        location.select_option(index=1)
        assert no_sideways_scroll(page), "the scan page scrolls sideways at 390 px"
        shot(page, "room-scan-30-filled-390")
        page.get_by_role("button", name="Apply to the samples").click()
        page.wait_for_load_state()
        took = time.perf_counter() - t0
        assert "30 of 30 samples: receive into a location — done." in page.locator(".flash").inner_text()
        assert page.locator(".results li.ok").count() == 30
        assert page.locator("#basket").input_value() == ""  # the done ones left the basket
        assert no_sideways_scroll(page)
        shot(page, "room-scan-30-done-390")
        with psycopg.connect(_url(name)) as conn:
            states = conn.execute("select state::text, count(*) from app.samples where id = any(%s) group by 1",
                                  (box,)).fetchall()
            events = conn.execute("select count(*) from app.sample_events where sample_id = any(%s) "
                                  "and action = 'receive'", (box,)).fetchone()[0]
        assert states == [("received", 30)] and events == 30
        assert took < 60, f"receiving a box of 30 took {took:.1f} s in the browser"
    finally:
        ctx.close()


def test_a_refused_sample_stays_in_the_basket_with_its_reason_on_a_phone(server, browser):
    base, name = server
    with psycopg.connect(_url(name)) as conn:
        received = conn.execute("select min(id) from app.samples where state = 'received'").fetchone()[0]
    ctx, page = open_as(browser, base, "logistics", PHONE)
    try:
        page.goto(f"{base}/scan?id={received}")
        page.get_by_label("What to do with them").select_option("receive")
        page.get_by_label("Location (receive, put back, bring back)").select_option(index=1)
        page.get_by_role("button", name="Apply to the samples").click()
        page.wait_for_load_state()
        item = page.locator(".results li.bad")
        assert item.count() == 1 and "not done" in item.inner_text() and "received" in item.inner_text()
        assert page.locator("#basket").input_value() == str(received)
        shot(page, "room-scan-refused-390")
    finally:
        ctx.close()


PAGES = [("scan", "/scan"), ("stocktakes", "/stocktake"), ("missing", "/stocktake/missing"), ("import", "/import/")]


@pytest.mark.parametrize("role", ["logistics", "buyer"])
@pytest.mark.parametrize("size", ["390", "desktop"])
def test_the_sample_room_pages_as_logistics_and_as_a_buyer(server, browser, role, size):
    base, name = server
    with psycopg.connect(_url(name)) as conn:
        take = conn.execute("select max(id) from app.stocktakes").fetchone()[0]
        batch = conn.execute("select b.id from app.import_batches b join app.staff p on p.id = b.staff_id "
                             "where p.email = 'logistics@example.com'").fetchone()[0]
    ctx, page = open_as(browser, base, role, PHONE if size == "390" else DESKTOP)
    try:
        pages = PAGES + ([("stocktake", f"/stocktake/{take}"), ("import-preview", f"/import/{batch}/preview")]
                         if role == "logistics" else [])
        for key, path in pages:
            resp = page.goto(f"{base}{path}")
            assert resp.status < 500, f"{path}: {resp.status}"
            if size == "390":
                assert no_sideways_scroll(page), f"{path} scrolls sideways at 390 px as {role}"
            shot(page, f"room-{key}-{role}-{size}")
    finally:
        ctx.close()


def test_a_buyer_is_told_what_the_sample_room_pages_are_not_for(server, browser):
    """A buyer reaches /scan from "Act on the selected…" on any list: no form of moves they cannot
    make, but a sentence; the same on the stocktake and import pages (the database refuses
    them anyway; the positive control is logistics' page in the tests above)."""
    base, _ = server
    ctx, page = open_as(browser, base, "buyer", PHONE)
    try:
        for path, words in (("/scan", "you make none of the sample room's moves"),
                            ("/stocktake", "Logistics and the directors count stock"),
                            ("/stocktake/missing", "Logistics and the directors count stock"),
                            ("/import/", "as buyer you cannot")):
            page.goto(f"{base}{path}")
            assert words in page.locator(".notice").inner_text(), path
            assert page.locator("form button.primary").count() == 0, path
    finally:
        ctx.close()
    ctx, page = open_as(browser, base, "designer", PHONE)
    try:
        page.goto(f"{base}/scan")
        offered = page.locator("#action option").all_inner_texts()
        assert "Hand to a designer" in offered and "Receive into a location" not in offered
    finally:
        ctx.close()
