"""Reference data: suppliers, factories, locations, categories and seasons. Who may
add or change what is the database's grants and policies (sql/policies/011-014, 022);
this page asks has_any_column_privilege / has_column_privilege which forms to show, and
every write runs as the signed-in person, so a form shown by mistake is still refused.
Nothing is deleted here (the policies keep history): suppliers and factories are
deactivated instead."""
import psycopg
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from psycopg import sql

from . import db
from .auth import login_required
from .lists import csv_lines, page_arg
from .errors import friendly

bp = Blueprint("reference", __name__, url_prefix="/reference")
PAGE_SIZE = 50

# kind -> table, title, singular, columns: (name, label, input kind); order; search column
KINDS = {
    "suppliers": ("suppliers", "Suppliers", "supplier",
                  [("name", "Name", "text"), ("country", "Country (ISO code)", "country"), ("active", "Active", "bool")],
                  "name", "name"),
    "factories": ("factories", "Factories", "factory",
                  [("name", "Name", "text"), ("country", "Country (ISO code)", "country"), ("city", "City", "text"),
                   ("active", "Active", "bool")], "name", "name"),
    "locations": ("locations", "Locations", "location",
                  [("code", "Code", "text"), ("name", "Name", "text"), ("kind", "Kind", "location_kind")],
                  "code", "code"),
    "categories": ("categories", "Categories", "category",
                   [("name", "Name", "text"), ("department", "Department", "text")], "name", "name"),
    "seasons": ("seasons", "Seasons", "season",
                [("code", "Code (SS26, AW26)", "text"), ("name", "Name", "text"), ("starts_on", "Starts", "date"),
                 ("ends_on", "Ends", "date")], "starts_on desc", "code"),
}
LOCATION_KINDS = ["shelf", "studio", "showroom", "dispatch"]
# what a refused write means, in words (constraint names from sql/migrations)
CHECKS = {
    "seasons_code_check": "A season code is SS or AW and two digits, e.g. SS27.",
    "seasons_check": "A season ends after it starts.",
    "locations_kind_check": "Choose a kind of location from the list.",
}


def spec(kind):
    if kind not in KINDS:
        abort(404)
    return KINDS[kind]


def rights(conn, table, columns):
    """What this person may do to the table, as the database says: insert, and update per column."""
    t = f"app.{table}"
    row = conn.execute("select has_any_column_privilege(%s, 'INSERT') as can_insert", (t,)).fetchone()
    editable = [c for c, _, _ in columns
                if conn.execute("select has_column_privilege(%s, %s, 'UPDATE') as ok", (t, c)).fetchone()["ok"]]
    return {"insert": row["can_insert"], "change": editable}


def editable_kinds(conn):
    """The kinds this person may add to or change (for the index page)."""
    out = []
    for kind, (table, title, _, columns, _, _) in KINDS.items():
        r = rights(conn, table, columns)
        out.append({"kind": kind, "title": title, "insert": r["insert"], "update": bool(r["change"])})
    return out


def rows_query(table, columns, order, search_col, q):
    cols = sql.SQL(", ").join(sql.Identifier(c) for c, _, _ in columns)
    where = sql.SQL("where {} ilike %(q)s").format(sql.Identifier(search_col)) if q else sql.SQL("")
    order_sql = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(part.split()[0]), sql.SQL("desc" if part.endswith(" desc") else "asc"))
        for part in order.split(","))
    return sql.SQL("select id, {cols}, count(*) over () as total from app.{t} {where} order by {order}, id "
                   "limit %(limit)s offset %(offset)s").format(cols=cols, t=sql.Identifier(table), where=where,
                                                               order=order_sql)


def form_values(columns, form, with_flags=True):
    values = {}
    for name, _, kind in columns:
        if kind == "bool":
            if with_flags:
                values[name] = form.get(name) == "on"
            continue
        raw = (form.get(name) or "").strip()
        values[name] = raw.upper() if kind == "country" and raw else (raw or None)
    return values


def explain(exc: psycopg.Error, singular: str) -> str:
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return f"A {singular} with that {'code' if 'code' in (exc.diag.constraint_name or '') else 'name'} exists already."
    if isinstance(exc, psycopg.errors.NotNullViolation):
        return "Fill in every field marked with *."
    if isinstance(exc, (psycopg.errors.CheckViolation, psycopg.errors.StringDataRightTruncation)):
        return CHECKS.get(exc.diag.constraint_name or "", "One of the values is not valid (a country is a two-letter "
                                                          "code such as GB or PT; names cannot be blank).")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"You are not allowed to change {singular} records."
    return friendly(exc)


@bp.route("/")
@login_required
def index():
    with db.as_user() as conn:
        kinds = editable_kinds(conn)
    return render_template("reference/index.html", kinds=kinds)


@bp.route("/<kind>")
@login_required
def listing(kind):
    table, title, singular, columns, order, search_col = spec(kind)
    page = page_arg(request.args)
    q = request.args.get("q", "").strip()[:100]
    if "\x00" in q:
        abort(400, "Search text cannot contain a NUL character.")
    with db.as_user() as conn:
        rows = conn.execute(rows_query(table, columns, order, search_col, q),
                            {"q": f"%{q}%", "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}).fetchall()
        can = rights(conn, table, columns)
    total = rows[0]["total"] if rows else 0
    return render_template("reference/list.html", kind=kind, title=title, singular=singular, columns=columns,
                           rows=rows, can=can, page=page, pages=max(1, -(-total // PAGE_SIZE)), total=total, q=q,
                           location_kinds=LOCATION_KINDS)


@bp.route("/<kind>.csv")
@login_required
def export(kind):
    table, title, _, columns, order, search_col = spec(kind)
    with db.as_user() as conn:
        rows = conn.execute(rows_query(table, columns, order, search_col, None),
                            {"limit": None, "offset": 0}).fetchall()
    body = "".join(csv_lines(["Id"] + [label for _, label, _ in columns],
                             [[r["id"]] + [r[c] for c, _, _ in columns] for r in rows]))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'})


@bp.route("/<kind>", methods=("POST",))
@login_required
def add(kind):
    table, _, singular, columns, _, _ = spec(kind)
    values = form_values(columns, request.form, with_flags=False)
    try:
        with db.as_user() as conn:
            names = list(values)
            conn.execute(sql.SQL("insert into app.{t} ({cols}) values ({vals})").format(
                t=sql.Identifier(table), cols=sql.SQL(", ").join(map(sql.Identifier, names)),
                vals=sql.SQL(", ").join(sql.Placeholder(n) for n in names)), values)
        flash(f"{singular.capitalize()} {values.get('code') or values.get('name')} added.", "ok")
    except psycopg.Error as exc:
        flash(explain(exc, singular), "error")
    return redirect(url_for("reference.listing", kind=kind), code=303)


@bp.route("/<kind>/<int:row_id>", methods=("POST",))
@login_required
def update(kind, row_id):
    table, _, singular, columns, _, _ = spec(kind)
    try:
        with db.as_user() as conn:
            allowed = rights(conn, table, columns)["change"]
            values = {k: v for k, v in form_values(columns, request.form).items() if k in allowed}
            if not values:
                abort(403, f"You are not allowed to change {singular} records.")
            n = conn.execute(sql.SQL("update app.{t} set {sets} where id = %(id)s").format(
                t=sql.Identifier(table),
                sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
                                        for k in values)), {**values, "id": row_id}).rowcount
        if n == 0:
            abort(404)
        flash(f"{singular.capitalize()} saved.", "ok")
    except psycopg.Error as exc:
        flash(explain(exc, singular), "error")
    return redirect(url_for("reference.listing", kind=kind, page=request.form.get("page", 1)) + f"#row-{row_id}",
                    code=303)
