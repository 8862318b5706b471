"""One pool of authenticator connections. Each request's work runs in one
transaction as the signed-in person: set_config('role') + tracker.staff_id,
both transaction-local, so nothing leaks to the next user of the connection."""
from contextlib import contextmanager

from flask import current_app, g
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def init_app(app):
    app.extensions["pool"] = ConnectionPool(app.config["APP_DATABASE_URL"], min_size=1, max_size=10,
                                            kwargs={"row_factory": dict_row}, open=True)


def pool() -> ConnectionPool:
    return current_app.extensions["pool"]


@contextmanager
def anonymous():
    """The authenticator itself: may only call app_private.lookup_login()."""
    with pool().connection() as conn:
        yield conn


@contextmanager
def as_user(staff_id: int | None = None, role: str | None = None):
    """A transaction acting as a staff member (default: the signed-in one)."""
    staff_id = staff_id if staff_id is not None else g.user["id"]
    role = role or g.user["role"]
    with pool().connection() as conn:
        with conn.transaction():
            conn.execute("select set_config('role', %s, true), set_config('tracker.staff_id', %s, true)",
                         (role, str(staff_id)))
            yield conn
