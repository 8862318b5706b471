"""Health and readiness for load balancers and orchestrators (issue 16), and the checks
that refuse a start with one clear sentence.

  GET /healthz  200 {"status": "ok"} while the process serves requests (no database call)
  GET /readyz   200 when the database answers as the web app's login and its migrations are
                the code's; 503 naming what is not ready. More checks register with
                `register_check(name, fn)` (the realtime relay's, once it exists): fn returns
                None when fine, else a sentence.

Start-up (create_app): a bad DATABASE_URL, a database that is not migrated, and in production
(TRACKER_ENV=production) a missing or default SECRET_KEY each stop the start with a
StartupError whose message says what to do."""
import os
import re
from pathlib import Path

import psycopg
from flask import Blueprint, current_app, jsonify
from psycopg.rows import tuple_row

from .. import config
from ..logging import event

bp = Blueprint("health", __name__)
SCHEMA_DIR = config.SQL_DIR / "migrations"
# what a development checkout or an example file would carry: never a production key
WEAK_SECRETS = {"", "dev", "test", "secret", "changeme", "change-me", "default", "development", "please-change-me"}
MIN_SECRET = 32
CHECKS: dict = {}


class StartupError(RuntimeError):
    """The app must not start; the message says why and what to do."""


def register_check(name: str, fn) -> None:
    CHECKS[name] = fn


def code_version() -> int:
    """The newest migration in sql/migrations (V0007__x.sql -> 7)."""
    versions = [int(m.group(1)) for p in SCHEMA_DIR.glob("V*.sql") if (m := re.match(r"V(\d+)__", p.name))]
    return max(versions, default=0)


def database_version(conn) -> int | None:
    try:
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute("select max(version) from public.schema_version").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return None


def migration_problem(version: int | None) -> str | None:
    want = code_version()
    if version is None:
        return "the database is not migrated (no migrations applied); run `make migrate` (python -m tracker.cli migrate)"
    if version < want:
        return (f"the database is at migration V{version:04d} but the code needs V{want:04d}; "
                "run `make migrate` (python -m tracker.cli migrate)")
    return None


def where(url: str) -> str:
    p = psycopg.conninfo.conninfo_to_dict(url)
    return f"database {p.get('dbname', '?')} on {p.get('host') or 'localhost'}:{p.get('port', 5432)} as {p.get('user', '?')}"


def check_database(url: str) -> None:
    """Connect once as the web app's login; raise StartupError with a sentence when that fails."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            problem = migration_problem(database_version(conn))
    except psycopg.OperationalError as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        hint = ("the database is not migrated (the authenticator role is missing); run `make migrate`"
                if "role \"authenticator\" does not exist" in str(exc)
                else "check DATABASE_URL / APP_DATABASE_URL, that the server is running (make start), "
                     "and the authenticator's password (AUTHENTICATOR_PASSWORD)")
        raise StartupError(f"cannot reach the {where(url)}: {reason}; {hint}") from None
    if problem:
        raise StartupError(f"{where(url)}: {problem}")


def check_secret(key: str | None) -> None:
    """In production the session-signing key must come from SECRET_KEY and be strong."""
    if os.environ.get("TRACKER_ENV", "").lower() != "production":
        return
    if not os.environ.get("SECRET_KEY"):
        raise StartupError("SECRET_KEY is not set: a production start (TRACKER_ENV=production) needs a secret key "
                           "of at least 32 random characters, e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
    if key in WEAK_SECRETS or len(key or "") < MIN_SECRET or len(set(key)) < 8:
        raise StartupError("SECRET_KEY is a default or too weak for production (TRACKER_ENV=production): use at least "
                           "32 random characters, e.g. python -c 'import secrets; print(secrets.token_hex(32))'")


def startup_checks(app) -> None:
    try:
        check_secret(app.config.get("SECRET_KEY"))
        if app.config.get("STARTUP_CHECKS", True):
            check_database(app.config["APP_DATABASE_URL"])
    except StartupError as exc:
        event("startup_refused", 40, reason=str(exc))
        raise


@bp.route("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    problems = {}
    try:
        with current_app.extensions["pool"].connection(timeout=5) as conn:
            conn.execute("select 1")
            problem = migration_problem(database_version(conn))
            if problem:
                problems["migrations"] = problem
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is "not ready"
        problems["database"] = f"unreachable: {type(exc).__name__}"
    for name, fn in CHECKS.items():
        try:
            problem = fn()
        except Exception as exc:  # noqa: BLE001
            problem = f"check failed: {type(exc).__name__}"
        if problem:
            problems[name] = problem
    if problems:
        return jsonify(status="not ready", problems=problems), 503
    return jsonify(status="ready", migration=code_version())
