"""Several app processes against one database (issue 18, item 4): two gunicorns (what
`make serve` runs, one worker each) on different ports, each with its own realtime relay,
sharing only the database and SECRET_KEY. A person signs in through one and is signed in
on the other (sessions live in app_private.web_sessions, the cookie holds a token); a
change made through one reaches the websocket clients of the other; signing out through
one ends the session on the other and closes its socket."""
import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

from conftest import _url, cloned_web_app
from realtime_support import LiveClient
from test_realtime import free_port, wait_for_port
from tracker.demo import demo_password

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def serve_args(port: int) -> list[str]:
    make = (ROOT / "Makefile").read_text()
    line = re.search(r"^SERVE_ARGS := (.*)$", make, re.M).group(1)
    return line.replace("$(SERVE_WORKERS)", "1").replace("$(SERVE_THREADS)", "16").split() + \
        ["--bind", f"127.0.0.1:{port}"]


@pytest.fixture(scope="module")
def servers(template):
    with cloned_web_app(template, "tracker_test_multi_process") as app:
        procs, bases = [], []
        try:
            for _ in range(2):
                port = free_port()
                env = dict(os.environ, SECRET_KEY="two-processes-one-database",
                           APP_DATABASE_URL=app.config["APP_DATABASE_URL"], TRACKER_LOG_LEVEL="warning")
                proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *serve_args(port),
                                         "tracker.web:create_app()"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                procs.append(proc)
                wait_for_port(port, proc)
                bases.append(f"http://127.0.0.1:{port}")
            yield app, bases
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


class Browser:
    """One browser: a cookie jar that, like a browser, sends 127.0.0.1's cookies to any port."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str) -> tuple[int, str]:
        with self.opener.open(url, timeout=30) as r:
            return r.status, r.read().decode()

    def post(self, url: str, data: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        with self.opener.open(urllib.request.Request(url, data=body), timeout=30) as r:
            return r.status, r.read().decode()

    def csrf(self, page: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def sign_in(self, base: str, email: str):
        _, page = self.get(base + "/auth/login")
        self.post(base + "/auth/login", {"email": email, "password": demo_password(), "csrf": self.csrf(page)})

    def cookie(self) -> str:
        return next(c.value for c in self.jar if c.name == "session")


def full_name(app, email):
    with psycopg.connect(_url(app.dbname)) as c:
        return c.execute("select full_name from app.staff where email = %s", (email,)).fetchone()[0]


def test_a_session_signed_in_on_one_process_works_on_the_other(servers):
    app, (a, b) = servers
    browser = Browser()
    browser.sign_in(a, "buyer@example.com")
    name = full_name(app, "buyer@example.com")
    for base in (a, b):
        status, page = browser.get(base + "/")
        assert status == 200 and name in page, base
    # positive control: a browser that never signed in is sent to the sign-in page on both
    stranger = Browser()
    for base in (a, b):
        _, page = stranger.get(base + "/")
        assert name not in page and 'name="password"' in page


def test_a_change_through_one_process_reaches_the_sockets_of_the_other(servers):
    app, (a, b) = servers
    browser = Browser()
    browser.sign_in(a, "buyer@example.com")
    with psycopg.connect(_url(app.dbname)) as c:
        sid = c.execute("select s.id from app.samples s join app.staff b on b.id = s.requested_by "
                        "where b.email = 'buyer@example.com' and s.state = 'requested' order by s.id limit 1"
                        ).fetchone()[0]
    on_b = LiveClient(b, browser.cookie()).hello()
    on_a = LiveClient(a, browser.cookie()).hello()
    try:
        _, page = browser.get(f"{a}/samples/{sid}")
        status, _ = browser.post(f"{a}/samples/{sid}/comments", {"body": "made through process A",
                                                                  "csrf": browser.csrf(page)})
        assert status == 200
        got_b = on_b.pump(15, until=lambda c: any(e["sample"] == sid and e["kind"] == "comment" for e in c.events))
        got_a = on_a.pump(15, until=lambda c: any(e["sample"] == sid and e["kind"] == "comment" for e in c.events))
        assert got_a, "the process that made the change did not signal it"   # positive control
        assert got_b, "the other process's socket did not receive the change"
    finally:
        on_a.close()
        on_b.close()


def test_signing_out_on_one_process_ends_the_session_on_the_other(servers):
    app, (a, b) = servers
    browser = Browser()
    browser.sign_in(b, "logistics@example.com")
    name = full_name(app, "logistics@example.com")
    live_on_b = LiveClient(b, browser.cookie()).hello()
    cookie = browser.cookie()
    try:
        _, page = browser.get(a + "/")
        assert name in page
        browser.post(a + "/auth/logout", {"csrf": browser.csrf(page)})
        assert live_on_b.pump(10, until=lambda c: any(m["type"] == "revoked" for m in c.others))
    finally:
        live_on_b.close()
    # the old cookie (a copy kept from before sign-out) is worth nothing on either process
    replay = Browser()
    replay.jar.set_cookie(http.cookiejar.Cookie(0, "session", cookie, None, False, "127.0.0.1", False, False, "/",
                                                True, False, None, True, None, None, {}))
    for base in (a, b):
        _, page = replay.get(base + "/")
        assert name not in page
