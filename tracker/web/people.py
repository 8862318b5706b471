"""The colleague directory: everyone's name, role and team, for every staff role.
The e-mail address and database login are not granted to most roles (sql/policies/
020_staff.sql), so this page never asks for them; staff admin (admin.py) does."""
from flask import Blueprint, Response, abort, render_template, request

from ..roles import ROLES
from . import db
from .auth import login_required
from .lists import csv_lines, page_arg

bp = Blueprint("people", __name__, url_prefix="/people")
PAGE_SIZE = 50
PEOPLE_SQL = ("select s.id, s.full_name, s.role::text as role, t.code as team, count(*) over () as total "
              "from app.staff s left join app.teams t on t.id = s.team_id "
              "where s.active and (%(q)s = '' or s.full_name ilike '%%' || %(q)s || '%%') "
              "and (%(role)s = '' or s.role::text = %(role)s) "
              "order by s.full_name, s.id limit %(limit)s offset %(offset)s")


def args():
    q = request.args.get("q", "").strip()[:100]
    role = request.args.get("role", "")
    if "\x00" in q:
        abort(400, "Search text cannot contain a NUL character.")
    return {"q": q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"),
            "role": role if role in ROLES else ""}, q


@bp.route("/")
@login_required
def index():
    params, q = args()
    page = page_arg(request.args)
    with db.as_user() as conn:
        rows = conn.execute(PEOPLE_SQL, {**params, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}).fetchall()
    total = rows[0]["total"] if rows else 0
    return render_template("people/index.html", rows=rows, q=q, role=params["role"], roles=ROLES, page=page,
                           pages=max(1, -(-total // PAGE_SIZE)), total=total)


@bp.route("/people.csv")
@login_required
def export():
    params, _ = args()
    with db.as_user() as conn:
        rows = conn.execute(PEOPLE_SQL, {**params, "limit": None, "offset": 0}).fetchall()
    body = "".join(csv_lines(["Name", "Role", "Team"],
                             [[r["full_name"], r["role"].replace("_", " "), r["team"] or ""] for r in rows]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="people.csv"'})
