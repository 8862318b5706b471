"""Home dashboards: each role's tabs are named conditions over the same list (what
each person sees is still decided by RLS), each with the columns that role needs,
plus a headline or two from SQL. A tab's condition always applies; the person's
filters narrow it further."""
from collections import namedtuple
from datetime import datetime, timezone
from decimal import Decimal
from io import BytesIO

from flask import Blueprint, Response, g, render_template, request, send_file, stream_with_context, url_for
from psycopg.rows import tuple_row
from werkzeug.datastructures import MultiDict

from . import db, formats, lists, realtime
from .auth import login_required

bp = Blueprint("dashboard", __name__)
formats.register(bp)

# key, heading, condition, default sort, columns (the first date column is the row's key date)
Tab = namedtuple("Tab", "key label where sort columns")

COST = "total_gbp"  # shown only to people for whom the database returns any cost at all
EVERYTHING = ["id", "title", "state", "team_code", "category", "supplier", "requested_by_name", "holder_name",
              "location", "state_changed_at", "days_in_state", COST]
ALL = Tab("all", "Everything I can see", {}, ("state_changed_at", "desc"), EVERYTHING)
IN_HAND = ["id", "title", "state", "team_code", "category", "requested_by_name", "state_changed_at",
           "days_in_state"]
HOLDING = [Tab("holding", "I hold", {"holder": "me"}, ("state_changed_at", "desc"), IN_HAND),
           Tab("incoming", "Received, not yet routed", {"state": ["received"]}, ("state_changed_at", "asc"),
               ["id", "title", "state", "team_code", "category", "location", "state_changed_at", "days_in_state"]),
           Tab("coming", "Ordered, on the way", {"state": ["ordered"]}, ("expected_on", "asc"),
               ["id", "title", "state", "team_code", "category", "supplier", "expected_on"]),
           ALL]
DIRECTORS = [Tab("overdue", "Overdue", {"overdue": "1"}, ("state_changed_at", "asc"),
                 ["id", "title", "state", "team_code", "supplier", "requested_by_name", "holder_name",
                  "state_changed_at", "days_in_state", COST]),
             Tab("open", "All open samples", {"open": "1"}, ("state_changed_at", "desc"), EVERYTHING), ALL]
BUYING = ["id", "title", "state", "category", "season", "supplier", "expected_on", "days_in_state", COST]
PRESETS = {
    "buyer": [Tab("mine", "My open samples", {"buyer": "me", "open": "1"}, ("state_changed_at", "desc"), BUYING),
              Tab("overdue", "My overdue samples", {"buyer": "me", "overdue": "1"}, ("state_changed_at", "asc"),
                  BUYING),
              ALL],
    "senior_buyer": [Tab("team", "Team's open samples", {"team": "mine", "open": "1"}, ("state_changed_at", "desc"),
                         ["id", "title", "state", "requested_by_name", "category", "supplier", "expected_on",
                          "days_in_state", COST]),
                     Tab("overdue", "Team's overdue samples", {"team": "mine", "overdue": "1"},
                         ("state_changed_at", "asc"),
                         ["id", "title", "state", "requested_by_name", "supplier", "holder_name",
                          "state_changed_at", "days_in_state", COST]),
                     ALL],
    "designer": HOLDING, "sales_lead": HOLDING, "sales_executive": HOLDING,
    "qc": [Tab("awaiting", "Awaiting inspection", {"state": ["received"], "uninspected": "1"},
               ("state_changed_at", "asc"),
               ["id", "title", "state", "team_code", "category", "supplier", "location", "state_changed_at",
                "days_in_state"]),
           Tab("rejected", "Rejected by QC", {"rejected": "1"}, ("state_changed_at", "desc"),
               ["id", "title", "state", "category", "supplier", "location", "state_changed_at"]),
           ALL],
    "factory_liaison": [Tab("at_factory", "At a factory", {"state": ["at-factory"]}, ("state_changed_at", "asc"),
                            ["id", "title", "state", "factory", "team_code", "category", "state_changed_at",
                             "days_in_state"]),
                        ALL],
    "logistics": [Tab("to_receive", "To receive", {"state": ["ordered"]}, ("expected_on", "asc"),
                      ["id", "title", "state", "supplier", "team_code", "requested_by_name", "expected_on"]),
                  Tab("to_route", "To route", {"state": ["received"]}, ("state_changed_at", "asc"),
                      ["id", "title", "state", "team_code", "category", "location", "state_changed_at",
                       "days_in_state"]),
                  Tab("to_return", "On loan: to return", {"on_loan": "1", "open": "1"}, ("return_due_on", "asc"),
                      ["id", "title", "state", "supplier", "holder_name", "location", "return_due_on"]),
                  ALL],
    "finance": [Tab("open_pos", "Open orders", {"state": ["ordered"]}, ("expected_on", "asc"),
                    ["id", "title", "state", "team_code", "supplier", "requested_by_name", "expected_on", COST]),
                ALL],
    "ops_director": DIRECTORS, "md": DIRECTORS,
    "system_admin": [ALL],
}
FILTER_KEYS = ("state", "team", "buyer", "supplier", "category", "season", "holder", "overdue", "open", "on_loan",
               "uninspected", "rejected")

# headlines read the nightly analytics figures (issue 13), not a live aggregate over
# every sample; each shows its "data as of" time
_AS_OF = "(select as_of from analytics.data_as_of) as as_of"
HEADLINES = {
    "buyer": ("select sum(samples) as samples, sum(spend_gbp) as spend, " + _AS_OF + " from analytics.spend "
              "where buyer_id = %(me)s and season_id = %(season)s", "My spend this season"),
    "senior_buyer": ("select sum(samples) as samples, sum(spend_gbp) as spend, " + _AS_OF +
                     " from analytics.spend_monthly where team_id = %(team)s and season_id = %(season)s",
                     "Team spend this season"),
    "finance": ("select sum(ordered) as samples, sum(committed_gbp) as spend, " + _AS_OF +
                " from analytics.buyer_season", "Open orders, all teams"),
}

# directors: samples a stocktake missed, until accounted for (issue 14; app.missing_samples, under RLS)
MISSING_ROLES = ("ops_director", "md")
MISSING_SHOWN = 10
MISSING_SQL = ("select *, count(*) over () as total from app.missing_samples "
               "order by closed_at desc, sample_id limit %s")


def presets_for(role):
    return PRESETS.get(role, [ALL])


def as_multidict(conditions: dict) -> MultiDict:
    args = MultiDict()
    for k, v in conditions.items():
        for item in (v if isinstance(v, list) else [v]):
            args.add(k, item)
    return args


def current_filters():
    """The active tab, the person's own filters (query string), and both parsed:
    returns (tab, person's filters, [tab's condition, person's filters])."""
    tabs = presets_for(g.user["role"])
    tab = next((t for t in tabs if t.key == request.args.get("tab")), tabs[0])
    mine = lists.parse_filters(request.args, g.user)
    return tab, mine, [lists.parse_filters(as_multidict(tab.where), g.user), mine]


def columns_for(conn, tab):
    """The tab's columns, less Cost when the database shows this person no cost at all."""
    sees_costs = conn.execute("select exists (select 1 from app.sample_costs) as yes").fetchone()["yes"]
    return [c for c in tab.columns if c != COST or sees_costs]


def reference(conn):
    q = lambda s: conn.execute(s).fetchall()  # noqa: E731
    return {
        "team": q("select id, code as name from app.teams order by code"),
        "supplier": q("select id, name from app.suppliers where active order by name"),
        "category": q("select id, name from app.categories order by name"),
        "season": q("select id, code as name from app.seasons order by starts_on desc"),
        # buyers: whoever the lifecycle lets request samples; holders: whoever may hold one
        "buyer": q("select id, full_name as name from app.staff where active and role in "
                   "(select unnest(roles) from app.transition_rules where action = 'request') order by full_name"),
        "holder": q("select id, full_name as name from app.staff where active and role = any "
                    "(app.holder_roles('with-design') || app.holder_roles('with-sales')) order by full_name"),
    }


SHORT_LABELS = {"state_changed_at": "Since", "return_due_on": "Due", "expected_on": "Expected"}
FILTER_LABELS = {"state": "State", "team": "Team", "buyer": "Buyer", "supplier": "Supplier",
                 "category": "Category", "season": "Season", "holder": "Holder", "overdue": "Overdue only",
                 "open": "Open only", "on_loan": "On loan", "uninspected": "Not inspected", "rejected": "QC rejected"}


def applied(mine, ref, query):
    """The person's filters as (label, value, url without it), for the 'Filtered by' line."""
    out = []
    for key, value in mine.items():
        if key == "state":
            text = ", ".join(value)
        elif value is True:
            text = "yes"
        else:
            names = {r["id"]: r["name"] for r in ref.get(key, [])}
            text = "me" if value == g.user["id"] and key in ("buyer", "holder") else names.get(value, str(value))
        out.append((FILTER_LABELS[key], text, list_url(query, **{key: None, "page": None})))
    return out


@bp.route("/")
@login_required
def index():
    tab, mine, filter_sets = current_filters()
    page = lists.page_arg(request.args)
    g.live_since = realtime.page_cursor()  # before the rows: the page's socket resumes from here
    with db.as_user() as conn:
        columns = columns_for(conn, tab)
        q, params, sort, direction = lists.list_query(columns, filter_sets, request.args.get("sort"),
                                                      request.args.get("dir"), tab.sort, lists.PAGE_SIZE,
                                                      (page - 1) * lists.PAGE_SIZE)
        rows = conn.execute(q, params).fetchall()
        cq, cparams = lists.count_query(filter_sets)
        total = conn.execute(cq, cparams).fetchone()["n"]
        ref = reference(conn)
        headline = None
        if g.user["role"] in HEADLINES:
            sql_text, label = HEADLINES[g.user["role"]]
            season = conn.execute("select id from app.seasons where current_date between starts_on and ends_on "
                                  "order by starts_on desc limit 1").fetchone()
            if season:
                headline = dict(conn.execute(sql_text, {"team": g.user["team_id"], "me": g.user["id"],
                                                        "season": season["id"]}).fetchone(), label=label)
        missing = (conn.execute(MISSING_SQL, (MISSING_SHOWN,)).fetchall()
                   if g.user["role"] in MISSING_ROLES else None)
    query = request.args.to_dict(flat=False)
    capped = total > lists.COUNT_CAP
    pages = max(1, -(-min(total, lists.COUNT_CAP) // lists.PAGE_SIZE))
    key_date = next((c for c in columns if c in lists.DATE_COLUMNS), None)
    return render_template("dashboard/index.html", rows=rows, page=page, pages=pages, total=total, capped=capped,
                           has_next=page < pages or (capped and len(rows) == lists.PAGE_SIZE),
                           tabs=presets_for(g.user["role"]), tab=tab, filters=mine, applied=applied(mine, ref, query),
                           columns=columns, labels=lists.COLUMNS, sort=sort, direction=direction, key_date=key_date,
                           ref=ref, states=lists.DISPLAY_STATES, query=query, headline=headline,
                           count_cap=lists.COUNT_CAP, short_labels=SHORT_LABELS, missing=missing)


@bp.route("/export.csv")
@login_required
def export_csv():
    tab, _, filter_sets = current_filters()
    user = dict(g.user)
    sort, direction = request.args.get("sort"), request.args.get("dir")

    def generate():
        with db.as_user(user["id"], user["role"]) as conn:
            q, params, *_ = lists.list_query(lists.EXPORT_COLUMNS, filter_sets, sort, direction, tab.sort)
            with conn.cursor(name="export", row_factory=tuple_row) as cur:
                cur.itersize = 2000
                cur.execute(q, params)
                rows = (r[:len(lists.EXPORT_COLUMNS)] for r in cur)
                yield from lists.csv_lines([lists.EXPORT_LABELS[c] for c in lists.EXPORT_COLUMNS], rows)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="samples-{tab.key}-{stamp}.csv"'})


@bp.route("/export.xlsx")
@login_required
def export_xlsx():
    from openpyxl import Workbook
    tab, _, filter_sets = current_filters()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Samples")
    ws.append([lists.EXPORT_LABELS[c] for c in lists.EXPORT_COLUMNS])
    with db.as_user() as conn:
        q, params, *_ = lists.list_query(lists.EXPORT_COLUMNS, filter_sets, request.args.get("sort"),
                                         request.args.get("dir"), tab.sort, limit=1_048_575)
        with conn.cursor(name="export_xlsx", row_factory=tuple_row) as cur:
            cur.itersize = 2000
            cur.execute(q, params)
            for r in cur:
                ws.append([xlsx_value(v) for v in r[:len(lists.EXPORT_COLUMNS)]])
    out = BytesIO()
    wb.save(out)
    out.seek(0)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    return send_file(out, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     as_attachment=True, download_name=f"samples-{tab.key}-{stamp}.xlsx")


def xlsx_value(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(timezone.utc).replace(tzinfo=None)  # Excel has no time zones
    if isinstance(v, str) and v[:1] in lists.FORMULA_STARTS:
        return "'" + v  # never a formula
    return v


@bp.app_template_global()
def list_url(query, **changes):
    """This list's URL with some query parameters changed (None removes one)."""
    merged = dict(query)
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = [str(v)]
    return url_for("dashboard.index", **merged)
