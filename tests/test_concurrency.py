"""Two people transitioning the same sample at once: exactly one wins, the other
gets a clear conflict (TR007) or, once the winner committed, a clear state error."""
import threading

import psycopg
import pytest

from conftest import db_url
from helpers import Lifecycle, connect_as, persona


@pytest.fixture
def committed(fresh_db):
    lc = Lifecycle(fresh_db)
    yield fresh_db, lc


def test_a_hidden_sample_is_not_found_whether_or_not_someone_holds_it(committed):
    """lock_sample (SKIP LOCKED since V0023): a sample the caller cannot see is "not found"
    (TR006) whether it is free or held by another writer - never "busy" (TR007), which would
    tell that it exists - and the failed attempt leaves nothing locked."""
    db, lc = committed
    sid = lc.make("requested")  # a request: designers do not see it
    db.commit()
    url = db_url(db, "authenticator")
    holder = connect_as(url, *persona(db, "buyer@example.com"))
    designer = connect_as(url, *persona(db, "designer@example.com"))
    try:
        for held in (False, True):
            if held:
                holder.execute("select id from app.samples where id = %s for update", (sid,))
            with pytest.raises(psycopg.Error) as err:
                designer.execute("select app.hand_to_sales(%s, %s)", (sid, lc.sales_exec))
            assert err.value.sqlstate == "TR006", held
            assert err.value.diag.message_primary == f"sample {sid} not found"
            designer.rollback()
        holder.rollback()
        # nothing left locked by the refused attempt; positive control: the buyer, who sees it, acts
        holder.execute("select app.withdraw_request(%s, 'no longer needed')", (sid,))
        holder.commit()
        assert lc.state(sid) == "returned"
        assert db.execute("select withdrawn_at is not null from app.samples where id = %s", (sid,)).fetchone()[0]
    finally:
        holder.close()
        designer.close()


def test_second_writer_gets_a_conflict_while_the_first_holds_the_row(committed):
    db, lc = committed
    sid = lc.make("received")
    db.commit()
    url = db_url(db, "authenticator")
    a = connect_as(url, *persona(db, "logistics@example.com"))
    b = connect_as(url, *persona(db, "factory_liaison@example.com"))
    try:
        a.execute("select app.send_to_factory(%s, %s)", (sid, lc.factory))  # not committed yet
        with pytest.raises(psycopg.Error) as err:
            b.execute("select app.send_to_factory(%s, %s)", (sid, lc.factory))
        assert err.value.sqlstate == "TR007"
        assert err.value.diag.message_primary == f"sample {sid} is being changed by someone else right now"
        b.rollback()
        a.commit()
        with pytest.raises(psycopg.Error) as err:
            b.execute("select app.send_to_factory(%s, %s)", (sid, lc.factory))
        assert err.value.sqlstate == "TR001"  # the winner's change is visible, the loser is told why
        b.rollback()
    finally:
        a.close()
        b.close()
    assert db.execute("select count(*) from app.sample_events where sample_id = %s and action = 'send_to_factory'",
                      (sid,)).fetchone()[0] == 1


def test_racing_threads_exactly_one_wins_per_sample(committed):
    db, lc = committed
    samples = [lc.make("ordered") for _ in range(15)]
    db.commit()
    url = db_url(db, "authenticator")
    who = persona(db, "logistics@example.com")
    results = {sid: [] for sid in samples}

    def worker():
        c = connect_as(url, *who)
        try:
            for sid in samples:
                barrier.wait(timeout=30)
                try:
                    c.execute("select app.receive_sample(%s, %s)", (sid, lc.location))
                    c.commit()
                    results[sid].append("ok")
                except psycopg.Error as exc:
                    c.rollback()
                    results[sid].append(exc.sqlstate)
        finally:
            c.close()

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for sid, outcome in results.items():
        assert sorted(outcome) in (["TR007", "ok"], ["TR001", "ok"]), (sid, outcome)
        assert db.execute("select count(*) from app.sample_events where sample_id = %s and action = 'receive'",
                          (sid,)).fetchone()[0] == 1
    assert db.execute("select ok from audit.verify_chain()").fetchone()[0]
