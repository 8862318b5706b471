"""A supplier's page: its quality record (QC rejects with reasons, lateness, returns),
its hold, the samples from it this person can see, and watching it. The order form
asks for the record fragment as the supplier is chosen. Holds are app.hold_supplier /
app.lift_supplier_hold: the database decides who may and records why."""
import psycopg
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from . import db
from .auth import login_required
from .lists import csv_lines, page_arg
from .errors import friendly

bp = Blueprint("suppliers", __name__, url_prefix="/suppliers")
PAGE_SIZE = 50
SAMPLES_SQL = ("select id, title, display_state, team_code, requested_by_name, state_changed_at, expected_on, "
               "received_on, count(*) over () as total from app.sample_overview where supplier_id = %(id)s "
               "order by id desc limit %(limit)s offset %(offset)s")


def record(conn, supplier_id):
    rec = conn.execute("select * from app.supplier_record(%s)", (supplier_id,)).fetchone()
    if rec is None:
        abort(404)
    rejects = conn.execute("select * from app.supplier_recent_rejects(%s, 10)", (supplier_id,)).fetchall()
    return rec, rejects


@bp.route("/<int:supplier_id>")
@login_required
def page(supplier_id):
    page_no = page_arg(request.args)
    with db.as_user() as conn:
        rec, rejects = record(conn, supplier_id)
        holds = conn.execute("select h.action, h.reason, h.at, st.full_name as actor from app.supplier_hold_events h "
                             "join app.staff st on st.id = h.actor_id where h.supplier_id = %s order by h.at desc, h.id desc",
                             (supplier_id,)).fetchall()
        samples = conn.execute(SAMPLES_SQL, {"id": supplier_id, "limit": PAGE_SIZE,
                                             "offset": (page_no - 1) * PAGE_SIZE}).fetchall()
        may_hold = conn.execute("select has_function_privilege('app.hold_supplier(integer, text)', 'EXECUTE') as ok"
                                ).fetchone()["ok"]
        watching = conn.execute("select exists (select 1 from app.watches where supplier_id = %s "
                                "and staff_id = app.current_staff_id()) as w", (supplier_id,)).fetchone()["w"]
    total = samples[0]["total"] if samples else 0
    return render_template("suppliers/page.html", rec=rec, rejects=rejects, holds=holds, samples=samples,
                           may_hold=may_hold, watching=watching, page=page_no,
                           pages=max(1, -(-total // PAGE_SIZE)), total=total)


@bp.route("/<int:supplier_id>/samples.csv")
@login_required
def samples_csv(supplier_id):
    with db.as_user() as conn:
        rows = conn.execute(SAMPLES_SQL, {"id": supplier_id, "limit": None, "offset": 0}).fetchall()
    body = "".join(csv_lines(["No.", "Title", "State", "Team", "Buyer", "In state since", "Expected", "Received"],
                             [[r["id"], r["title"], r["display_state"], r["team_code"], r["requested_by_name"],
                               r["state_changed_at"], r["expected_on"], r["received_on"]] for r in rows]))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="supplier-{supplier_id}-samples.csv"'})


@bp.route("/<int:supplier_id>/record")
@login_required
def record_fragment(supplier_id):
    """The record beside the supplier in the order and request forms (fetched as it is chosen)."""
    with db.as_user() as conn:
        rec, rejects = record(conn, supplier_id)
    return render_template("suppliers/_record.html", rec=rec, rejects=rejects)


@bp.route("/<int:supplier_id>/hold", methods=("POST",))
@login_required
def hold(supplier_id):
    lift = request.form.get("lift") == "1"
    try:
        with db.as_user() as conn:
            conn.execute("select app.lift_supplier_hold(%s, %s)" if lift else "select app.hold_supplier(%s, %s)",
                         (supplier_id, request.form.get("reason", "")))
        flash("Hold lifted." if lift else "Supplier put on hold: nobody can request or order from it now.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("suppliers.page", supplier_id=supplier_id), code=303)
