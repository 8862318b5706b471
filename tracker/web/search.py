"""One search box on every page: a sample number jumps to the sample; anything else
is a ranked full-text search (app.search_samples), through RLS."""
import re

from flask import Blueprint, Response, redirect, render_template, request, url_for

from . import db
from .auth import login_required
from .lists import csv_lines

bp = Blueprint("search", __name__)
NUMBER = re.compile(r"^\s*#?\s*(\d{1,18})\s*$")


@bp.route("/search")
@login_required
def search():
    q = request.args.get("q", "").strip()
    m = NUMBER.match(q)
    if m:
        return redirect(url_for("samples.detail", sample_id=int(m.group(1))))
    page = max(request.args.get("page", 1, type=int), 1)
    rows = []
    if q:
        with db.as_user() as conn:
            rows = conn.execute("select * from app.search_samples(%s, 51, %s)", (q[:200], (page - 1) * 50)).fetchall()
    return render_template("search/results.html", q=q, rows=rows[:50], page=page, has_next=len(rows) > 50)


@bp.route("/search.csv")
@login_required
def search_csv():
    q = request.args.get("q", "").strip()[:200]
    with db.as_user() as conn:
        rows = conn.execute("select id, title, state::text, round(rank::numeric, 4), matched_in "
                            "from app.search_samples(%s, 500, 0)", (q,)).fetchall() if q else []
    body = "".join(csv_lines(["No.", "Title", "State", "Rank", "Matched in"], [list(r.values()) for r in rows]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="search.csv"'})
