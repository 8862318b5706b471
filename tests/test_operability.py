"""Issue 16 (5): /healthz and /readyz, one structured log line per request and per refusal,
friendly error pages, and start-up refusals that say what to do."""
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import _url, cloned_web_app
from tracker.demo import demo_password
from tracker.logging import LOGGER
from tracker.web import create_app
from tracker.web.health import StartupError, code_version

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "postgresql://authenticator@/tracker?host=/nonexistent&port=1"


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_operability") as app:
        @app.route("/boom-for-test")
        def boom():
            raise RuntimeError("secret internals: password=hunter2")
        yield app


@pytest.fixture
def lines():
    """The structured log lines written during the test, parsed."""
    out = []

    class Keep(logging.Handler):
        def emit(self, record):
            out.append(json.loads(self.format(record)))

    from tracker.logging import JsonFormatter
    h = Keep()
    h.setFormatter(JsonFormatter())
    log = logging.getLogger(LOGGER)
    level = log.level
    log.setLevel(logging.INFO)  # whatever TRACKER_LOG_LEVEL says
    log.addHandler(h)
    yield out
    log.removeHandler(h)
    log.setLevel(level)


def sign_in(app, role="buyer"):
    c = app.test_client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/auth/login").get_data(as_text=True)).group(1)
    assert c.post("/auth/login", data={"email": f"{role}@example.com", "password": demo_password(),
                                       "csrf": csrf}).status_code == 302
    c.csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
    return c


# ------------------------------------------------------------------ health and readiness
def test_healthz_and_readyz_on_a_working_database(app):
    c = app.test_client()
    assert c.get("/healthz").get_json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200 and r.get_json() == {"status": "ready", "migration": code_version()}


def test_readyz_says_503_and_why_when_the_database_is_gone_while_healthz_stays_up():
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "APP_DATABASE_URL": NOWHERE, "STARTUP_CHECKS": False})
    try:
        c = app.test_client()
        assert c.get("/healthz").status_code == 200  # the process is up
        r = c.get("/readyz")
        assert r.status_code == 503 and "database" in r.get_json()["problems"]
        assert "realtime" in r.get_json()["problems"]  # the relay cannot listen either
    finally:
        app.extensions["pool"].close(timeout=1)


def test_readyz_says_503_when_migrations_are_behind_the_code(app):
    with psycopg.connect(_url(app.dbname)) as admin:
        top = admin.execute("select max(version) from public.schema_version").fetchone()[0]
        admin.execute("create temp table kept as select * from public.schema_version where version = %s", (top,))
        admin.execute("delete from public.schema_version where version = %s", (top,))
        admin.commit()
        try:
            r = app.test_client().get("/readyz")
            assert r.status_code == 503
            assert f"needs V{top:04d}" in r.get_json()["problems"]["migrations"]
        finally:
            admin.execute("insert into public.schema_version select * from kept")
            admin.commit()
    assert app.test_client().get("/readyz").status_code == 200  # positive control


# ------------------------------------------------------------------ logs
def test_one_structured_line_per_request_with_staff_and_request_id(app, lines):
    c = sign_in(app)
    lines.clear()
    r = c.get("/samples/1001", headers={"X-Request-Id": "abc12345-from-the-proxy"})
    assert r.headers["X-Request-Id"] == "abc12345-from-the-proxy"
    requests = [x for x in lines if x["event"] == "request"]
    assert len(requests) == 1
    line = requests[0]
    assert {k: line[k] for k in ("method", "path", "status", "request_id")} == {
        "method": "GET", "path": "/samples/1001", "status": r.status_code, "request_id": "abc12345-from-the-proxy"}
    with psycopg.connect(_url(app.dbname)) as db:
        assert line["staff_id"] == db.execute("select id from app.staff where email = 'buyer@example.com'").fetchone()[0]
    assert isinstance(line["duration_ms"], float) and line["ts"] and line["level"] == "info"
    # a header that is not a sane id is replaced by one of ours
    lines.clear()
    r = c.get("/people/", headers={"X-Request-Id": "bad id; with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    assert [x["request_id"] for x in lines if x["event"] == "request"] == [r.headers["X-Request-Id"]]


def test_a_lifecycle_refusal_writes_one_refusal_line(app, lines):
    c = sign_in(app, "designer")
    with psycopg.connect(_url(app.dbname)) as db:
        sid = db.execute("select min(id) from app.samples where state = 'ordered'").fetchone()[0]
    lines.clear()
    r = c.post(f"/samples/{sid}/act/receive", data={"csrf": c.csrf, "location": "1"})
    assert r.status_code == 303
    refusals = [x for x in lines if x["event"] == "refusal"]
    assert len(refusals) == 1 and refusals[0]["sqlstate"].startswith("TR")
    assert refusals[0]["path"] == f"/samples/{sid}/act/receive" and refusals[0]["staff_id"]
    assert refusals[0]["request_id"] == [x for x in lines if x["event"] == "request"][0]["request_id"]


def test_a_500_is_a_friendly_page_without_internals_and_is_logged(app, lines):
    lines.clear()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production (TESTING would re-raise)
    try:
        r = app.test_client().get("/boom-for-test")
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    body = r.get_data(as_text=True)
    assert r.status_code == 500 and "Something went wrong" in body
    assert "hunter2" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert [x["status"] for x in lines if x["event"] == "request"] == [500]
    r = app.test_client().get("/no/such/page")
    assert r.status_code == 404 and "Not found" in r.get_data(as_text=True)


# ------------------------------------------------------------------ start-up refusals
def test_a_bad_database_url_refuses_the_start_with_a_sentence():
    with pytest.raises(StartupError) as err:
        create_app({"TESTING": True, "SECRET_KEY": "t", "APP_DATABASE_URL": NOWHERE})
    assert "cannot reach the database tracker" in str(err.value) and "DATABASE_URL" in str(err.value)


def test_app_py_prints_one_line_and_exits_2_on_a_bad_database_url():
    env = dict(os.environ, DATABASE_URL=NOWHERE.replace("authenticator", "postgres"), SECRET_KEY="x")
    r = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "tracker: cannot start: cannot reach the database" in r.stderr and "Traceback" not in r.stderr
    assert '"event": "startup_refused"' in r.stderr


def test_an_unmigrated_database_refuses_the_start():
    name = "tracker_test_unmigrated"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}"')
        admin.execute(f'create database "{name}"')
    try:
        with pytest.raises(StartupError) as err:
            create_app({"TESTING": True, "SECRET_KEY": "t", "APP_DATABASE_URL": _url(name, "authenticator")})
        assert "not migrated" in str(err.value) and "make migrate" in str(err.value)
    finally:
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.mark.parametrize("key,refused", [(None, "SECRET_KEY is not set"), ("changeme", "default or too weak"),
                                         ("a" * 40, "default or too weak"), ("short-but-random-9x", "too weak"),
                                         (secrets.token_hex(32), None)])
def test_a_production_start_refuses_a_missing_or_default_secret(template, monkeypatch, key, refused, tmp_path):
    monkeypatch.setenv("TRACKER_ENV", "production")
    if key is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", key)
    config = {"TESTING": True, "APP_DATABASE_URL": _url(template, "authenticator")}
    if refused:
        with pytest.raises(StartupError) as err:
            create_app(config, instance_path=str(tmp_path))
        assert refused in str(err.value)
    else:  # positive control: a real key starts
        app = create_app(config, instance_path=str(tmp_path))
        app.extensions["pool"].close()
