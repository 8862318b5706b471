"""Browser tests in real Chromium (Debian's, driven by Playwright) against the app
served on loopback, on a fresh clone of the demo database. Screenshots of every
page visited land in test-artifacts/ (git-ignored) for a person to look at."""
import re
from pathlib import Path

import pytest

from conftest import _url, served_clone
from tracker.demo import demo_password
from tracker.images import swatch
from tracker.roles import ROLES

from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS as FLAGS  # noqa: F401  (for the modules that import them from here)

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(template):
    """A fresh database cloned from the template, and the app serving it on 127.0.0.1."""
    with served_clone(template, "tracker_test_browser") as served:
        yield served



@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(15000)
    yield pg
    ctx.close()


def scalar(dbname, sql):
    """One value read as the admin from the browser tests' database."""
    import psycopg
    with psycopg.connect(_url(dbname)) as c:
        return c.execute(sql).fetchone()[0]


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base, role):
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(demo_password())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$|/\?"))


@pytest.mark.parametrize("role,heading", [("buyer", "My open samples"), ("factory_liaison", "At a factory"),
                                          ("md", "Overdue"), ("logistics", "To receive"), ("qc", "Awaiting inspection"),
                                          ("senior_buyer", "Team's open samples"), ("finance", "Open orders")])
def test_each_role_lands_on_its_dashboard(server, page, role, heading):
    base, _ = server
    sign_in(page, base, role)
    assert page.get_by_role("heading", level=1).inner_text() == heading
    shot(page, f"dashboard-{role}")
    if role == "factory_liaison":
        states = page.locator("table.list tbody .state").all_inner_texts()
        assert states and set(states) == {"at-factory"}
    if role == "buyer":
        assert page.locator("text=My spend this season").count() == 1


def test_whole_lifecycle_in_the_browser(server, page):
    base, _ = server
    # a buyer requests and orders
    sign_in(page, base, "buyer")
    page.get_by_role("link", name="New request").click()
    page.get_by_label("Title").fill("Browser-test linen shirt dress")
    page.get_by_label("Category").select_option(label="Dresses")
    page.get_by_label("Season").select_option(index=1)
    page.get_by_role("button", name="Request").click()
    heading = page.get_by_role("heading", level=1).inner_text()
    sample = int(re.search(r"Sample (\d+)", heading).group(1))
    shot(page, "sample-requested")
    page.locator("summary", has_text="Order it").click()
    page.get_by_label("Supplier").first.select_option(index=1)
    page.get_by_label("Unit cost").fill("145.50")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_role("button", name="Order it").click()
    assert page.locator(".sample-head .state").inner_text() == "ordered"
    assert f"Sample {sample} ordered." in page.locator(".flash").inner_text()
    page.get_by_role("button", name="Sign out").click()

    # logistics tries an illegal action first (the database says why), then receives it
    sign_in(page, base, "logistics")
    page.goto(f"{base}/samples/{sample}")
    shot(page, "sample-ordered-logistics")
    page.locator("summary", has_text="Receive it").click()
    page.get_by_label("Location").select_option(index=1)
    page.get_by_role("button", name="Receive it").click()
    assert page.locator(".sample-head .state").inner_text() == "received"
    page.get_by_role("button", name="Sign out").click()

    # a designer cannot bring it back from a factory: the form is not offered, and a forged
    # post is refused by the database with a readable message
    sign_in(page, base, "designer")
    page.goto(f"{base}/samples/{sample}")
    assert page.get_by_text("bring it back from the factory").count() == 0
    page.evaluate("""(sid) => {
        const f = document.createElement('form'); f.method = 'post'; f.action = '/samples/' + sid + '/act/return_from_factory';
        const c = document.querySelector('input[name=csrf]').cloneNode(); f.appendChild(c);
        const l = document.createElement('input'); l.name = 'location'; l.value = '1'; f.appendChild(l);
        document.body.appendChild(f); f.submit(); }""", sample)
    page.wait_for_load_state()
    msg = page.locator(".flash.error").inner_text()
    assert f"Sample {sample} is received; you can bring it back from the factory only when it is at-factory" in msg
    shot(page, "sample-illegal-transition")
    # and takes it to design
    page.locator("summary", has_text="Hand it to design").click()
    page.get_by_role("button", name="Hand it to design").click()
    assert page.locator(".sample-head .state").inner_text() == "with-design"

    # photo upload and a comment
    photo = ARTIFACTS / "upload.png"
    photo.write_bytes(swatch((120, 140, 90)))
    page.set_input_files("#photo", str(photo))
    page.get_by_label("Caption").fill("Back view")
    page.get_by_role("button", name="Upload").click()
    playwright_api.expect(page.locator(".photos img")).to_have_count(1)  # waits for the redirect to land
    page.get_by_label("Add a comment").fill("<script>alert(1)</script> lovely drape")
    page.get_by_role("button", name="Post").click()
    assert "<script>alert(1)</script> lovely drape" in page.locator(".comments .body").last.inner_text()
    shot(page, "sample-with-design")


def test_search_by_number_jumps_to_the_sample(server, page):
    base, name = server
    sign_in(page, base, "md")
    sid = scalar(name, "select min(id) from app.samples where state = 'with-design'")
    page.get_by_label("Search samples").fill(f"#{sid}")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/samples/{sid}")
    assert page.get_by_role("heading", level=1).inner_text().startswith(f"Sample {sid}")
    page.get_by_label("Search samples").fill("wrap dress")
    page.get_by_role("button", name="Search").click()
    assert page.locator(".results tbody td.c-id a").count() > 0
    assert re.search(r"^[\d,]+ results?", page.locator(".list-bar .count").inner_text())
    shot(page, "search-words")


def test_label_pdf_and_csv_export(server, page):
    base, name = server
    sign_in(page, base, "logistics")
    sid = scalar(name, "select min(id) from app.samples")
    resp = page.request.get(f"{base}/samples/{sid}/label.pdf")
    assert resp.status == 200 and resp.body()[:5] == b"%PDF-"
    (ARTIFACTS / "label.pdf").write_bytes(resp.body())
    csv = page.request.get(f"{base}/export.csv?tab=to_receive")
    assert csv.status == 200 and csv.text().startswith("No.,Title,State")


# ------------------------------------------------------------------ every role, filtered, desktop and phone
PHONE = {"width": 390, "height": 844}

TAP_TARGETS = ("button, .button, summary, select, input:not([type=hidden]):not([type=checkbox]), .tabs a, .pager a, "
               ".mainnav a, .brand, table.samples td.c-id a, label.pick, label.check, .chip")
JS_SMALL_TARGETS = """(sel) => [...document.querySelectorAll(sel)].map((el) => {
    const r = el.getBoundingClientRect();
    return {what: el.outerHTML.slice(0, 90), w: r.width, h: r.height};
  }).filter((t) => t.w > 0 && t.h > 0 && (t.h < 43.5 || t.w < 43.5))"""
JS_WRAPPED_DATES = """() => [...document.querySelectorAll('time.date, td.c-date')].filter((el) => {
    const range = document.createRange(); range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    return tops.size > 1; }).map((el) => el.outerHTML.slice(0, 80))"""


def no_sideways_scroll(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def apply_category_filter(page, name):
    """Open the filter, pick the category of the first row (so the list is rarely empty), apply."""
    first = page.locator("table.samples tbody td.c-id a").first
    if first.count():
        cat = scalar(name, f"select category_id from app.samples where id = {int(first.inner_text())}")
        page.locator("details.filters summary").click()
        page.get_by_label("Category").select_option(str(cat))
    else:
        page.locator("details.filters summary").click()
        page.get_by_label("Category").select_option(index=1)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_dashboard_filtered_on_desktop_and_phone(server, browser, role):
    base, name = server
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, base, role)
        heading = page.get_by_role("heading", level=1).inner_text()
        apply_category_filter(page, name)
        # the tab's heading stays, and the filter is shown as applied within it
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert page.locator(".applied .chip", has_text="Category").count() == 1
        assert re.search(r"[\d,]+ samples? · page 1 of \d+|^0 samples", page.locator(".list-bar .count").inner_text())
        assert page.evaluate(JS_WRAPPED_DATES) == []
        shot(page, f"dashboard-{role}-filtered-1280")
        page.set_viewport_size(PHONE)
        page.reload()
        assert no_sideways_scroll(page), "the list scrolls sideways at 390 px"
        rows = page.locator("table.samples tbody tr:not(.empty)")
        if rows.count():
            card = rows.first
            for cell in ["td.c-id", "td.c-title", "td.c-state"] + (["td.key"] if card.locator("td.key").count() else []):
                box = card.locator(cell).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (role, cell, box)
        assert page.evaluate(JS_SMALL_TARGETS, TAP_TARGETS) == []
        assert page.evaluate(JS_WRAPPED_DATES) == []
        shot(page, f"dashboard-{role}-filtered-390")
    finally:
        ctx.close()


@pytest.mark.parametrize("role,state", [("logistics", "received"), ("designer", "with-design"),
                                        ("buyer", "requested"), ("md", "at-factory")])
def test_sample_page_on_a_phone_puts_the_main_action_first(server, browser, role, state):
    base, name = server
    team = "and team_id = (select team_id from app.staff where email = 'buyer@example.com') " \
        "and requested_by = (select id from app.staff where email = 'buyer@example.com')" if role == "buyer" else ""
    sid = scalar(name, f"select max(id) from app.samples where state = '{state}' {team}")
    ctx = browser.new_context(viewport=PHONE)
    page = ctx.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, base, role)
        page.goto(f"{base}/samples/{sid}")
        main = page.locator(".actions details.main summary")
        assert main.count() == 1, "no action offered"
        box = main.bounding_box()
        facts = page.locator(".facts-col").bounding_box()
        assert box["y"] < facts["y"] and box["y"] + box["height"] <= PHONE["height"], (box, facts)
        assert no_sideways_scroll(page)
        assert page.evaluate(JS_SMALL_TARGETS, TAP_TARGETS) == []
        assert page.evaluate(JS_WRAPPED_DATES) == []
        shot(page, f"sample-{role}-{state}-390")
        page.set_viewport_size({"width": 1280, "height": 900})
        shot(page, f"sample-{role}-{state}-1280")
    finally:
        ctx.close()


def contrast(a, b):
    def lum(rgb):
        def ch(c):
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
        r, g, b_ = (ch(x) for x in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_
    hi, lo = sorted([lum(a), lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rgb(css):
    return tuple(int(x) for x in re.findall(r"\d+", css)[:3])


def test_focus_ring_contrast_is_at_least_3_to_1(server, page):
    base, _ = server
    sign_in(page, base, "md")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand link, on the header's white
    style = page.evaluate("() => { const s = getComputedStyle(document.activeElement); "
                          "return [s.outlineStyle, s.outlineColor, s.outlineWidth]; }")
    assert style[0] != "none" and float(style[2].rstrip("px")) >= 2
    header = page.evaluate("() => getComputedStyle(document.querySelector('header.top')).backgroundColor")
    assert contrast(rgb(style[1]), rgb(header)) >= 3, style
    body = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert contrast(rgb(style[1]), rgb(body)) >= 3


def test_each_state_has_one_colour_everywhere(server, page):
    base, name = server
    sign_in(page, base, "md")
    page.goto(f"{base}/?tab=all&sort=state")
    page.locator("details.filters summary").click()
    colours = {}
    for chip in page.locator(".filter-form .state").all():
        colours[chip.inner_text()] = chip.evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert len(colours) == 9 and len(set(colours.values())) == 9  # eight states and 'withdrawn', all distinct
    for st in ["ordered", "at-factory", "withdrawn"]:
        page.goto(f"{base}/?tab=all&state={st}")
        chip = page.locator("table.samples tbody .state").first
        assert chip.evaluate("(el) => getComputedStyle(el).backgroundColor") == colours[st]
        sid = page.locator("table.samples tbody td.c-id a").first.inner_text()
        page.goto(f"{base}/samples/{sid}")
        assert page.locator(".sample-head .state").evaluate("(el) => getComputedStyle(el).backgroundColor") == \
            colours[st]
        # the timeline marks the move into the state with the same colour family
        assert page.locator(f".timeline .ev-{st}").count() >= 1
    shot(page, "sample-withdrawn-1280")


def test_prg_in_the_browser_reload_does_not_resubmit(server, page):
    base, name = server
    sid = scalar(name, "select min(id) from app.samples where state = 'received'")
    sign_in(page, base, "logistics")
    page.goto(f"{base}/samples/{sid}")
    page.locator("summary", has_text="Return it to the supplier").click()
    page.get_by_label("Courier reference").fill(" ")
    page.locator("#return_to_supplier-note").fill("keep this note")
    page.evaluate("() => document.querySelectorAll('[required]').forEach((e) => e.removeAttribute('required'))")
    page.get_by_role("button", name="Return it to the supplier").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/samples/{sid}")
    assert "needs a courier reference" in page.locator(".flash.error").inner_text()
    shot(page, "sample-refusal-kept-form")
    events = scalar(name, f"select count(*) from app.sample_events where sample_id = {sid}")
    page.reload()
    assert page.locator(".flash.error").count() == 0
    assert scalar(name, f"select count(*) from app.sample_events where sample_id = {sid}") == events


def test_a_buyer_typing_a_request_another_team_has_in_flight_sees_it_before_submitting(server, page):
    """Issue 15: the near-duplicate warning appears live as the buyer types, before any submit;
    going ahead needs the tick and is recorded on the new sample."""
    base, name = server
    other = scalar(name, "select s.id || '|' || s.title || '|' || c.name || '|' || s.season_id from app.samples s "
                         "join app.categories c on c.id = s.category_id "
                         "where s.state in ('ordered', 'received') and s.team_id <> "
                         "(select team_id from app.staff where email = 'buyer@example.com') order by s.id desc limit 1")
    sid, title, category, season = other.split("|")
    sign_in(page, base, "buyer")
    page.goto(f"{base}/samples/new")
    page.get_by_label("Category").select_option(label=category)
    page.get_by_label("Season").select_option(value=season)
    page.get_by_label("Title").press_sequentially(title.lower(), delay=20)
    warning = page.locator("#similar .similar")
    warning.wait_for()
    assert page.url.endswith("/samples/new")  # nothing submitted yet
    assert warning.locator(f'a[href$="/samples/{sid}"]').count() == 1
    assert "team" in warning.inner_text()
    shot(page, "request-similar-warning-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scroll(page)
    shot(page, "request-similar-warning-390")
    page.get_by_label("I have checked these; this is not a duplicate").check()
    page.get_by_role("button", name="Request").click()
    page.wait_for_url(re.compile(r"/samples/\d+$"))
    new = page.url.rsplit("/", 1)[1]
    note = scalar(name, f"select note from app.sample_events where sample_id = {new} and action = 'request'")
    assert note.startswith("requested despite") and sid in note
