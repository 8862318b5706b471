"""Realtime in real Chromium (Playwright), two people in two browser contexts on the
app served on loopback: what one does appears on the other's open page without a
reload; a page that may not see a sample never hears of it. Screenshots land in
test-artifacts/ (realtime-*.png)."""
import threading

import psycopg
import pytest
from werkzeug.serving import make_server

from conftest import Staff, _url, act_as, cloned_web_app
from helpers import Lifecycle
from test_browser import ARTIFACTS, sign_in

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def server(template):
    with cloned_web_app(template, "tracker_test_realtime_browser") as app:
        app.config["TESTING"] = False
        srv = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{srv.server_port}", app.dbname
        srv.shutdown()
        if "realtime" in app.extensions:
            app.extensions["realtime"].stop()



def person(browser, base, role, width=1280):
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(15000)
    sign_in(page, base, role)
    return page


def make(dbname, state):
    with psycopg.connect(_url(dbname)) as c:
        sid = Lifecycle(c).make(state)
        c.commit()
        return sid


def live(page):
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.evaluate("window.notReloaded = true")


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"realtime-{name}.png"), full_page=False)


def test_logistics_receives_and_the_buyers_open_dashboard_shows_it(server, browser):
    base, dbname = server
    sid = make(dbname, "ordered")  # the demo buyer's own order: on "My open samples"
    buyer = person(browser, base, "buyer")
    row = buyer.locator(f'tr[data-id="{sid}"] .state')
    expect(row).to_have_text("ordered")
    live(buyer)
    logistics = person(browser, base, "logistics")
    logistics.goto(f"{base}/samples/{sid}")
    logistics.locator("summary", has_text="Receive it").click()
    logistics.locator("#receive-location").select_option(index=1)
    logistics.get_by_role("button", name="Receive it").click()
    expect(logistics.locator(".sample-head .state")).to_have_text("received")
    # committed by now (post/redirect/get): the buyer's page follows within a second, no reload
    expect(row).to_have_text("received", timeout=1000)
    assert buyer.evaluate("window.notReloaded") is True
    shot(buyer, "buyer-dashboard-after-receive")
    buyer.context.close()
    logistics.context.close()


def test_a_comment_appears_live_and_never_reaches_a_page_that_cannot_see_it(server, browser):
    base, dbname = server
    sid = make(dbname, "ordered")           # hidden from the factory liaison
    theirs = make(dbname, "at-factory")     # the factory liaison's own page
    buyer = person(browser, base, "buyer")
    buyer.goto(f"{base}/samples/{sid}")
    live(buyer)
    fl = person(browser, base, "factory_liaison")
    fl.goto(f"{base}/samples/{theirs}")
    live(fl)
    designer = person(browser, base, "designer")
    designer.goto(f"{base}/samples/{sid}")
    designer.get_by_label("Add a comment").fill("Realtime: the drape is lovely")
    designer.get_by_role("button", name="Post").click()
    expect(designer.locator(".comments .body").last).to_have_text("Realtime: the drape is lovely")
    expect(buyer.locator(".comments .body").last).to_have_text("Realtime: the drape is lovely", timeout=1000)
    assert buyer.evaluate("window.notReloaded") is True
    shot(buyer, "sample-comment-arrived")
    # positive control for the factory liaison: a comment on their own sample does arrive
    with psycopg.connect(_url(dbname)) as c:
        md = Staff(c).get("md")
        act_as(c, md)
        c.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'At the factory?')",
                  (theirs, md["id"]))
        c.commit()
    expect(fl.locator(".comments .body").last).to_have_text("At the factory?", timeout=2000)
    samples_heard = fl.evaluate("window.trackerLive.events.map(e => e.sample)")
    assert theirs in samples_heard and sid not in samples_heard
    assert "Realtime: the drape" not in fl.content()
    for p in (buyer, fl, designer):
        p.context.close()


def test_live_indicator_on_a_phone_and_on_a_desktop(server, browser):
    base, dbname = server
    sid = make(dbname, "ordered")
    for width in (390, 1280):
        page = person(browser, base, "md", width=width)
        page.goto(f"{base}/samples/{sid}")
        live(page)
        assert page.locator("#live").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, f"sample-live-{width}")
        page.goto(f"{base}/")
        live(page)
        shot(page, f"dashboard-live-{width}")
        page.context.close()
