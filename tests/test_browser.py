"""Browser tests in real Chromium (Debian's, driven by Playwright) against the app
served on loopback, on a fresh clone of the demo database. Screenshots of every
page visited land in test-artifacts/ (git-ignored) for a person to look at."""
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import _url
from tracker.demo import demo_password
from tracker.images import swatch
from tracker.web import create_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(template):
    """A fresh database cloned from the template, and the app serving it on 127.0.0.1."""
    import psycopg
    name = "tracker_test_browser"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}" template "{template}"')
    app = create_app({"TESTING": False, "SECRET_KEY": "browser-test", "APP_DATABASE_URL": _url(name, "authenticator"),
                      "SERVER_NAME": None})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", name
    srv.shutdown()
    app.extensions["pool"].close()
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: run `make deps`")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


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
    assert "Done: order." in page.locator(".flash").inner_text()
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
    assert page.locator(".photos img").count() == 1
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
    assert page.locator(".results li a").count() > 0
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
