"""The audit log: every change recorded with its actor, append-only for every role
(its owner included), and a hash chain that exposes a superuser's edit."""
import os
import subprocess
import sys

import psycopg
import pytest

from conftest import act_as, db_url
from helpers import Lifecycle
from tracker.roles import ROLES



def test_a_transition_is_audited_with_the_actor(conn):
    lc = Lifecycle(conn)
    sid = lc.make("requested")
    first = conn.execute("select coalesce(max(id), 0) from audit.log").fetchone()[0]
    buyer = lc.people.get("buyer")
    lc.call("buyer", "select app.order_sample(%s, %s, 80, 'USD', %s)", (sid, lc.supplier, lc.expected))
    rows = conn.execute("select table_name, op, row_id, staff_id, db_role, session_role, old_row->>'state', "
                        "new_row->>'state' from audit.log where id > %s order by id", (first,)).fetchall()
    assert rows == [
        ("app.sample_costs", "INSERT", str(sid), buyer["id"], "buyer", "authenticator", None, None),
        ("app.samples", "UPDATE", str(sid), buyer["id"], "buyer", "authenticator", "requested", "ordered"),
    ]


def test_reference_data_changes_are_audited_too(conn):
    conn.execute("update app.locations set name = 'Shelf renamed' where id = (select min(id) from app.locations)")
    row = conn.execute("select table_name, op, old_row->>'name', new_row->>'name', db_role "
                       "from audit.log order by id desc limit 1").fetchone()
    assert row[0:2] == ("app.locations", "UPDATE") and row[3] == "Shelf renamed" and row[2] != row[3]
    assert row[4] == conn.info.user  # no staff behind a DBA's session: the login is named


def test_a_no_op_update_leaves_no_trace(conn):
    before = conn.execute("select count(*) from audit.log").fetchone()[0]
    conn.execute("update app.teams set name = name")
    assert conn.execute("select count(*) from audit.log").fetchone()[0] == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("sql", ["update audit.log set op = 'DELETE'", "delete from audit.log",
                                 "truncate audit.log", "insert into audit.log (db_role, table_name, op) values ('x', 'x', 'INSERT')",
                                 "select count(*) from audit.seals", "delete from audit.seals", "truncate audit.seals",
                                 "insert into audit.seals (seq, log_id, prev_hash, hash) "
                                 "values (1000000, 1, sha256('x'), sha256('x'))"])
def test_no_staff_role_can_change_the_log(conn, role, sql):
    staff = conn.execute("select id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()[0]
    act_as(conn, {"id": staff, "role": role})
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute(sql)
    act_as(conn, None)
    assert err.value.sqlstate == "42501"


def test_directors_and_admin_can_read_the_log_others_cannot(conn):
    """Positive controls for the test above: the rows exist and the readers see them."""
    total = conn.execute("select count(*) from audit.log").fetchone()[0]
    assert total > 1000
    for role, expect in [("md", total), ("ops_director", total), ("buyer", None), ("logistics", None)]:
        staff = conn.execute("select id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()[0]
        act_as(conn, {"id": staff, "role": role})
        try:
            with conn.transaction():
                seen = conn.execute("select count(*) from audit.log").fetchone()[0]
        except psycopg.Error as exc:
            seen = exc.sqlstate
        act_as(conn, None)
        assert seen == (expect if expect is not None else "42501"), role


@pytest.mark.parametrize("sql", ["update audit.log set op = 'DELETE' where id = 5",
                                 "delete from audit.log where id = 5", "truncate audit.log",
                                 "update audit.seals set hash = sha256('x') where seq = 5",
                                 "delete from audit.seals where seq = 5", "truncate audit.seals"])
def test_superuser_normal_path_refused_by_trigger(conn, sql):
    conn.execute("select audit.seal()")
    assert conn.execute("select count(*) from audit.seals where seq = 5").fetchone()[0] == 1  # a row to refuse
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute(sql)
    assert err.value.sqlstate == "TR011"
    assert "append-only" in err.value.diag.message_primary


def test_owner_cannot_change_rows_either(conn):
    """The owner's RLS (forced) lets it select and insert only: update/delete reach
    no row, truncate hits the trigger. Row 5 exists and is unchanged afterwards."""
    before = conn.execute("select op, new_row from audit.log where id = 5").fetchone()
    assert before is not None
    with conn.transaction():
        conn.execute("set local role audit_owner")
        assert conn.execute("update audit.log set op = 'DELETE' where id = 5").rowcount == 0
        assert conn.execute("delete from audit.log where id = 5").rowcount == 0
        assert conn.execute("select count(*) from audit.log where id = 5").fetchone()[0] == 1
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("set local role audit_owner")
            conn.execute("truncate audit.log")
    assert err.value.sqlstate == "TR011"
    assert conn.execute("select op, new_row from audit.log where id = 5").fetchone() == before


def verify(conn):
    return conn.execute("select ok, first_broken_id, problem from audit.verify_chain()").fetchone()


def test_chain_intact_after_demo_and_transitions(conn):
    assert verify(conn)[0] is True


def test_superuser_edit_is_detected(conn):
    target = conn.execute("select id from audit.log where table_name = 'app.samples' order by id limit 1 offset 50"
                          ).fetchone()[0]
    conn.execute("set local session_replication_role = replica")  # what a superuser does to bypass triggers
    conn.execute("update audit.log set new_row = jsonb_set(new_row, '{title}', '\"edited\"') where id = %s", (target,))
    ok, broken, problem = verify(conn)
    assert (ok, broken) == (False, target)
    assert "altered" in problem


def test_removed_row_is_detected(conn):
    target = conn.execute("select id from audit.log order by id limit 1 offset 100").fetchone()[0]
    conn.execute("set local session_replication_role = replica")
    conn.execute("delete from audit.log where id = %s", (target,))
    ok, broken, problem = verify(conn)
    assert (ok, broken) == (False, target) and "was removed" in problem  # its seal names it
    conn.execute("delete from audit.seals where log_id = %s", (target,))  # and with its seal too
    ok, broken, problem = verify(conn)
    assert ok is False and broken > target and "removed" in problem


def test_removed_tail_is_detected(conn):
    last = conn.execute("select max(id) from audit.log").fetchone()[0]
    conn.execute("set local session_replication_role = replica")
    conn.execute("delete from audit.log where id > %s", (last - 3,))
    conn.execute("delete from audit.seals where log_id > %s", (last - 3,))
    ok, broken, problem = verify(conn)
    assert ok is False and broken == last and "at the end were removed" in problem


def test_verify_command_exit_codes(fresh_db):
    url = db_url(fresh_db)
    env = dict(os.environ, DATABASE_URL=url)
    cmd = [sys.executable, "-m", "tracker.cli", "verify-audit"]
    good = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert good.returncode == 0 and "audit chain intact" in good.stdout
    fresh_db.execute("set session_replication_role = replica")
    fresh_db.execute("update audit.log set db_role = 'md' where id = 7")
    fresh_db.commit()
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("audit chain BROKEN at row 7: audit row 7 was altered: "
                                  "its content no longer matches its hash")
