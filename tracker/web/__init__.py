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
        PAGE_SIZE=50,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["APP_DATABASE_URL"]:
        app.config["APP_DATABASE_URL"] = config.app_database_url()

    from . import db, auth, samples
    db.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(samples.bp)
    app.add_url_rule("/", endpoint="index", view_func=samples.index)
    return app
