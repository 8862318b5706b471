"""Sign in / sign out. Passwords are argon2 hashes read only through
app_private.lookup_login(); the database decides who is active."""
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for

from . import db

bp = Blueprint("auth", __name__, url_prefix="/auth")
_hasher = PasswordHasher()
# verifying against a dummy hash keeps the time of "no such user" equal to "wrong password"
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


@bp.before_app_request
def load_user():
    g.user = None
    staff_id, role = session.get("staff_id"), session.get("role")
    if staff_id is None:
        return
    with db.as_user(staff_id, role) as conn:
        g.user = conn.execute(
            "select s.id, s.full_name, s.email, s.role::text as role, s.team_id, t.code as team_code "
            "from app.staff s left join app.teams t on t.id = s.team_id "
            "where s.id = app.current_staff_id()").fetchone()
    if g.user is None:  # deactivated or role changed since sign-in
        session.clear()


@bp.before_app_request
def check_csrf():
    session.setdefault("csrf", secrets.token_urlsafe(24))
    if request.method == "POST" and request.form.get("csrf") != session["csrf"]:
        abort(400, "The form expired or did not come from this site; reload the page and try again.")


@bp.app_context_processor
def inject_csrf():
    return {"csrf_token": session.get("csrf", "")}


def login_required(view):
    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login", next=request.full_path))
        return view(**kwargs)
    return wrapped


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        password = request.form.get("password", "")
        with db.anonymous() as conn:
            allowed = conn.execute("select app_private.login_allowed(%s) as ok", (email,)).fetchone()["ok"]
            row = conn.execute("select * from app_private.lookup_login(%s)", (email,)).fetchone()
        if not allowed:
            flash("Too many failed sign-ins for this account; wait 15 minutes and try again.")
            return render_template("auth/login.html", email=email), 429
        ok = False
        try:
            ok = _hasher.verify(row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH, password)
        except (VerifyMismatchError, InvalidHashError):
            ok = False
        with db.anonymous() as conn:
            conn.execute("select app_private.clear_login_failures(%s)" if ok and row and row["active"]
                         else "select app_private.record_login_failure(%s)", (email,))
        if ok and row and row["active"]:
            session.clear()
            session["staff_id"], session["role"] = row["staff_id"], row["role"]
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("index"))
        flash("That email and password do not match an active account.")
        return render_template("auth/login.html", email=email), 401
    return render_template("auth/login.html", email="")


@bp.route("/logout", methods=("POST",))
def logout():
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=("GET", "POST"))
def invite(token):
    if request.method == "POST":
        password = request.form.get("password", "")
        if len(password) < 10:
            flash("Choose a password of at least 10 characters.")
            return render_template("auth/invite.html"), 422
        if password != request.form.get("confirm", ""):
            flash("The two passwords differ.")
            return render_template("auth/invite.html"), 422
        try:
            with db.anonymous() as conn:
                conn.execute("select app_private.accept_invite(%s, %s)", (token, _hasher.hash(password)))
        except Exception as exc:  # psycopg.Error: the token is wrong, used or expired
            flash(getattr(getattr(exc, "diag", None), "message_primary", None) or "That link does not work.")
            return render_template("auth/invite.html"), 400
        flash("Password set. Sign in with your email and the new password.")
        return redirect(url_for("auth.login"))
    return render_template("auth/invite.html")
