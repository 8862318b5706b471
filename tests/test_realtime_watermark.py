"""The realtime sequencer's watermark (V0024): a run reads only inbox ids above a floor below
which no row can still appear (sql/functions/080_realtime.sql states the rule). What must hold:
no committed signal is ever skipped, whoever writes in whatever order, whoever calls the
sequencer and however (the authenticator included, in a transaction it rolls back or in an old
snapshot), and the floor rises while a snapshot is held, so an idle run stays cheap (the
measurement is tests/test_review_rt.py::test_finding_an_idle_sequencer_run_stays_cheap_...).
Writers here are real: comments, each its own signal (kind 'comment', ref_id = the comment)."""
import random
import threading
import time

import psycopg
import pytest

from conftest import Staff, _url

STEP = 1000  # c_step in app_private.sequence_realtime: the least the floor rises by


def run(url: str, rows: int = 10000) -> int:
    """One sequencer run, in a transaction of its own on a new session (as pg_cron runs it)."""
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("select app_private.sequence_realtime(%s)", (rows,)).fetchone()[0]


def mark(conn) -> tuple[int, int | None]:
    return conn.execute("select floor_id, pending_id from app_private.realtime_watermark").fetchone()


def settle(seq) -> None:
    """Idle runs until the watermark stops moving (a pending floor becomes the floor)."""
    for _ in range(10):
        before = mark(seq)
        seq.execute("select app_private.sequence_realtime()")
        if mark(seq) == before:
            return
    raise AssertionError("the watermark kept moving on idle runs")


def comments(conn, sid: int, author: int, n: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "insert into app.sample_comments (sample_id, author_id, body) select %s, %s, 'w' || g "
        "from generate_series(1, %s) g returning id", (sid, author, n)).fetchall()]


def draw_now(conn) -> list[int]:
    """Fire this transaction's deferred signal triggers now: its inbox ids are drawn, long before
    it commits (a transaction that commits slowly, or sets its constraints immediate)."""
    conn.execute("set constraints all immediate")
    return [r[0] for r in conn.execute(
        "select id from app_private.realtime_inbox where xact = pg_current_xact_id() order by id")]


def signalled(conn, ids) -> list[int]:
    """The comments among `ids` that have an event, one entry per event."""
    return [r[0] for r in conn.execute(
        "select ref_id from app.realtime_events where kind = 'comment' and ref_id = any(%s) order by ref_id",
        (list(ids),))]


@pytest.fixture
def world(fresh_db):
    db = fresh_db
    sid = db.execute("select min(id) from app.samples").fetchone()[0]
    author = Staff(db).get("buyer")["id"]
    db.commit()
    url = _url(db.info.dbname)
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as seq:
        # an analyst's REPEATABLE READ transaction: it holds a snapshot (the moved rows stay in
        # the index) and no xid (it writes nothing), as a pg_dump does
        holder.execute("begin isolation level repeatable read")
        holder.execute("select count(*) from app.samples")
        seq.execute("select app_private.sequence_realtime()")
        settle(seq)
        yield db, url, seq, sid, author
        holder.rollback()


def test_the_inbox_sequence_draws_one_id_at_a_time_upward(fresh_db):
    """The rule's premise (the sequencer also checks it at every run): with CACHE 1 the sequence's
    position bounds every id already handed out."""
    assert fresh_db.execute(
        "select seqcache, seqincrement, seqcycle from pg_sequence "
        "where seqrelid = 'app_private.realtime_inbox_id_seq'::regclass").fetchone() == (1, 1, False)


def test_a_writer_that_drew_its_id_early_holds_the_floor_until_it_ends(world):
    """Out of id order across many runs: W draws a low id and stays open while 3,000 signals with
    higher ids commit and are moved (the old `max id moved` would now be far past W's id). The
    floor stays below W's id, W's signal moves once it commits, and the floor then passes it. A
    rolled-back writer holds the floor the same way while open, and its id is passed after."""
    db, url, seq, sid, author = world
    with psycopg.connect(url) as w, psycopg.connect(url) as r:
        early = comments(w, sid, author, 1)
        low = draw_now(w)                                    # W's inbox id, uncommitted
        gone = comments(r, sid, author, 1)
        lost = draw_now(r)                                   # R's, to be rolled back
        assert len(low) == 1 and len(lost) == 1
        later = []
        for _ in range(6):                                   # higher ids commit, and move, run after run
            later += comments(db, sid, author, 500)
            db.commit()
            assert seq.execute("select app_private.sequence_realtime(300)").fetchone()[0] > 0
            settle(seq)
            floor, pending = mark(seq)
            assert floor < min(low + lost), f"the floor {floor} passed an open writer's id {min(low + lost)}"
        assert sorted(signalled(seq, later)) == sorted(later)  # out of order: all of these moved first
        assert seq.execute("select pg_sequence_last_value('app_private.realtime_inbox_id_seq')"
                           ).fetchone()[0] > max(low + lost) + 2 * STEP
        r.rollback()
        w.commit()
    settle(seq)
    assert signalled(seq, early) == early                    # W's signal, once
    assert signalled(seq, gone) == []                        # R's, never
    floor, _ = mark(seq)
    assert floor > max(low + lost)                           # positive control: the floor passed both after


def test_no_signal_is_lost_with_concurrent_writers_committing_out_of_id_order(world):
    """Four writers commit (or roll back) transactions of 1-80 signals; half draw their ids early
    and stay open for a while, so ids commit far out of order, across many runs of a sequencer
    with batches from 1 to 5,000 rows, all while a snapshot is held. Every committed signal is
    moved exactly once, none rolled back is, and no writer ever sees the floor at or above an id
    it has drawn; the floor rose many times meanwhile (positive control: it was exercised)."""
    db, url, seq, sid, author = world
    rnd = random.Random(24)
    stop = threading.Event()
    committed, rolled_back, errors, broken = [], [], [], []
    floors: set[int] = set()
    overtaken = []  # early writers that saw the outbox grow while they were open

    def sequencer():
        with psycopg.connect(url, autocommit=True) as c:
            my = random.Random(7)
            while not stop.is_set():
                c.execute("select app_private.sequence_realtime(%s)", (my.choice([1, 7, 50, 300, 5000]),))
                floors.add(mark(c)[0])
                time.sleep(my.random() * 0.003)

    def writer(seed: int):
        my = random.Random(seed)
        try:
            with psycopg.connect(url) as w:
                for _ in range(40):
                    ids = comments(w, sid, author, my.randint(1, 80))
                    drawn = []
                    if my.random() < 0.5:
                        drawn = draw_now(w)
                        high = w.execute("select app_private.realtime_high_water()").fetchone()[0]
                        time.sleep(my.random() * 0.05)   # open across several sequencer runs
                        floor = w.execute("select floor_id from app_private.realtime_watermark").fetchone()[0]
                        if floor >= min(drawn):
                            broken.append((floor, drawn))
                        if w.execute("select app_private.realtime_high_water()").fetchone()[0] > high:
                            overtaken.append(drawn)
                    if my.random() < 0.15:
                        w.rollback()
                        rolled_back.extend(ids)
                    else:
                        w.commit()
                        committed.extend(ids)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    seq_thread = threading.Thread(target=sequencer)
    seq_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    seq_thread.join(30)
    assert not errors, errors
    while seq.execute("select app_private.sequence_realtime()").fetchone()[0]:
        pass
    settle(seq)
    assert not broken, f"the floor reached an open writer's ids: {broken[:3]}"
    got = signalled(seq, committed + rolled_back)
    assert got == sorted(committed), "a committed signal was lost, moved twice, or a rolled-back one moved"
    assert seq.execute("select count(*) from app_private.realtime_inbox").fetchone()[0] == 0
    # positive controls: the writes were many and out of order, and the floor rose all along
    assert len(committed) > 1000 and rolled_back
    assert len(overtaken) > 5, len(overtaken)
    assert len(floors) >= 3, sorted(floors)  # it rose at least twice while they wrote (6 times here)
    assert mark(seq)[0] >= seq.execute("select pg_sequence_last_value('app_private.realtime_inbox_id_seq')"
                                       ).fetchone()[0] - STEP


def test_the_authenticator_cannot_hand_the_sequencer_a_floor(world):
    """The attacker is the web app's login, the one role that may run the sequencer. It cannot
    read or write the watermark, the function takes no floor, a run it rolls back takes its floor
    back with its moves, and a run in an old REPEATABLE READ snapshot skips nothing committed
    after it. Positive controls: a run like the rolled-back one does raise the floor past those
    signals, and every signal is then moved exactly once."""
    db, url, seq, sid, author = world
    web_url = _url(db.info.dbname, "authenticator")
    with psycopg.connect(web_url, autocommit=True) as web:
        for sql in ("select * from app_private.realtime_watermark",
                    "update app_private.realtime_watermark set floor_id = floor_id + 1000000",
                    "insert into app_private.realtime_watermark (id) values (true)",
                    "delete from app_private.realtime_watermark",
                    "truncate app_private.realtime_watermark"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                web.execute(sql)
        with pytest.raises(psycopg.errors.UndefinedFunction):  # no overload takes a floor
            web.execute("select app_private.sequence_realtime(10000, 999999999)")
        web.execute("set tracker.realtime_floor = '999999999'")  # a setting nothing reads

        # 1. a run in a transaction that is rolled back: its floor goes back with its moves
        first = comments(db, sid, author, 2 * STEP)
        db.commit()
        seq.execute("select app_private.sequence_realtime(10)")         # a pending floor past them
        second = comments(db, sid, author, 10)
        db.commit()
        floor_before = mark(seq)[0]
        with web.transaction(force_rollback=True):
            assert web.execute("select app_private.sequence_realtime()").fetchone()[0] == 2 * STEP
        with seq.transaction(force_rollback=True):                      # positive control
            assert seq.execute("select app_private.sequence_realtime()").fetchone()[0] == 2 * STEP
            assert mark(seq)[0] >= floor_before + 2 * STEP
        assert mark(seq)[0] == floor_before                             # both went back

        # 2. a run in an old snapshot, while writers commit behind it (one drew its id early)
        web.execute("begin isolation level repeatable read")
        web.execute("select app_private.realtime_high_water()")         # its snapshot, from now
        with psycopg.connect(url) as w:
            slow = comments(w, sid, author, 1)
            draw_now(w)
            fast = comments(db, sid, author, 2 * STEP)
            db.commit()
            w.commit()
        web.execute("select app_private.sequence_realtime()")           # moves what its snapshot saw
        web.execute("commit")
        web.execute("select app_private.sequence_realtime()")
    while seq.execute("select app_private.sequence_realtime()").fetchone()[0]:
        pass
    settle(seq)
    everything = first + second + slow + fast
    assert signalled(seq, everything) == sorted(everything)             # each exactly once
    assert mark(seq)[0] > floor_before                                  # and the floor rose after all


def test_a_floor_that_no_longer_fits_the_inbox_is_ignored(world):
    """The floor is trusted only while it was computed from this very id sequence and is behind
    its position: a floor above the position (as a stale copy, or a hand edit, would leave) or
    from another sequence file (ALTER SEQUENCE, TRUNCATE ... RESTART IDENTITY and a restore all
    give it a new one) is dropped, and nothing is skipped."""
    db, url, seq, sid, author = world
    for forge in ("floor_id = pg_sequence_last_value('app_private.realtime_inbox_id_seq') + 5000",
                  "seq_filenode = 1, floor_id = pg_sequence_last_value('app_private.realtime_inbox_id_seq') - 1"):
        ids = comments(db, sid, author, 5)
        db.commit()
        seq.execute(f"update app_private.realtime_watermark set {forge}, pending_id = null, pending_xact = null")
        assert seq.execute("select app_private.sequence_realtime()").fetchone()[0] == 5
        assert signalled(seq, ids) == ids
        assert mark(seq)[0] == 0                                        # started again from 0
        settle(seq)
        assert mark(seq)[0] > 0                                         # and rose again
    # a sequence that no longer draws one id at a time: no floor is used or set, nothing skipped
    db.execute("alter table app_private.realtime_inbox alter column id set cache 20")
    db.commit()
    ids = comments(db, sid, author, 5)
    db.commit()
    assert seq.execute("select app_private.sequence_realtime()").fetchone()[0] == 5
    assert signalled(seq, ids) == ids
    settle(seq)
    floor, pending = mark(seq)
    assert pending is None and floor > 0        # the old row, untouched (its sequence file is gone)
    assert seq.execute("select w.seq_filenode <> pg_relation_filenode('app_private.realtime_inbox_id_seq') "
                       "from app_private.realtime_watermark w").fetchone()[0]
    db.execute("alter table app_private.realtime_inbox alter column id set cache 1")
    db.commit()
    settle(seq)
    ids = comments(db, sid, author, 5)
    db.commit()
    assert seq.execute("select app_private.sequence_realtime()").fetchone()[0] == 5
    assert signalled(seq, ids) == ids


def test_callers_without_a_session_of_their_own_still_move_everything(world):
    """pg_cron runs the sequencer in a new session every time, the demo loader once, a DBA by
    hand, possibly in a transaction that has already written (its xid predates the position, so
    it may not set a pending floor): each moves every committed signal, and the watermark is
    shared, so the floor rises for all of them (positive control)."""
    db, url, seq, sid, author = world
    floor0 = mark(seq)[0]
    ids = []
    for _ in range(3):
        ids += comments(db, sid, author, STEP)
        db.commit()
        assert run(url) == STEP                                          # as pg_cron does
    ids += comments(db, sid, author, 3)
    db.commit()
    with psycopg.connect(url) as dba:                                   # a transaction that wrote first
        dba.execute("create temporary table dba_scratch (x int)")
        assert dba.execute("select pg_current_xact_id_if_assigned() is not null").fetchone()[0]
        assert dba.execute("select app_private.sequence_realtime()").fetchone()[0] == 3
        dba.commit()
    assert signalled(seq, ids) == sorted(ids)
    for _ in range(3):
        run(url)
    assert mark(seq)[0] >= floor0 + 3 * STEP                            # the floor rose for them all
