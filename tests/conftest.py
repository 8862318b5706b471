"""Fixtures: a template database (migrated + demo data) built once per run through
pytest-postgresql's postgresql_noproc against the project's own cluster, then
  * `conn`     - a connection to one shared clone, each test in a transaction that is rolled back;
  * `fresh_db` - a brand-new clone per test, for tests that must commit (concurrency, tampering).
Personas act exactly like the web app: session user authenticator, SET ROLE, and a web
session token in tracker.session (see act_as)."""
import os
import random
import subprocess
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories

from tracker import config
from tracker.demo import load_demo
from tracker.migrate import migrate

ADMIN = conninfo_to_dict(config.database_url())
TEMPLATE_DB = "tracker_test"


def _url(dbname: str, user: str | None = None) -> str:
    params = dict(ADMIN, dbname=dbname)
    if user:
        params["user"] = user
        params.pop("password", None)
    return make_conninfo(**params)


# staff id -> web session token, made once per run in the template database, so the
# same token is valid in every clone (shared, fresh_db, the web tests' databases)
SESSIONS: dict[int, str] = {}


def build_template(host, port, user, dbname, password=None, **_):
    url = _url(dbname)
    migrate(url)
    load_demo(url, quiet=True)
    with psycopg.connect(url) as c:
        SESSIONS.update(c.execute("select id, app_private.start_session(id, interval '1 day') "
                                  "from app.staff where active").fetchall())


postgresql_noproc = factories.postgresql_noproc(
    host=ADMIN.get("host"), port=ADMIN.get("port", 5432), user=ADMIN.get("user"),
    password=ADMIN.get("password"), dbname=TEMPLATE_DB, load=[build_template])
fresh_db = factories.postgresql("postgresql_noproc")


@pytest.fixture(scope="session")
def template(postgresql_noproc):
    return postgresql_noproc.template_dbname


@pytest.fixture(scope="session")
def shared_db(template):
    name = "tracker_test_shared"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}"')
        admin.execute(f'create database "{name}" template "{template}"')
    yield name
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def shared_conn(shared_db):
    with connect_shared(shared_db) as c:
        yield c


def connect_shared(dbname: str, pooler_port: int | None = None) -> psycopg.Connection:
    """The `conn` fixture's connection; through the run's PgBouncer when one is given (or
    TRACKER_TEST_POOLER=1 routed the whole run through it)."""
    port = pooler_port or VIA_POOLER
    if port:
        return psycopg.connect(pooled_url(port, dbname), prepare_threshold=None)
    return psycopg.connect(_url(dbname))


@pytest.fixture
def conn(shared_conn):
    """A superuser connection inside a transaction that is rolled back after the test."""
    shared_conn.rollback()
    yield shared_conn
    shared_conn.rollback()


@contextmanager
def cloned_web_app(template: str, name: str, pooler_port: int | None = None):
    """A Flask app on a private clone of the demo database, for web tests that commit;
    with pooler_port (or TRACKER_TEST_POOLER=1) it connects through that PgBouncer, its
    relay directly."""
    from tracker.web import create_app
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}" template "{template}"')
    settings = {"TESTING": True, "SECRET_KEY": "test", "APP_DATABASE_URL": _url(name, "authenticator")}
    port = pooler_port or VIA_POOLER
    if port:
        settings.update(APP_DATABASE_URL=pooled_url(port, name, "authenticator"), APP_DATABASE_POOLED=True,
                        REALTIME_DATABASE_URL=_url(name, "authenticator"))
    app = create_app(settings)
    app.dbname = name
    try:
        yield app
    finally:
        if "realtime" in app.extensions:  # its relay would keep reconnecting to the dropped database
            app.extensions["realtime"].stop()
        app.extensions["pool"].close()
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def db(app):
    """An autocommit admin connection to the database of the module's `app` fixture."""
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        yield c


# --- PgBouncer (issue 18) ---------------------------------------------------------------
# tests/test_pooler*.py run through one PgBouncer (transaction pooling, scripts/pooler.sh)
# that this run starts on a free port and removes at the end. TRACKER_TEST_POOLER=1 routes
# the whole run through it: every cloned web app (its relay stays direct), the `conn`
# fixture's connection, and gunicorns started with APP_DATABASE_POOLED from the environment.
ROOT = Path(__file__).resolve().parent.parent
VIA_POOLER: int | None = None


def pooled_url(port: int, dbname: str, user: str | None = None) -> str:
    params = dict(ADMIN, dbname=dbname, port=str(port))
    if user:
        params["user"] = user
        params.pop("password", None)
    return make_conninfo(**params)


@contextmanager
def started_pooler():
    """A PgBouncer in front of the cluster for the web app's login and the admin; yields its port."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the test PgBouncer fronts the project-local cluster; DATABASE_URL points elsewhere")
    sock = Path(ADMIN.get("host") or "/tmp")
    rng = random.Random()
    port = next(p for p in (rng.randrange(20000, 40000) for _ in range(100))
                if not (sock / f".s.PGSQL.{p}").exists())
    env = dict(os.environ, POOLER_PORT=str(port), POOLER_USERS=f"authenticator {ADMIN.get('user')}",
               POOLER_SIZE="8")
    script = str(ROOT / "scripts" / "pooler.sh")
    subprocess.run([script, "start"], env=env, check=True, capture_output=True)
    try:
        yield port
    finally:
        subprocess.run([script, "destroy"], env=env, check=False, capture_output=True)


@pytest.fixture(scope="session")
def pooler():
    """The run's PgBouncer port (started on first use)."""
    if VIA_POOLER:
        yield VIA_POOLER
        return
    with started_pooler() as port:
        yield port


@pytest.fixture(scope="session", autouse=True)
def route_through_pooler():
    global VIA_POOLER
    if os.environ.get("TRACKER_TEST_POOLER", "") not in ("1", "true", "yes"):
        yield
        return
    with started_pooler() as port:
        VIA_POOLER = port
        os.environ["APP_DATABASE_POOLED"] = "1"
        yield


def signed_in_client(app, who: str):
    """A Flask test client signed in as a demo person (a role's login, or an e-mail), with
    its CSRF token at .csrf."""
    import re
    from tracker.demo import demo_password
    c = app.test_client()
    email = who if "@" in who else f"{who}@example.com"
    t = re.search(r'name="csrf" value="([^"]+)"', c.get("/auth/login").get_data(as_text=True)).group(1)
    r = c.post("/auth/login", data={"email": email, "password": demo_password(), "csrf": t})
    assert r.status_code == 302, f"{email} could not sign in"
    c.csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
    return c


def db_url(conn: psycopg.Connection, user: str | None = None) -> str:
    return _url(conn.info.dbname, user)


class Staff:
    """Look up demo staff by email or role and act as them."""

    def __init__(self, conn):
        self.conn = conn

    def get(self, who: str) -> dict:
        email = who if "@" in who else f"{who}@example.com"
        row = self.conn.execute(
            "select id, role::text, team_id, email from app.staff where lower(email) = lower(%s)",
            (email,)).fetchone()
        assert row, f"no demo staff {email}"
        return {"id": row[0], "role": row[1], "team_id": row[2], "email": row[3]}


# the persona's cached session if it is still open in this transaction's view, else a
# new one made in the transaction (a person created by the test, or whose sessions
# the test ended by deactivating them or changing their role or password)
PERSONA_SESSION = """
select set_config('tracker.session', case
         when exists (select 1 from app_private.web_sessions
                       where token_hash = sha256(convert_to(%(token)s, 'UTF8')) and ended_at is null
                         and expires_at > now())
         then %(token)s
         else app_private.start_session(%(id)s) end, true)"""


def act_as(conn: psycopg.Connection, who: dict | None):
    """Switch the current transaction to a persona (None: back to the superuser)."""
    conn.execute("reset role")
    conn.execute("set local session authorization default")
    if who is None:
        return
    conn.execute(PERSONA_SESSION, {"token": SESSIONS.get(who["id"]), "id": who["id"]})
    conn.execute("set local session authorization authenticator")
    conn.execute("select set_config('role', %s, true)", (who["role"],))


@pytest.fixture
def staff(conn):
    return Staff(conn)


@pytest.fixture(scope="session")
def today():
    return date.today()


# ---------------------------------------------------------------- the browser (Playwright + Debian chromium)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (screenshots go to test-artifacts/)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: run `make deps`")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@contextmanager
def served_clone(template: str, name: str):
    """A fresh database cloned from the template and the app serving it on 127.0.0.1 in a
    thread (for the browser): yields (base URL, database name); stops it all and drops the
    database after."""
    import threading

    from werkzeug.serving import make_server

    from tracker.web import create_app
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}" template "{template}"')
    app = create_app({"TESTING": False, "SECRET_KEY": "browser-test", "APP_DATABASE_URL": _url(name, "authenticator"),
                      "SERVER_NAME": None})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", name
    finally:
        srv.shutdown()
        if "realtime" in app.extensions:  # its relay would keep reconnecting to the dropped database
            app.extensions["realtime"].stop()
        app.extensions["pool"].close()
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
