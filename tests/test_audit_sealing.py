"""The audit chain without a global lock (issue 18, item 1): writers append unsealed
rows and never wait on one another; audit.seal() links committed rows into the hash
chain in commit order, in batches, one sealer at a time; aborted rows are never sealed;
verify still catches every edit of a sealed row and reports the unsealed window."""
import os
import subprocess
import sys
import threading

import psycopg
import pytest
from psycopg import sql

from conftest import db_url
from helpers import Lifecycle, connect_as, persona


def one(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def seal(conn, rows=50000):
    sealed = one(conn, "select sealed from audit.seal(%s)", (rows,))
    conn.commit()
    return sealed


def verify(conn):
    row = conn.execute("select ok, first_broken_id, problem, unsealed from audit.verify_chain()").fetchone()
    conn.rollback()
    return row


def touch(conn, location_id, name):
    """One audited write as the owner (a location renamed): returns its audit row id."""
    conn.execute("update app.locations set name = %s where id = %s", (name, location_id))
    return one(conn, "select max(id) from audit.log where table_name = 'app.locations' and row_id = %s",
               (str(location_id),))


@pytest.fixture
def db(fresh_db):
    seal(fresh_db)
    assert verify(fresh_db) == (True, None, None, 0)
    return fresh_db


@pytest.fixture
def other(db):
    c = psycopg.connect(db_url(db))
    yield c
    c.close()


def locations(db, n=3):
    return [r[0] for r in db.execute("select id from app.locations order by id limit %s", (n,)).fetchall()]


# ---------------------------------------------------------------- writing and sealing

def test_a_write_is_appended_unsealed_and_the_sealer_chains_it(db):
    loc = locations(db, 1)[0]
    head = db.execute("select last_seq, last_hash from audit.chain_head").fetchone()
    row = touch(db, loc, "Shelf A")
    db.commit()
    assert db.execute("select seq, prev_hash, hash from audit.log where id = %s", (row,)).fetchone() == (None, None, None)
    assert db.execute("select last_seq, last_hash from audit.chain_head").fetchone() == head  # writers never touch it
    assert verify(db)[0] is True and verify(db)[3] == 1
    assert seal(db) == 1
    seq, prev = db.execute("select seq, prev_hash from audit.log where id = %s", (row,)).fetchone()
    assert (seq, prev) == (head[0] + 1, head[1])
    assert verify(db) == (True, None, None, 0)


def test_the_sealer_is_idempotent(db):
    loc = locations(db, 1)[0]
    touch(db, loc, "Shelf B")
    db.commit()
    assert seal(db) == 1
    head = db.execute("select last_id, last_seq, last_hash from audit.chain_head").fetchone()
    assert seal(db) == 0 and seal(db) == 0
    assert db.execute("select last_id, last_seq, last_hash from audit.chain_head").fetchone() == head
    assert verify(db) == (True, None, None, 0)


def test_aborted_rows_are_never_sealed(db, other):
    a, b = locations(db, 2)
    head = one(db, "select last_seq from audit.chain_head")
    touch(other, a, "aborted write")
    aborted_id = one(other, "select max(id) from audit.log")
    other.rollback()
    # a savepoint rolled back inside a transaction that commits (bulk_act works this way)
    kept = touch(other, a, "kept")
    other.execute("savepoint s")
    undone = touch(other, b, "undone by the savepoint")
    other.execute("rollback to savepoint s")
    other.commit()
    assert seal(db) == 1
    assert one(db, "select last_seq from audit.chain_head") == head + 1
    assert one(db, "select seq from audit.log where id = %s", (kept,)) == head + 1
    assert one(db, "select count(*) from audit.log where id in (%s, %s)", (aborted_id, undone)) == 0
    assert verify(db) == (True, None, None, 0)


# ---------------------------------------------------------------- no global lock

def test_two_writers_on_different_samples_do_not_block_each_other(db):
    lc = Lifecycle(db)
    s1, s2 = lc.make("received"), lc.make("received")
    db.commit()
    url = db_url(db, "authenticator")
    a = connect_as(url, *persona(db, "logistics@example.com"), lock_timeout="200ms")
    b = connect_as(url, *persona(db, "factory_liaison@example.com"), lock_timeout="200ms")
    try:
        a.execute("select app.send_to_factory(%s, %s)", (s1, lc.factory))  # open: holds its locks
        a_pid = one(a, "select pg_backend_pid()")
        locked = {r[0] for r in db.execute("select relation::regclass::text from pg_locks where pid = %s "
                                           "and relation is not null", (a_pid,)).fetchall()}
        db.rollback()
        assert "audit.log" in locked            # the lock view sees A's write (positive control)
        assert "audit.chain_head" not in locked  # and nothing every writer shares
        # B, on another sample, would hit lock_timeout (55P03) behind any shared lock A holds
        b.execute("select app.send_to_factory(%s, %s)", (s2, lc.factory))
        b.commit()
        # positive control: the same sample does wait (and is refused)
        with pytest.raises(psycopg.Error) as err:
            b.execute("select app.send_to_factory(%s, %s)", (s1, lc.factory))
        assert err.value.sqlstate in ("TR007", "55P03")
        b.rollback()
        a.commit()
    finally:
        a.close()
        b.close()
    assert seal(db) >= 4
    assert verify(db) == (True, None, None, 0)


def test_a_long_transaction_stalls_no_writer_and_is_sealed_after_it_commits(db, other):
    a, b = locations(db, 2)
    other.execute("set lock_timeout = '200ms'")
    other.commit()
    early = touch(db, a, "long transaction")  # draws the lower id, stays open
    late = touch(other, b, "committed meanwhile")
    other.commit()
    assert early < late
    # the sealer does not wait for the open transaction either; it seals what committed
    assert one(other, "select sealed from audit.seal()") == 1
    other.commit()
    assert one(other, "select seq is not null from audit.log where id = %s", (late,))
    assert one(other, "select ok from audit.verify_chain()")
    other.commit()
    db.commit()
    assert seal(other) == 1
    seq_early, seq_late = (one(other, "select seq from audit.log where id = %s", (i,)) for i in (early, late))
    # in commit order: after the row that committed before it, although its id is lower
    assert seq_early == seq_late + 1
    assert verify(other) == (True, None, None, 0)


def test_a_capped_batch_finishes_its_snapshot_before_later_commits(db, other):
    locs = locations(db, 4)
    straggler = touch(other, locs[0], "straggler")  # lowest id, commits last
    firsts = [touch(db, loc, f"first {i}") for i, loc in enumerate(locs[1:])]
    db.commit()
    assert straggler < min(firsts)
    assert seal(db, rows=2) == 2
    assert one(db, "select cut is not null from audit.chain_head")
    other.commit()  # commits after the capped batch's snapshot
    assert seal(db, rows=2) == 1  # the rest of that snapshot first, not the straggler's lower id
    assert seal(db, rows=2) == 1
    order = [r[0] for r in db.execute("select id from audit.log where id = any(%s) order by seq",
                                      ([straggler] + firsts,)).fetchall()]
    assert order == firsts + [straggler]
    assert one(db, "select cut is null from audit.chain_head")
    assert verify(db) == (True, None, None, 0)


def test_two_sealers_at_once_take_turns(db, other):
    locs = locations(db, 3)
    rows = [touch(db, loc, f"turns {i}") for i, loc in enumerate(locs)]
    db.commit()
    assert one(db, "select sealed from audit.seal()") == 3  # holds the sealer's lock until commit
    other.execute("set lock_timeout = '200ms'")
    with pytest.raises(psycopg.Error) as err:
        other.execute("select * from audit.seal()")
    assert err.value.sqlstate == "55P03"  # the second sealer waits on the advisory lock
    other.rollback()
    result = {}

    def second():
        with psycopg.connect(db_url(db)) as c:
            result["sealed"] = one(c, "select sealed from audit.seal()")

    t = threading.Thread(target=second)
    t.start()
    t.join(timeout=1)
    assert t.is_alive()  # still waiting while the first holds the lock
    assert one(other, "select count(*) from pg_locks where locktype = 'advisory' and not granted "
               "and database = (select oid from pg_database where datname = current_database())") == 1
    other.rollback()
    db.commit()
    t.join(timeout=30)
    assert result == {"sealed": 0}  # it found everything sealed: no row sealed twice
    seqs = [r[0] for r in db.execute("select seq from audit.log where id = any(%s) order by seq", (rows,)).fetchall()]
    assert len(set(seqs)) == 3 and seqs == list(range(seqs[0], seqs[0] + 3))
    assert verify(db) == (True, None, None, 0)


# ---------------------------------------------------------------- attacks on sealed rows

@pytest.fixture
def sealed_rows(db):
    locs = locations(db, 3)
    for i in range(3):
        for loc in locs:
            touch(db, loc, f"round {i}")
    db.commit()
    assert seal(db) == 9
    return [r[0] for r in db.execute("select id from audit.log order by seq desc limit 9").fetchall()][::-1]


def as_superuser_bypassing_triggers(db, sql, params=()):
    db.execute("set local session_replication_role = replica")
    db.execute(sql, params)
    db.commit()


def test_altering_a_sealed_row_is_detected(db, sealed_rows):
    target = sealed_rows[4]
    as_superuser_bypassing_triggers(db, "update audit.log set new_row = jsonb_set(new_row, '{name}', '\"forged\"') "
                                        "where id = %s", (target,))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, target) and "altered" in problem


def test_removing_a_sealed_row_is_detected(db, sealed_rows):
    as_superuser_bypassing_triggers(db, "delete from audit.log where id = %s", (sealed_rows[4],))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[5]) and "removed" in problem


def test_reordering_sealed_rows_is_detected(db, sealed_rows):
    a, b = sealed_rows[3], sealed_rows[6]
    seq_a, seq_b = (one(db, "select seq from audit.log where id = %s", (i,)) for i in (a, b))
    db.execute("set local session_replication_role = replica")
    db.execute("update audit.log set seq = -1 where id = %s", (a,))  # the seq index is unique: swap in steps
    db.execute("update audit.log set seq = %s where id = %s", (seq_a, b))
    db.execute("update audit.log set seq = %s where id = %s", (seq_b, a))
    db.commit()
    assert db.execute("select seq from audit.log where id = %s", (a,)).fetchone()[0] > \
        db.execute("select seq from audit.log where id = %s", (b,)).fetchone()[0]  # the swap happened
    ok, broken, problem, _ = verify(db)
    assert ok is False and broken == b and "re-ordered" in problem


def test_unsealing_a_sealed_row_to_have_it_resealed_is_detected(db, sealed_rows):
    """Nulling a row's seal so the sealer chains an edited copy at the end: the gap shows."""
    target = sealed_rows[2]
    as_superuser_bypassing_triggers(db, "update audit.log set seq = null, prev_hash = null, hash = null, "
                                        "new_row = jsonb_set(new_row, '{name}', '\"forged\"') where id = %s", (target,))
    assert seal(db) == 1  # the sealer takes it as new...
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[3]) and "removed" in problem  # ...but the hole stays


def test_truncating_the_sealed_tail_is_detected(db, sealed_rows):
    as_superuser_bypassing_triggers(db, "delete from audit.log where id = any(%s)", (sealed_rows[-3:],))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[-1]) and "at the end were removed" in problem


def test_the_owner_can_only_seal_an_unsealed_row_never_edit_one(db, sealed_rows):
    loc = locations(db, 1)[0]
    fresh = touch(db, loc, "unsealed")
    db.commit()
    db.execute("set local role audit_owner")
    assert db.execute("update audit.log set op = 'DELETE' where id = %s", (sealed_rows[0],)).rowcount == 0
    with pytest.raises(psycopg.Error) as err:  # an unsealed row: content stays as written
        db.execute("update audit.log set op = 'DELETE', seq = -1, prev_hash = '\\x00', hash = '\\x00' where id = %s",
                   (fresh,))
    assert err.value.sqlstate == "TR011"
    db.rollback()
    with pytest.raises(psycopg.Error) as err:  # nor is a sealed row sealed again, even by a superuser
        db.execute("update audit.log set seq = seq + 1000 where id = %s", (sealed_rows[0],))
    assert err.value.sqlstate == "TR011"
    db.rollback()
    assert seal(db) == 1  # positive control: the sealer's own update goes through
    assert verify(db) == (True, None, None, 0)


SEAL_COLUMNS = {"seq", "prev_hash", "hash"}


def test_sealing_changes_no_other_column_of_an_audit_row(db, sealed_rows):
    """The seal guard names every column but the seal columns (no row-to-JSON of each row):
    for every column of audit.log, read from the catalogue so a new column is covered, a
    sealing update that also changes it is refused. Positive control: the plain seal passes."""
    columns = [r[0] for r in db.execute(
        "select attname from pg_attribute where attrelid = 'audit.log'::regclass and attnum > 0 "
        "and not attisdropped order by attnum").fetchall()]
    assert SEAL_COLUMNS < set(columns) and len(columns) > 10
    loc = locations(db, 1)[0]
    fresh = touch(db, loc, "unsealed")
    db.commit()
    for col in sorted(set(columns) - SEAL_COLUMNS):
        other = sql.Identifier(col)
        with pytest.raises(psycopg.Error) as err, db.transaction():
            db.execute(sql.SQL("update audit.log set {c} = (select l.{c} from audit.log l where l.{c} is distinct from "
                               "(select {c} from audit.log where id = %(id)s) order by l.id limit 1), "
                               "seq = -1, prev_hash = '\\x00', hash = '\\x00' where id = %(id)s").format(c=other),
                       {"id": fresh})
        # the identity column cannot be set by any UPDATE (generated always): refused before the guard
        assert err.value.sqlstate == ("428C9" if col == "id" else "TR011"), col
    assert seal(db) == 1
    assert verify(db) == (True, None, None, 0)


# ---------------------------------------------------------------- the window, the CLI, the schedule

def test_verify_reports_the_unsealed_window(db):
    touch(db, locations(db, 1)[0], "waiting")
    db.commit()
    unsealed, age = db.execute("select unsealed, extract(epoch from oldest_unsealed) from audit.verify_chain()").fetchone()
    assert unsealed == 1 and float(age) > 0
    db.rollback()
    seal(db)
    assert db.execute("select unsealed, oldest_unsealed from audit.verify_chain()").fetchone() == (0, None)


def test_seal_and_verify_commands(db):
    env = dict(os.environ, DATABASE_URL=db_url(db))
    run = lambda *a: subprocess.run([sys.executable, "-m", "tracker.cli", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True)
    touch(db, locations(db, 1)[0], "for the CLI")
    db.commit()
    behind = run("verify-audit", "--max-unsealed", "0")
    assert behind.returncode == 2 and "1 unsealed" in behind.stdout and "sealer behind" in behind.stderr
    first = run("seal-audit")
    assert first.returncode == 0 and first.stdout.startswith("sealed 1 rows in 1 batch;")
    again = run("seal-audit")
    assert again.returncode == 0 and again.stdout.startswith("sealed 0 rows in 0 batches;")
    good = run("verify-audit", "--max-unsealed", "0")
    assert good.returncode == 0 and "; 0 unsealed" in good.stdout
    bad = run("seal-audit", "--batch", "0")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1


def test_seal_refuses_a_nonsense_batch(db):
    for rows in (0, -5, 2_000_000, None):
        with pytest.raises(psycopg.Error) as err:
            db.execute("select * from audit.seal(%s)", (rows,))
        assert err.value.sqlstate == "TR050"
        db.rollback()
    with pytest.raises(psycopg.Error) as err:
        db.execute("call audit.run_sealer(interval '1 second', interval '0 seconds')")
    assert err.value.sqlstate == "TR050"
    db.rollback()


def test_the_cron_sealer_procedure_commits_each_batch(db):
    touch(db, locations(db, 1)[0], "for the procedure")
    db.commit()
    db.autocommit = True  # CALL at top level, as pg_cron runs it: its COMMITs are real
    try:
        db.execute("call audit.run_sealer(interval '0 seconds', interval '1 second')")
    finally:
        db.autocommit = False
    assert verify(db) == (True, None, None, 0)


def test_no_staff_role_can_seal(db):
    for role in ("md", "system_admin", "buyer"):
        assert not one(db, "select has_function_privilege(%s, 'audit.seal(integer)', 'execute')", (role,))
        assert not one(db, "select has_function_privilege(%s, 'audit.run_sealer(interval, interval)', 'execute')",
                       (role,))
    db.rollback()
    assert one(db, "select has_function_privilege('md', 'audit.verify_chain()', 'execute')")  # positive control
    db.rollback()


def test_the_migration_schedules_the_sealer_where_pg_cron_runs():
    """In the database pg_cron serves (the embedded cluster's `tracker`), the migration
    created the sealer's job; elsewhere (these clones) it is skipped with a notice."""
    from tracker import config
    try:
        c = psycopg.connect(config.database_url())
    except psycopg.Error:
        pytest.skip("the main database is not reachable")
    with c:
        if one(c, "select current_database() is distinct from current_setting('cron.database_name', true)"):
            pytest.skip("pg_cron does not serve this database")
        if one(c, "select to_regprocedure('audit.seal(integer)') is null"):
            pytest.skip("the main database is not migrated")
        version, workers, schedule, command = c.execute(
            "select (select extversion from pg_extension where extname = 'pg_cron'), "
            "current_setting('cron.use_background_workers', true), schedule, command "
            "from cron.job where jobname = 'tracker-audit-seal'").fetchone()
    if [int(x) for x in version.split("-")[0].split(".")] >= [1, 5]:
        assert (schedule, command) == ("2 seconds", "select audit.seal()")
    elif workers == "on":  # a long job would block pg_cron 1.4's scheduler: one short seal a minute
        assert (schedule, command) == ("* * * * *", "select audit.seal()")
    else:
        assert schedule == "* * * * *" and "audit.run_sealer(interval '55 seconds', interval '2 seconds')" in command


# ---------------------------------------------------------------- the web process seals while it serves
def test_a_serving_web_process_keeps_the_unsealed_window_to_seconds(db):
    """pg_cron 1.4 (Debian 12) seals once a minute; a web process's relay seals every
    AUDIT_SEAL_SECONDS as the authenticator, so a change is sealed within seconds while the
    app serves. Positive control: with no process sealing, the row stays unsealed."""
    import time

    from conftest import _url
    from tracker.web.realtime import AUDIT_SEAL_SECONDS, Relay
    loc = locations(db, 1)[0]
    touch(db, loc, "Shelf S")
    db.commit()
    time.sleep(AUDIT_SEAL_SECONDS + 1)
    assert verify(db)[3] == 1  # nothing seals it on its own here (the test clones have no cron job)
    relay = Relay(_url(db.info.dbname, "authenticator"))
    relay.start()
    try:
        deadline = time.monotonic() + 10
        while verify(db)[3] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert verify(db) == (True, None, None, 0)
        assert relay.sealer.is_alive()
    finally:
        relay.stop()
    assert not relay.sealer.is_alive()
    # and the authenticator can do nothing else in the audit schema
    with psycopg.connect(_url(db.info.dbname, "authenticator")) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select * from audit.verify_chain()")
