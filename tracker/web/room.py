"""The sample room on a phone: a basket of samples built by scanning tags (camera where
the browser has BarcodeDetector, a typed or USB-scanner number always), one move applied
to all of them (app.bulk_act: each sample checked like a single action, the result per
sample), and stocktakes of a location (app.start_stocktake / count_sample / close /
stocktake_report). The database decides who may do what to which sample."""
import re

import psycopg
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from psycopg.types.json import Jsonb

from . import db
from .auth import login_required
from .lists import PAGE_SIZE, csv_lines, page_arg
from .errors import friendly

bp = Blueprint("room", __name__)
MAX_BASKET = 500
MOVES = {  # action -> (label, the one value it needs: (field, kind))
    "receive": ("Receive into a location", ("location_id", "location")),
    "hand_to_design": ("Hand to a designer", ("holder_id", "designer")),
    "hand_to_sales": ("Hand to sales", ("holder_id", "sales")),
    "hand_back": ("Put back in the sample room", ("location_id", "location")),
    "send_to_factory": ("Send to a factory", ("factory_id", "factory")),
    "return_from_factory": ("Bring back from the factory", ("location_id", "location")),
    "return_to_supplier": ("Return to the supplier", ("courier_ref", "text")),
    "confirm_handover": ("Confirm I have them (handed to me)", ("note", "text")),
}
CHOICES = {
    "location": "select id, code || ' - ' || name as name from app.locations order by code",
    "factory": "select id, name from app.factories where active order by name",
    "designer": ("select id, full_name as name from app.staff where active "
                 "and role = any (app.holder_roles('with-design')) order by full_name"),
    "sales": ("select id, full_name || ' (' || replace(role::text, '_', ' ') || ')' as name from app.staff "
              "where active and role = any (app.holder_roles('with-sales')) order by full_name"),
}
NUMBER = re.compile(r"(?:/samples/)?#?(\d{1,18})")


def parse_basket(raw: str) -> list[int]:
    """Sample numbers from what was typed or scanned: '4421 4430', '#4421', tag URLs ..."""
    if "\x00" in raw:
        abort(400, "Sample numbers cannot contain a NUL character.")
    ids = []
    for token in re.split(r"[\s,;]+", raw.strip()):
        if not token:
            continue
        m = NUMBER.search(token)
        if not m:
            abort(400, f"“{token[:40]}” is not a sample number.")
        n = int(m.group(1))
        if n not in ids:
            ids.append(n)
    if len(ids) > MAX_BASKET:
        abort(400, f"At most {MAX_BASKET} samples at once.")
    return ids


def choices(conn):
    return {k: conn.execute(sql).fetchall() for k, sql in CHOICES.items()}


def my_moves(conn):
    """The moves the person's role makes from some state (app.transition_rules, read as them): the
    scan page offers only those. The database still checks each sample (bulk_act)."""
    mine = {r["action"] for r in conn.execute(
        "select distinct action from app.transition_rules where action = any(%s) "
        "and (select role from app.staff where id = app.current_staff_id()) = any(roles)", (list(MOVES),))}
    return {k: v for k, v in MOVES.items() if k in mine}


@bp.route("/scan", methods=("GET", "POST"))
@login_required
def scan():
    basket = parse_basket(" ".join(request.values.getlist("id")) + " " + request.values.get("basket", ""))
    results, action = None, request.form.get("action", "")
    if request.method == "POST":
        if action not in MOVES:
            abort(400, "Choose what to do with the samples.")
        if not basket:
            flash("Scan or type at least one sample number.", "error")
        else:
            field, _ = MOVES[action][1]
            raw = (request.form.get(field) or "").strip()
            value = raw if field == "courier_ref" else (int(raw) if raw.isdigit() and len(raw) <= 9 else None)
            try:
                with db.as_user() as conn:
                    results = conn.execute("select * from app.bulk_act(%s, %s, %s, %s, %s)",
                                           (action, basket, Jsonb({field: value} if value is not None else {}),
                                            request.form.get("mode") == "all", request.form.get("note") or None)
                                           ).fetchall()
                done = sum(r["ok"] for r in results)
                flash(f"{done} of {len(results)} samples: {MOVES[action][0].lower()} — done."
                      + ("" if done == len(results) else " The others are listed with the reason."),
                      "ok" if done else "error")
                # the refused stay in the basket for another go; the done ones leave it
                basket = [r["sample_id"] for r in results if not r["ok"]]
            except psycopg.Error as exc:
                flash(friendly(exc), "error")
    with db.as_user() as conn:
        opts = choices(conn)
        moves = my_moves(conn)
        titles = {r["id"]: r for r in conn.execute(
            "select id, title, display_state from app.sample_overview where id = any(%s)", (basket,)).fetchall()}
    resp = Response(render_template("room/scan.html", basket=basket, titles=titles, results=results, moves=moves,
                                    choices=opts, action=action, values=request.form))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---------------------------------------------------------------- stocktake
@bp.route("/stocktake", methods=("GET", "POST"))
@login_required
def stocktakes():
    if request.method == "POST":
        raw = request.form.get("location", "")
        try:
            with db.as_user() as conn:
                sid = conn.execute("select app.start_stocktake(%s) as id",
                                   (int(raw) if raw.isdigit() and len(raw) <= 9 else None,)).fetchone()["id"]
            return redirect(url_for("room.stocktake", stocktake_id=sid), code=303)
        except psycopg.Error as exc:
            flash(friendly(exc), "error")
            return redirect(url_for("room.stocktakes"), code=303)
    with db.as_user() as conn:
        try:
            rows = conn.execute(
                "select t.id, l.code, t.started_at, st.full_name as started_by, t.closed_at, "
                "cardinality(t.expected) as expected, cardinality(t.found) as found, "
                "(select count(*) from unnest(t.expected) x where not x = any(t.found)) as missing "
                "from app.stocktakes t join app.locations l on l.id = t.location_id "
                "join app.staff st on st.id = t.started_by order by t.started_at desc limit 50").fetchall()
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only logistics and directors count stock.")
        locations = conn.execute(CHOICES["location"]).fetchall()
    return render_template("room/stocktakes.html", rows=rows, locations=locations)


def report(conn, stocktake_id):
    take = conn.execute("select t.*, l.code from app.stocktakes t join app.locations l on l.id = t.location_id "
                        "where t.id = %s", (stocktake_id,)).fetchone()
    if take is None:
        abort(404)
    return take, conn.execute("select * from app.stocktake_report(%s)", (stocktake_id,)).fetchall()


@bp.route("/stocktake/<int:stocktake_id>", methods=("GET", "POST"))
@login_required
def stocktake(stocktake_id):
    if request.method == "POST":
        what = request.form.get("do")
        try:
            with db.as_user() as conn:
                if what == "close":
                    conn.execute("select app.close_stocktake(%s)", (stocktake_id,))
                    flash("Count closed and kept.", "ok")
                elif what == "move":
                    sid = int(request.form.get("sample_id", "0"))
                    n = conn.execute("update app.samples set location_id = (select location_id from app.stocktakes "
                                     "where id = %s) where id = %s", (stocktake_id, sid)).rowcount
                    flash(f"Sample {sid} is now recorded here." if n else
                          f"Sample {sid} cannot be moved here (it is not in the sample room).", "ok" if n else "error")
                else:
                    ids = parse_basket(request.form.get("number", ""))
                    for sid in ids:
                        row = conn.execute("select * from app.count_sample(%s, %s)", (stocktake_id, sid)).fetchone()
                        flash(f"{sid}: found{'' if row['expected'] else ' — not expected here (records say ' + (row['recorded_location'] or row['state']) + ')'}.",
                              "ok" if row["expected"] else "error")
        except psycopg.Error as exc:
            flash(friendly(exc), "error")
        except ValueError:
            abort(400, "Choose a sample.")
        return redirect(url_for("room.stocktake", stocktake_id=stocktake_id), code=303)
    with db.as_user() as conn:
        try:
            take, rows = report(conn, stocktake_id)
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only logistics and directors count stock.")
    return render_template("room/stocktake.html", take=take, rows=rows)


@bp.route("/stocktake/<int:stocktake_id>.csv")
@login_required
def stocktake_csv(stocktake_id):
    with db.as_user() as conn:
        try:
            take, rows = report(conn, stocktake_id)
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only logistics and directors count stock.")
    body = "".join(csv_lines(["No.", "Outcome", "Title", "State", "Recorded location", "Holder", "Last change", "When"],
                             [[r["sample_id"], r["outcome"], r["title"], r["state"], r["recorded_location"],
                               r["holder"], r["last_action"], r["last_at"]] for r in rows]))
    # the location code is typed by people (reference data): only safe characters go into the header
    code = re.sub(r"[^A-Za-z0-9._-]+", "_", take["code"])[:40]
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="stocktake-{code}-{stocktake_id}.csv"'})


# ---------------------------------------------------------------- missing at a stocktake
MISSING_COLUMNS = ["sample_id", "title", "display_state", "location_code", "stocktake_id", "closed_at", "counted_by",
                   "holder", "last_action", "last_at", "days_missing"]
MISSING_LABELS = ["No.", "Title", "State", "Expected at", "Count", "Count closed", "Counted by", "Last holder",
                  "Last change", "When", "Days missing"]


@bp.route("/stocktake/missing")
@login_required
def missing():
    """Every sample a closed count missed, until accounted for (app.missing_samples: the
    directors' dashboard shows the newest ten and links here); paginated, CSV."""
    page = page_arg(request.args)
    with db.as_user() as conn:
        try:
            rows = conn.execute("select *, count(*) over () as total from app.missing_samples "
                                "order by closed_at desc, sample_id limit %s offset %s",
                                (PAGE_SIZE, (page - 1) * PAGE_SIZE)).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only logistics and directors count stock.")
    total = rows[0]["total"] if rows else 0
    return render_template("room/missing.html", rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)))


@bp.route("/stocktake/missing.csv")
@login_required
def missing_csv():
    with db.as_user() as conn:
        rows = conn.execute("select " + ", ".join(MISSING_COLUMNS) + " from app.missing_samples "
                            "order by closed_at desc, sample_id").fetchall()
    body = "".join(csv_lines(MISSING_LABELS, [[r[c] for c in MISSING_COLUMNS] for r in rows]))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="missing-at-stocktake.csv"'})
