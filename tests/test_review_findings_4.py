"""Findings of the attack review of session 4's changes, each named for the attack and kept
with its positive control: an idle login holding the advisory locks that the realtime signal
and the audit sealer serialise on (F1), a spreadsheet reference that named a hidden sample
(F2), budgets read by the system admin through the audit log (F4), and the group role
`staff` offered as a personal login's name (F5). The pooler findings (F3) are in
tests/test_pooler.py."""
import psycopg
import pytest

from conftest import _url, act_as
from helpers import Lifecycle


# ---------------------------------------------------------------- F1: advisory locks
@pytest.mark.parametrize("call", [
    "select pg_advisory_lock(hashtext('tracker.realtime_events'))",
    "select pg_advisory_lock(hashtextextended('tracker.audit.seal', 0))",
    "select pg_try_advisory_lock(1)",
    "select pg_advisory_lock_shared(1, 2)",
    "select pg_advisory_xact_lock(1)",
])
def test_no_login_can_take_the_locks_that_writers_and_the_sealer_wait_on(fresh_db, call):
    """Attack: an analyst (or a deactivated person's login, or the web login) takes the
    realtime or sealer advisory key in an idle session: every audited commit and the sealer
    would wait on it. Only the owners of our definer functions may take advisory locks."""
    db = fresh_db
    db.execute("insert into app.staff (email, full_name, role) values ('lock.taker@example.com', 'Lock Taker', 'designer')")
    login = f"test_lock_{db.info.dbname[-6:].lower()}"
    db.execute("select app_private.grant_personal_login('lock.taker@example.com', %s)", (login,))
    db.commit()
    for user in (login, "authenticator"):
        with psycopg.connect(_url(db.info.dbname, user), autocommit=True) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(call)
    # positive controls: the functions that need the locks still take them (as their owners) ...
    life = Lifecycle(db)
    sid = life.make("ordered")
    life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))  # the realtime signal's lock
    db.commit()
    assert db.execute("select sealed from audit.seal()").fetchone()[0] > 0          # the sealer's
    db.commit()
    with psycopg.connect(_url(db.info.dbname), autocommit=True) as su:               # and a superuser still may
        su.execute(call)


# ---------------------------------------------------------------- F2: a reference naming a hidden sample
def test_importing_a_reference_that_a_hidden_sample_holds_does_not_name_it(conn):
    life = Lifecycle(conn)
    hidden = conn.execute("select s.id from app.samples s join app.teams t on t.id = s.team_id "
                          "where t.code <> 'WW' and s.state = 'returned' order by s.id limit 1").fetchone()[0]
    conn.execute("update app.samples set external_ref = 'OLD-SHEET-77' where id = %s", (hidden,))
    senior = life.people.get("senior_buyer")  # team WW: cannot see another team's returned sample
    act_as(conn, senior)
    assert conn.execute("select count(*) from app.samples where id = %s", (hidden,)).fetchone()[0] == 0
    for check_only in (True, False):
        conn.execute("savepoint s")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("select * from app.import_sample('OLD-SHEET-77', '{}'::jsonb, %s)", (check_only,))
        assert err.value.sqlstate == "TR005"
        assert str(hidden) not in str(err.value) and "cannot see" in err.value.diag.message_primary
        conn.execute("rollback to savepoint s")
    act_as(conn, None)
    # positive control: where the importer can see it, the row is "imported before", with its number
    act_as(conn, life.people.get("logistics"))
    assert conn.execute("select * from app.import_sample('OLD-SHEET-77', '{}'::jsonb, true)").fetchone()[0] == hidden
    act_as(conn, None)


# ---------------------------------------------------------------- F4: budgets through the audit log
def test_the_system_admin_reads_no_budget_or_other_hidden_rows_through_the_audit_log(conn):
    hidden = ("app.budgets", "app.sample_costs", "app.stocktakes", "app.import_batches")
    counts = dict(conn.execute("select table_name, count(*) from audit.log where table_name = any(%s) group by 1",
                               (list(hidden),)).fetchall())
    assert counts.get("app.budgets", 0) > 0 and counts.get("app.sample_costs", 0) > 0  # there is something to hide
    act_as(conn, Lifecycle(conn).people.get("system_admin"))
    seen = conn.execute("select count(*) filter (where table_name = any(%s)), count(*) from audit.log",
                        (list(hidden),)).fetchone()
    act_as(conn, None)
    assert seen[0] == 0 and seen[1] > 0  # positive control: the rest of the log is readable


# ---------------------------------------------------------------- F5: the group role as a login
@pytest.mark.parametrize("name", ["staff", "buyer", "tracker_owner"])
def test_a_group_role_cannot_become_someones_login(conn, name):
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.grant_personal_login('finance@example.com', %s)", (name,))
    assert err.value.sqlstate == "TR005" and "reserved" in err.value.diag.message_primary
    assert not conn.execute("select rolcanlogin from pg_roles where rolname = %s", (name,)).fetchone()[0]
