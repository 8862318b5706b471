"""Spend analytics pages (issue 13): figures from the scoped views in the `analytics`
schema (materialised nightly), each with its "data as of" time, SVG charts rendered
here, drill-down category -> suppliers -> buyers -> the samples list, and every table
as CSV. Who sees what is the database's answer: the pages open for whoever may use
the analytics schema, and the views return only the teams whose costs they may read."""
import re
from datetime import date, datetime, timezone
from io import BytesIO

import psycopg
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, send_file, url_for

from . import analytics_charts as charts
from . import db, formats, lists
from .auth import login_required
from .errors import friendly

bp = Blueprint("analytics", __name__, url_prefix="/analytics")
formats.register(bp)
PAGE_SIZE = 50
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")

# ---------------------------------------------------------------- the tables
# key -> (title, SQL, columns as (name, label, kind)); kind: text, int, money, pct, flag, date.
# Each table is shown on a page and exported as CSV by the same SQL (paged tables add
# limit/offset on the page only). Parameters: season, ly_season, month, category, supplier.
MONEY, PCT, CHG, NUM, INT, TEXT, FLAG, MONTH = "money", "pct", "chg", "num", "int", "text", "flag", "month"
INDEX = "index"  # an over-index: share now / share last year x 100; none last year reads "new"


def season_vs_last_year(keys: str, source: str, filters: str = "") -> str:
    """The SQL of a 'this season vs the same season last year' table grouped by `keys`
    (the first key is the id a row links by, the second its name) over `source`. Only
    ever called below with constant fragments; the values are bound parameters."""
    this = "sum(f.spend_gbp) filter (where f.season_id = %(season)s)"
    last = "sum(f.spend_gbp) filter (where f.season_id = %(ly_season)s)"
    return f"""
        select {keys}, sum(f.samples) filter (where f.season_id = %(season)s) as samples,
               coalesce({this}, 0) as spend_gbp, {last} as last_year_gbp,
               round(100 * (coalesce({this}, 0) - {last}) / nullif({last}, 0), 1) as yoy_pct,
               count(*) over () as _total
          from {source} f
         where f.season_id in (%(season)s, %(ly_season)s){filters}
         group by {keys}
        having sum(f.samples) filter (where f.season_id = %(season)s) > 0
         order by spend_gbp desc, {keys.split(", ")[1]}"""


CATEGORY_FILTER = " and (%(category)s::integer is null or f.category_id = %(category)s)"
SUPPLIER_FILTER = " and (%(supplier)s::integer is null or f.supplier_id = %(supplier)s)"
SUPPLIER_COLUMNS = [("supplier", "Supplier", TEXT), ("samples", "Samples", INT), ("spend_gbp", "Spend", MONEY),
                    ("last_year_gbp", "Same season last year", MONEY), ("yoy_pct", "YoY", CHG)]
BUYER_COLUMNS = [("buyer", "Buyer", TEXT), ("team", "Team", TEXT), ("samples", "Samples", INT),
                 ("spend_gbp", "Spend", MONEY), ("last_year_gbp", "Same season last year", MONEY), ("yoy_pct", "YoY", CHG)]
TABLES = {
    "categories": ("Spend by category: this month, last month, same month last year", """
        select category_id, category, samples, spend_gbp, prev_month_gbp, mom_change_gbp, mom_pct,
               same_month_last_year_gbp, yoy_change_gbp, yoy_pct
          from analytics.category_month(%(month)s)
         where (spend_gbp <> 0 or coalesce(prev_month_gbp, 0) <> 0 or coalesce(same_month_last_year_gbp, 0) <> 0)
         order by spend_gbp desc, category""",
        [("category", "Category", TEXT), ("samples", "Samples", INT), ("spend_gbp", "Spend", MONEY),
         ("prev_month_gbp", "Last month", MONEY), ("mom_pct", "MoM", CHG),
         ("same_month_last_year_gbp", "Same month last year", MONEY), ("yoy_change_gbp", "YoY change", MONEY),
         ("yoy_pct", "YoY", CHG)]),
    "trend": ("Monthly spend, last 12 months and the year before", """
        select m.month, coalesce(x.spend_gbp, 0) as spend_gbp,
               coalesce(x.same_month_last_year_gbp, 0) as same_month_last_year_gbp
          from (select (date_trunc('month', %(month)s::date) - make_interval(months => k))::date as month
                  from generate_series(0, 11) k) m
          left join (
            select month, sum(spend_gbp) filter (where not last_year) as spend_gbp,
                   sum(spend_gbp) filter (where last_year) as same_month_last_year_gbp
              from (select f.month, false as last_year, f.spend_gbp from analytics.spend_team_month f
                     where f.month > (%(month)s::date - interval '12 months')::date and f.month <= %(month)s::date
                    union all
                    select (f.month + interval '1 year')::date, true, f.spend_gbp from analytics.spend_team_month f
                     where f.month > (%(month)s::date - interval '24 months')::date
                       and f.month <= (%(month)s::date - interval '12 months')::date) y
             group by month) x on x.month = m.month
         order by m.month""",
        [("month", "Month", MONTH), ("spend_gbp", "Spend", MONEY),
         ("same_month_last_year_gbp", "Same month last year", MONEY)]),
    "budgets": ("Budget burn this season, by category", """
        select category_id, category, sum(budget_gbp) as budget_gbp, sum(actual_gbp) as actual_gbp,
               sum(committed_gbp) as committed_gbp, sum(budget_gbp) - sum(actual_gbp) as remaining_gbp,
               round(100 * sum(actual_gbp) / nullif(sum(budget_gbp), 0), 1) as burn_pct,
               count(*) filter (where over_budget) as teams_over_budget,
               coalesce(sum(actual_gbp) > sum(budget_gbp), sum(actual_gbp) > 0) as over_budget
          from analytics.budget_vs_actual
         where season_id = %(season)s
         group by category_id, category
         order by over_budget desc, burn_pct desc nulls first, category""",
        [("category", "Category", TEXT), ("budget_gbp", "Budget", MONEY), ("actual_gbp", "Actual", MONEY),
         ("committed_gbp", "of which committed", MONEY), ("remaining_gbp", "Remaining", MONEY),
         ("burn_pct", "Burn", PCT), ("teams_over_budget", "Teams over", INT), ("over_budget", "Over budget", FLAG)]),
    "budget_lines": ("Budgets by team and category this season", """
        select team_id, team, category_id, category, budget_gbp, actual_gbp, committed_gbp, remaining_gbp,
               burn_pct, over_budget, no_budget, count(*) over () as _total
          from analytics.budget_vs_actual
         where season_id = %(season)s
         order by team, category""",
        [("team", "Team", TEXT), ("category", "Category", TEXT), ("budget_gbp", "Budget", MONEY),
         ("actual_gbp", "Actual", MONEY), ("committed_gbp", "Committed", MONEY),
         ("remaining_gbp", "Remaining", MONEY), ("burn_pct", "Burn", PCT), ("over_budget", "Over budget", FLAG)]),
    "over_index": ("Over-indexed suppliers this month vs the same month last year", """
        select category_id, category, supplier_id, supplier, spend_gbp, share_pct, last_year_share_pct, index,
               count(*) over () as _total
          from analytics.over_indexed_suppliers(%(month)s)
         order by spend_gbp desc, supplier""",
        [("category", "Category", TEXT), ("supplier", "Supplier", TEXT), ("spend_gbp", "Spend", MONEY),
         ("share_pct", "Share of category", PCT), ("last_year_share_pct", "Share last year", PCT),
         ("index", "Index", INDEX)]),
    "running_hot": ("Buyers running hot this season", """
        select buyer_id, buyer, team, samples, spend_gbp, budget_share_gbp, pace_pct, running_hot,
               count(*) over () as _total
          from analytics.buyers_running_hot
         where season_id = %(season)s
         order by pace_pct desc nulls last, spend_gbp desc""",
        [("buyer", "Buyer", TEXT), ("team", "Team", TEXT), ("samples", "Samples", INT),
         ("spend_gbp", "Spend", MONEY), ("budget_share_gbp", "Share of team budget", MONEY),
         ("pace_pct", "Pace", PCT), ("running_hot", "Running hot", FLAG)]),
    "seasons": ("Spend by season vs the same season last year", """
        select season_id, season, sum(samples) as samples, sum(spend_gbp) as spend_gbp,
               sum(committed_gbp) as committed_gbp, min(last_year_season) as last_year_season,
               sum(last_year_gbp) as last_year_gbp,
               round(100 * (sum(spend_gbp) - sum(last_year_gbp)) / nullif(sum(last_year_gbp), 0), 1) as yoy_pct
          from analytics.season_spend
         group by season_id, season
         order by season desc""",
        [("season", "Season", TEXT), ("samples", "Samples", INT), ("spend_gbp", "Spend", MONEY),
         ("committed_gbp", "Committed", MONEY), ("last_year_season", "Last year", TEXT),
         ("last_year_gbp", "Last year's spend", MONEY), ("yoy_pct", "YoY", CHG)]),
    "suppliers": ("Spend by supplier this season vs the same season last year",
                  season_vs_last_year("f.supplier_id, f.supplier", "analytics.spend", CATEGORY_FILTER),
                  SUPPLIER_COLUMNS),
    "suppliers_all": ("Spend by supplier this season vs the same season last year",
                      season_vs_last_year("f.supplier_id, f.supplier", "analytics.supplier_seasons"),
                      SUPPLIER_COLUMNS),
    "buyers_all": ("Spend by buyer this season vs the same season last year",
                   season_vs_last_year("f.buyer_id, f.buyer, f.team", "analytics.buyer_season"), BUYER_COLUMNS),
    "buyers": ("Spend by buyer this season vs the same season last year",
               season_vs_last_year("f.buyer_id, f.buyer, f.team", "analytics.spend", CATEGORY_FILTER + SUPPLIER_FILTER),
               BUYER_COLUMNS),
    "scorecard": ("Supplier scorecard this season", """
        select supplier_id, supplier, sum(samples) as samples, sum(received) as received,
               round(sum(lead_days_sum)::numeric / nullif(sum(received), 0), 1) as avg_lead_days,
               sum(late_deliveries) as late_deliveries,
               round(100.0 * sum(qc_rejected) / nullif(sum(inspected), 0), 1) as qc_reject_pct,
               sum(returned) as returned, sum(cut_for_production) as cut_for_production,
               count(*) over () as _total
          from analytics.supplier_seasons
         where season_id = %(season)s and (%(supplier)s::integer is null or supplier_id = %(supplier)s)
         group by supplier_id, supplier
         order by samples desc, supplier""",
        [("supplier", "Supplier", TEXT), ("samples", "Samples", INT), ("received", "Received", INT),
         ("avg_lead_days", "Lead time (days)", NUM), ("late_deliveries", "Late", INT),
         ("qc_reject_pct", "QC reject", PCT), ("returned", "Returned", INT), ("cut_for_production", "Cut", INT)]),
}
# paged on the page (50 rows; the exports have every row): at 1M samples a role that sees
# every team has a budget line per team x category (600 at 20 teams: 350 KB of HTML, most of
# the budgets page's time) and 80 buyers to rank; a team's own over-index can flag 130
# suppliers (its shares are of fewer samples)
PAGED = {"suppliers", "suppliers_all", "buyers", "buyers_all", "scorecard", "budget_lines", "over_index", "running_hot"}


# ---------------------------------------------------------------- helpers
def may_use_analytics(conn) -> bool:
    """The database's answer: may this role use the analytics schema at all?"""
    return conn.execute("select has_schema_privilege('analytics', 'usage') as ok").fetchone()["ok"]


def int_arg(name):
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        abort(400, f"{name.title()} must be a number.")
    return int(raw)


def month_arg() -> date:
    raw = request.args.get("month", "").strip()
    if not raw:
        today = datetime.now(formats.display_tz()).date()
        return today.replace(day=1)
    m = MONTH_RE.match(raw)
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) <= 2100:
        abort(400, "Month must look like 2026-03.")
    return date(int(m.group(1)), int(m.group(2)), 1)


def seasons(conn):
    return conn.execute("select id, code, starts_on, ends_on from app.seasons order by starts_on desc").fetchall()


def params(conn):
    """The page's parameters: season (default: the current one), the same season last
    year, month (default: this month), optional category and supplier."""
    all_seasons = seasons(conn)
    season_id = int_arg("season")
    today = datetime.now(formats.display_tz()).date()
    if season_id is None:
        current = [s for s in all_seasons if s["starts_on"] <= today <= s["ends_on"]]
        season_id = (current[0] if current else all_seasons[0])["id"] if all_seasons else 0
    season = next((s for s in all_seasons if s["id"] == season_id), None)
    if season is None:
        abort(404)
    ly_code = f"{season['code'][:2]}{(int(season['code'][2:]) + 99) % 100:02d}"
    ly = next((s for s in all_seasons if s["code"] == ly_code), None)
    return {"season": season_id, "season_code": season["code"], "ly_season": ly["id"] if ly else None,
            "ly_season_code": ly["code"] if ly else None, "month": month_arg(),
            "category": int_arg("category"), "supplier": int_arg("supplier"), "seasons": all_seasons}


def run(conn, key, p, page=None):
    """Rows of a table; (rows, total) where total counts all rows of a paged table."""
    _, sql, _ = TABLES[key]
    args = {k: p.get(k) for k in ("season", "ly_season", "month", "category", "supplier")}
    if page is not None and key in PAGED:
        sql = sql + " limit %(limit)s offset %(offset)s"
        args.update(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    rows = conn.execute(sql, args).fetchall()
    total = rows[0]["_total"] if rows and "_total" in rows[0] else len(rows)
    return rows, total


def table(conn, key, p, page=None, link=None):
    rows, total = run(conn, key, p, page)
    title, _, columns = TABLES[key]
    pages = max(1, -(-total // PAGE_SIZE)) if key in PAGED else 1
    return {"key": key, "title": title, "columns": columns, "rows": rows, "total": total, "page": page or 1,
            "pages": pages, "link": link}


def as_of(conn):
    return conn.execute("select as_of, finished_at from analytics.data_as_of").fetchone()


def page_context(conn):
    if not may_use_analytics(conn):
        abort(403, "Spend analytics are for the roles that read costs (buyers, senior buyers, the sales lead, "
                   "finance and directors).")
    p = params(conn)
    return p, {"p": p, "as_of": as_of(conn), "query": request.args.to_dict(flat=True)}


# ---------------------------------------------------------------- pages
@bp.route("/")
@login_required
def overview():
    page = lists.page_arg(request.args)
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        cats = table(conn, "categories", p, link="category")
        trend = table(conn, "trend", p)
        budgets = table(conn, "budgets", p, link="category")
        over = table(conn, "over_index", p, page, link="category_supplier")
        hot = table(conn, "running_hot", p, page)
        season_rows = table(conn, "seasons", p)
    month_name = p["month"].strftime("%B %Y")
    ly_name = p["month"].replace(year=p["month"].year - 1).strftime("%b %Y")
    chart_cats = charts.bars(f"Spend by category, {month_name} vs {ly_name}", cats["rows"][:12], "category",
                             ("spend_gbp", "same_month_last_year_gbp"), (month_name, ly_name))
    chart_trend = charts.lines("Monthly spend, last 12 months vs the year before", trend["rows"], "month",
                               ("spend_gbp", "same_month_last_year_gbp"), ("This year", "Year before"))
    chart_budget = charts.bars(f"Budget vs actual, {p['season_code']}", budgets["rows"][:12], "category",
                               ("actual_gbp", "budget_gbp"), ("Actual", "Budget"))
    return render_template("analytics/overview.html", tables=[cats, budgets, over, hot, season_rows],
                           chart_cats=chart_cats, chart_trend=chart_trend, chart_budget=chart_budget,
                           month_name=month_name, page=page, **ctx)


@bp.route("/category/<int:category_id>")
@login_required
def category(category_id):
    page = lists.page_arg(request.args)
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        name = conn.execute("select name from app.categories where id = %s", (category_id,)).fetchone()
        if name is None:
            abort(404)
        p["category"] = category_id
        sup = table(conn, "suppliers", p, page, link="category_supplier")
        buyers = table(conn, "buyers", p, link="buyer_samples")
        top = [r["supplier_id"] for r in sup["rows"][:6]]
        series = conn.execute(
            """select supplier_id, month, sum(spend_gbp) as spend_gbp
                 from analytics.spend
                where category_id = %(c)s and supplier_id = any(%(top)s)
                  and month > (%(m)s::date - interval '12 months') and month <= %(m)s
                group by 1, 2 order by 1, 2""", {"c": category_id, "top": top, "m": p["month"]}).fetchall()
    months = [date(p["month"].year - (p["month"].month - k <= 0), (p["month"].month - k - 1) % 12 + 1, 1)
              for k in range(11, -1, -1)]
    multiples = []
    shared_max = max((s["spend_gbp"] for s in series), default=0)  # one scale: the heights compare
    for r in sup["rows"][:6]:
        by_month = {s["month"]: s["spend_gbp"] for s in series if s["supplier_id"] == r["supplier_id"]}
        pts = [{"month": m, "spend_gbp": by_month.get(m, 0)} for m in months]
        multiples.append((r["supplier"], charts.lines(f"{r['supplier']}: monthly spend in {name['name']}", pts,
                                                      "month", ("spend_gbp",), ("Spend",), width=220, height=90,
                                                      compact=True, scale_max=shared_max)))
    return render_template("analytics/category.html", name=name["name"], category_id=category_id,
                           tables=[sup, buyers], multiples=multiples, page=page, **ctx)


@bp.route("/category/<int:category_id>/supplier/<int:supplier_id>")
@login_required
def category_supplier(category_id, supplier_id):
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        cat = conn.execute("select name from app.categories where id = %s", (category_id,)).fetchone()
        sup = conn.execute("select name from app.suppliers where id = %s", (supplier_id,)).fetchone()
        if cat is None or sup is None:
            abort(404)
        p.update(category=category_id, supplier=supplier_id)
        buyers = table(conn, "buyers", p, link="buyer_samples")
        card = table(conn, "scorecard", p)
    return render_template("analytics/category_supplier.html", category=cat["name"], supplier=sup["name"],
                           category_id=category_id, supplier_id=supplier_id, tables=[buyers, card], **ctx)


@bp.route("/suppliers")
@login_required
def suppliers():
    page = lists.page_arg(request.args)
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        sup = table(conn, "suppliers_all", p, page, link="supplier_samples")
        card = table(conn, "scorecard", p, page)
    return render_template("analytics/list.html", heading=f"Suppliers, {p['season_code']}", tables=[sup, card],
                           page=page, **ctx)


@bp.route("/buyers")
@login_required
def buyers():
    page = lists.page_arg(request.args)
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        b = table(conn, "buyers_all", p, page, link="buyer_samples")
        hot = table(conn, "running_hot", p, page)
    return render_template("analytics/list.html", heading=f"Buyers, {p['season_code']}", tables=[b, hot],
                           page=page, **ctx)


@bp.route("/budgets", methods=["GET", "POST"])
@login_required
def budgets():
    if request.method == "POST":
        return save_budget()
    page = lists.page_arg(request.args)
    with db.as_user() as conn:
        p, ctx = page_context(conn)
        lines_ = table(conn, "budget_lines", p, page)
        can_edit = conn.execute("select has_any_column_privilege('app.budgets', 'insert') as ok").fetchone()["ok"]
        teams = conn.execute("select id, code as name from analytics.teams order by code").fetchall()
        cats = conn.execute("select id, name from app.categories order by name").fetchall()
    return render_template("analytics/budgets.html", tables=[lines_], can_edit=can_edit, teams=teams,
                           categories=cats, page=page, **ctx)


def save_budget():
    form = request.form
    season = form.get("season", "")
    try:
        team, cat, season_id = int(form.get("team", "")), int(form.get("category", "")), int(season)
        amount = form.get("amount", "").replace(",", "").replace("£", "").strip()
    except ValueError:
        flash("Choose a team, a season and a category.", "error")
        return redirect(url_for("analytics.budgets", season=season or None))
    try:
        with db.as_user() as conn:
            conn.execute("""insert into app.budgets (team_id, season_id, category_id, amount_gbp)
                            values (%s, %s, %s, %s::numeric)
                            on conflict (team_id, season_id, category_id)
                            do update set amount_gbp = excluded.amount_gbp""", (team, season_id, cat, amount))
        flash("Budget saved.", "ok")
    except psycopg.errors.InsufficientPrivilege:
        flash("You cannot set that team's budget (finance sets every team's, a senior buyer their own team's).",
              "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("analytics.budgets", season=season_id))


@bp.route("/refresh", methods=["POST"])
@login_required
def refresh():
    try:
        with db.as_user() as conn:
            conn.execute("set local statement_timeout = '10min'")
            conn.execute("select app.refresh_analytics()")
        flash("Analytics figures refreshed.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(request.form.get("back") if (request.form.get("back") or "").startswith("/analytics")
                    else url_for("analytics.overview"))


def export_rows(key):
    """What an export of a table holds: the page's parameters, every row (no paging), the
    "data as of" stamp and the table's definition; 404 for a table that does not exist."""
    if key not in TABLES:
        abort(404)
    with db.as_user() as conn:
        p, _ = page_context(conn)
        rows, _ = run(conn, key, p)
        stamp = as_of(conn)
    return p, rows, stamp, TABLES[key]


@bp.route("/export/<key>.csv")
@login_required
def export_csv(key):
    p, rows, stamp, (title, _, columns) = export_rows(key)
    as_of_text = stamp["as_of"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ") if stamp else "never"
    header = [label for _, label, _ in columns] + ["Data as of"]
    body = ([r[name] for name, _, _ in columns] + [as_of_text] for r in rows)
    filename = f"analytics-{key}-{p['season_code']}-{p['month']:%Y-%m}.csv"
    return Response(lists.csv_lines(header, body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/export/<key>.xlsx")
@login_required
def export_xlsx(key):
    from openpyxl import Workbook

    from .dashboards import xlsx_value
    p, rows, stamp, (title, _, columns) = export_rows(key)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(key[:31])
    ws.append([title])
    ws.append([f"Data as of {stamp['as_of'].astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if stamp else "No data yet"])
    ws.append([label for _, label, _ in columns])
    for r in rows:
        ws.append([xlsx_value(r[name]) for name, _, _ in columns])
    out = BytesIO()
    wb.save(out)
    out.seek(0)
    return send_file(out, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     as_attachment=True, download_name=f"analytics-{key}-{p['season_code']}-{p['month']:%Y-%m}.xlsx")


# ---------------------------------------------------------------- template helpers
@bp.app_template_global()
def analytics_url(endpoint, query, **changes):
    merged = {k: v for k, v in query.items() if k not in ("page",)}
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return url_for(f"analytics.{endpoint}", **merged)


@bp.app_template_filter()
def analytics_cell(v, kind):
    if v is None:
        return "new" if kind == INDEX else "–"
    if kind == MONEY:
        text = charts.short_money(abs(v)) if abs(v) >= 1_000_000 else f"£{abs(v):,.0f}"
        return f"−{text}" if v < 0 else text
    if kind == PCT:
        return f"{v:,.1f}%"
    if kind == CHG:
        return f"{v:+,.1f}%"
    if kind == NUM:
        return f"{v:,.1f}"
    if kind == FLAG:
        return "yes" if v else ""
    if kind == MONTH:
        return v.strftime("%b %Y")
    if kind in (INT, INDEX):
        return f"{v:,}"
    return str(v)
