"""Sign in / sign out, server-side sessions, password change and sign-up links.

The database decides everything that matters: app_private.begin_sign_in records the
attempt and applies the limits *before* any password is checked (and hands out the
hash only then); app_private.finish_sign_in starts a session and returns its random
token, which is all the session cookie carries (with the CSRF token). Every request
resumes the session in the database (app_private.resume_session); logout, a password
change or reset, deactivation and a role change end it there, for every browser."""
import functools
import ipaddress
import math
import re
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from . import db

bp = Blueprint("auth", __name__, url_prefix="/auth")
_hasher = PasswordHasher()
# verifying against a dummy hash keeps the time of "no such user" equal to "wrong password"
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))
DEVICE_COOKIE = "tracker_device"
DEVICE_COOKIE_DAYS = 365
MIN_PASSWORD = 10

# why a session ended, as the sign-in page tells it
ENDED = {
    "password_changed": "Your password was changed, so you were signed out everywhere. Sign in with the new password.",
    "password_reset": "An administrator reset your password, so you were signed out. Use the link they send you "
                      "to choose a new one.",
    "deactivated": "Your account was deactivated, so you were signed out. Ask a system admin if this is a mistake.",
    "role_changed": "Your role was changed, so you were signed out. Sign in again to continue in your new role.",
    "expired": "You were signed out because your session reached its time limit. Sign in again.",
}

USER_SQL = ("select s.id, s.full_name, app.current_staff_email() as email, s.role::text as role, s.team_id, "
            "t.code as team_code, "
            # the nav shows reference data to those the grants let add or change some of it
            "exists (select 1 from unnest(array['app.suppliers', 'app.factories', 'app.locations', 'app.categories', "
            "'app.seasons']) r(t) where has_any_column_privilege(r.t, 'INSERT') "
            "or has_any_column_privilege(r.t, 'UPDATE')) as edits_reference, "
            "has_function_privilege('app.duplicate_pairs(integer, integer)', 'EXECUTE') as reviews_duplicates, "
            "has_function_privilege('app.start_stocktake(integer)', 'EXECUTE') as counts_stock, "
            "has_function_privilege('app.import_sample(text, jsonb, boolean)', 'EXECUTE') as imports_samples, "
            "has_any_column_privilege('app.staff', 'INSERT') as administers_staff, "
            "has_schema_privilege('analytics', 'USAGE') as reads_analytics, "
            "has_function_privilege('app.captured_mail(integer, integer)', 'EXECUTE') as reads_mail, "
            "app.current_staff_is_director() as is_director, "
            # the lifecycle rules say who requests samples and who moves them about the building
            "exists (select 1 from app.transition_rules r where r.action = 'request' and s.role = any (r.roles)) "
            "as requests_samples, "
            "exists (select 1 from app.transition_rules r where r.action = any (%(scan_moves)s) "
            "and s.role = any (r.roles)) as scans_samples "
            "from app.staff s left join app.teams t on t.id = s.team_id where s.id = app.current_staff_id()")


def session_lifetime() -> timedelta:
    return timedelta(hours=float(current_app.config["SESSION_LIFETIME_HOURS"]))


def client_addr() -> str | None:
    try:
        return str(ipaddress.ip_address(request.remote_addr or ""))
    except ValueError:
        return None


def device_token() -> str | None:
    token = request.cookies.get(DEVICE_COOKIE, "")
    return token if re.fullmatch(r"[0-9a-f]{64}", token) else None


@bp.before_app_request
def load_user():
    g.user = None
    g.session_token = None
    token = session.get("token")
    if not token or request.endpoint == "static":
        return
    with db.anonymous() as conn, conn.transaction():
        state = conn.execute("select * from app_private.resume_session(%s)", (token,)).fetchone()
        if state["status"] == "active":
            conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                         (state["role"], token))
            from .room import MOVES  # the scan page's moves (room imports this module)
            g.user = conn.execute(USER_SQL, {"scan_moves": list(MOVES)}).fetchone()
    if g.user is None:
        session.pop("token", None)
        reason = state["end_reason"] if state["status"] == "ended" else state["status"]
        if reason in ENDED:
            flash(ENDED[reason], "error")
        return
    g.session_token = token


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


# a same-site path: one slash, then printable ASCII only (no space, tab, CR/LF or
# other control character a browser would strip), no backslash, not "//" or "/\"
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: `target` if it is a path on this site, else the dashboard."""
    if target and _SAME_SITE_PATH.fullmatch(target):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("index")


def begin_sign_in(email: str) -> dict:
    with db.anonymous() as conn:
        return conn.execute("select * from app_private.begin_sign_in(%s, %s::inet, %s)",
                            (email, client_addr(), device_token())).fetchone()


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def finish_sign_in(attempt_id: int, ok: bool, new_hash: str | None = None) -> dict:
    with db.anonymous() as conn:
        return conn.execute("select * from app_private.finish_sign_in(%s, %s, %s, %s, %s)",
                            (attempt_id, ok, session_lifetime(), request.user_agent.string[:512] or None,
                             new_hash)).fetchone()


def refused(verdict: dict, template: str, **context):
    """429 with when to try again, in words and in Retry-After."""
    wait = max(1, math.ceil((verdict["retry_after"] - datetime.now(timezone.utc)).total_seconds()))
    words = f"{wait} seconds" if wait < 90 else f"{math.ceil(wait / 60)} minutes"
    at = verdict["retry_after"].astimezone(timezone.utc).strftime("%H:%M UTC")
    reason = verdict["refusal"]
    flash(f"{reason[0].upper()}{reason[1:]}. Try again in {words} (at {at}).", "error")
    return render_template(template, **context), 429, {"Retry-After": str(wait)}


def start_browser_session(result: dict, response):
    """The cookie carries the session token (and the CSRF token) - nothing else."""
    session.clear()
    session.permanent = True
    session["token"] = result["session_token"]
    if result["device_token"]:
        response.set_cookie(DEVICE_COOKIE, result["device_token"], max_age=DEVICE_COOKIE_DAYS * 86400,
                            path=url_for("auth.login").rsplit("/", 1)[0] + "/", httponly=True, samesite="Lax",
                            secure=current_app.session_interface.get_cookie_secure(current_app))
    return response


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        verdict = begin_sign_in(email)
        if not verdict["allowed"]:  # before any password is checked
            return refused(verdict, "auth/login.html", email=email)
        ok = password_matches(verdict["password_hash"], request.form.get("password", ""))
        result = finish_sign_in(verdict["attempt_id"], ok)
        if result["session_token"]:
            return start_browser_session(result, redirect(safe_next(request.args.get("next"))))
        flash("That email and password do not match an active account.", "error")
        return render_template("auth/login.html", email=email), 401
    return render_template("auth/login.html", email="")


@bp.route("/logout", methods=("POST",))
def logout():
    if g.user is not None:
        with db.as_user() as conn:
            conn.execute("select app.end_session()")
    session.clear()
    return redirect(url_for("auth.login"))


def new_password_problem(password: str, confirm: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Choose a password of at least {MIN_PASSWORD} characters."
    if password != confirm:
        return "The two passwords differ."
    return None


@bp.route("/password", methods=("GET", "POST"))
@login_required
def password():
    if request.method == "POST":
        new, confirm = request.form.get("password", ""), request.form.get("confirm", "")
        problem = new_password_problem(new, confirm)
        if problem:
            flash(problem, "error")
            return render_template("auth/password.html"), 422
        # the current password is checked like a sign-in: throttled, recorded
        verdict = begin_sign_in(g.user["email"])
        if not verdict["allowed"]:
            return refused(verdict, "auth/password.html")
        ok = password_matches(verdict["password_hash"], request.form.get("current", ""))
        result = finish_sign_in(verdict["attempt_id"], ok, _hasher.hash(new) if ok else None)
        if not result["session_token"]:
            flash("Your current password is not right.", "error")
            return render_template("auth/password.html"), 422
        flash("Password changed. Every other browser signed in as you was signed out.", "ok")
        return start_browser_session(result, redirect(url_for("index")))
    return render_template("auth/password.html")


@bp.route("/invite/<token>", methods=("GET", "POST"))
def invite(token):
    if request.method == "POST":
        password = request.form.get("password", "")
        problem = new_password_problem(password, request.form.get("confirm", ""))
        if problem:
            flash(problem, "error")
            return render_template("auth/invite.html"), 422
        try:
            with db.anonymous() as conn:
                conn.execute("select app_private.accept_invite(%s, %s)", (token, _hasher.hash(password)))
        except psycopg.Error as exc:  # the token is wrong, used or expired
            msg = getattr(exc.diag, "message_primary", None) or "that link does not work"
            flash(f"{msg[0].upper()}{msg[1:]}.", "error")
            return render_template("auth/invite.html"), 400
        flash("Password set. Sign in with your email and the new password.", "ok")
        return redirect(url_for("auth.login"))
    return render_template("auth/invite.html")
