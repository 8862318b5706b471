"""Build samples in any state through the real lifecycle functions."""
from datetime import date, timedelta

import psycopg

from conftest import Staff, act_as

def persona(conn, email):
    """(session token, role) of a new, committed web session of that person."""
    row = conn.execute("select app_private.start_session(id), role::text from app.staff where email = %s",
                       (email,)).fetchone()
    conn.commit()
    return row


def connect_as(url, token, role, autocommit=False, **settings):
    """A connection (as the authenticator, given its url) that acts as that web session, with
    any further settings, each for the whole session."""
    c = psycopg.connect(url, autocommit=autocommit)
    c.execute("select set_config('role', %s, false), set_config('tracker.session', %s, false)", (role, token))
    for k, v in settings.items():
        c.execute("select set_config(%s, %s, false)", (k, v))
    if not autocommit:
        c.commit()
    return c


STATES = ["requested", "ordered", "received", "with-design", "with-sales", "at-factory", "returned",
          "cut-for-production"]


class Lifecycle:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.people = Staff(conn)
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        self.category = q("select min(id) from app.categories")
        self.season = q("select max(id) from app.seasons")
        # a supplier with a clean QC record (ordering from one with recent rejects needs an acknowledgement)
        self.supplier = q("select min(su.id) from app.suppliers su where su.active and su.on_hold_at is null and not exists "
                          "(select 1 from app.qc_inspections i join app.samples s on s.id = i.sample_id "
                          "where s.supplier_id = su.id and i.result = 'reject')")
        self.location = q("select min(id) from app.locations")
        self.factory = q("select min(id) from app.factories where active")
        self.designer = self.people.get("designer")["id"]
        self.sales_exec = self.people.get("sales_executive")["id"]
        self.expected = date.today() + timedelta(days=10)

    def call(self, who: str | dict, sql: str, params=()):
        """Run one statement as a persona, then return to the superuser. On error the
        transaction is aborted; the caller's savepoint rollback undoes the persona too."""
        person = who if isinstance(who, dict) else self.people.get(who)
        act_as(self.conn, person)
        row = self.conn.execute(sql, params).fetchone()
        act_as(self.conn, None)
        return row[0] if row else None

    def state(self, sample_id: int) -> str:
        return self.conn.execute("select state::text from app.samples where id = %s", (sample_id,)).fetchone()[0]

    def make(self, state: str, approved: bool = False, on_loan: bool = False, requester: str = "buyer") -> int:
        sid = self.call(requester, "select app.request_sample(%s, %s, %s, null, null, %s)",
                        ("Test wrap dress", self.category, self.season, on_loan))
        if state == "requested":
            return sid
        self.call(requester, "select app.order_sample(%s, %s, 120.00, 'EUR', %s)", (sid, self.supplier, self.expected))
        if state == "ordered":
            return sid
        self.call("logistics", "select app.receive_sample(%s, %s)", (sid, self.location))
        if approved:
            self.call("senior_buyer", "select app.approve_for_production(%s)", (sid,))
        if state == "received":
            return sid
        if state == "with-design":
            self.call("logistics", "select app.hand_to_design(%s, %s)", (sid, self.designer))
        elif state == "with-sales":
            self.call("logistics", "select app.hand_to_sales(%s, %s)", (sid, self.sales_exec))
        elif state == "returned":
            self.call("logistics", "select app.return_to_supplier(%s, 'DHL123')", (sid,))
        elif state in ("at-factory", "cut-for-production"):
            self.call("logistics", "select app.send_to_factory(%s, %s)", (sid, self.factory))
            if state == "cut-for-production":
                if on_loan:
                    self.call(requester, "select app.buy_out(%s)", (sid,))
                if not approved:
                    self.call("senior_buyer", "select app.approve_for_production(%s)", (sid,))
                self.call("factory_liaison", "select app.cut_for_production(%s)", (sid,))
        assert self.state(sid) == state
        return sid
