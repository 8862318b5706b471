"""Issue 16 (1): the concurrency soak, short mode (SOAK_SECONDS, default 10 s, 20 sessions);
`make soak` runs it for 60 s. See tests/soak/harness.py for what the sessions do."""
import os

import psycopg

from conftest import db_url
from tests.soak import harness

SECONDS = float(os.environ.get("SOAK_SECONDS", "10"))
SESSIONS = int(os.environ.get("SOAK_SESSIONS", "20"))


def test_soak_keeps_every_invariant(fresh_db):
    fresh_db.commit()
    admin, auth = db_url(fresh_db), db_url(fresh_db, "authenticator")
    with psycopg.connect(admin, autocommit=True) as c:
        before = harness.snapshot(c)
    report = harness.run(admin, auth, SECONDS, SESSIONS)
    print("\nsoak:", harness.summary(report))
    with psycopg.connect(admin, autocommit=True) as c:
        problems = harness.check_invariants(c, before, report)
    assert problems == []
    # positive controls: the soak did real work, legal and illegal
    assert len(report.events) > 20 and report.outcomes["comment"] > 0 and report.outcomes["photo"] > 0
    assert any(k.startswith("TR") for k in report.outcomes), "no refusal was ever provoked"
    # the sample room's actions are in the mix as legal actions, not only as fuzzing (issue 14)
    assert report.outcomes["bulk"] > 0 and report.imported, dict(report.outcomes)


def test_the_invariant_checker_notices_a_lost_transition(fresh_db):
    """Positive control: an acknowledged event that is not in the table, and a state that
    disagrees with the last event, are both reported."""
    fresh_db.commit()
    admin = db_url(fresh_db)
    with psycopg.connect(admin, autocommit=True) as c:
        before = harness.snapshot(c)
        report = harness.Report()
        report.events.add(10 ** 12)
        sid = c.execute("select min(id) from app.samples where state = 'received'").fetchone()[0]
        c.execute("alter table app.samples disable trigger user")
        c.execute("update app.samples set state = 'ordered' where id = %s", (sid,))
        c.execute("alter table app.samples enable trigger user")
        problems = harness.check_invariants(c, before, report)
    assert any("transitions acknowledged 1" in p for p in problems), problems
    assert any("differs from their last event" in p for p in problems), problems
