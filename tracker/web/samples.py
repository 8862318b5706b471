"""Sample lists and the sample page. SQL decides what is visible (RLS); Python formats."""
from flask import Blueprint, abort, current_app, render_template, request

from . import db
from .auth import login_required

bp = Blueprint("samples", __name__, url_prefix="/samples")


@login_required
def index():
    page = max(request.args.get("page", 1, type=int), 1)
    size = current_app.config["PAGE_SIZE"]
    with db.as_user() as conn:
        rows = conn.execute(
            "select id, title, state::text as state, team_code, category, season, supplier, holder_name, "
            "location, days_in_state, total_gbp from app.sample_overview "
            "order by state_changed_at desc, id desc limit %s offset %s",
            (size + 1, (page - 1) * size)).fetchall()
    return render_template("samples/list.html", rows=rows[:size], page=page, has_next=len(rows) > size)


@bp.route("/<int:sample_id>")
@login_required
def detail(sample_id):
    with db.as_user() as conn:
        sample = conn.execute("select * from app.sample_overview where id = %s", (sample_id,)).fetchone()
        if sample is None:
            abort(404)
        events = conn.execute(
            "select e.at, e.action, e.from_state::text as from_state, e.to_state::text as to_state, "
            "e.note, e.is_override, s.full_name as actor, e.actor_role "
            "from app.sample_events e left join app.staff s on s.id = e.actor_id "
            "where e.sample_id = %s order by e.at, e.id", (sample_id,)).fetchall()
        actions = conn.execute("select action, verb from app.available_actions(%s)", (sample_id,)).fetchall()
    return render_template("samples/detail.html", s=sample, events=events, actions=actions)
