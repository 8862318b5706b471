"""Importing the old spreadsheet (issue 14, item 5): upload a CSV or XLSX, map its columns
(remembered per header layout), see a dry run (every row through app.import_sample in a
transaction that is rolled back), then confirm: one transaction, the same function, the
rows that passed. Re-importing the same file creates nothing twice (external references)."""
import psycopg
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from psycopg.types.json import Jsonb

from .. import imports
from . import db
from .auth import login_required
from .errors import friendly

bp = Blueprint("imports", __name__, url_prefix="/import")


def load_batch(conn, batch_id):
    try:
        batch = conn.execute("select * from app.import_batches where id = %s", (batch_id,)).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        abort(403, "Only logistics, senior buyers and the system admin import samples.")
    if batch is None:
        abort(404)
    return batch


def run_rows(conn, batch, write: bool):
    """Every row through app.import_sample: what happened (or would happen) to it.

    Two passes in the caller's transaction. First every row is checked with nothing written
    (p_check_only), each in its own savepoint so one row's error leaves the others: a savepoint
    that writes nothing is cheap, one per written row is not (10,000 of them made the import
    slower with every row). Then, for the import itself, the rows that passed are written, with
    no savepoint each: they were checked a moment ago in this same transaction."""
    results = []
    for row in imports.prepare(batch["rows"], batch["mapping"]):
        if row["error"]:
            results.append({**row, "outcome": "error", "message": row["error"]})
            continue
        try:
            with conn.transaction():
                r = conn.execute("select * from app.import_sample(%s, %s, true)", (row["ref"], Jsonb(row["values"]))
                                 ).fetchone()
            results.append({**row, "outcome": "created" if r["created"] else "exists", "sample_id": r["sample_id"]})
        except psycopg.Error as exc:
            results.append({**row, "outcome": "error", "message": friendly(exc)})
    if write:
        for res in results:
            if res["outcome"] == "created":
                r = conn.execute("select * from app.import_sample(%s, %s)", (res["ref"], Jsonb(res["values"]))
                                 ).fetchone()
                res["sample_id"] = r["sample_id"]
                res["outcome"] = "created" if r["created"] else "exists"  # imported by someone else meanwhile
    return results


@bp.route("/", methods=("GET", "POST"))
@login_required
def upload():
    if request.method == "POST":
        f = request.files.get("file")
        if not f or not f.filename:
            flash("Choose a .csv or .xlsx file.", "error")
            return redirect(url_for("imports.upload"), code=303)
        try:
            headers, rows = imports.read(f.filename, f.read(imports.MAX_BYTES + 1))
        except imports.BadFile as exc:
            flash(str(exc), "error")
            return redirect(url_for("imports.upload"), code=303)
        serial = [{k: imports.to_json(v) for k, v in r.items()} for r in rows]
        try:
            with db.as_user() as conn:
                known = conn.execute("select mapping from app.import_layouts where header_key = %s",
                                     (imports.layout_key(headers),)).fetchone()
                mapping = known["mapping"] if known else imports.guess_mapping(headers)
                bid = conn.execute("insert into app.import_batches (staff_id, filename, headers, rows, mapping) "
                                   "values (app.current_staff_id(), %s, %s, %s, %s) returning id",
                                   (f.filename[:200], headers, Jsonb(serial), Jsonb(mapping))).fetchone()["id"]
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only logistics, senior buyers and the system admin import samples.")
        flash(f"{len(rows):,} rows read from {f.filename}" + (" (column mapping remembered from last time)."
                                                             if known else "."), "ok")
        return redirect(url_for("imports.mapping", batch_id=bid), code=303)
    return render_template("imports/upload.html")


@bp.route("/<int:batch_id>", methods=("GET", "POST"))
@login_required
def mapping(batch_id):
    with db.as_user() as conn:
        batch = load_batch(conn, batch_id)
        if request.method == "POST":
            chosen = {h: request.form.get(f"map-{i}") for i, h in enumerate(batch["headers"])}
            chosen = {h: f for h, f in chosen.items() if f in imports.FIELDS}
            if len(set(chosen.values())) != len(chosen):
                flash("Each of our fields can come from one column only.", "error")
                return redirect(url_for("imports.mapping", batch_id=batch_id), code=303)
            conn.execute("update app.import_batches set mapping = %s where id = %s", (Jsonb(chosen), batch_id))
            conn.execute("insert into app.import_layouts (header_key, mapping) values (%s, %s) "
                         "on conflict (header_key) do update set mapping = excluded.mapping",
                         (imports.layout_key(batch["headers"]), Jsonb(chosen)))
            return redirect(url_for("imports.preview", batch_id=batch_id), code=303)
    sample = [{h: r.get(h) for h in batch["headers"]} for r in batch["rows"][:3]]
    return render_template("imports/mapping.html", batch=batch, fields=imports.FIELDS, sample=sample)


@bp.route("/<int:batch_id>/preview")
@login_required
def preview(batch_id):
    """The dry run: everything the import would do, then rolled back."""
    with db.as_user() as conn:
        batch = load_batch(conn, batch_id)
        with conn.transaction(force_rollback=True):
            results = run_rows(conn, batch, write=False)
    return render_template("imports/preview.html", batch=batch, results=results, dry=True)


@bp.route("/<int:batch_id>/commit", methods=("POST",))
@login_required
def commit(batch_id):
    try:
        with db.as_user() as conn:
            batch = load_batch(conn, batch_id)
            if batch["committed_at"]:
                flash("This spreadsheet was imported already.", "error")
                return redirect(url_for("imports.preview", batch_id=batch_id), code=303)
            results = run_rows(conn, batch, write=True)
            conn.execute("update app.import_batches set committed_at = now() where id = %s", (batch_id,))
    except psycopg.Error as exc:  # e.g. the same reference imported by someone else at this very moment
        flash(f"Nothing was imported: {friendly(exc)}", "error")
        return redirect(url_for("imports.preview", batch_id=batch_id), code=303)
    done = sum(r["outcome"] == "created" for r in results)
    flash(f"{done:,} samples imported; {sum(r['outcome'] == 'exists' for r in results):,} were imported before; "
          f"{sum(r['outcome'] == 'error' for r in results):,} rows had errors and were left out.", "ok")
    return render_template("imports/preview.html", batch=batch, results=results, dry=False)
