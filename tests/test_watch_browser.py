"""Watches live in real Chromium (Playwright): the Watching page follows a watched
supplier's hold without a reload; on any live page a change to something watched is
counted on the "Watching" link, and a watched sample the person can no longer see never
reaches the page. Screenshots land in test-artifacts/ (watch-*.png)."""
import psycopg
import pytest

from conftest import Staff, _url, act_as
from helpers import Lifecycle
from test_browser import ARTIFACTS
from test_realtime_browser import live, person, server  # noqa: F401  (fixtures and helpers; browser is conftest's)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def as_person(dbname, who, sql, params=()):
    with psycopg.connect(_url(dbname)) as c:
        p = Staff(c).get(who)
        act_as(c, p)
        c.execute(sql, params)
        c.commit()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"watch-{name}.png"), full_page=False)


def test_the_watching_page_follows_a_supplier_hold_live(server, browser):
    base, dbname = server
    with psycopg.connect(_url(dbname)) as c:
        supplier, name = c.execute("select id, name from app.suppliers where on_hold_at is null and active "
                                   "order by id desc limit 1").fetchone()
    as_person(dbname, "designer", "insert into app.watches (staff_id, supplier_id) values (app.current_staff_id(), %s) "
                                  "on conflict do nothing", (supplier,))
    for width in (1280, 390):
        page = person(browser, base, "designer", width=width)
        page.goto(f"{base}/watching/")
        row = page.locator(f'li[data-supplier="{supplier}"]')
        expect(row).to_contain_text(name)
        expect(row).not_to_contain_text("on hold")
        live(page)
        as_person(dbname, "senior_buyer", "select app.hold_supplier(%s, %s)", (supplier, f"Browser check {width}"))
        expect(row).to_contain_text(f"on hold since", timeout=2000)
        expect(row).to_contain_text(f"Browser check {width}")
        assert page.evaluate("window.notReloaded") is True
        shot(page, f"watching-supplier-held-{width}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        as_person(dbname, "senior_buyer", "select app.lift_supplier_hold(%s, 'checked')", (supplier,))
        expect(row).not_to_contain_text("on hold", timeout=2000)
        page.context.close()


def test_a_watched_change_is_counted_on_the_watching_link_and_a_hidden_one_never_arrives(server, browser):
    base, dbname = server
    with psycopg.connect(_url(dbname)) as c:
        theirs = c.execute("select email from app.staff where role = 'buyer' and active and team_id <> "
                           "(select team_id from app.staff where email = 'buyer@example.com') "
                           "order by id limit 1").fetchone()[0]
        lc = Lifecycle(c)
        followed = lc.make("ordered", requester=theirs)   # another team's, in flight: the buyer sees it
        dropped = lc.make("ordered", requester=theirs)    # will leave flight: then the buyer may not see it
        c.commit()
    for sid in (followed, dropped):
        as_person(dbname, "buyer", "insert into app.watches (staff_id, sample_id) values (app.current_staff_id(), %s)",
                  (sid,))
    page = person(browser, base, "buyer")
    live(page)
    link = page.locator("a[data-watching-link]")
    expect(link.locator(".watch-badge")).to_have_count(0)
    # the dropped one is cancelled by its own team, then commented on: the buyer hears nothing
    as_person(dbname, theirs, "select app.cancel_order(%s, 'not needed')", (dropped,))
    with psycopg.connect(_url(dbname)) as c:
        md = Staff(c).get("md")
        act_as(c, md)
        c.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'hidden now')",
                  (dropped, md["id"]))
        c.commit()
    # the followed one is received: counted on the link, on the dashboard, without a reload
    as_person(dbname, "logistics", "select app.receive_sample(%s, (select min(id) from app.locations))", (followed,))
    expect(link.locator(".watch-badge")).to_have_text("1", timeout=2000)
    assert page.evaluate("window.trackerLive.watched") == [f"s:{followed}"]
    heard = page.evaluate("window.trackerLive.events.map(e => e.sample)")
    assert followed in heard and dropped not in heard
    assert page.evaluate("window.notReloaded") is True
    shot(page, "dashboard-badge-1280")
    page.set_viewport_size({"width": 390, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "dashboard-badge-390")
    # and the Watching page lists the followed one, not the one out of sight
    page.goto(f"{base}/watching/")
    expect(page.locator(f'tr[data-id="{followed}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-id="{dropped}"]')).to_have_count(0)
    page.context.close()
