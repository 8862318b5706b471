"""Staff administration, for the roles that administer staff (system admin, ops
director, MD): invite, change role or team, deactivate, reset a password. The
grants, policies and functions on app.staff and its credentials decide who may do
what to whom; every change is audited by the database. Other roles get a 403: the
list names database logins and emails, which is not theirs to browse."""
import functools

import psycopg
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from ..roles import ROLES
from . import db
from .auth import login_required
from .lists import csv_lines
from .errors import friendly

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view):
    """Signed in, and in a role that administers staff; anyone else gets 403."""
    @functools.wraps(view)
    @login_required
    def wrapped(**kwargs):
        if not g.user["administers_staff"]:  # the grants on app.staff say who (the database refuses the rest)
            abort(403, "Only a system admin, the ops director or the MD manages staff.")
        return view(**kwargs)
    return wrapped


def teams(conn):
    return conn.execute("select id, code, name from app.teams order by code").fetchall()


STAFF_SQL = ("select s.id, s.full_name, s.email, s.role::text as role, t.code as team, s.active, "
             "s.login_role, l.signed_in_at from app.staff s left join app.teams t on t.id = s.team_id "
             "left join app.last_sign_ins() l on l.staff_id = s.id "
             "order by s.active desc, s.full_name")


@bp.route("/staff")
@admin_required
def staff():
    with db.as_user() as conn:
        rows = conn.execute(STAFF_SQL).fetchall()
    return render_template("admin/staff.html", rows=rows)


@bp.route("/staff.csv")
@admin_required
def staff_csv():
    with db.as_user() as conn:
        rows = conn.execute(STAFF_SQL).fetchall()
    body = "".join(csv_lines(["Id", "Name", "Email", "Role", "Team", "Active", "Personal login", "Last sign-in"],
                             [list(r.values()) for r in rows]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="staff.csv"'})


@bp.route("/staff/new", methods=("GET", "POST"))
@bp.route("/staff/<int:staff_id>", methods=("GET", "POST"))
@admin_required
def edit(staff_id=None):
    values = dict(request.form) if request.method == "POST" else {}
    with db.as_user() as conn:
        team_rows = teams(conn)
        if staff_id is not None and request.method == "GET":
            row = conn.execute("select id, full_name, email, role::text as role, team_id, active, "
                               "version as row_version from app.staff where id = %s", (staff_id,)).fetchone()
            if row is None:
                abort(404)
            values = {k: ("" if v is None else v) for k, v in row.items()}
    if request.method == "POST":
        team = values.get("team_id") or None
        active = values.get("active") == "on"
        if staff_id is not None and values.get("was_active") == "1" and not active and values.get("confirm") != "deactivate":
            # deactivating signs the person out everywhere: ask once more, keeping the form as typed
            return render_template("admin/staff_form.html", values=values, teams=team_rows, roles=ROLES,
                                   staff_id=staff_id, confirm_deactivate=True)
        missing = [label for name, label in (("full_name", "the name"), ("email", "the email address"),
                                             ("role", "the role")) if not (values.get(name) or "").strip()]
        if missing:
            flash(f"Fill in {', '.join(missing)}.", "error")
            return render_template("admin/staff_form.html", values=values, teams=team_rows, roles=ROLES,
                                   staff_id=staff_id), 422
        try:
            with db.as_user() as conn:
                if staff_id is not None:
                    # optimistic concurrency: the row must still be the version the form was loaded from
                    n = conn.execute("update app.staff set full_name = %s, email = %s, role = %s, team_id = %s, "
                                     "active = %s where id = %s and version::text = %s",
                                     (values.get("full_name"), values.get("email"), values.get("role"), team,
                                      active, staff_id, values.get("row_version", ""))).rowcount
                    if n == 0:
                        exists = conn.execute("select 1 from app.staff where id = %s", (staff_id,)).fetchone()
                        if not exists:
                            abort(404)
                        flash("Someone changed this person while you were editing; reload to see their change, "
                              "then edit again.", "error")
                        return render_template("admin/staff_form.html", values=values, teams=team_rows,
                                               roles=ROLES, staff_id=staff_id), 409
                    flash("Saved.", "ok")
                    return redirect(url_for("admin.staff"))
                new_id = conn.execute("insert into app.staff (full_name, email, role, team_id) values (%s, %s, %s, %s) "
                                      "returning id", (values.get("full_name"), values.get("email"),
                                                       values.get("role"), team)).fetchone()["id"]
                conn.execute("select app.create_invite(%s) as token", (new_id,))
                validity = conn.execute("select app.link_validity('invite') as v").fetchone()["v"]
            # app.create_invite queued the welcome mail with the link (issue 12): nothing to copy
            return render_template("admin/invited.html", name=values.get("full_name"), email=values.get("email"),
                                   kind="invite", validity=validity)
        except psycopg.errors.UniqueViolation:
            flash("Someone already has that email address.", "error")
        except psycopg.errors.CheckViolation:
            flash("Check the email address, the name, and that buyers have a team.", "error")
        except psycopg.errors.InvalidTextRepresentation:
            flash("Choose a role from the list.", "error")
        except psycopg.Error as exc:
            flash(friendly(exc), "error")
        return render_template("admin/staff_form.html", values=values, teams=team_rows, roles=ROLES,
                               staff_id=staff_id), 422
    return render_template("admin/staff_form.html", values=values, teams=team_rows, roles=ROLES, staff_id=staff_id)


def link_page(staff_id, sql, kind):
    """Run app.create_invite or app.reset_password and show the one-time link; a refusal
    (not allowed, already has a password, ...) is the database's sentence."""
    try:
        with db.as_user() as conn:
            token = conn.execute(sql, (staff_id,)).fetchone()["token"]
            who = conn.execute("select full_name, email, app.link_validity(%s) as validity from app.staff "
                               "where id = %s", (kind, staff_id)).fetchone()
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
        return redirect(url_for("admin.staff"))
    link = url_for("auth.invite", token=token, _external=True) if kind == "reset" else None
    return render_template("admin/invited.html", link=link, name=who["full_name"], email=who["email"], kind=kind,
                           validity=who["validity"])


@bp.route("/staff/<int:staff_id>/invite", methods=("POST",))
@admin_required
def reinvite(staff_id):
    return link_page(staff_id, "select app.create_invite(%s) as token", "invite")


@bp.route("/staff/<int:staff_id>/reset", methods=("POST",))
@admin_required
def reset_password(staff_id):
    return link_page(staff_id, "select app.reset_password(%s) as token", "reset")
