"""Regression tests for the attack review's database findings (issue 9) that have no
better home: the EXPLAIN oracle (finding 6) and one login stalling every writer (finding 5)."""
import json
import time

import psycopg
import pytest

from conftest import _url, act_as  # noqa: F401


def removed_by_filter(plan: dict) -> int:
    total = plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return total + sum(removed_by_filter(p) for p in plan.get("Plans", []))


def explain(conn, word: str) -> dict:
    return conn.execute("explain (analyze, format json) select 1 from app.sample_comments "
                        "where search @@ to_tsquery('english', %s)", (word,)).fetchone()[0][0]["Plan"]


def test_explain_does_not_tell_whether_a_hidden_comment_contains_a_word(conn, staff):
    """Attack: with `@@` LEAKPROOF, the GIN index ran before RLS and "Rows Removed by
    Filter: 1" said a hidden comment contains the word. Now a hidden match and no match at
    all produce the same plan counts."""
    hidden = conn.execute("select min(id) from app.samples where state = 'requested'").fetchone()[0]
    conn.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'zanzibar quokka')",
                 (hidden, staff.get("buyer")["id"]))
    designer = staff.get("designer")
    act_as(conn, designer)
    assert conn.execute("select count(*) from app.samples where id = %s", (hidden,)).fetchone()[0] == 0
    with_hidden_match, no_match = explain(conn, "zanzibar"), explain(conn, "xylophonist")
    act_as(conn, None)
    assert removed_by_filter(with_hidden_match) == removed_by_filter(no_match)
    assert json.dumps(with_hidden_match).count("Index") == json.dumps(no_match).count("Index")
    # positive control: the owner's plan does find the word
    assert conn.execute("select count(*) from app.sample_comments where search @@ to_tsquery('english', 'zanzibar')"
                        ).fetchone()[0] == 1
    assert conn.execute("select proleakproof from pg_proc where proname = 'ts_match_vq'").fetchone()[0] is False


def test_search_still_finds_visible_words_and_never_hidden_ones(conn, staff):
    hidden = conn.execute("select min(id) from app.samples where state = 'requested'").fetchone()[0]
    visible = conn.execute("select min(id) from app.samples where state = 'received'").fetchone()[0]
    for sid in (hidden, visible):
        conn.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'zanzibar')",
                     (sid, staff.get("buyer")["id"]))
    act_as(conn, staff.get("designer"))
    found = {r[0] for r in conn.execute("select id from app.search_samples('zanzibar')")}
    act_as(conn, None)
    assert found == {visible}


def test_every_login_has_timeouts(conn):
    conn.execute("insert into app.staff (email, full_name, role) values ('t.o@example.com', 'T O', 'finance')")
    conn.execute("select app_private.grant_personal_login('t.o@example.com', 'test_timeouts_login')")
    for login in ("authenticator", "test_timeouts_login"):
        settings = conn.execute("select array_to_string(setconfig, ',') from pg_db_role_setting s "
                                "join pg_roles r on r.oid = s.setrole where r.rolname = %s and s.setdatabase = 0",
                                (login,)).fetchone()[0]
        for key in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            assert key + "=" in settings, (login, key)


def test_an_analyst_who_walks_away_cannot_block_the_web_apps_writes(fresh_db):
    """Attack: a personal login opens a transaction, makes one audited write, and walks away.
    Before V0015 every writer in the building queued behind it (the audit chain head's
    lock); now a write to another sample does not wait at all (the audit log appends without
    a shared lock), and a write to the same sample is refused at once or after the web
    app's lock_timeout, with nothing changed."""
    db = fresh_db
    db.execute("insert into app.staff (email, full_name, role) values ('walk.away@example.com', 'Walk Away', 'logistics')")
    login = f"test_walk_{db.info.dbname[-6:].lower()}"
    db.execute("select app_private.grant_personal_login('walk.away@example.com', %s)", (login,))
    sample, location = db.execute("select (select min(id) from app.samples where state = 'received'), "
                                  "(select min(id) from app.locations)").fetchone()
    ordered = db.execute("select min(id) from app.samples where state = 'ordered'").fetchone()[0]
    logistics = db.execute("select id from app.staff where email = 'logistics@example.com'").fetchone()[0]
    designer = db.execute("select id from app.staff where email = 'designer@example.com'").fetchone()[0]
    token = db.execute("select app_private.start_session(%s)", (logistics,)).fetchone()[0]
    db.commit()
    analyst = psycopg.connect(_url(db.info.dbname, login))
    try:
        analyst.execute("update app.samples set location_id = %s where id = %s", (location, sample))  # audited
        # ... and walks away with the transaction open
        with psycopg.connect(_url(db.info.dbname, "authenticator")) as web:
            assert web.execute("show lock_timeout").fetchone()[0] == "5s"
            web.execute("select set_config('role', 'logistics', true), set_config('tracker.session', %s, true)",
                        (token,))
            assert web.execute("select app.current_staff_id()").fetchone()[0] == logistics
            # another sample: no wait at all (any wait on a lock would fail within 100 ms)
            web.execute("select set_config('lock_timeout', '100ms', true)")
            web.execute("select app.receive_sample(%s, %s)", (ordered, location))
            web.commit()
            # the sample the analyst holds: refused, not queued until the analyst comes back
            web.execute("select set_config('role', 'logistics', true), set_config('tracker.session', %s, true)",
                        (token,))
            started = time.monotonic()
            with pytest.raises(psycopg.Error) as err:
                web.execute("select app.hand_to_design(%s, %s)", (sample, designer))
            waited = time.monotonic() - started
            web.rollback()
        assert err.value.sqlstate in ("TR007", "55P03")  # conflict / lock_not_available: nothing changed
        assert waited < 30
    finally:
        analyst.close()
    assert db.execute("select state::text from app.samples where id = %s", (ordered,)).fetchone()[0] == "received"
    assert db.execute("select state::text from app.samples where id = %s", (sample,)).fetchone()[0] == "received"
