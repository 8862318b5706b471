"""Attack review of V0021 (realtime inbox + sequencer) and the "cheaper transitions" commit
(plpgsql entry points, the search trigger's WHEN, the seal guard by column name).

Tests named test_finding_* fail on d2d9875 and describe a problem (see the docstrings);
the others are what held, kept as regression guards."""
import re
import threading
import time

import psycopg
import pytest

from conftest import Staff, _url, act_as, cloned_web_app
from helpers import Lifecycle
from tracker.roles import ROLES


def sequence(conn, rows=10000) -> int:
    """As a relay runs it: a transaction of its own (on its own autocommit connection unless the
    given one is autocommit), so it never holds the lock while the test goes on."""
    if conn.autocommit:
        return conn.execute("select app_private.sequence_realtime(%s)", (rows,)).fetchone()[0]
    with psycopg.connect(_url(conn.info.dbname), autocommit=True) as own:
        return own.execute("select app_private.sequence_realtime(%s)", (rows,)).fetchone()[0]


def clone(template: str, name: str) -> str:
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}" template "{template}"')
    return name


def drop(name: str):
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


def analyst_login(db, role="buyer") -> str:
    """A personal login (an analyst) of the given role, committed."""
    login = f"rt_{role}_{db.info.dbname[-8:].lower()}".replace("-", "_")
    team = "(select id from app.teams where code = 'WW')"
    db.execute(f"insert into app.staff (email, full_name, role, team_id) values (%s, 'RT Analyst', %s, {team})",
               (f"{login}@example.com", role))
    db.execute("select app_private.grant_personal_login(%s, %s)", (f"{login}@example.com", login))
    db.commit()
    return login


# ======================================================================================
# Findings (fail on d2d9875)
# ======================================================================================
def test_finding_search_finds_a_renamed_supplier_after_the_sample_next_moves(fresh_db):
    """REGRESSION (before_update_search WHEN clause). A supplier renamed (senior buyer, system
    admin) left its samples' search documents with the old name; until fc442aa every
    transition re-set supplier_id and so re-computed the document, healing it at the
    sample's next move. Now the WHEN clause skips it: the document stays stale forever, the
    new name never finds the sample (and the old one still does)."""
    db = fresh_db
    life = Lifecycle(db)
    sid = life.make("ordered")
    db.commit()
    wrap = life.call("buyer", "select coalesce(array_agg(id), '{}') from app.search_samples('wrap dress', 1000)")
    assert sid in wrap  # positive control: search finds the sample by its title
    supplier = db.execute("select supplier_id from app.samples where id = %s", (sid,)).fetchone()[0]
    life.call("senior_buyer", "update app.suppliers set name = 'Zanzibarian Knits' where id = %s returning id",
              (supplier,))
    db.commit()
    life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))  # the sample moves on
    db.commit()
    found = life.call("buyer", "select coalesce(array_agg(id), '{}') from app.search_samples('Zanzibarian', 200)")
    assert sid in found, "a sample whose supplier was renamed is not found by the new name even after it moved"


def test_finding_search_finds_a_renamed_category_or_supplier_at_once(fresh_db):
    """PRE-EXISTING (not introduced by fc442aa, made permanent by it): renaming a category or a
    supplier does not refresh the search documents of its samples."""
    db = fresh_db
    life = Lifecycle(db)
    sid = life.make("requested")
    db.commit()
    assert sid in life.call("buyer", "select coalesce(array_agg(id), '{}') from app.search_samples('wrap dress', 1000)")
    cat = db.execute("select category_id from app.samples where id = %s", (sid,)).fetchone()[0]
    life.call("system_admin", "update app.categories set name = 'Quxwear' where id = %s returning id", (cat,))
    db.commit()
    found = life.call("buyer", "select coalesce(array_agg(id), '{}') from app.search_samples('Quxwear', 200)")
    assert sid in found


STALL_SECONDS = 2


def test_finding_readyz_reports_a_stalled_sequencer(template, monkeypatch):
    """The web login can hold the sequencer's lock as long as it likes (it lifts its own
    timeouts: role-level settings are only defaults), and so can any sequencer stuck in a
    transaction: every other sequencer returns 0, realtime stops for everyone, signals pile up
    in the inbox - and /readyz stays 200. (The audit sealer has verify-audit --max-unsealed;
    realtime has no equivalent.)"""
    with cloned_web_app(template, "tracker_test_rt_review_stall") as app:
        client = app.test_client()
        assert client.get("/readyz").status_code == 200      # relay and sequencer running
        url = _url(app.dbname)
        from tracker.web import realtime
        monkeypatch.setattr(realtime, "REALTIME_BACKLOG_SECONDS", STALL_SECONDS - 1)  # 10 s in production
        with psycopg.connect(_url(app.dbname, "authenticator")) as web, psycopg.connect(url) as admin:
            web.autocommit = True
            web.execute("set statement_timeout = 0")                      # a login lifts its own limits
            stall = threading.Thread(target=web.execute,
                                     args=(f"select app_private.sequence_realtime(), pg_sleep({STALL_SECONDS + 3})",))
            stall.start()
            time.sleep(0.5)
            buyer = Staff(admin).get("buyer")
            sid = admin.execute("select min(id) from app.samples").fetchone()[0]
            act_as(admin, buyer)
            admin.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'stuck?')",
                          (sid, buyer["id"]))
            admin.commit()
            time.sleep(STALL_SECONDS)  # 100 sequencer periods; raise to the bound a fix chooses
            waiting = admin.execute("select count(*), max(now() - at) from app_private.realtime_inbox").fetchone()
            assert waiting[0] >= 1                                        # the signal is stuck
            status = client.get("/readyz").status_code
            stall.join(10)
            deadline = time.monotonic() + 5   # the stall over, the relay's sequencer catches up
            while admin.execute("select count(*) from app_private.realtime_inbox").fetchone()[0] \
                    and time.monotonic() < deadline:
                admin.rollback()
                time.sleep(0.1)
            recovered = client.get("/readyz").status_code
        assert status == 503, f"realtime has been stalled for {STALL_SECONDS} s and /readyz still says ready"
        assert recovered == 200  # positive control: ready again once the signals move


def index_entries_read(dbname: str, sql: str, params=()) -> int:
    """Runs `sql` on a new connection, in a transaction that is rolled back, and returns how many
    entries of the inbox's primary key it read (dead ones too). A new backend: its counters are
    still unflushed (pg_stat_get_xact_* reads them), so they hold this transaction's reads only."""
    with psycopg.connect(_url(dbname)) as conn:
        conn.execute(sql, params)
        read = conn.execute("select pg_stat_get_xact_tuples_returned('app_private.realtime_inbox_pkey'::regclass)"
                            ).fetchone()[0]
        conn.rollback()
        return read


def test_finding_an_idle_sequencer_run_stays_cheap_while_a_snapshot_is_held(fresh_db):
    """Each web process runs the sequencer 50 times a second. Its `order by id limit n` walked
    every inbox row deleted since the oldest open snapshot in the database (they cannot be
    pruned or hinted dead while a snapshot may still see them): an analyst who opens a
    REPEATABLE READ transaction (and lifts their own idle timeout), a pg_dump, a long report,
    made every idle run cost O(signals since then). Measured: ~80 ns per such row per run, so
    50,000 signals cost ~4 ms per run = 20% of a core per web process, doing nothing.
    Fixed (V0024): a run reads only above the sequencer's watermark, a floor below which no
    inbox row can still appear; it rises while the snapshot is held (a read-only snapshot holds
    no xid). Positive control: the moved rows are all still in the index, unprunable, and a read
    from the start (what every run did before V0024) walks each of them."""
    db = fresh_db
    login = analyst_login(db)
    sid = db.execute("select min(id) from app.samples").fetchone()[0]
    author = Staff(db).get("buyer")["id"]
    with psycopg.connect(_url(db.info.dbname, login)) as analyst, \
            psycopg.connect(_url(db.info.dbname), autocommit=True) as seq:
        analyst.execute("set idle_in_transaction_session_timeout = 0")
        analyst.execute("begin isolation level repeatable read")
        assert analyst.execute("select count(*) from app.samples").fetchone()[0] > 0  # holds its snapshot
        sequence(seq)
        # 20,000 signals (real ones: comments, each its own signal), moved as they come
        for _ in range(4):
            db.execute("insert into app.sample_comments (sample_id, author_id, body) "
                       "select %s, %s, 'c' || g from generate_series(1, 5000) g", (sid, author))
            db.commit()
            assert sequence(seq) == 5000
        assert sequence(seq) == 0                                          # an idle run
        walked = index_entries_read(db.info.dbname, "select app_private.sequence_realtime(10000)")
        from_start = index_entries_read(db.info.dbname, "select count(*) from (select id from app_private.realtime_inbox "
                                             "order by id limit 10000) x")
        assert seq.execute("select count(*) from app_private.realtime_inbox").fetchone()[0] == 0
        analyst.rollback()
    assert from_start >= 20000, f"a read from the start walked only {from_start} moved signals"  # positive control
    assert walked < 1000, f"an idle sequencer run walked {walked} index entries of moved signals"


def comment_as_buyer(db, body: str) -> int:
    """A committed comment by the demo buyer (one real signal); returns its id."""
    buyer = Staff(db).get("buyer")
    sid = db.execute("select min(id) from app.samples").fetchone()[0]
    act_as(db, buyer)
    cid = db.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, %s) "
                     "returning id", (sid, buyer["id"], body)).fetchone()[0]
    act_as(db, None)
    db.commit()
    return cid


def test_finding_one_malformed_signal_stops_no_other(fresh_db):
    """Found: the inbox accepted rows the outbox's CHECKs refuse, so a writer committed a signal
    the sequencer then failed on at every run, stopping every signal behind it. Fixed: the inbox
    carries the same checks, so such a writer fails at its own commit, as before V0021; a good
    signal moves (positive control)."""
    db = fresh_db
    sequence(db)
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("insert into app_private.realtime_inbox (sample_id, kind, ref_id) values (null, 'comment', null)")
    db.rollback()
    cid = comment_as_buyer(db, "hello")
    assert sequence(db) == 1
    assert db.execute("select count(*) from app.realtime_events where kind = 'comment' and ref_id = %s",
                      (cid,)).fetchone()[0] == 1


def test_finding_sealing_cannot_rewrite_a_number_in_an_audited_value(fresh_db):
    """PRE-EXISTING (the to_jsonb guard had the same hole): jsonb `=` compares numbers by
    value, so the one permitted update (the seal) may also rewrite 120 as 120.0000 (or 1e2) in
    old_row/new_row; the hash is then computed over the rewritten text and the chain
    verifies. The guard should compare old_row/new_row as text (jsonb's text keeps the scale).
    Since V0025 there is no permitted update at all (a seal is a row of audit.seals)."""
    db = fresh_db
    db.execute("select audit.seal()")
    db.commit()
    loc = db.execute("select min(id) from app.locations").fetchone()[0]
    db.execute("update app.locations set name = name || '.' where id = %s", (loc,))
    row = db.execute("select max(id) from audit.log where table_name = 'app.locations'").fetchone()[0]
    db.commit()
    with pytest.raises(psycopg.Error) as err:
        db.execute("update audit.log set new_row = jsonb_set(new_row, '{id}', ((new_row->>'id') || '.0000')::jsonb) "
                   "where id = %s", (row,))
    assert err.value.sqlstate == "TR011"  # fixed: no update of an audit row passes
    db.rollback()
    assert db.execute("select sealed from audit.seal()").fetchone()[0] >= 1  # positive control: the seal itself
    db.commit()


# ======================================================================================
# What held (regression guards)
# ======================================================================================
ENTRY_POINTS = ["order_sample", "withdraw_request", "receive_sample", "hand_to_design", "hand_to_sales",
                "hand_back", "send_to_factory", "return_from_factory", "return_to_supplier",
                "approve_for_production", "buy_out", "confirm_handover", "cut_for_production",
                "record_inspection", "override_state"]
OLD_CLOCK = """create or replace function app.clock() returns timestamptz
language sql stable security definer set search_path = pg_catalog, app_private, pg_temp as $$
  select case when exists (select 1 from app_private.demo_clock)
              then coalesce(nullif(current_setting('tracker.demo_now', true), '')::timestamptz, now())
              else now() end $$"""


def _as_sql_language(conn, name):
    """The entry point as it was before fc442aa: the same expression as a SQL function."""
    oid = conn.execute("select %s::regproc::oid", (f"app.{name}",)).fetchone()[0]
    ddl = conn.execute("select pg_get_functiondef(%s)", (oid,)).fetchone()[0]
    m = re.search(r"AS \$function\$\s*begin return (.*); end\s*\$function\$", ddl, re.S)
    assert m, ddl
    ddl = ddl[:m.start()] + "AS $function$ select " + m.group(1) + " $function$"
    return ddl.replace("LANGUAGE plpgsql", "LANGUAGE sql")


def _battery(conn, samples, life):
    out = []
    args = {"bigint": None, "integer": None, "text": None, "numeric": None, "date": None, "boolean": None,
            "bigint[]": None, "app.qc_result": None, "app.sample_state": None}
    good = {"integer": life.location, "text": "REF-1", "numeric": 10, "date": life.expected, "boolean": False,
            "bigint": life.designer, "app.qc_result": "reject", "app.sample_state": "received", "bigint[]": None}
    for fn in ENTRY_POINTS:
        types = conn.execute("select array(select format_type(t, null) from unnest(proargtypes) t) from pg_proc "
                             "where oid = %s::regproc", (f"app.{fn}",)).fetchone()[0]
        for variant in (args, good):
            for sid in samples:
                vals = [sid] + [variant[t] for t in types[1:]]
                for role in ROLES:
                    call = f"select app.{fn}({', '.join(['%s'] * len(vals))})"
                    try:
                        with conn.transaction(force_rollback=True):
                            life.call(role, call, vals)
                            out.append((fn, role, sid, "ok"))
                    except psycopg.Error as e:
                        d = e.diag
                        out.append((fn, role, sid, e.sqlstate, d.message_primary, d.message_detail, d.message_hint))
                    act_as(conn, None)
    for demo_now in (None, "", "2024-01-02 03:04:05+00", "not a time"):
        for with_demo in (False, True):
            try:
                with conn.transaction(force_rollback=True):
                    if with_demo:
                        conn.execute("insert into app_private.demo_clock default values")
                    if demo_now is not None:
                        conn.execute("select set_config('tracker.demo_now', %s, true)", (demo_now,))
                    v = conn.execute("select app.clock() = now(), app.clock()::text").fetchone()
                    out.append(("clock", demo_now, with_demo, v[0], v[1] if not v[0] else None))
            except psycopg.Error as e:
                out.append(("clock", demo_now, with_demo, e.sqlstate, e.diag.message_primary))
    return out


def test_plpgsql_entry_points_behave_exactly_like_the_sql_ones(conn):
    """Every public lifecycle entry point, as every role, on a sample in every state (plus none
    and a missing one), with NULL and with plausible values: same outcome, SQLSTATE, message,
    detail and hint as the SQL-language version; app.clock() the same under the demo clock."""
    life = Lifecycle(conn)
    samples = [None, 0] + [conn.execute("select min(s.id) from app.samples s join app.teams t on t.id = s.team_id "
                                        "where t.code = 'WW' and state = %s", (st,)).fetchone()[0]
                           for st in ("requested", "ordered", "received", "with-design", "at-factory")]
    new = _battery(conn, samples, life)
    with conn.transaction(force_rollback=True):
        conn.execute(OLD_CLOCK)
        for fn in ENTRY_POINTS:
            conn.execute(_as_sql_language(conn, fn))
        assert conn.execute("select count(*) from pg_proc where pronamespace = 'app'::regnamespace and "
                            "proname = any(%s) and prolang = (select oid from pg_language where lanname = 'sql')",
                            (ENTRY_POINTS,)).fetchone()[0] == len(ENTRY_POINTS)
        old = _battery(conn, samples, life)
    assert len(new) > 1000 and any(r[3] == "ok" for r in new)  # positive control
    assert [r for r in new if r not in old] == [] and new == old


def test_nobody_but_the_owners_can_take_the_sequencers_key(fresh_db):
    """Every staff role and a personal login: no advisory-lock function (V0020), so no one can
    hold the sequencer's key, exclusive or shared; nor run the sequencer or read the
    high-water mark. The forged NOTIFY any login can send carries nothing the relay trusts."""
    db = fresh_db
    login = analyst_login(db)
    calls = ["select pg_try_advisory_xact_lock(hashtext('tracker.realtime_events'))",
             "select pg_advisory_lock_shared(hashtext('tracker.realtime_events'::text)::bigint)",
             "select pg_try_advisory_lock(hashtext('tracker.realtime_events'))",
             "select app_private.sequence_realtime()", "select app_private.realtime_high_water()",
             "select * from app_private.realtime_inbox"]
    for role in ROLES:
        for sql in calls:
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
                db.execute(f"set local role {role}")
                db.execute(sql)
    with psycopg.connect(_url(db.info.dbname, login), autocommit=True) as a:
        for sql in calls:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                a.execute(sql)


def test_a_signal_for_a_sample_that_does_not_exist_reaches_nobody(fresh_db):
    """The foreign key is gone: a signal naming no sample (only the owner could write one) is
    read by no role, and the relay's reading query does not fail on it."""
    db = fresh_db
    db.execute("insert into app.realtime_events (sample_id, kind) values (987654321, 'sample'), (987654321, 'cost')")
    top = db.execute("select max(id) from app.realtime_events").fetchone()[0]
    db.commit()
    people = Staff(db)
    from tracker.web.realtime import MESSAGES_SQL
    for role in ROLES:
        with db.transaction(force_rollback=True):
            act_as(db, people.get(role))
            row = db.execute(MESSAGES_SQL, {"after": top - 2, "upto": top, "limit": 10}).fetchone()
            assert row[0] is not None and row[1] == [], role


def test_a_repeatable_read_sequencer_never_moves_a_signal_twice(fresh_db):
    """A caller whose snapshot predates another sequencer's batch fails (40001) instead of
    re-moving rows that batch took; the signal reaches the outbox exactly once."""
    db = fresh_db
    url = _url(db.info.dbname)
    sequence(db)
    db.commit()
    cid = comment_as_buyer(db, "rr")
    with psycopg.connect(url) as rr, psycopg.connect(url, autocommit=True) as rc:
        rr.execute("begin isolation level repeatable read")
        rr.execute("select 1 from app.samples limit 1")               # snapshot taken: sees the signal
        assert sequence(rc) == 1                                      # another sequencer moves it
        with pytest.raises(psycopg.errors.SerializationFailure):
            rr.execute("select app_private.sequence_realtime()")
        rr.rollback()
        assert rc.execute("select count(*) from app.realtime_events where kind = 'comment' and ref_id = %s",
                          (cid,)).fetchone()[0] == 1


def test_committed_ids_stay_a_prefix_under_concurrent_writers_and_sequencers(template):
    """Four writers, two sequencers (two web processes) and a reader for two seconds: once the
    reader has seen high-water N, no id <= N ever appears later; every signal arrives once."""
    name = clone(template, "tracker_test_rt_review_prefix")
    try:
        url = _url(name)
        stop = threading.Event()
        errors: list = []
        with psycopg.connect(url) as c:
            buyer = Staff(c).get("buyer")
            sids = [r[0] for r in c.execute("select id from app.samples order by id limit 8").fetchall()]
            c.execute("select app_private.sequence_realtime()")
            c.commit()
            base = c.execute("select coalesce(max(id), 0) from app.realtime_events").fetchone()[0]
            base_comment = c.execute("select coalesce(max(id), 0) from app.sample_comments").fetchone()[0]

        def writer(i):
            with psycopg.connect(url) as w:
                while not stop.is_set():
                    act_as(w, buyer)
                    w.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'p')",
                              (sids[i % len(sids)], buyer["id"]))
                    w.commit()

        def sequencer():
            with psycopg.connect(url, autocommit=True) as s:
                while not stop.is_set():
                    s.execute("select app_private.sequence_realtime(7)")

        def reader():
            with psycopg.connect(url, autocommit=True) as r:
                seen: dict[int, set] = {}
                while not stop.is_set():
                    high = r.execute("select coalesce(max(id), 0) from app.realtime_events").fetchone()[0]
                    ids = {x[0] for x in r.execute("select id from app.realtime_events where id > %s and id <= %s",
                                                   (base, high)).fetchall()}
                    for h, prev in seen.items():
                        late = {x for x in ids if x <= h} - prev
                        if late:
                            errors.append((h, sorted(late)[:5]))
                    seen[high] = ids
                    if len(seen) > 50:
                        seen.pop(next(iter(seen)))

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)] + \
                  [threading.Thread(target=sequencer) for _ in range(2)] + [threading.Thread(target=reader)]
        for t in threads:
            t.start()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(10)
        with psycopg.connect(url, autocommit=True) as c:
            while c.execute("select app_private.sequence_realtime()").fetchone()[0]:
                pass
            comments = c.execute("select count(*) from app.sample_comments where id > %s", (base_comment,)).fetchone()[0]
            signals = c.execute("select count(*), count(distinct ref_id) from app.realtime_events where id > %s "
                                "and kind = 'comment'", (base,)).fetchone()
        assert errors == []
        assert comments > 20 and signals == (comments, comments)
    finally:
        drop(name)


def test_the_log_guard_tells_sql_null_from_json_null(fresh_db):
    """Stricter than the to_jsonb guard of V0015 (which saw SQL NULL and JSON null as the same
    `null`): an update that turns an insert's NULL old_row into 'null' is refused - since V0025
    every update of an audit row is. Control: the row is there, unsealed, and the sealer seals it."""
    db = fresh_db
    db.execute("select audit.seal()")
    db.commit()
    db.execute("insert into app.locations (code, name, kind) select 'RTREV', 'RT review shelf', kind from app.locations limit 1")
    row = db.execute("select max(id) from audit.log where table_name = 'app.locations' and old_row is null").fetchone()[0]
    db.commit()
    with pytest.raises(psycopg.Error) as err:
        db.execute("update audit.log set old_row = 'null'::jsonb where id = %s", (row,))
    db.rollback()
    assert err.value.sqlstate == "TR011"
    assert db.execute("select sealed from audit.seal()").fetchone()[0] == 1  # control
    assert db.execute("select old_row is null from audit.log where id = %s", (row,)).fetchone()[0]
    db.rollback()
