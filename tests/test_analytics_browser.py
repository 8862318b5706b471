"""The analytics pages in real Chromium at desktop and phone width (390 px), on a fresh
clone: charts render, tables fit (cards on a phone), drill-down works by clicking.
Screenshots land in test-artifacts/analytics-*.png for a person to look at."""
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import cloned_web_app
from tracker.demo import demo_password

from conftest import ARTIFACTS

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base(template):
    with cloned_web_app(template, "tracker_test_analytics_browser") as app:
        app.config["TESTING"] = False
        srv = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{srv.server_port}"
        srv.shutdown()



def open_as(browser, base, role, width):
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{base}/auth/login")
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(demo_password())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$|/\?"))
    return ctx, page, errors


@pytest.mark.parametrize("width", [1280, 390])
def test_director_overview_and_drill_down(browser, base, width):
    ctx, page, errors = open_as(browser, base, "md", width)
    try:
        page.get_by_role("link", name="Analytics").click()
        page.wait_for_url(re.compile(r"/analytics/"))
        assert page.get_by_text("Data as of").first.is_visible()
        charts = page.locator("svg.chart")
        assert charts.count() >= 3
        box = charts.first.bounding_box()
        assert box["width"] > 200 and box["x"] + box["width"] <= width + 1, "the chart fits the screen"
        # nothing forces the page wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.screenshot(path=str(ARTIFACTS / f"analytics-overview-{width}.png"), full_page=True)
        page.locator("#t-categories tbody th a").first.click()
        page.wait_for_url(re.compile(r"/analytics/category/\d+"))
        assert page.locator("svg.chart.mini").count() >= 1
        page.screenshot(path=str(ARTIFACTS / f"analytics-category-{width}.png"), full_page=True)
        page.locator("#t-suppliers tbody th a").first.click()
        page.wait_for_url(re.compile(r"/analytics/category/\d+/supplier/\d+"))
        page.get_by_role("link", name="The samples themselves").click()
        page.wait_for_url(re.compile(r"/\?tab=all"))
        assert page.locator("table.samples tbody tr").count() >= 1
        assert errors == [], errors  # no CSP violations, no script errors
    finally:
        ctx.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_finance_sets_a_budget(browser, base, width):
    ctx, page, errors = open_as(browser, base, "finance", width)
    try:
        page.goto(f"{base}/analytics/budgets")
        page.get_by_label("Amount (£)").fill("4200")
        page.get_by_role("button", name="Save budget").click()
        assert page.get_by_text("Budget saved.").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.screenshot(path=str(ARTIFACTS / f"analytics-budgets-{width}.png"), full_page=True)
        assert errors == [], errors
    finally:
        ctx.close()
