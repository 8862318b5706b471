"""Near-duplicates: the live warning in the request and order forms (a fragment the
form fetches as the buyer types), and the review of likely pairs across teams for
senior buyers and directors, with "not a duplicate". app.similar_samples and
app.duplicate_pairs decide what is alike and what the person may see."""
import psycopg
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from . import db
from .auth import login_required
from .lists import csv_lines
from .errors import friendly

bp = Blueprint("duplicates", __name__, url_prefix="/duplicates")


def int_arg(name):
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        abort(400, f"{name} must be a whole number.")
    return int(raw)


def similar(conn, title, category, season, supplier=None, style=None, exclude=None):
    return conn.execute("select * from app.similar_samples(%s, %s, %s, %s, %s, %s, 5)",
                        (title[:200], category, season, supplier, (style or "")[:40] or None, exclude)).fetchall()


@bp.route("/similar")
@login_required
def similar_fragment():
    """What the request form shows while the buyer types (debounced in static/similar.js)."""
    title = request.args.get("title", "")
    if "\x00" in title or "\x00" in request.args.get("style", ""):
        abort(400, "Text cannot contain a NUL character.")
    with db.as_user() as conn:
        rows = similar(conn, title, int_arg("category"), int_arg("season"), int_arg("supplier"),
                       request.args.get("style"), int_arg("exclude"))
    return render_template("duplicates/_similar.html", similar=rows)


def season_arg(conn):
    season = int_arg("season")
    if season is None:  # this season: the one today falls in, else the latest
        season = conn.execute("select id from app.seasons order by (current_date between starts_on and ends_on) desc, "
                              "starts_on desc limit 1").fetchone()["id"]
    return season


@bp.route("/")
@login_required
def review():
    with db.as_user() as conn:
        season = season_arg(conn)
        seasons = conn.execute("select id, code || ' - ' || name as name from app.seasons order by starts_on desc"
                               ).fetchall()
        try:
            pairs = conn.execute("select * from app.duplicate_pairs(%s, 200)", (season,)).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only senior buyers and directors review likely duplicates.")
    return render_template("duplicates/review.html", pairs=pairs, seasons=seasons, season=season)


@bp.route("/pairs.csv")
@login_required
def review_csv():
    with db.as_user() as conn:
        season = season_arg(conn)
        try:
            pairs = conn.execute("select * from app.duplicate_pairs(%s, 500)", (season,)).fetchall()
        except psycopg.errors.InsufficientPrivilege:
            abort(403, "Only senior buyers and directors review likely duplicates.")
    body = "".join(csv_lines(["Sample", "Title", "Team", "Buyer", "Similar sample", "Title", "Team", "Buyer", "Score",
                              "Why"],
                             [[p["a_id"], p["a_title"], p["a_team"], p["a_buyer"], p["b_id"], p["b_title"], p["b_team"],
                               p["b_buyer"], round(p["score"], 2), "; ".join(p["reasons"])] for p in pairs]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="duplicates.csv"'})


@bp.route("/dismiss", methods=("POST",))
@login_required
def dismiss():
    try:
        a, b = int(request.form.get("a", "")), int(request.form.get("b", ""))
    except ValueError:
        abort(400, "Choose a pair from the list.")
    try:
        with db.as_user() as conn:
            conn.execute("select app.dismiss_duplicate(%s, %s, %s)", (a, b, request.form.get("reason") or None))
        flash(f"{a} and {b} are not duplicates; the pair will not be suggested again.", "ok")
    except psycopg.errors.InsufficientPrivilege:
        flash("Only senior buyers and directors review likely duplicates.", "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("duplicates.review", season=request.form.get("season") or None), code=303)
