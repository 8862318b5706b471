"""Read the database *as the recipient*: a short web session made by the owner, used
through the web app's own login (authenticator + SET ROLE + tracker.session), so RLS
decides what a PDF or a mail may hold, exactly as it does for that person's pages."""
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from tracker import config


@contextmanager
def as_recipient(admin_url: str, staff_id: int, app_url: str | None = None):
    """Yields a dict-row connection inside a transaction acting as staff_id, and ends
    that session afterwards. admin_url: the owner (may run app_private.start_session)."""
    with psycopg.connect(admin_url, autocommit=True) as own:
        row = own.execute("select app_private.start_session(id, interval '10 minutes'), role::text "
                          "from app.staff where id = %s and active", (staff_id,)).fetchone()
        if row is None:
            raise LookupError(f"no active staff member {staff_id}")
        token, role = row
        try:
            with psycopg.connect(app_url or config.app_database_url(admin_url), row_factory=dict_row) as conn:
                with conn.transaction():
                    conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                                 (role, token))
                    yield conn
        finally:
            own.execute("update app_private.web_sessions set ended_at = now(), end_reason = 'signed_out' "
                        "where token_hash = sha256(convert_to(%s, 'UTF8')) and ended_at is null", (token,))
