"""Home dashboards: each role's tabs are named filter presets over the same list
(what each person sees is still decided by RLS), plus a headline or two from SQL."""
from datetime import datetime, timezone
from decimal import Decimal
from io import BytesIO

from flask import Blueprint, Response, g, render_template, request, send_file, stream_with_context, url_for
from psycopg.rows import tuple_row
from werkzeug.datastructures import MultiDict

from . import db, lists
from .auth import login_required

bp = Blueprint("dashboard", __name__)

ALL = ("all", "Everything I can see", {}, ("state_changed_at", "desc"))
HOLDING = [("holding", "I hold", {"holder": "me"}, ("state_changed_at", "desc")),
           ("incoming", "Received, not yet routed", {"state": ["received"]}, ("state_changed_at", "asc")),
           ("coming", "Ordered, on the way", {"state": ["ordered"]}, ("expected_on", "asc")), ALL]
DIRECTORS = [("overdue", "Overdue", {"overdue": "1"}, ("state_changed_at", "asc")),
             ("open", "All open samples", {"open": "1"}, ("state_changed_at", "desc")), ALL]
PRESETS = {
    "buyer": [("mine", "My open samples", {"buyer": "me", "open": "1"}, ("state_changed_at", "desc")),
              ("overdue", "My overdue samples", {"buyer": "me", "overdue": "1"}, ("state_changed_at", "asc")), ALL],
    "senior_buyer": [("team", "Team's open samples", {"team": "mine", "open": "1"}, ("state_changed_at", "desc")),
                     ("overdue", "Team's overdue samples", {"team": "mine", "overdue": "1"},
                      ("state_changed_at", "asc")), ALL],
    "designer": HOLDING, "sales_lead": HOLDING, "sales_executive": HOLDING,
    "qc": [("awaiting", "Awaiting inspection", {"state": ["received"], "uninspected": "1"},
            ("state_changed_at", "asc")),
           ("rejected", "Rejected by QC", {"rejected": "1"}, ("state_changed_at", "desc")), ALL],
    "factory_liaison": [("at_factory", "At a factory", {"state": ["at-factory"]}, ("state_changed_at", "asc")), ALL],
    "logistics": [("to_receive", "To receive", {"state": ["ordered"]}, ("expected_on", "asc")),
                  ("to_route", "To route", {"state": ["received"]}, ("state_changed_at", "asc")),
                  ("to_return", "On loan: to return", {"on_loan": "1", "open": "1"}, ("return_due_on", "asc")),
                  ALL],
    "finance": [("open_pos", "Open orders", {"state": ["ordered"]}, ("expected_on", "asc")), ALL],
    "ops_director": DIRECTORS, "md": DIRECTORS,
    "system_admin": [ALL],
}
FILTER_KEYS = ("state", "team", "buyer", "supplier", "category", "season", "holder", "overdue", "open", "on_loan",
               "uninspected", "rejected")

_SPEND = ("select count(*) as samples, sum(k.total_gbp) as spend from app.samples s "
          "left join app.sample_costs k on k.sample_id = s.id where ")
HEADLINES = {
    "buyer": (_SPEND + "s.requested_by = %(me)s and s.season_id = %(season)s", "My spend this season"),
    "senior_buyer": (_SPEND + "s.team_id = %(team)s and s.season_id = %(season)s", "Team spend this season"),
    "finance": (_SPEND + "s.state = 'ordered'", "Open orders, all teams"),
}


def presets_for(role):
    return PRESETS.get(role, [ALL])


def current_filters():
    """The active tab and its filters, overridden by any filter given in the query string."""
    tabs = presets_for(g.user["role"])
    tab = next((t for t in tabs if t[0] == request.args.get("tab")), tabs[0])
    explicit = any(k in request.args for k in FILTER_KEYS)
    args = MultiDict()
    if not explicit:
        for k, v in tab[2].items():
            for item in (v if isinstance(v, list) else [v]):
                args.add(k, item)
    else:
        for k in FILTER_KEYS:
            for item in request.args.getlist(k):
                args.add(k, item)
    return tab, args, lists.parse_filters(args, g.user)


def reference(conn):
    q = lambda s: conn.execute(s).fetchall()  # noqa: E731
    return {
        "teams": q("select id, code as name from app.teams order by code"),
        "suppliers": q("select id, name from app.suppliers where active order by name"),
        "categories": q("select id, name from app.categories order by name"),
        "seasons": q("select id, code as name from app.seasons order by starts_on desc"),
        "buyers": q("select id, full_name as name from app.staff where role in ('buyer', 'senior_buyer') "
                    "and active order by full_name"),
    }


@bp.route("/")
@login_required
def index():
    tab, args, f = current_filters()
    page = max(request.args.get("page", 1, type=int), 1)
    with db.as_user() as conn:
        q, params, sort, direction = lists.list_query(lists.LIST_COLUMNS, f, request.args.get("sort"),
                                                      request.args.get("dir"), tab[3], lists.PAGE_SIZE + 1,
                                                      (page - 1) * lists.PAGE_SIZE)
        rows = conn.execute(q, params).fetchall()
        ref = reference(conn)
        headline = None
        if g.user["role"] in HEADLINES:
            sql_text, label = HEADLINES[g.user["role"]]
            season = conn.execute("select id from app.seasons where current_date between starts_on and ends_on "
                                  "order by starts_on desc limit 1").fetchone()
            if season:
                headline = dict(conn.execute(sql_text, {"team": g.user["team_id"], "me": g.user["id"],
                                                        "season": season["id"]}).fetchone(), label=label)
    query = request.args.to_dict(flat=False)
    return render_template("dashboard/index.html", rows=rows[:lists.PAGE_SIZE], has_next=len(rows) > lists.PAGE_SIZE,
                           page=page, tabs=presets_for(g.user["role"]), tab=tab, filters=f, args=args,
                           columns=lists.LIST_COLUMNS, labels=lists.COLUMNS, sort=sort, direction=direction,
                           ref=ref, states=lists.STATES, query=query, headline=headline)


@bp.route("/export.csv")
@login_required
def export_csv():
    tab, _, f = current_filters()
    user = dict(g.user)
    sort, direction = request.args.get("sort"), request.args.get("dir")

    def generate():
        with db.as_user(user["id"], user["role"]) as conn:
            q, params, *_ = lists.list_query(lists.EXPORT_COLUMNS, f, sort, direction, tab[3])
            with conn.cursor(name="export", row_factory=tuple_row) as cur:
                cur.itersize = 2000
                cur.execute(q, params)
                rows = (r[:len(lists.EXPORT_COLUMNS)] for r in cur)
                yield from lists.csv_lines([lists.COLUMNS[c][0] for c in lists.EXPORT_COLUMNS], rows)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="samples-{tab[0]}-{stamp}.csv"'})


@bp.route("/export.xlsx")
@login_required
def export_xlsx():
    from openpyxl import Workbook
    tab, _, f = current_filters()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Samples")
    ws.append([lists.COLUMNS[c][0] for c in lists.EXPORT_COLUMNS])
    with db.as_user() as conn:
        q, params, *_ = lists.list_query(lists.EXPORT_COLUMNS, f, request.args.get("sort"), request.args.get("dir"),
                                         tab[3], limit=1_048_575)
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
                     as_attachment=True, download_name=f"samples-{tab[0]}-{stamp}.xlsx")


def xlsx_value(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, str) and v[:1] == "=":
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
