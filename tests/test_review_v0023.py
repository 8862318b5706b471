"""Independent review of V0023 (app_private.sample_match) and the lifecycle fast paths
(lock_sample with SKIP LOCKED, check_rule's one-query path, app.clock()).

Findings are written as tests that fail on the reviewed commit (dca91fe); what held is
written as regression guards, each "cannot" with a positive control."""
import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import _url, act_as, db_url
from helpers import Lifecycle, connect_as, persona
from tracker.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
ROLES = yaml.safe_load((ROOT / "sql" / "permission_matrix.yml").read_text())["roles"]

# what is matched (app_private.sample_match) and searched (samples.search), as derived from the
# sample; the author moved the search document back onto app.samples after this review (search
# reads one table), so "kept" reads it there
DERIVED = """
select s.id, s.category_id, s.title, s.style_code, s.state not in ('returned', 'cut-for-production'),
       case when %(search)s then app_private.search_document(s.title, s.style_code, s.category_id, s.supplier_id)::text end
  from app.samples s"""
KEPT = """
select m.sample_id, m.category_id, m.title, m.style_code, m.in_flight, case when %(search)s then s.search::text end
  from app_private.sample_match m join app.samples s on s.id = m.sample_id"""


def mismatch(conn, sid=None, search=True):
    """Rows where app_private.sample_match (and samples.search) differ from what they are derived
    from (both ways)."""
    where_d = f" where s.id = {int(sid)}" if sid else ""
    where_k = f" where m.sample_id = {int(sid)}" if sid else ""
    derived = set(conn.execute(DERIVED + where_d, {"search": search}).fetchall())
    kept = set(conn.execute(KEPT + where_k, {"search": search}).fetchall())
    return {"missing_or_stale": derived - kept, "extra_or_stale": kept - derived}


def wait_until_blocked(admin_url, pid, timeout=10.0):
    """Until backend `pid` waits on a lock (a row lock another transaction holds)."""
    with psycopg.connect(admin_url, autocommit=True) as a:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if a.execute("select wait_event_type = 'Lock' from pg_stat_activity where pid = %s",
                         (pid,)).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never blocked")


# =========================================================================== FINDINGS

# ---- F1: lock_sample locks before it checks visibility: a REPEATABLE READ caller learns
#          that a hidden sample exists and changed since its snapshot (40001, not TR006)
def test_f1_repeatable_read_caller_cannot_tell_that_a_hidden_sample_changed(fresh_db):
    """Found on the first V0023, fixed (visibility is now part of the locking query). An
    analyst's personal login (psql, any isolation level) acts on a sample it cannot see.
    lock_sample ran SELECT ... FOR UPDATE SKIP LOCKED on the row before asking
    can_see_sample(): under REPEATABLE READ, a hidden row that someone changed after the
    caller's snapshot raises 40001 'could not serialize access due to concurrent update'
    instead of TR006 'not found' - an oracle for existence and recent activity of samples the
    role may not see (V0022's lock_sample read visibility with a plain SELECT first)."""
    db = fresh_db
    lc = Lifecycle(db)
    hidden = lc.make("requested")      # designers do not see requests
    untouched = lc.make("requested")   # control: hidden, not changed
    db.execute("update app.staff set login_role = null where email = 'designer@example.com'")
    db.commit()
    login = "test_review_designer_login"
    db.execute(f"drop role if exists {login}")
    db.commit()
    db.execute("select app_private.grant_personal_login('designer@example.com', %s)", (login,))
    db.commit()
    attacker = psycopg.connect(db_url(db, login))
    try:
        codes = {}
        for sid, touch in ((untouched, False), (hidden, True), (10**9, False)):
            attacker.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            attacker.execute("select count(*) from app.samples")  # the snapshot is taken here
            if touch:  # the requesting buyer renames the request meanwhile (commits)
                lc.call("buyer", "update app.samples set title = 'Renamed wrap dress' where id = %s returning id",
                        (sid,))
                db.commit()
            with pytest.raises(psycopg.Error) as err:
                attacker.execute("select app.hand_to_sales(%s, %s)", (sid, lc.sales_exec))
            codes[sid] = (err.value.sqlstate, err.value.diag.message_primary)
            attacker.rollback()
        assert codes[10**9] == ("TR006", f"sample {10**9} not found")   # positive control: missing
        assert codes[untouched] == ("TR006", f"sample {untouched} not found")
        assert codes[hidden] == ("TR006", f"sample {hidden} not found"), codes[hidden]
    finally:
        attacker.close()
        db.rollback()
        db.execute("update app.staff set login_role = null where login_role = %s", (login,))
        db.commit()
        db.execute(f"drop role if exists {login}")
        db.commit()


# ---- F2: a supplier (or category) rename racing a title edit leaves a stale search document
@pytest.mark.parametrize("first", ["title_edit", "rename"])
def test_f2_rename_racing_a_title_edit_keeps_the_document_current(fresh_db, first):
    """Found on the first V0023, which moved the document into app_private.sample_match: the
    rename trigger UPDATEd it FROM app.samples and, after waiting for the row lock of a concurrent
    title edit, recomputed the document from its own (older) snapshot - the old title; the other
    way round the keep-match upsert computed the document (old supplier name) before it waited.
    Fixed by leaving the document on app.samples, whose row lock makes the second writer re-read
    the first one's row (as before V0023): a regression guard now."""
    db = fresh_db
    lc = Lifecycle(db)
    sid = lc.make("ordered")
    supplier = db.execute("select supplier_id from app.samples where id = %s", (sid,)).fetchone()[0]
    db.commit()
    admin = db_url(db)
    editor = psycopg.connect(admin)
    renamer = psycopg.connect(admin)
    try:
        def edit(c):
            c.execute("update app.samples set title = 'Zanzibar pleated skirt' where id = %s", (sid,))

        def rename(c):
            c.execute("update app.suppliers set name = 'Quokka Textiles' where id = %s", (supplier,))

        one, two = (edit, rename) if first == "title_edit" else (rename, edit)
        c1, c2 = (editor, renamer) if first == "title_edit" else (renamer, editor)
        one(c1)  # holds the sample's match row
        pid2 = c2.info.backend_pid
        errors = []

        def run():
            try:
                two(c2)
                c2.commit()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        t = threading.Thread(target=run)
        t.start()
        wait_until_blocked(admin, pid2)
        c1.commit()
        t.join(15)
        assert not errors, errors
    finally:
        editor.close()
        renamer.close()
    db.rollback()
    assert mismatch(db, sid) == {"missing_or_stale": set(), "extra_or_stale": set()}
    # what a user sees: the new title and the new supplier name both find the sample
    found = lc.call("ops_director", "select array_agg(id) from app.search_samples('zanzibar quokka', 50)")
    assert found and sid in found


# ---- F3: V0023 on a database whose samples.search is null (a bulk load with triggers off, as
#          the previous release's bench generator and upgrade test made): search never finds them
@pytest.fixture(scope="module")
def previous_release_db(tmp_path_factory):
    rev = "3fb8f37"
    old = tmp_path_factory.mktemp("v0022")
    archive = subprocess.run(["git", "archive", rev, "sql", "tracker", "bench", "scripts"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    name = "tracker_review_v0023_upgrade"
    with psycopg.connect(_url("postgres"), autocommit=True) as a:
        a.execute(f'drop database if exists "{name}" with (force)')
        a.execute(f'create database "{name}"')
    url = _url(name)
    env = dict(os.environ, PYTHONPATH=str(old))
    r = subprocess.run([sys.executable, "-c", "import sys; from tracker.migrate import migrate; "
                        "from tracker.demo import load_demo; migrate(sys.argv[1]); load_demo(sys.argv[1], quiet=True)",
                        url], cwd=old, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    with psycopg.connect(url) as c:
        # what the previous release's bench/generate.py did: samples loaded with triggers off
        c.execute("set session_replication_role = replica")
        c.execute("""insert into app.samples (title, style_code, category_id, season_id, team_id, requested_by,
                                                supplier_id, state, on_loan, external_ref)
                     select 'Bulkloaded marigold blazer', 'BL-77', category_id, season_id, team_id, requested_by,
                            supplier_id, 'ordered', on_loan, null
                       from app.samples where state = 'ordered' order by id limit 1""")
        c.execute("set session_replication_role = origin")
        assert c.execute("select count(*) from app.samples where search is null").fetchone()[0] == 1
    yield url
    with psycopg.connect(_url("postgres"), autocommit=True) as a:
        a.execute(f'drop database if exists "{name}" with (force)')


def test_f3_upgrade_gives_every_sample_its_match_row(previous_release_db):
    """Found on the first V0023 (it copied a null document as an empty one); the document now
    stays on app.samples, untouched by the migration. What is left to check: every sample, one
    loaded with triggers off included, gets its row of app_private.sample_match."""
    url = previous_release_db
    migrate(url)
    with psycopg.connect(url) as c:
        assert c.execute("select max(version) from public.schema_version").fetchone()[0] >= 23
        bulk = c.execute("select id from app.samples where title = 'Bulkloaded marigold blazer'").fetchone()[0]
        assert mismatch(c, search=False) == {"missing_or_stale": set(), "extra_or_stale": set()}
        assert mismatch(c, bulk, search=False) == {"missing_or_stale": set(), "extra_or_stale": set()}
        # positive control: the demo's samples have their documents (the trigger wrote them)
        assert {r[0] for r in mismatch(c)["missing_or_stale"]} == {bulk}


# =========================================================================== WHAT HELD

@pytest.mark.parametrize("role", ROLES)
def test_held_no_role_can_forge_the_clock(conn, role):
    life = Lifecycle(conn)
    person = life.people.get(role)
    act_as(conn, person)
    conn.execute("select set_config('tracker.demo_now', '2001-02-03 04:05:06+00', true)")
    assert conn.execute("select app.clock() = now()").fetchone()[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute("insert into app_private.demo_clock default values")
    act_as(conn, None)
    # positive control: with the loader's row (superuser only) the setting counts
    conn.execute("insert into app_private.demo_clock default values")
    act_as(conn, person)
    conn.execute("select set_config('tracker.demo_now', '2001-02-03 04:05:06+00', true)")
    assert conn.execute("select app.clock() = '2001-02-03 04:05:06+00'::timestamptz").fetchone()[0]
    conn.execute("select set_config('tracker.demo_now', '', true)")
    assert conn.execute("select app.clock() = now()").fetchone()[0]  # row but empty setting: now()
    act_as(conn, None)


@pytest.mark.parametrize("role", ROLES)
def test_held_no_role_writes_sample_match(conn, role):
    life = Lifecycle(conn)
    sid = life.make("ordered")
    act_as(conn, life.people.get(role))
    for sql in ("update app_private.sample_match set in_flight = false where sample_id = %s",
                "delete from app_private.sample_match where sample_id = %s",
                "insert into app_private.sample_match (sample_id, category_id, title, in_flight) "
                "values (%s, 1, 'x', true)",
                "select app_private.tg_samples__keep_match() where %s is null"):
        with pytest.raises(psycopg.Error) as err:
            with conn.transaction():
                conn.execute(sql, (sid,))
        assert err.value.sqlstate in ("42501", "0A000", "39P01"), (sql, err.value.sqlstate)
    act_as(conn, None)
    assert conn.execute("select in_flight from app_private.sample_match where sample_id = %s", (sid,)).fetchone()[0]


def test_held_search_and_similar_never_return_a_hidden_sample(conn):
    """A request is hidden from designers and sales; another team's returned sample is hidden
    from buyers. Neither comes back from search, similar_samples or duplicate_pairs."""
    life = Lifecycle(conn)
    req = life.make("requested")
    life.call("buyer", "update app.samples set title = 'Ultramarine quokka parka', style_code = 'UQP-1' "
                       "where id = %s returning id", (req,))
    ret = life.make("with-design")
    conn.execute("update app.samples set title = 'Vermilion wombat gilet', style_code = 'VWG-1' where id = %s", (ret,))
    life.call("logistics", "select app.return_to_supplier(%s, 'DHL4')", (ret,))
    assert life.state(ret) == "returned"
    buyer_team = life.people.get("buyer")["team_id"]
    other_buyer = conn.execute("select id, role::text, team_id, email from app.staff where role = 'buyer' "
                               "and team_id <> %s and active order by id limit 1", (buyer_team,)).fetchone()
    other = {"id": other_buyer[0], "role": other_buyer[1], "team_id": other_buyer[2], "email": other_buyer[3]}
    cat = life.category
    # positive controls: the requesting buyer finds both (own team)
    assert req in life.call("buyer", "select array_agg(id) from app.search_samples('ultramarine quokka', 50)")
    assert ret in life.call("buyer", "select array_agg(id) from app.search_samples('vermilion wombat', 50)")
    assert req in life.call("buyer", "select array_agg(id) from app.similar_samples('Ultramarine quokka parka', %s)",
                            (cat,))
    for who in ("designer", "sales_executive", "sales_lead"):
        assert not life.call(who, "select array_agg(id) from app.search_samples('ultramarine quokka', 50)")
        assert not life.call(who, "select array_agg(id) from app.search_samples('UQP-1', 50)")
        assert not life.call(who, "select array_agg(id) from app.similar_samples('Ultramarine quokka parka', %s, "
                                  "null, null, 'UQP-1')", (cat,))
    assert not life.call(other, "select array_agg(id) from app.search_samples('vermilion wombat', 50)")
    # returned: out of similar for everyone (in_flight false), the owner included
    assert not life.call("buyer", "select array_agg(id) from app.similar_samples('Vermilion wombat gilet', %s, "
                                  "null, null, 'VWG-1')", (cat,))


def test_held_match_table_equals_its_definition_after_other_write_paths(conn):
    """Corrections, cancel_order, bulk_act, withdraw, override to and from final states, a
    category rename: after each, sample_match equals its derivation."""
    life = Lifecycle(conn)
    a = life.make("requested")
    b = life.make("ordered")
    c = life.make("received")
    d = life.make("received")
    e = life.make("requested")
    other_cat = conn.execute("select max(id) from app.categories").fetchone()[0]
    life.call("buyer", "select app.correct_sample(%s, 'Corrected tartan kilt', 'CTK-2', %s)", (a, other_cat))
    assert mismatch(conn) == {"missing_or_stale": set(), "extra_or_stale": set()}
    life.call("buyer", "select app.cancel_order(%s, 'wrong colourway')", (b,))
    life.call("logistics", "select count(*) from app.bulk_act('return_to_supplier', %s, "
                           "'{\"courier_ref\": \"DHL77\"}')", ([c, d],))
    assert life.state(c) == "returned" and life.state(d) == "returned"
    life.call("buyer", "select app.withdraw_request(%s, 'no longer needed')", (e,))
    life.call("ops_director", "select app.override_state(%s, 'received', 'found it', %s)", (c, life.location))
    life.call("ops_director", "select app.override_state(%s, 'cut-for-production', 'cut anyway')", (d,))
    conn.execute("update app.categories set name = 'Frobwear' where id = %s", (other_cat,))
    assert mismatch(conn) == {"missing_or_stale": set(), "extra_or_stale": set()}
    assert a in life.call("buyer", "select array_agg(id) from app.search_samples('frobwear tartan', 50)")


def test_held_import_writes_the_match_row(conn):
    before = conn.execute("select count(*) from app_private.sample_match").fetchone()[0]
    assert before == conn.execute("select count(*) from app.samples").fetchone()[0]
    assert mismatch(conn) == {"missing_or_stale": set(), "extra_or_stale": set()}  # the demo's import included


def test_held_a_refused_hidden_sample_leaves_no_lock_after_a_savepoint(fresh_db):
    """The attacker's refused attempt (TR006) leaves no lock (on the first V0023 it locked the
    hidden row for an instant, F1's cause, and the lock went with the failed statement): the
    attacker keeps its transaction open after
    ROLLBACK TO SAVEPOINT and the buyer, who sees the sample, still acts on it (not TR007)."""
    db = fresh_db
    lc = Lifecycle(db)
    sid = lc.make("requested")
    db.commit()
    url = db_url(db, "authenticator")
    tok_d, role_d = persona(db, "designer@example.com")
    tok_b, role_b = persona(db, "buyer@example.com")
    attacker = connect_as(url, tok_d, role_d)
    buyer = connect_as(url, tok_b, role_b)
    try:
        attacker.execute("savepoint s")
        with pytest.raises(psycopg.Error) as err:
            attacker.execute("select app.hand_to_sales(%s, %s)", (sid, lc.sales_exec))
        assert err.value.sqlstate == "TR006"
        attacker.execute("rollback to savepoint s")
        attacker.execute("select 1")  # transaction still open
        buyer.execute("select app.withdraw_request(%s, 'no longer needed')", (sid,))  # not TR007
        buyer.commit()
    finally:
        attacker.close()
        buyer.close()
    assert lc.state(sid) == "returned"


@pytest.mark.parametrize("role", ROLES)
def test_held_check_rule_error_order_on_a_qc_rejected_sample(conn, role):
    """Unknown action first (TR005), then QC rejection (TR008) for anything but a return, for
    every role - the fast path never answers for a refused case."""
    life = Lifecycle(conn)
    sid = life.make("received")
    conn.execute("update app.samples set qc_rejected = true where id = %s", (sid,))
    me = life.people.get(role)["id"]

    def code(action):
        try:
            with conn.transaction():
                conn.execute("select app_private.check_rule(s, %s, m) from app.samples s, app.staff m "
                             "where s.id = %s and m.id = %s", (action, sid, me))
            return "ok"
        except psycopg.Error as e:
            return e.sqlstate
    assert code("no_such_action") == "TR005"
    assert code("hand_to_design") == "TR008"
    assert code("return_to_supplier") in ("ok", "TR002", "TR003")
    if role == "logistics":
        assert code("return_to_supplier") == "ok"  # positive control


# ---- F4: acting on a hidden sample locks it for a moment: another user's action on it (a
#          sample they can see) can fail with TR007 "being changed by someone else"
def test_f4_acting_on_a_hidden_sample_never_locks_it(fresh_db):
    """Found on the first V0023, fixed (visibility is now part of the locking query).
    lock_sample took FOR UPDATE on the row before can_see_sample() decided; the refusal
    (TR006) releases it, but between the two the row is held. A designer who loops over a
    request (hidden from designers) - here in a DO block catching TR006, which any login may
    run - keeps the row held often enough that the requesting buyer's actions fail with TR007
    now and then. Before V0023 a hidden row was never locked (visibility was read first), and
    bulk_act still filters by visibility before it locks."""
    db = fresh_db
    lc = Lifecycle(db)
    sid = lc.make("requested")
    db.commit()
    url = db_url(db, "authenticator")
    tok_d, role_d = persona(db, "designer@example.com")
    attacker = connect_as(url, tok_d, role_d, autocommit=True)
    stop = time.monotonic() + 3.0
    hits = []

    def hammer():
        while time.monotonic() < stop:
            attacker.execute(f"""do $$ begin for i in 1..2000 loop
                                   begin perform app.hand_to_sales({sid}, {lc.sales_exec});
                                   exception when sqlstate 'TR006' then null; end; end loop; end $$""")
    t = threading.Thread(target=hammer)
    t.start()
    probe = psycopg.connect(db_url(db))
    tries = 0
    try:
        while time.monotonic() < stop:
            tries += 1
            try:
                probe.execute("select id from app.samples where id = %s for update nowait", (sid,))
            except psycopg.errors.LockNotAvailable:
                hits.append(tries)
            probe.rollback()
    finally:
        t.join()
        probe.close()
        attacker.close()
    assert tries > 100
    # the user-visible effect: the requesting buyer (who sees the sample) corrects its title
    # while the designer hammers; every TR007 the buyer gets is the designer's doing
    tok_b, role_b = persona(db, "buyer@example.com")
    buyer = connect_as(url, tok_b, role_b)
    attacker = connect_as(url, tok_d, role_d, autocommit=True)
    stop = time.monotonic() + 3.0
    t = threading.Thread(target=hammer)
    t.start()
    busy, done = 0, 0
    try:
        while time.monotonic() < stop:
            try:
                buyer.execute("select app.correct_sample(%s, %s)", (sid, f"Test wrap dress {done % 2}"))
                buyer.commit()
                done += 1
            except psycopg.Error as e:
                assert e.sqlstate == "TR007", e.sqlstate
                busy += 1
                buyer.rollback()
    finally:
        t.join()
        buyer.close()
        attacker.close()
    assert done > 10  # positive control: the buyer can act on it
    assert (len(hits), busy) == (0, 0), (f"the hidden sample was locked by the designer's refused attempts {len(hits)} "
                                     f"times in {tries} probes; the buyer was told TR007 {busy} times in {busy + done}")
