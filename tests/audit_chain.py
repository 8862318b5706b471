"""Helpers for the audit chain's tests (test_audit_sealing and the V0025 reviews): write an
audited row, seal, verify, and find a row's place in the chain; and their `db` fixture."""
import pytest


def one(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def seal(conn, rows=50000):
    """One sealer run, committed; returns how many rows it sealed."""
    sealed = one(conn, "select sealed from audit.seal(%s)", (rows,))
    conn.commit()
    return sealed


def drain(conn, runs=5):
    """Several sealer runs, as the cron job or a web process's sealer would make."""
    for _ in range(runs):
        seal(conn)


def verify(conn):
    """(ok, first_broken_id, problem, unsealed) from audit.verify_chain()."""
    row = conn.execute("select ok, first_broken_id, problem, unsealed from audit.verify_chain()").fetchone()
    conn.rollback()
    return row


def seq_of(conn, log_id):
    """The audit row's place in the chain, or None while it is unsealed."""
    row = conn.execute("select seq from audit.seals where log_id = %s", (log_id,)).fetchone()
    return row[0] if row else None


def touch(conn, location_id, name):
    """One audited write as the owner (a location renamed), uncommitted: returns its audit row id."""
    conn.execute("update app.locations set name = %s where id = %s", (name, location_id))
    return one(conn, "select max(id) from audit.log where table_name = 'app.locations' and row_id = %s",
               (str(location_id),))


def locations(conn, n=3):
    return [r[0] for r in conn.execute("select id from app.locations order by id limit %s", (n,)).fetchall()]


@pytest.fixture
def db(fresh_db):
    """A private demo database whose audit chain is sealed and intact (imported by the test modules)."""
    drain(fresh_db)
    assert verify(fresh_db) == (True, None, None, 0)
    return fresh_db
