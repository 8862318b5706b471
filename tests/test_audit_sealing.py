"""The audit chain without a global lock (issue 18, item 1): writers append unsealed
rows and never wait on one another; audit.seal() links committed rows into the hash
chain (audit.seals, V0025) in commit order, in batches, one sealer at a time; aborted rows
are never sealed; an audit row is written once and never updated, not even to seal it;
verify still catches every edit of a sealed row and reports the unsealed window."""
import os
import subprocess
import sys
import threading

import psycopg
import pytest
from psycopg import sql

from conftest import db_url
from audit_chain import db, locations, one, seal, seq_of, touch, verify  # noqa: F401 (db: a fixture)
from helpers import Lifecycle, connect_as, persona








def in_chain_order(conn, log_ids):
    return [r[0] for r in conn.execute("select log_id from audit.seals where log_id = any(%s) order by seq",
                                       (list(log_ids),)).fetchall()]






@pytest.fixture
def other(db):
    c = psycopg.connect(db_url(db))
    yield c
    c.close()




# ---------------------------------------------------------------- writing and sealing

def test_a_write_is_appended_unsealed_and_the_sealer_chains_it(db):
    loc = locations(db, 1)[0]
    head = db.execute("select last_seq, last_hash from audit.chain_head").fetchone()
    row = touch(db, loc, "Shelf A")
    db.commit()
    assert seq_of(db, row) is None
    assert db.execute("select last_seq, last_hash from audit.chain_head").fetchone() == head  # writers never touch it
    assert verify(db)[0] is True and verify(db)[3] == 1
    assert seal(db) == 1
    seq, prev = db.execute("select seq, prev_hash from audit.seals where log_id = %s", (row,)).fetchone()
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
    assert seq_of(db, kept) == head + 1
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
    assert seq_of(other, late) is not None and seq_of(other, early) is None
    assert one(other, "select ok from audit.verify_chain()")
    other.commit()
    db.commit()
    assert seal(other) == 1
    seq_early, seq_late = seq_of(other, early), seq_of(other, late)
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
    assert in_chain_order(db, [straggler] + firsts) == firsts + [straggler]
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
    seqs = sorted(seq_of(db, r) for r in rows)
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
    return [r[0] for r in db.execute("select log_id from audit.seals order by seq desc limit 9").fetchall()][::-1]


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
    assert (ok, broken) == (False, sealed_rows[4]) and "was removed" in problem


def test_removing_a_sealed_row_and_its_seal_is_detected(db, sealed_rows):
    as_superuser_bypassing_triggers(db, "delete from audit.log where id = %s", (sealed_rows[4],))
    as_superuser_bypassing_triggers(db, "delete from audit.seals where log_id = %s", (sealed_rows[4],))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[5]) and "removed" in problem


def test_reordering_sealed_rows_is_detected(db, sealed_rows):
    a, b = sealed_rows[3], sealed_rows[6]
    seq_a, seq_b = seq_of(db, a), seq_of(db, b)
    db.execute("set local session_replication_role = replica")
    db.execute("update audit.seals set seq = seq + 1000000000 where log_id = %s", (a,))  # seq is unique: in steps
    db.execute("update audit.seals set seq = %s where log_id = %s", (seq_a, b))
    db.execute("update audit.seals set seq = %s where log_id = %s", (seq_b, a))
    db.commit()
    assert seq_of(db, a) > seq_of(db, b)  # the swap happened
    ok, broken, problem, _ = verify(db)
    assert ok is False and broken == b and "re-ordered" in problem


def test_pointing_seals_at_each_others_rows_is_detected(db, sealed_rows):
    """The other way to re-order: the seals stay, their log_ids are swapped."""
    a, b = sealed_rows[3], sealed_rows[6]
    db.execute("set local session_replication_role = replica")
    db.execute("update audit.seals set log_id = -log_id where log_id = %s", (a,))  # log_id is unique
    db.execute("update audit.seals set log_id = %s where log_id = %s", (a, b))
    db.execute("update audit.seals set log_id = %s where log_id = %s", (b, -a))
    db.commit()
    ok, broken, problem, _ = verify(db)
    assert ok is False and broken == b and "altered" in problem  # the first seal now names b, whose content differs


def test_unsealing_a_sealed_row_to_have_it_resealed_is_detected(db, sealed_rows):
    """Dropping a row's seal and editing the row, so the sealer might chain the edited copy at
    the end: the sealer never reads a row below its floor again, and the hole shows."""
    target = sealed_rows[2]
    as_superuser_bypassing_triggers(db, "delete from audit.seals where log_id = %s", (target,))
    as_superuser_bypassing_triggers(db, "update audit.log set new_row = jsonb_set(new_row, '{name}', '\"forged\"') "
                                        "where id = %s", (target,))
    assert seal(db) == 0  # below the floor: not taken as new
    ok, broken, problem, unsealed = verify(db)
    assert (ok, broken) == (False, sealed_rows[3]) and "removed" in problem  # the hole stays
    assert unsealed == 1  # and the row shows as unsealed


def test_truncating_the_sealed_tail_is_detected(db, sealed_rows):
    as_superuser_bypassing_triggers(db, "delete from audit.log where id = any(%s)", (sealed_rows[-3:],))
    as_superuser_bypassing_triggers(db, "delete from audit.seals where log_id = any(%s)", (sealed_rows[-3:],))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[-1]) and "at the end were removed" in problem


def test_truncating_the_log_tail_alone_is_detected(db, sealed_rows):
    as_superuser_bypassing_triggers(db, "delete from audit.log where id = any(%s)", (sealed_rows[-3:],))
    ok, broken, problem, _ = verify(db)
    assert (ok, broken) == (False, sealed_rows[-3]) and "was removed" in problem


def columns(db, table):
    return [r[0] for r in db.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 "
        "and not attisdropped order by attnum", (table,)).fetchall()]


@pytest.mark.parametrize("table", ["audit.log", "audit.seals"])
def test_no_column_of_the_log_or_the_chain_can_be_updated(db, sealed_rows, table):
    """Every column, read from the catalogue so a new one is covered: the owner's update
    reaches no row (no UPDATE policy), a superuser's is refused by trigger (TR011), and the
    generated id even before that. Positive control: the sealer's append goes through."""
    key = "id" if table == "audit.log" else "log_id"
    cols = columns(db, table)
    assert len(cols) >= (11 if table == "audit.log" else 4)
    loc = locations(db, 1)[0]
    fresh = touch(db, loc, "unsealed")
    db.commit()
    for col in cols:
        c, t = sql.Identifier(col), sql.SQL(table)
        stmt = sql.SQL("update {t} set {c} = {c} where {k} = %s").format(t=t, c=c, k=sql.Identifier(key))
        if (table, col) == ("audit.log", "id"):  # generated always: refused before any policy or trigger
            with pytest.raises(psycopg.errors.GeneratedAlways), db.transaction():
                db.execute(stmt, (fresh,))
            continue
        for target in (sealed_rows[0], fresh):
            with db.transaction():
                db.execute("set local role audit_owner")
                assert db.execute(stmt, (target,)).rowcount == 0, (col, target)
            if table == "audit.seals" and target == fresh:
                continue  # no seal row yet: nothing for a trigger to refuse
            with pytest.raises(psycopg.Error) as err, db.transaction():
                db.execute(stmt, (target,))
            assert err.value.sqlstate == "TR011", (col, target)
    assert seal(db) == 1
    assert verify(db) == (True, None, None, 0)


def test_sealing_writes_no_audit_row_again(db):
    """The sealer appends seals; it never rewrites the rows it seals (the cost V0025 removed)."""
    rows = [touch(db, loc, "to be sealed") for loc in locations(db, 3)]
    db.commit()
    versions = "select id, ctid::text, xmin::text from audit.log where id = any(%s) order by id"
    before = db.execute(versions, (rows,)).fetchall()
    assert seal(db) == 3 and all(seq_of(db, r) for r in rows)
    assert db.execute(versions, (rows,)).fetchall() == before  # the same row versions: none was rewritten
    assert one(db, "select n_tup_upd + n_tup_hot_upd from pg_stat_user_tables where relid = 'audit.log'::regclass") == 0
    db.rollback()


def test_the_sealer_reads_only_what_its_floor_leaves_open(db, other):
    """A transaction left open keeps only its own rows to be read again, not every row
    written since it began: after each seal, the rows the floor leaves open are the open
    transaction's. Positive control: once it commits, its row is sealed after the others."""
    locs = locations(db, 3)
    stuck = touch(other, locs[0], "left open")  # other's transaction stays open
    open_txid = one(other, "select txid_current()")
    for i in range(4):
        touch(db, locs[1 + i % 2], f"meanwhile {i}")
        db.commit()
        seal(db)
    # read from inside the open transaction, which alone sees its own row
    left, since_xmin = other.execute(
        "select array_agg(l.id order by l.id) filter (where l.txid >= pg_snapshot_xmax(h.floor)::text::bigint "
        "         or l.txid in (select x::text::bigint from pg_snapshot_xip(h.floor) x)), "
        "       count(*) filter (where l.txid >= pg_snapshot_xmin(h.floor)::text::bigint) "
        "  from audit.log l, audit.chain_head h").fetchone()
    assert left == [stuck]  # only the open transaction's row is left to read...
    assert since_xmin >= 5  # ...where "everything since the oldest open transaction" would be 5 (control)
    other.commit()
    assert seal(db) == 1 and seq_of(db, stuck) == one(db, "select last_seq from audit.chain_head")
    db.rollback()
    assert verify(db) == (True, None, None, 0)


def test_after_a_restore_from_another_cluster_rows_are_still_sealed(db):
    """A dump restored into another cluster brings chain_head.floor and audit rows whose
    transaction ids are that cluster's. A floor beyond this cluster's next id is ignored (read
    everything once), and a committed row with an id this cluster has not handed out yet (written
    before the restore) is sealed too. Positive control: the floor is ours again afterwards."""
    ahead = one(db, "select txid_current() + 1000000")
    db.execute("update audit.chain_head set floor = (%s || ':' || %s || ':')::pg_snapshot", (ahead, ahead))
    # as the restore leaves it: a row written by the other cluster, unsealed when it was dumped
    restored = one(db, "insert into audit.log (txid, db_role, session_role, table_name, op, row_id, new_row) "
                       "values (%s, 'buyer', 'authenticator', 'app.locations', 'UPDATE', '1', '{\"id\": 1}') "
                       "returning id", (ahead + 5,))
    db.commit()
    here = touch(db, locations(db, 1)[0], "written after the restore")
    db.commit()
    assert seal(db) == 2
    assert seq_of(db, restored) is not None and seq_of(db, here) is not None
    assert one(db, "select pg_snapshot_xmax(floor)::text::bigint < %s from audit.chain_head", (ahead,))
    db.rollback()
    touch(db, locations(db, 1)[0], "and the next one")
    db.commit()
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
