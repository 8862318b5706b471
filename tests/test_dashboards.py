"""Dashboards and lists with Flask's test client against the real database: a tab's own
condition and the person's filters combine (every tab of every role, checked against
SQL written independently of tracker/web/lists.py), withdrawn requests read as
'withdrawn', the columns each role needs, row counts and paging."""
import csv
import html
import io
import re

import pytest

from conftest import act_as, cloned_web_app
from tracker.demo import demo_password
from tracker.roles import ROLES
from tracker.web.dashboards import presets_for

OPEN = "s.state not in ('returned', 'cut-for-production')"
OVERDUE = "(select v.is_overdue from app.sample_overview v where v.id = s.id)"
# every tab's condition, written down again here in plain SQL over app.samples
TAB_SQL = {
    "all": "true",
    "mine": f"s.requested_by = %(me)s and {OPEN}",
    "team": f"s.team_id = %(team)s and {OPEN}",
    "holding": "s.holder_id = %(me)s",
    "incoming": "s.state = 'received'",
    "coming": "s.state = 'ordered'",
    "awaiting": "s.state = 'received' and s.last_qc_result is null",
    "rejected": "s.qc_rejected",
    "at_factory": "s.state = 'at-factory'",
    "to_receive": "s.state = 'ordered'",
    "to_route": "s.state = 'received'",
    "to_return": f"s.on_loan and {OPEN}",
    "open_pos": "s.state = 'ordered'",
    "open": OPEN,
}
OVERDUE_SQL = {"buyer": f"s.requested_by = %(me)s and {OVERDUE}",
               "senior_buyer": f"s.team_id = %(team)s and {OVERDUE}"}


def tab_sql(role, key):
    if key == "overdue":
        return OVERDUE_SQL.get(role, OVERDUE)
    return TAB_SQL[key]


@pytest.fixture(scope="module")
def app(template):
    """A private clone of the demo database, so these tests may commit."""
    with cloned_web_app(template, "tracker_test_dashboards") as app:
        yield app



_clients = {}


def client_for(app, role):
    """One signed-in test client per role (signing in costs an argon2 hash)."""
    if role not in _clients or _clients[role][0] is not app:
        c = app.test_client()
        page = c.get("/auth/login").get_data(as_text=True)
        t = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = c.post("/auth/login", data={"email": f"{role}@example.com", "password": demo_password(), "csrf": t})
        assert r.status_code == 302
        c.csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
        _clients[role] = (app, c)
    return _clients[role][1]


def as_person(db, role, sql, params=()):
    """Rows of `sql` as the demo persona of `role`, the way the web app connects (RLS applies)."""
    with db.transaction():
        me = db.execute("select id, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
        act_as(db, {"id": me[0], "role": role})
        rows = db.execute(sql, {"me": me[0], "team": me[1], **dict(params)}).fetchall()
        act_as(db, None)
    return rows


def export_ids(c, query):
    r = c.get("/export.csv", query_string=query)
    assert r.status_code == 200
    return [int(row["No."]) for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))]


def page_ids(text):
    body = text.split("<tbody>", 1)[1]
    return [int(x) for x in re.findall(r'class="rowlink" href="/samples/(\d+)"', body)]


TABS = [(role, t.key) for role in ROLES for t in presets_for(role)]


@pytest.mark.parametrize("role,tab", TABS, ids=[f"{r}-{t}" for r, t in TABS])
def test_a_filter_narrows_the_tab_and_never_replaces_it(app, db, role, tab):
    c = client_for(app, role)
    condition = tab_sql(role, tab)
    # the filter: the category most common in this tab (so the filtered list is rarely empty),
    # else the most common category the person can see
    pick = as_person(db, role, f"select s.category_id, count(*) from app.samples s where {condition} "
                               "group by 1 order by 2 desc, 1 limit 1") or \
        as_person(db, role, "select s.category_id, count(*) from app.samples s group by 1 order by 2 desc limit 1")
    category = pick[0][0]
    expected = {r[0] for r in as_person(db, role, f"select s.id from app.samples s where {condition} "
                                                  "and s.category_id = %(cat)s", {"cat": category})}
    visible_with_category = {r[0] for r in as_person(db, role, "select s.id from app.samples s "
                                                               "where s.category_id = %(cat)s", {"cat": category})}
    got = export_ids(c, {"tab": tab, "category": category})
    assert set(got) == expected and len(got) == len(expected)
    r = c.get("/", query_string={"tab": tab, "category": category})
    text = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 200
    label = next(t.label for t in presets_for(role) if t.key == tab)
    assert f"<h1>{label}</h1>" in text and "filtered by:" in text
    assert set(page_ids(text)) <= expected and len(page_ids(text)) == min(len(expected), 50)
    assert f"<strong>{len(expected):,}</strong> sample" in text
    if tab != "all":
        # the filter really filtered (and the tab really held): a tab-less filter finds more
        # wherever the tab condition excludes some samples of that category
        assert expected <= visible_with_category


def test_filter_used_to_replace_the_tab_condition(app, db):
    """The issue's own example: a designer's 'I hold' filtered by Dresses stays 'held by me'."""
    c = client_for(app, "designer")
    dresses = db.execute("select id from app.categories where name = 'Dresses'").fetchone()[0]
    me = db.execute("select id from app.staff where email = 'designer@example.com'").fetchone()[0]
    ids = export_ids(c, {"tab": "holding", "category": dresses})
    holders = {r[0] for r in db.execute("select holder_id from app.samples where id = any(%s)", (ids,))}
    assert holders <= {me}
    # positive control: the same filter on 'Everything I can see' finds samples held by others
    others = export_ids(c, {"tab": "all", "category": dresses})
    assert {r[0] for r in db.execute("select holder_id from app.samples where id = any(%s)", (others,))} - {me}


# ---------------------------------------------------------------- withdrawn
def test_withdrawn_requests_read_as_withdrawn_in_lists_filters_counts_and_exports(app, db):
    withdrawn = {r[0] for r in db.execute("select id from app.samples where withdrawn_at is not null")}
    returned = {r[0] for r in db.execute("select id from app.samples where state = 'returned' "
                                         "and withdrawn_at is null")}
    assert withdrawn and returned
    # the lifecycle keeps its eight states: a withdrawn request is 'returned' in the table
    assert {r[0] for r in db.execute("select distinct state::text from app.samples where id = any(%s)",
                                     (list(withdrawn),))} == {"returned"}
    c = client_for(app, "md")
    text = c.get("/?tab=all&state=withdrawn").get_data(as_text=True)
    body = text.split("<tbody>", 1)[1]
    assert set(re.findall(r'class="state state-([a-z-]+)"', body)) == {"withdrawn"}
    assert set(page_ids(text)) == withdrawn
    assert f"<strong>{len(withdrawn)}</strong> sample" in text  # the count
    assert set(export_ids(c, {"tab": "all", "state": "returned"})) == returned  # the filter tells them apart
    rows = list(csv.DictReader(io.StringIO(c.get("/export.csv?tab=all").get_data(as_text=True))))
    states = {int(r["No."]): r["State"] for r in rows}
    assert all(states[i] == "withdrawn" for i in withdrawn)
    assert all(states[i] == "returned" for i in returned)
    sid = min(withdrawn)
    page = c.get(f"/samples/{sid}").get_data(as_text=True)
    assert '<span class="state state-withdrawn">withdrawn</span>' in page
    assert "state-returned" not in page.split('<section aria-labelledby="photos-h"')[0]
    # the filter form offers it
    assert 'name="state" value="withdrawn"' in text


# ---------------------------------------------------------------- columns per role
def headers(text):
    head = text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [html.unescape(re.sub(r"<[^>]+>|[▲▼]", "", h)).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]


@pytest.mark.parametrize("role", ["designer", "sales_executive", "qc", "factory_liaison", "logistics",
                                  "system_admin"])
def test_no_cost_column_for_people_who_see_no_costs(app, role):
    c = client_for(app, role)
    for t in presets_for(role):
        assert "Cost (GBP)" not in headers(c.get(f"/?tab={t.key}").get_data(as_text=True)), t.key


@pytest.mark.parametrize("role", ["buyer", "senior_buyer", "finance", "md"])
def test_cost_column_for_people_who_see_costs(app, role):
    c = client_for(app, role)
    assert "Cost (GBP)" in headers(c.get("/?tab=all").get_data(as_text=True))


def test_to_receive_has_no_holder_or_location(app):
    c = client_for(app, "logistics")
    cols = headers(c.get("/?tab=to_receive").get_data(as_text=True))
    assert "Holder" not in cols and "Location" not in cols and "Expected" in cols
    assert "Location" in headers(c.get("/?tab=to_route").get_data(as_text=True))  # positive control


def test_overdue_reason_is_in_the_row_not_only_a_tooltip(app, db):
    c = client_for(app, "md")
    text = c.get("/?tab=overdue").get_data(as_text=True)
    rows = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    assert rows
    for row in rows:
        sid = int(re.search(r"/samples/(\d+)", row).group(1))
        reason = db.execute("select overdue_reason from app.sample_overview where id = %s", (sid,)).fetchone()[0]
        visible = re.sub(r"<[^>]+>", " ", row.split(">", 1)[1])
        assert html.unescape(reason) in html.unescape(visible)


def test_row_count_and_page_n_of_m(app, db):
    c = client_for(app, "md")
    total = db.execute("select count(*) from app.samples").fetchone()[0]
    pages = -(-total // 50)
    text = c.get("/?tab=all&page=2").get_data(as_text=True)
    assert f"<strong>{total:,}</strong> samples · page 2 of {pages}" in text
    assert f"Page 2 of {pages}" in text


def test_dates_have_one_format(app, db):
    c = client_for(app, "logistics")
    text = c.get("/?tab=to_receive").get_data(as_text=True)
    body = text.split("<tbody>", 1)[1]
    assert not re.search(r"\d{4}-\d{2}-\d{2}<", body)  # no ISO dates in cells
    assert re.search(r'class="c-date key"[^>]*>\d{2} [A-Z][a-z]{2} \d{4}<', body)


def test_page_number_must_be_sane(app):
    c = client_for(app, "md")
    r = c.get("/?page=" + "9" * 20)
    assert r.status_code == 400 and b"Page must be a whole number" in r.data
    for bad in ["0", "-1", "abc", "1e3"]:
        assert c.get(f"/?page={bad}").status_code == 400, bad
    assert c.get("/?page=2").status_code == 200  # positive control
    assert c.get("/export.csv?tab=all&page=" + "9" * 20).status_code == 200  # exports ignore paging
