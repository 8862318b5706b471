"""The web UI: server-rendered Flask. Every query runs as the signed-in person."""
import os
import secrets
from pathlib import Path

from flask import Flask

from .. import config

ROOT = Path(__file__).resolve().parent.parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE") == "1",
        APP_DATABASE_URL=None,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["APP_DATABASE_URL"]:
        app.config["APP_DATABASE_URL"] = config.app_database_url()

    app.config.setdefault("MAX_CONTENT_LENGTH", 6 * 1024 * 1024)
    from flask import render_template
    from . import admin, auth, dashboards, db, samples, search
    db.init_app(app)
    for bp in (auth.bp, dashboards.bp, samples.bp, search.bp, admin.bp):
        app.register_blueprint(bp)
    app.add_url_rule("/", endpoint="index", view_func=dashboards.index)

    @app.template_global()
    def options(rows, selected=None):
        """<option> tags for a select, built in one pass (lists of 2,000 suppliers render fast)."""
        from markupsafe import Markup, escape
        sel = "" if selected is None else str(selected)
        return Markup("".join(
            f'<option value="{escape(r["id"])}"{" selected" if str(r["id"]) == sel else ""}>{escape(r["name"])}</option>'
            for r in rows))

    @app.errorhandler(404)
    def not_found(e):
        return render_template("error.html", title="Not found",
                               message="There is no such page, or nothing here you are allowed to see."), 404

    @app.errorhandler(400)
    def bad_request(e):
        return render_template("error.html", title="Bad request", message=e.description), 400

    @app.errorhandler(413)
    def too_large(e):
        return render_template("error.html", title="Too large",
                               message="That upload is too large; photos can be at most 5 MiB."), 413

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp
    return app
