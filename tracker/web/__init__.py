"""The web UI: server-rendered Flask. Every query runs as the signed-in person."""
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, render_template, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.serving import WSGIRequestHandler

from .. import config

ROOT = config.ROOT
MAX_UPLOAD = 6 * 1024 * 1024  # a 5 MiB photo plus the form around it
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

ERRORS = {
    403: ("Not allowed", "Your role cannot open this page."),
    404: ("Not found", "There is no such page, or nothing here you are allowed to see."),
    405: ("Not allowed here", "This page cannot be used that way; go back and use its form or link."),
    413: ("Too large", "That upload is too large; photos can be at most 5 MiB."),
    500: ("Something went wrong", "The page failed on our side and nothing was changed. Try again; if it keeps "
                                  "happening, tell a system admin what you were doing."),
}


def env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def persistent_secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else one generated once into the instance
    folder (mode 0600), so a restart does not sign everyone out."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to generate a new key")
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


class SessionInterface(SecureCookieSessionInterface):
    """Cookies are Secure unless the app is served over plain HTTP on a loopback
    host name (make run); SESSION_COOKIE_SECURE (config or environment) overrides."""

    def get_cookie_secure(self, app) -> bool:
        forced = app.config.get("SESSION_COOKIE_SECURE")
        if forced is not None:
            return bool(forced)
        return not (request.scheme == "http" and urlsplit("//" + request.host).hostname in LOOPBACK_HOSTS)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's server without the `Server: Werkzeug/x Python/y` header."""

    def send_header(self, keyword, value):
        if keyword.lower() != "server":
            super().send_header(keyword, value)


class BigintConverter(IntegerConverter):
    """`<int:...>` in every route stops at PostgreSQL's bigint: a larger number is a 404, not a
    numeric argument that matches no function (found by tests/test_fuzz_web.py)."""

    def __init__(self, map, fixed_digits=0, min=None, max=2 ** 63 - 1, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class TrackerFlask(Flask):
    def run(self, *args, **kwargs):
        kwargs.setdefault("request_handler", QuietRequestHandler)
        super().run(*args, **kwargs)


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    app = TrackerFlask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                       instance_path=instance_path or str(ROOT / "instance"))
    app.config.update(
        SECRET_KEY=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env_flag("SESSION_COOKIE_SECURE"),  # None: decided per request
        SESSION_LIFETIME_HOURS=float(os.environ.get("SESSION_LIFETIME_HOURS") or 12),
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        TRUSTED_PROXIES=int(os.environ.get("TRUSTED_PROXIES") or 0),
        APP_DATABASE_URL=None,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = persistent_secret_key(app.instance_path)
    if not app.config["APP_DATABASE_URL"]:
        app.config["APP_DATABASE_URL"] = config.app_database_url()
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=float(app.config["SESSION_LIFETIME_HOURS"]))
    app.session_interface = SessionInterface()
    app.url_map.converters["int"] = BigintConverter
    if app.config["TRUSTED_PROXIES"]:
        # behind N reverse proxies: the client address (for sign-in limits) and scheme come from them
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    from .. import logging as structured
    from . import (admin, alerts, analytics, auth, dashboards, db, duplicates, health, imports, people, realtime, reference,
                   room, samples, search, suppliers, watching)
    structured.init_app(app)  # first: every request gets its id and its log line
    health.startup_checks(app)
    db.init_app(app)
    for bp in (health.bp, auth.bp, dashboards.bp, samples.bp, search.bp, admin.bp, people.bp, reference.bp,
               suppliers.bp, duplicates.bp, watching.bp, room.bp, imports.bp, analytics.bp, alerts.bp):
        app.register_blueprint(bp)
    realtime.init_app(app)
    app.add_url_rule("/", endpoint="index", view_func=dashboards.index)

    @app.template_global()
    def options(rows, selected=None):
        """<option> tags for a select, built in one pass (lists of 2,000 suppliers render fast)."""
        from markupsafe import Markup, escape
        sel = "" if selected is None else str(selected)
        return Markup("".join(
            f'<option value="{escape(r["id"])}"{" selected" if str(r["id"]) == sel else ""}>{escape(r["name"])}</option>'
            for r in rows))

    @app.errorhandler(HTTPException)
    def http_error(e):
        """Every error as a page of the site; our own 400/403 sentences are kept, nothing else of the exception."""
        if e.code is None or e.code < 400:
            return e
        title, message = ERRORS.get(e.code, (e.name, "That did not work."))
        if e.code in (400, 403) and e.description and not e.description.startswith(("The browser", "You don't")):
            message = e.description
        headers = [(k, v) for k, v in e.get_headers() if k.lower() in ("allow", "retry-after")]
        return render_template("error.html", title=title, message=message), e.code, headers

    @app.errorhandler(500)
    def server_error(e):
        # Flask has logged the exception; the page says nothing about it
        title, message = ERRORS[500]
        return render_template("error.html", title=title, message=message), 500

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp
    return app
