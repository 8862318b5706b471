"""The analytics pages (issue 13) on a private clone: who may open them (the database's
answer), figures shown with their "data as of", drill-down links down to the samples
list, CSV of every table, SVG charts that escape their labels, budgets set from the
page, "refresh now", and the headlines that read the nightly figures."""
import csv
import io
import re
from decimal import Decimal

import psycopg
import pytest

from conftest import _url, cloned_web_app
from tracker.demo import demo_password
from tracker.roles import ROLES
from tracker.web.analytics import TABLES

READERS = {"buyer", "senior_buyer", "sales_lead", "finance", "ops_director", "md"}


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_analytics_web") as app:
        yield app


@pytest.fixture
def db(app):
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        yield c


def token(client, path="/auth/login"):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def client_for(app, role):
    c = app.test_client()
    r = c.post("/auth/login", data={"email": f"{role}@example.com", "password": demo_password(), "csrf": token(c)})
    assert r.status_code == 302
    c.csrf = token(c, "/")
    return c


@pytest.mark.parametrize("role", ROLES)
def test_who_may_open_the_analytics_pages(app, role):
    c = client_for(app, role)
    for path in ["/analytics/", "/analytics/suppliers", "/analytics/buyers", "/analytics/budgets",
                 "/analytics/category/1", "/analytics/export/categories.csv"]:
        r = c.get(path)
        if role in READERS:
            assert r.status_code == 200, (role, path)
        else:
            assert r.status_code == 403, (role, path)
            assert "£" not in r.get_data(as_text=True)
    nav = c.get("/").get_data(as_text=True)
    assert ('href="/analytics/"' in nav) == (role in READERS)


def test_overview_shows_figures_as_of_charts_and_drill_down(app, db):
    html = client_for(app, "md").get("/analytics/").get_data(as_text=True)
    as_of = db.execute("select started_at from analytics_private.refreshes order by id desc limit 1").fetchone()[0]
    assert "Data as of" in html and as_of.strftime("%d %b %Y") in html
    assert html.count("<svg") >= 3 and "<script" not in html.split("</head>")[1]
    for key in ("categories", "budgets", "over_index", "running_hot", "seasons"):
        assert f'href="/analytics/export/{key}.csv' in html
    # drill down: category -> suppliers -> buyers -> the samples list
    cat = re.search(r'href="(/analytics/category/\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    page = client_for(app, "md").get(cat).get_data(as_text=True)
    sup = re.search(r'href="(/analytics/category/\d+/supplier/\d+[^"]*)"', page).group(1).replace("&amp;", "&")
    page = client_for(app, "md").get(sup).get_data(as_text=True)
    samples = re.search(r'href="(/\?tab=all[^"]*buyer=\d+[^"]*)"', page).group(1).replace("&amp;", "&")
    assert client_for(app, "md").get(samples).status_code == 200


@pytest.mark.parametrize("key", sorted(TABLES))
def test_every_table_exports_as_csv_with_its_as_of(app, key):
    c = client_for(app, "finance")
    r = c.get(f"/analytics/export/{key}.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == [label for _, label, _ in TABLES[key][2]] + ["Data as of"]
    assert len(rows) > 1 and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ$", row[-1]) for row in rows[1:])


@pytest.mark.parametrize("key", sorted(TABLES))
def test_every_table_exports_as_xlsx(app, key):
    from openpyxl import load_workbook
    r = client_for(app, "finance").get(f"/analytics/export/{key}.xlsx")
    assert r.status_code == 200
    rows = list(load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert rows[1][0].startswith("Data as of") and list(rows[2]) == [label for _, label, _ in TABLES[key][2]]
    csv_rows = list(csv.reader(io.StringIO(client_for(app, "finance").get(f"/analytics/export/{key}.csv")
                                           .get_data(as_text=True))))
    assert len(rows) - 3 == len(csv_rows) - 1 > 0


def test_buyer_csv_holds_only_their_team(app, db):
    team = db.execute("select t.code from app.staff s join app.teams t on t.id = s.team_id "
                      "where s.email = 'buyer@example.com'").fetchone()[0]
    rows = list(csv.DictReader(io.StringIO(client_for(app, "buyer").get("/analytics/export/budget_lines.csv")
                                           .get_data(as_text=True))))
    assert rows and {r["Team"] for r in rows} == {team}
    every = list(csv.DictReader(io.StringIO(client_for(app, "finance").get("/analytics/export/budget_lines.csv")
                                            .get_data(as_text=True))))
    assert len({r["Team"] for r in every}) > 1


def test_budget_lines_are_paged_on_the_page_and_whole_in_the_export(app, monkeypatch):
    """Every team x category line for finance: 50 a page (here 7, so the demo's lines make
    several pages), each line on exactly one page, the same lines as the CSV."""
    from tracker.web import analytics
    monkeypatch.setattr(analytics, "PAGE_SIZE", 7)
    c = client_for(app, "finance")
    every = list(csv.DictReader(io.StringIO(c.get("/analytics/export/budget_lines.csv").get_data(as_text=True))))
    pages = -(-len(every) // 7)
    assert pages > 1, "positive control: more lines than a page"
    shown = []
    for n in range(1, pages + 1):
        html = c.get(f"/analytics/budgets?page={n}").get_data(as_text=True)
        table = html[html.index('id="t-budget_lines"'):]
        table = table[:table.index("</section>")]
        assert f"page {n} of {pages}" in table
        rows = re.findall(r'<tr(?: class="flagged")?>\s*<th scope="row" data-label="Team">([^<]*)</th>\s*'
                          r'<td class="[^"]*" data-label="Category">([^<]*)</td>', table)
        assert 0 < len(rows) <= 7
        shown += rows
    assert sorted(shown) == sorted((r["Team"], r["Category"]) for r in every)


def test_chart_labels_are_escaped(app, db):
    cat, name = db.execute("select id, name from app.categories where id = (select category_id from "
                           "analytics_private.spend_monthly order by spend_gbp desc limit 1)").fetchone()
    db.execute("update app.categories set name = '<b>Bold</b> & co' where id = %s", (cat,))
    try:
        html = client_for(app, "md").get("/analytics/?month=" + db.execute(
            "select to_char(max(month), 'YYYY-MM') from analytics_private.spend_monthly").fetchone()[0]
        ).get_data(as_text=True)
        assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in html
    finally:
        db.execute("update app.categories set name = %s where id = %s", (name, cat))


def test_bad_parameters_are_a_clear_400(app):
    c = client_for(app, "md")
    assert c.get("/analytics/?month=2026-13").status_code == 400
    assert c.get("/analytics/?season=abc").status_code == 400
    assert c.get("/analytics/?season=99999").status_code == 404
    assert c.get("/analytics/export/nope.csv").status_code == 404


def test_budgets_set_from_the_page(app, db):
    season = db.execute("select max(id) from app.seasons").fetchone()[0]
    mine, other = db.execute("select s.team_id, (select min(id) from app.teams where id <> s.team_id) "
                             "from app.staff s where email = 'senior_buyer@example.com'").fetchone()
    cat = db.execute("select max(id) from app.categories").fetchone()[0]
    c = client_for(app, "senior_buyer")
    r = c.post("/analytics/budgets", data={"csrf": c.csrf, "season": season, "team": mine, "category": cat,
                                           "amount": "£12,500"}, follow_redirects=True)
    assert "Budget saved" in r.get_data(as_text=True)
    assert db.execute("select amount_gbp from app.budgets where team_id = %s and season_id = %s and category_id = %s",
                      (mine, season, cat)).fetchone() == (Decimal("12500.00"),)
    r = c.post("/analytics/budgets", data={"csrf": c.csrf, "season": season, "team": other, "category": cat,
                                           "amount": "1"}, follow_redirects=True)
    assert "cannot set that team" in r.get_data(as_text=True)
    r = c.post("/analytics/budgets", data={"csrf": c.csrf, "season": season, "team": mine, "category": cat,
                                           "amount": "-3"}, follow_redirects=True)
    assert "A budget must be an amount" in r.get_data(as_text=True)
    assert db.execute("select amount_gbp from app.budgets where team_id = %s and season_id = %s and category_id = %s",
                      (mine, season, cat)).fetchone() == (Decimal("12500.00"),)
    for role in ("senior_buyer", "finance"):
        assert "Set a budget" in client_for(app, role).get("/analytics/budgets").get_data(as_text=True)
    # a buyer sees the budgets but no form
    page = client_for(app, "buyer").get("/analytics/budgets").get_data(as_text=True)
    assert "Set a budget" not in page and "Budgets by team" in page


def test_refresh_now_for_directors_only(app, db):
    before = db.execute("select max(id) from analytics_private.refreshes").fetchone()[0]
    c = client_for(app, "finance")
    r = c.post("/analytics/refresh", data={"csrf": c.csrf}, follow_redirects=True)
    assert "Only the ops director and the MD can refresh" in r.get_data(as_text=True)
    assert db.execute("select max(id) from analytics_private.refreshes").fetchone()[0] == before
    assert "Refresh now" not in c.get("/analytics/").get_data(as_text=True)
    c = client_for(app, "md")
    r = c.post("/analytics/refresh", data={"csrf": c.csrf, "back": "/analytics/suppliers"}, follow_redirects=True)
    assert "Analytics figures refreshed" in r.get_data(as_text=True)
    row = db.execute("select trigger, staff_id from analytics_private.refreshes order by id desc limit 1").fetchone()
    assert row == ("manual", db.execute("select id from app.staff where email = 'md@example.com'").fetchone()[0])


@pytest.mark.parametrize("role,sql", [
    ("senior_buyer", "select sum(k.total_gbp) from app.samples s join app.sample_costs k on k.sample_id = s.id "
                     "where s.state <> 'requested' and s.team_id = %(team)s and s.season_id = %(season)s"),
    ("buyer", "select sum(k.total_gbp) from app.samples s join app.sample_costs k on k.sample_id = s.id "
              "where s.state <> 'requested' and s.requested_by = %(me)s and s.season_id = %(season)s"),
    ("finance", "select sum(k.total_gbp) from app.samples s join app.sample_costs k on k.sample_id = s.id "
                "where s.state = 'ordered'"),
])
def test_headlines_read_the_nightly_figures(app, db, role, sql):
    me, team = db.execute("select id, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
    season = db.execute("select id from app.seasons where current_date between starts_on and ends_on "
                        "order by starts_on desc limit 1").fetchone()[0]
    db.execute("select app_private.refresh_analytics('manual')")
    want = db.execute(sql, {"me": me, "team": team, "season": season}).fetchone()[0] or Decimal(0)
    html = client_for(app, role).get("/").get_data(as_text=True)
    assert f"£{want:,.2f}" in html and "as of" in html
    # the headline is the nightly figure: a new order shows after the next refresh, not before
    db.execute("update app.sample_costs set unit_cost = unit_cost + 1000 where sample_id = (select s.id from "
               "app.samples s where s.state = 'ordered' and s.team_id = %s and s.season_id = %s "
               "and s.requested_by = %s order by s.id limit 1)", (team or 1, season, me))
    assert f"£{want:,.2f}" in client_for(app, role).get("/").get_data(as_text=True)


def test_an_over_indexed_supplier_new_to_its_category_reads_new(app, db):
    """Index = share now / share last year; a supplier with no share last year is 'new', not '–'."""
    html = client_for(app, "md").get("/analytics/").get_data(as_text=True)
    section = html.split('id="t-over_index"')[1].split("</section>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)[1:]
    assert rows, "positive control: the demo has over-indexed suppliers this month"
    with_index = [r for r in rows if 'data-label="Index">new<' not in r]
    new = [r for r in rows if 'data-label="Index">new<' in r]
    assert new, "some over-indexed supplier had no share last year"
    for r in new:
        assert 'data-label="Share last year">0.0%<' in r
    for r in with_index:
        assert re.search(r'data-label="Index">[\d,]+<', r)


def test_the_small_multiples_share_one_scale(app, db):
    """Each supplier's mini chart in a category has the same y scale (labelled in its corner),
    the one that fits the largest month of them all, so the heights compare."""
    html = client_for(app, "md").get("/analytics/").get_data(as_text=True)
    cat = re.search(r'href="(/analytics/category/\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    page = client_for(app, "md").get(cat).get_data(as_text=True)
    minis = re.findall(r'<svg class="chart mini".*?</svg>', page, re.S)
    assert len(minis) >= 2, "positive control: several suppliers in the category"
    scales = {re.search(r'fill="#666">([^<]+)</text>', m).group(1) for m in minis}
    assert len(scales) == 1, scales
    # the lines differ: one supplier's peak is lower than another's (not each scaled to its own top)
    tops = [min(float(y) for y in re.findall(r"[\d.]+,([\d.]+)", re.search(r'points="([^"]+)"', m).group(1)))
            for m in minis]
    assert len(set(tops)) > 1, tops
