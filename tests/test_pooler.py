"""PgBouncer in transaction pooling mode (issue 18, item 2), against a real PgBouncer
(scripts/pooler.sh) that this run starts on a free port (conftest `pooler`).

Transaction pooling hands each transaction whichever server connection is free, so
anything session-level one client leaves behind is inherited by the next. Each test
that says "nothing leaks" first shows, on the same single server connection, that a
session-level setting *does* leak (the positive control: the test can see a leak), then
that the web app's transaction-local identity does not. The permission matrix and a
slice of the web tests run through the pooler too (test_pooler_matrix.py,
test_pooler_web.py)."""
import re
import time
from pathlib import Path

import psycopg
import pytest

from conftest import _url, cloned_web_app, pooled_url, signed_in_client

DB = "tracker_test_pooler"


@pytest.fixture(scope="module")
def app(template, pooler):
    with cloned_web_app(template, DB, pooler) as app:
        yield app


@pytest.fixture
def admin(app):
    with psycopg.connect(_url(DB), autocommit=True) as c:
        yield c


def server_pids(admin) -> set[int]:
    """The server connections PgBouncer holds for the web app's login in this database."""
    return {r[0] for r in admin.execute(
        "select pid from pg_stat_activity where datname = %s and usename = 'authenticator' "
        "and application_name is distinct from 'tracker-realtime-relay' and pid <> pg_backend_pid()",
        (DB,)).fetchall()}


def through_pooler(pooler, **kw) -> psycopg.Connection:
    return psycopg.connect(pooled_url(pooler, DB, "authenticator"), autocommit=True,
                           prepare_threshold=kw.pop("prepare_threshold", None), **kw)


def identity(c) -> tuple:
    return c.execute("select current_user::text, coalesce(current_setting('tracker.session', true), ''), "
                     "app.current_staff_id(), pg_backend_pid()").fetchone()


def test_the_app_goes_through_the_pooler_and_its_relay_does_not(app, pooler):
    assert app.config["APP_DATABASE_POOLED"] is True
    assert f"port={pooler}" in app.config["APP_DATABASE_URL"]
    direct = psycopg.conninfo.conninfo_to_dict(app.config["REALTIME_DATABASE_URL"])
    assert direct["port"] == psycopg.conninfo.conninfo_to_dict(_url(DB))["port"] != str(pooler)
    with app.extensions["pool"].connection() as c:
        assert c.prepare_threshold is None  # PgBouncer 1.18 cannot route server-side prepared statements
        assert c.execute("select current_user").fetchone()["current_user"] == "authenticator"


def test_session_state_leaks_through_the_pooler_but_the_apps_identity_does_not(app, pooler, admin):
    client = signed_in_client(app, "buyer")
    for _ in range(3):
        assert client.get("/").status_code == 200
    # the web app's requests were sequential: one server connection did all of them
    pids = server_pids(admin)
    assert len(pids) == 1, pids
    with through_pooler(pooler) as other:
        user, session, staff, pid = identity(other)
        assert pid in pids                      # the very connection the buyer's requests used
        assert (user, session, staff) == ("authenticator", "", None)
    # a client that does leave session-level state (what the app never does) passes none of
    # it on: the pooler runs DISCARD ALL after every transaction (server_reset_query_always)
    with through_pooler(pooler) as leaky:
        with leaky.transaction():
            leaky.execute("select set_config('role', 'buyer', false), "
                          "set_config('tracker.session', repeat('f', 64), false)")
            user, session, _, pid = identity(leaky)
            assert (user, session) == ("buyer", "f" * 64) and pid in pids  # positive control: it was set, here
    with through_pooler(pooler) as victim:
        user, session, staff, pid = identity(victim)
        assert pid in pids and (user, session, staff) == ("authenticator", "", None)


def test_interleaved_people_each_see_only_themselves(app, pooler, admin):
    """Requests of three people interleaved on the pooled app: each page is that person's."""
    names = dict(admin.execute("select split_part(email, '@', 1), full_name from app.staff "
                               "where email in ('buyer@example.com', 'logistics@example.com', 'finance@example.com')"
                               ).fetchall())
    people = {who: signed_in_client(app, who) for who in names}
    for _ in range(4):
        for who, c in people.items():
            page = c.get("/").get_data(as_text=True)
            header = page[:page.index("</header>")] if "</header>" in page else page
            assert names[who] in header, who
            assert not any(n in header for w, n in names.items() if w != who), who
    with through_pooler(pooler) as c:
        assert identity(c)[:3] == ("authenticator", "", None)


def test_server_side_prepared_statements_break_through_the_pooler(pooler):
    """Positive control for prepare_threshold=None: statements prepared on one transaction's
    server connection are gone (DISCARD ALL) or another client's (same name) by the next."""
    with through_pooler(pooler, prepare_threshold=0) as a, through_pooler(pooler, prepare_threshold=0) as b:
        with pytest.raises((psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)):
            a.execute("select 1")
            b.execute("select 2")
            a.execute("select 1")
    with through_pooler(pooler) as c:
        c.execute("deallocate all")


def test_repeated_queries_on_pooled_app_connections_work(app):
    """More than psycopg's default prepare_threshold (5) of the same query, on two pool
    connections at once: nothing is prepared, so nothing collides."""
    pool = app.extensions["pool"]
    with pool.connection() as a, pool.connection() as b:
        for i in range(12):
            for c in (a, b):
                with c.transaction():
                    assert c.execute("select %s::int as n", (i,)).fetchone()["n"] == i
    client = signed_in_client(app, "logistics")
    for _ in range(12):
        assert client.get("/").status_code == 200


def test_listen_through_the_pooler_hears_nothing_but_the_relay_does(app, pooler, admin):
    """Why the relay connects directly: a LISTEN through transaction pooling is lost."""
    from tracker.web import realtime
    with through_pooler(pooler) as c:
        c.execute("listen tracker_pooler_probe")
        admin.execute("notify tracker_pooler_probe")
        heard = list(c.notifies(timeout=1, stop_after=1))
    assert heard == []
    # positive control: a direct LISTEN hears the same notify
    with psycopg.connect(_url(DB, "authenticator"), autocommit=True) as d:
        d.execute("listen tracker_pooler_probe")
        admin.execute("notify tracker_pooler_probe")
        assert [n.channel for n in d.notifies(timeout=5, stop_after=1)] == ["tracker_pooler_probe"]
    with app.app_context():
        relay = realtime.relay()
        relay.start()
        before = relay.high
        sid = admin.execute("select id from app.samples order by id limit 1").fetchone()[0]
        admin.execute("insert into app.sample_comments (sample_id, author_id, body) "
                      "select %s, id, 'through the pooler' from app.staff where email = 'buyer@example.com'", (sid,))
        deadline = time.monotonic() + 10
        while relay.high == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.high > before, "the relay did not hear the change"


def test_the_console_is_not_the_apps_login(pooler):
    """The web login cannot open PgBouncer's admin console (SHUTDOWN, PAUSE, SET ...); the
    console's own user can, and it is no database role, so it reaches no database."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pooled_url(pooler, "pgbouncer", "authenticator"), connect_timeout=5, autocommit=True)
    with psycopg.connect(pooled_url(pooler, "pgbouncer", "pgbouncer_admin"), connect_timeout=5,
                         autocommit=True, prepare_threshold=None) as console:  # positive control
        assert console.execute("show pools").fetchall()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pooled_url(pooler, DB, "pgbouncer_admin"), connect_timeout=5)


def test_only_the_allowed_logins_get_through(pooler):
    """The pooler's auth_file names its users: a role not on it is refused."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pooled_url(pooler, DB, "buyer"), connect_timeout=5)
    with through_pooler(pooler) as c:  # positive control
        assert c.execute("select 1").fetchone() == (1,)


# --- a guard on the source: what would leave session state on a pooled connection -------
SESSION_STATE = re.compile(
    r"""execute\(\s*f?["']\s*(set\s+(?!local\b)|reset\b|listen\b|unlisten\b|create\s+temp|declare\b[^"']*\bwith\s+hold)"""
    r"""|set_config\([^)]*,\s*false\s*\)|pg_advisory_lock|pg_try_advisory_lock\b|withhold\s*=\s*True|prepare\s*=\s*True""",
    re.I)
WEB = Path(__file__).resolve().parent.parent / "tracker" / "web"


def session_state_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if SESSION_STATE.search(line)]


def test_the_guard_recognises_session_state():
    """Positive control for the guard below: each of these would leak through the pooler."""
    bad = ['conn.execute("set role buyer")', "conn.execute('reset role')", 'conn.execute("listen x")',
           'conn.execute("select set_config(\'tracker.session\', %s, false)", (t,))',
           'conn.execute("select pg_advisory_lock(1)")', 'conn.cursor(name="x", withhold=True)',
           'conn.execute("create temp table t (x int)")', 'conn.execute(q, prepare=True)']
    assert [session_state_lines(b) for b in bad] == [[b] for b in bad]
    good = ['conn.execute("set local statement_timeout = \'10min\'")',
            'conn.execute("select set_config(\'role\', %s, true)", (r,))', 'conn.cursor(name="export")']
    assert [session_state_lines(g) for g in good] == [[], [], []]


def test_the_web_app_leaves_no_session_state_on_pooled_connections():
    """Every module of the web app; the relay's LISTEN connection is direct, never pooled."""
    found = {}
    for path in sorted(WEB.glob("*.py")):
        lines = session_state_lines(path.read_text())
        if path.name == "realtime.py":  # the relay's own direct connection (REALTIME_DATABASE_URL)
            lines = [line for line in lines if not line.startswith('listen.execute("listen ')]
        if lines:
            found[path.name] = lines
    assert found == {}
