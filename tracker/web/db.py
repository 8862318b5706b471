"""One pool of authenticator connections. Each request's work runs in one
transaction as the signed-in person: set_config('role') + tracker.session (the
random session token from the cookie), both transaction-local, so nothing leaks
to the next user of the connection. The database resolves the token to a person
(app.current_staff_id()) on every query; the app never says who someone is.

Behind a transaction-pooling PgBouncer (APP_DATABASE_POOLED, `make serve POOLER=1`)
consecutive transactions of one pool connection may run on different server
connections, so nothing here may leave session state behind: no SET without LOCAL,
no non-local set_config, no session advisory locks, LISTEN, temp tables or cursors
WITH HOLD (named cursors here live inside a transaction), and no server-side prepared
statements (prepare_threshold=None; PgBouncer 1.18 cannot route them). The realtime
relay's LISTEN connection goes to the server directly (REALTIME_DATABASE_URL).
tests/test_pooler.py proves it through a real PgBouncer."""
import os
from contextlib import contextmanager

from flask import current_app, g
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .. import config


def init_app(app):
    pooled = app.config.setdefault("APP_DATABASE_POOLED", config.app_database_pooled())
    if not app.config.get("REALTIME_DATABASE_URL"):
        # the relay LISTENs: session state, so it needs a direct connection when the app is pooled
        url = app.config["APP_DATABASE_URL"]
        app.config["REALTIME_DATABASE_URL"] = config.realtime_database_url(url) if pooled else url
    kwargs = {"row_factory": dict_row}
    if pooled:
        kwargs["prepare_threshold"] = None
    size = int(app.config.get("APP_POOL_SIZE") or os.environ.get("APP_POOL_SIZE") or 10)
    app.extensions["pool"] = ConnectionPool(app.config["APP_DATABASE_URL"], min_size=1, max_size=size,
                                            kwargs=kwargs, open=True)


def pool() -> ConnectionPool:
    return current_app.extensions["pool"]


@contextmanager
def anonymous():
    """The authenticator itself: may only call the sign-in functions (app_private.begin_sign_in, ...)."""
    with pool().connection() as conn:
        yield conn


@contextmanager
def with_session(token: str, role: str):
    """A transaction acting through a session token, switched to that session's role."""
    with pool().connection() as conn:
        with conn.transaction():
            conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                         (role, token))
            yield conn


@contextmanager
def as_user(staff_id: int | None = None, role: str | None = None):
    """A transaction acting as the signed-in person (their session token and role).
    staff_id/role are accepted for callers that copied g.user before streaming; the
    identity itself always comes from the request's session token."""
    if staff_id is not None and staff_id != g.user["id"]:
        raise RuntimeError("as_user acts only as the signed-in person")
    with with_session(g.session_token, role or g.user["role"]) as conn:
        yield conn
