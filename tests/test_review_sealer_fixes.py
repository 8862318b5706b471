"""Review of 884ff8e (the sealer after a restore into another cluster) and 59f4169 (the
sealer never seals its own transaction's rows; its own xid in the floor's running list).

Finding R1 (fixed: the row query leaves out l.txid = the caller's own id): 884ff8e's row condition `l.txid >= pg_snapshot_xmax(pg_current_snapshot())`
("a committed row with an id this cluster has not handed out yet") is also true of the
caller's OWN, uncommitted rows whenever its xid is >= the scan snapshot's xmax. A snapshot's
xmax is latestCompletedXid + 1, not the next xid: so it is always so for a REPEATABLE READ /
SERIALIZABLE caller (its snapshot predates its xid) and, in READ COMMITTED, whenever no
transaction with a later xid has ended. 59f4169's own-xid rule only covers xid < xmax. The
caller's rows are then sealed inside its own open transaction, ahead of rows of transactions
that commit before it: the chain is no longer in commit order (CONVENTIONS "Audit").

Everything else is a regression test for what held, each with a positive control."""
import psycopg
import pytest

from audit_chain import db, drain, one, seal, seq_of, touch, verify  # noqa: F401 (db: a fixture)
from audit_chain import locations as locs
from conftest import db_url
















def sealed_once(conn):
    """Every committed audit row has exactly one seal, and no seal points nowhere."""
    row = conn.execute("select (select count(*) from audit.log l where (select count(*) from audit.seals s "
                       "where s.log_id = l.id) <> 1), (select count(*) from audit.seals s where not exists "
                       "(select from audit.log l where l.id = s.log_id))").fetchone()
    conn.rollback()
    return row == (0, 0)


def head(conn):
    row = conn.execute("select floor::text, cut::text from audit.chain_head").fetchone()
    return row


def connect(db, **kw):
    return psycopg.connect(db_url(db), **kw)


# ====================================================================== R1 (finding)

def test_r1_repeatable_read_sealer_does_not_seal_its_own_rows(db):
    a = locs(db, 1)[0]
    with connect(db) as t:
        t.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        t.execute("select 1")                      # the transaction snapshot: before any xid
        mine = touch(t, a, "R1 RR own")
        assert one(t, "select audit.seal()") is not None
        assert seq_of(t, mine) is None, "the sealer sealed its own, uncommitted row"
        t.rollback()


def test_r1_read_committed_own_row_sealed_before_an_earlier_commit(db):
    a, b = locs(db, 2)
    with connect(db) as w, connect(db) as t:
        early = touch(w, a, "R1 early writer")     # xid W, stays open: no later xid can end before it
        mine = touch(t, b, "R1 sealer's own")      # xid X > W
        assert one(t, "select txid_current()") > one(w, "select txid_current()")
        one(t, "select sealed from audit.seal()")  # the sealer inside its writing transaction
        sealed_in_tx = seq_of(t, mine) is not None
        w.commit()                                 # W commits first ...
        t.commit()                                 # ... then X
        drain(db)
        assert sealed_once(db) and verify(db) == (True, None, None, 0)   # nothing lost or doubled
        assert seq_of(db, early) < seq_of(db, mine), "commit order: W committed before X"
        assert not sealed_in_tx, "own row sealed inside the open transaction"


def test_r1_control_a_later_xid_ended_so_own_row_is_not_sealed(db):
    """Positive control for R1: the same RC sequence, but a transaction with a later xid ends
    before the seal (xid < xmax): 59f4169's rule keeps the own row out and the order holds."""
    a, b, c = locs(db, 3)
    with connect(db) as w, connect(db) as t, connect(db) as later:
        early = touch(w, a, "ctl early writer")
        mine = touch(t, b, "ctl sealer's own")
        touch(later, c, "ctl later xid")
        later.commit()
        one(t, "select sealed from audit.seal()")
        assert seq_of(t, mine) is None
        w.commit()
        t.commit()
        drain(db)
        assert seq_of(db, early) < seq_of(db, mine)
        assert sealed_once(db) and verify(db) == (True, None, None, 0)


# ====================================================================== what held

def test_snapshot_text_is_valid_with_empty_xip_and_own_xid_below_xmin(db):
    """Own xid added when nothing else runs: xip was empty, own xid < the snapshot's xmin (the
    snapshot leaves the own xid out of xmin too): the stored floor is valid and lists it."""
    a, b = locs(db, 2)
    with connect(db) as t, connect(db) as later:
        touch(t, a, "own xid")
        x = one(t, "select txid_current()")
        touch(later, b, "later xid ends")
        later.commit()
        one(t, "select sealed from audit.seal()")
        fl = t.execute("select floor::text, pg_snapshot_xmin(floor)::text::bigint, "
                       "array(select x::text::bigint from pg_snapshot_xip(floor) x) from audit.chain_head").fetchone()
        assert x in fl[2] and fl[1] <= x
        # round-trips through the type's input (sorted, in range)
        assert one(t, "select %s::pg_snapshot::text", (fl[0],)) == fl[0]
        t.commit()
    drain(db)
    assert sealed_once(db) and verify(db) == (True, None, None, 0)


def test_own_xid_merged_sorted_into_a_non_empty_xip(db):
    a, b, c, d = locs(db, 4)
    with connect(db) as r1, connect(db) as t, connect(db) as r2, connect(db) as later:
        touch(r1, a, "running below")                  # lower xid, stays open
        touch(t, b, "sealer")
        touch(r2, c, "running above")                  # higher xid, stays open
        touch(later, d, "highest, ends")
        later.commit()
        one(t, "select sealed from audit.seal()")
        xip = [r[0] for r in t.execute("select x::text::bigint from audit.chain_head, pg_snapshot_xip(floor) x")]
        assert xip == sorted(xip) and one(t, "select txid_current()") in xip and len(xip) >= 3
        t.commit(), r1.commit(), r2.commit()
    drain(db)
    assert sealed_once(db) and verify(db) == (True, None, None, 0)


@pytest.mark.parametrize("iso", ["read committed", "repeatable read", "serializable"])
def test_seal_write_seal_write_in_one_transaction_leaves_everything_sealed_once(db, iso):
    a, b = locs(db, 2)
    with connect(db) as t, connect(db) as o:
        t.execute(f"set transaction isolation level {iso}")
        rows = [touch(t, a, "sws 1")]
        touch(o, b, "sws other")
        o.commit()
        one(t, "select sealed from audit.seal()")
        rows.append(touch(t, a, "sws 2"))
        one(t, "select sealed from audit.seal()")
        rows.append(touch(t, a, "sws 3"))
        t.commit()
    drain(db)
    assert all(seq_of(db, r) is not None for r in rows)
    assert sealed_once(db) and verify(db) == (True, None, None, 0)


def test_capped_batches_inside_the_sealers_transaction_then_more_writes(db):
    """A cut taken in the caller's own transaction already lists its xid; a cut from a previous
    transaction is below it. Both paths: every row sealed once, the chain verifies."""
    ls = locs(db, 4)
    with connect(db) as o:
        for i, l in enumerate(ls):
            touch(o, l, f"cap {i}")
        o.commit()
    with connect(db) as t, connect(db) as later:
        mine = touch(t, ls[0], "cap own")
        touch(later, ls[1], "cap later")
        later.commit()
        assert one(t, "select sealed from audit.seal(1)") == 1   # capped: a cut in this transaction
        assert one(t, "select sealed from audit.seal(1)") == 1
        mine2 = touch(t, ls[0], "cap own 2")
        t.commit()
    assert one(db, "select cut is not null from audit.chain_head")   # a previous transaction's cut
    db.rollback()
    drain(db)
    assert seq_of(db, mine) is not None and seq_of(db, mine2) is not None
    assert sealed_once(db) and verify(db) == (True, None, None, 0)


def test_restore_reset_is_not_triggered_in_the_same_cluster(db):
    """The floor a sealer leaves is never beyond a later snapshot (RC, RR, after a cap): a
    deleted seal (a hole) below the floor is not re-read. Positive control: a floor moved
    ahead does reset it."""
    a, b = locs(db, 2)
    for iso in ("read committed", "repeatable read"):
        with connect(db) as t:
            t.execute(f"set transaction isolation level {iso}")
            touch(t, a, iso)
            t.commit()
            t.execute(f"set transaction isolation level {iso}")
            one(t, "select sealed from audit.seal()")
            t.commit()
    before = head(db)
    db.rollback()
    assert one(db, "select pg_snapshot_xmax(floor) <= pg_snapshot_xmax(pg_current_snapshot()) from audit.chain_head")
    db.rollback()
    assert seal(db) == 0 and seal(db) == 0
    assert verify(db) == (True, None, None, 0)
    # positive control: a floor ahead of this cluster's ids is reset and replaced by ours
    ahead = one(db, "select txid_current() + 1000000")
    db.execute("update audit.chain_head set floor = (%s || ':' || %s || ':')::pg_snapshot", (ahead, ahead))
    db.commit()
    assert before[0] is not None
    seal(db)
    assert one(db, "select pg_snapshot_xmax(floor)::text::bigint < %s from audit.chain_head", (ahead,))
    db.rollback()


def test_the_future_txid_clause_never_seals_another_sessions_uncommitted_row(db):
    """Same cluster: another transaction's uncommitted row is never sealed, whatever its xid
    and the sealer's isolation level; it is sealed once after it commits."""
    a, b = locs(db, 2)
    for iso in ("read committed", "repeatable read", "serializable"):
        with connect(db) as w, connect(db) as s:
            s.execute(f"set transaction isolation level {iso}")
            s.execute("select 1")                 # the sealer's snapshot first (RR: older than w's xid)
            row = touch(w, a, f"open {iso}")      # w's xid is the newest, >= every snapshot's xmax
            one(s, "select sealed from audit.seal()")
            assert seq_of(s, row) is None
            s.commit()
            assert seq_of(db, row) is None
            db.rollback()
            w.commit()
        drain(db)
        assert seq_of(db, row) is not None       # positive control
    assert sealed_once(db) and verify(db) == (True, None, None, 0)
