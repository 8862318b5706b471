"""Watching: anyone follows a sample or a supplier; their Watching page lists the
samples' latest changes and the suppliers' samples, through RLS (a watched sample the
person can no longer see simply drops out).

Live: every page with a realtime socket carries the ids of what the person watches
(`live_watches()`, read through their own policies); static/realtime.js counts the
changes to those on the "Watching" link and re-reads this page when one changes. The
socket only ever carries what the person may SELECT (tracker/web/realtime.py), so this
filter in the browser reveals nothing: a hidden sample's change never reaches it."""
import psycopg
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from . import db, realtime
from .auth import login_required
from .lists import csv_lines
from .errors import friendly

bp = Blueprint("watching", __name__, url_prefix="/watching")
SAMPLES_SQL = ("select s.id, s.title, s.display_state, s.team_code, s.holder_name, s.state_changed_at, "
               "e.action as last_action, e.at as last_at, st.full_name as last_by "
               "from app.watches w join app.sample_overview s on s.id = w.sample_id "
               "left join lateral (select action, at, actor_id from app.sample_events "
               "where sample_id = s.id order by at desc, id desc limit 1) e on true "
               "left join app.staff st on st.id = e.actor_id "
               "where w.staff_id = app.current_staff_id() order by e.at desc nulls last, s.id desc")
SUPPLIERS_SQL = ("select su.id, su.name, su.on_hold_at, su.hold_reason, "
                 "(select count(*) from app.samples s where s.supplier_id = su.id "
                 " and s.state not in ('returned', 'cut-for-production')) as in_flight "
                 "from app.watches w join app.suppliers su on su.id = w.supplier_id "
                 "where w.staff_id = app.current_staff_id() order by su.name")
# the watched samples the person can still see (RLS on app.samples), and every watched supplier
WATCHES_SQL = ("select coalesce(array_agg(w.sample_id) filter (where w.sample_id is not null), '{}') as samples, "
               "coalesce(array_agg(w.supplier_id) filter (where w.supplier_id is not null), '{}') as suppliers "
               "from app.watches w where w.staff_id = app.current_staff_id() "
               "and (w.sample_id is null or exists (select 1 from app.samples s where s.id = w.sample_id))")


@bp.route("/")
@login_required
def index():
    g.live_since = realtime.page_cursor()  # before the content: the page's socket resumes from here
    with db.as_user() as conn:
        samples = conn.execute(SAMPLES_SQL).fetchall()
        suppliers = conn.execute(SUPPLIERS_SQL).fetchall()
    return render_template("watching/index.html", samples=samples, suppliers=suppliers)


@bp.route("/watching.csv")
@login_required
def export():
    with db.as_user() as conn:
        samples = conn.execute(SAMPLES_SQL).fetchall()
    body = "".join(csv_lines(["No.", "Title", "State", "Team", "Holder", "Last change", "When", "By"],
                             [[r["id"], r["title"], r["display_state"], r["team_code"], r["holder_name"],
                               r["last_action"], r["last_at"], r["last_by"]] for r in samples]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="watching.csv"'})


@bp.route("/toggle", methods=("POST",))
@login_required
def toggle():
    sample = request.form.get("sample_id", "")
    supplier = request.form.get("supplier_id", "")
    if not ((sample.isdigit() and len(sample) <= 18) or (supplier.isdigit() and len(supplier) <= 9)):
        abort(400, "Choose a sample or a supplier to watch.")
    target = int(sample or supplier)
    watch = request.form.get("watch") == "1"
    try:
        with db.as_user() as conn:
            if watch:
                conn.execute("insert into app.watches (staff_id, sample_id, supplier_id) "
                             "values (app.current_staff_id(), %s, %s) on conflict do nothing",
                             (target if sample else None, target if supplier else None))
            elif sample:
                conn.execute("delete from app.watches where staff_id = app.current_staff_id() and sample_id = %s",
                             (target,))
            else:
                conn.execute("delete from app.watches where staff_id = app.current_staff_id() and supplier_id = %s",
                             (target,))
        flash("Watching: its changes appear on your Watching page." if watch else "No longer watching.", "ok")
    except psycopg.errors.ForeignKeyViolation:
        abort(404)
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    if request.form.get("back") == "watching":
        return redirect(url_for("watching.index"), code=303)
    if sample:
        return redirect(url_for("samples.detail", sample_id=target), code=303)
    return redirect(url_for("suppliers.page", supplier_id=target), code=303)


@bp.app_context_processor
def watches_for_live_pages():
    """`live_watches()` for base.html: the ids the person watches, only on pages with a socket."""
    def live_watches():
        if g.get("user") is None:
            return {"samples": [], "suppliers": []}
        with db.as_user() as conn:
            return conn.execute(WATCHES_SQL).fetchone()
    return {"live_watches": live_watches}
