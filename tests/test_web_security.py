"""The web layer's half of issue 9 (parts A, B, D, E): sessions that end server-side,
throttled sign-in, the open redirect, request and image limits, cookie flags, the
secret key, who sees the staff pages, error pages. Flask's test client (and once a
real server process) against a private clone of the demo database; each test is
named for the attack it stops."""
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from PIL import Image, ImageFile

from conftest import _url, cloned_web_app
from tracker import images
from tracker.demo import demo_password
from tracker.images import swatch
from tracker.web import create_app
from tracker.roles import ROLES

ROOT = Path(__file__).resolve().parent.parent
ADMIN_ROLES = {"system_admin", "ops_director", "md"}


@pytest.fixture(scope="module")
def app(template):
    """A private clone of the demo database, so these tests may commit."""
    with cloned_web_app(template, "tracker_test_websec") as app:
        yield app


@pytest.fixture
def db(app):
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        yield c


def one(db, sql, *params):
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def csrf(client, path="/auth/login"):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, email, password=None, next_=None, addr=None):
    path = "/auth/login" + (f"?next={quote(next_, safe='')}" if next_ is not None else "")
    env = {"REMOTE_ADDR": addr} if addr else {}
    return client.post(path, data={"email": email, "password": password or demo_password(), "csrf": csrf(client)},
                       environ_base=env)


def client_for(app, who, password=None):
    c = app.test_client()
    r = sign_in(c, who if "@" in who else f"{who}@example.com", password)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    c.csrf = csrf(c, "/")
    return c


def make_person(db, email, role="designer"):
    """A new active person with the demo password (so tests that sign them out disturb nobody)."""
    sid = one(db, "insert into app.staff (email, full_name, role) values (%s, %s, %s) returning id",
              email, email.split("@")[0].replace(".", " ").title(), role)
    db.execute("insert into app_private.staff_credentials (staff_id, password_hash, password_set_at) "
               "select %s, password_hash, now() from app_private.staff_credentials c join app.staff s on "
               "s.id = c.staff_id where s.email = 'qc@example.com'", (sid,))
    return sid


def follow_to_login(client):
    """The next page view of a signed-out browser: redirected to sign in, then that page's text."""
    r = client.get("/")
    assert r.status_code == 302 and "/auth/login" in r.location
    return client.get(r.location).get_data(as_text=True)


# ---------------------------------------------------------------------------- open redirect (D)
def test_open_redirect_tab_slash_is_refused(app):
    """POST /auth/login?next=/%09/evil.com answered Location: //evil.com."""
    c = app.test_client()
    r = c.post("/auth/login?next=/%09/evil.com",
               data={"email": "md@example.com", "password": demo_password(), "csrf": csrf(c)})
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_crlf_in_next_is_not_a_500(app):
    c = app.test_client()
    r = c.post("/auth/login?next=/%0d%0aSet-Cookie:%20stolen=1",
               data={"email": "md@example.com", "password": demo_password(), "csrf": csrf(c)})
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "stolen" not in str(r.headers)


NASTY_NEXT = ["//evil.com", "///evil.com", "/\t/evil.com", "/\n/evil.com", "/\r/evil.com", "/ /evil.com",
              "/\\evil.com", "\\\\evil.com", "/\\/evil.com", "https://evil.com", "http:evil.com", "//evil.com/%2F..",
              "javascript:alert(1)", "evil.com", "\t//evil.com", " //evil.com", "/\x00/evil.com", "/\x0b/evil.com",
              "/\u3000/evil.com", "/\uff0fevil.com", "/\u2028/evil.com", "/\r\nLocation: //evil.com", ""]


@pytest.mark.parametrize("target", NASTY_NEXT, ids=[repr(t) for t in NASTY_NEXT])
def test_login_next_accepts_only_same_site_paths(app, target):
    r = sign_in(app.test_client(), "md@example.com", next_=target)
    assert r.status_code == 302 and r.headers["Location"] == "/", target


def test_login_next_keeps_a_real_page(app):  # positive control
    for target in ["/samples/1001", "/search?q=wrap%20dress&page=2", "/?tab=all&sort=id"]:
        r = sign_in(app.test_client(), "md@example.com", next_=target)
        assert r.status_code == 302 and r.headers["Location"] == target


# ---------------------------------------------------------------------------- request and image limits (D)
def test_a_400_mib_body_gets_a_styled_413_without_being_read(app, db):
    """MAX_CONTENT_LENGTH was never set (setdefault on a key Flask already has)."""
    assert app.config["MAX_CONTENT_LENGTH"] == 6 * 1024 * 1024
    sid = one(db, "select id from app.samples where state = 'received' limit 1")
    c = client_for(app, "logistics")
    big = io.BytesIO(b"\0" * (7 * 1024 * 1024))
    r = c.post(f"/samples/{sid}/photos", data={"csrf": c.csrf, "photo": (big, "big.png")},
               content_type="multipart/form-data")
    assert r.status_code == 413
    page = r.get_data(as_text=True)
    assert "photos can be at most 5 MiB" in page and 'class="top"' in page
    # the same for anyone, before signing in
    r = app.test_client().post("/auth/login", data=b"x" * (7 * 1024 * 1024),
                               content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413


@pytest.fixture
def decodes(monkeypatch):
    """Counts pixel decoding (ImageFile.load) while a test runs."""
    calls = []
    real = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.size)
        return real(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


def png(img) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_16_bit_png_bomb_is_refused_without_decoding(decodes):
    """A 6300 x 6300 16-bit PNG (~80 KB, under the pixel cap) cost ~320 MB to decode."""
    data = png(Image.new("I;16", (6300, 6300)))
    assert len(data) < images.MAX_BYTES
    decodes.clear()
    with pytest.raises(images.BadImage) as err:
        images.process(data)
    assert "16 bits per colour channel" in str(err.value)
    assert decodes == []


def test_too_many_pixels_are_refused_from_the_header(decodes):
    data = png(Image.new("1", (7000, 7000)))  # 49 megapixels in a tiny file
    decodes.clear()
    with pytest.raises(images.BadImage) as err:
        images.process(data)
    assert "7000 x 7000 pixels; the limit is 40 megapixels" in str(err.value)
    assert decodes == []
    data = png(Image.new("1", (10000, 10000)))  # over Pillow's own bomb limit too
    with pytest.raises(images.BadImage) as err:
        images.process(data)
    assert "40 megapixels" in str(err.value)
    assert decodes == []


def test_an_ordinary_photo_still_goes_through(decodes):  # positive control
    out = images.process(swatch((10, 20, 30), (1600, 1200)))
    assert out["width"] == 1600 and out["thumbnail"][:2] == b"\xff\xd8" and decodes


def test_16_bit_upload_shows_a_readable_message(app, db):
    sid = one(db, "select id from app.samples where state = 'received' limit 1")
    c = client_for(app, "logistics")
    data = png(Image.new("I;16", (64, 64)))
    r = c.post(f"/samples/{sid}/photos", data={"csrf": c.csrf, "photo": (io.BytesIO(data), "deep.png")},
               content_type="multipart/form-data", follow_redirects=True)
    assert b"16 bits per colour channel" in r.data


# ---------------------------------------------------------------------------- server header (D)
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_header_is_not_sent_by_make_run(app):
    """`make run` (python app.py) answered with `Server: Werkzeug/3.x Python/3.x`."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), SECRET_KEY="server-header-test",
               APP_DATABASE_URL=app.config["APP_DATABASE_URL"])
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/auth/login")
                resp = conn.getresponse()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.2)
        body = resp.read().decode()
        assert resp.status == 200 and "Sign in" in body
        assert resp.getheader("Server") is None, resp.getheaders()
        conn.request("GET", "/no-such-page")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404 and resp.getheader("Server") is None
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------- staff pages (D)
@pytest.mark.parametrize("role", ROLES)
def test_staff_list_with_login_names_is_only_for_roles_that_administer_staff(app, db, role):
    """Every role could read /admin/staff and staff.csv, analysts' database login names included."""
    db.execute("update app.staff set login_role = 'ana_lyst_login' where email = 'finance@example.com'")
    c = client_for(app, role)
    page, csv_ = c.get("/admin/staff"), c.get("/admin/staff.csv")
    if role in ADMIN_ROLES:
        assert page.status_code == 200 and csv_.status_code == 200
        assert b"Reset password" in page.data and b"ana_lyst_login" in csv_.data
    else:
        assert page.status_code == 403 and csv_.status_code == 403
        for r in (page, csv_):
            assert b"ana_lyst_login" not in r.data and b"finance@example.com" not in r.data
            assert b"New sign-up link" not in r.data
        assert b"Staff</a>" not in c.get("/").data  # and no link to it


# ---------------------------------------------------------------------------- sessions (A)
def session_cookie(client):
    return client.get_cookie("session").value


def test_session_cookie_carries_only_the_session_token_and_csrf(app):
    c = client_for(app, "md")
    data = app.session_interface.get_signing_serializer(app).loads(session_cookie(c))
    assert set(data) <= {"token", "csrf", "_permanent"}
    assert re.fullmatch(r"[0-9a-f]{64}", data["token"])


def test_cookie_saved_before_logout_is_refused_after_logout(app):
    """A copy of the cookie kept working after sign-out (the cookie was the identity)."""
    c = client_for(app, "finance")
    saved = session_cookie(c)
    assert c.get("/").status_code == 200
    assert c.post("/auth/logout", data={"csrf": c.csrf}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", saved)
    r = replay.get("/")
    assert r.status_code == 302 and "/auth/login" in r.location
    assert client_for(app, "finance").get("/").status_code == 200  # signing in again works


def test_old_cookie_is_refused_after_a_password_change(app, db):
    make_person(db, "pw.changer@example.com")
    here, elsewhere = client_for(app, "pw.changer@example.com"), client_for(app, "pw.changer@example.com")
    new = "a much better password"
    r = here.post("/auth/password", data={"csrf": here.csrf, "current": "wrong", "password": new, "confirm": new})
    assert r.status_code == 422 and b"current password is not right" in r.data
    assert elsewhere.get("/").status_code == 200  # a wrong current password changes nothing
    r = here.post("/auth/password", data={"csrf": here.csrf, "current": demo_password(), "password": new,
                                          "confirm": new})
    assert r.status_code == 302
    assert here.get("/").status_code == 200  # this browser got a new session
    assert "Your password was changed" in follow_to_login(elsewhere)
    assert sign_in(app.test_client(), "pw.changer@example.com").status_code == 401  # the old password
    client_for(app, "pw.changer@example.com", new)


def test_admin_reset_signs_the_person_out_and_the_old_password_stops_working(app, db):
    sid = make_person(db, "reset.me@example.com")
    victim = client_for(app, "reset.me@example.com")
    admin = client_for(app, "system_admin")
    r = admin.post(f"/admin/staff/{sid}/reset", data={"csrf": admin.csrf})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "old password no longer works" in page
    link = re.search(r'value="(http[^"]+/auth/invite/[0-9a-f]{64})"', page).group(1)
    assert "An administrator reset your password" in follow_to_login(victim)
    assert sign_in(app.test_client(), "reset.me@example.com").status_code == 401
    path = link.split("localhost", 1)[-1]
    c = app.test_client()
    r = c.post(path, data={"csrf": csrf(c, path), "password": "brand new secret", "confirm": "brand new secret"})
    assert r.status_code == 302
    client_for(app, "reset.me@example.com", "brand new secret")
    log = db.execute("select new_row::text from audit.log where table_name = 'app_private.staff_credentials' "
                     "and row_id = %s", (str(sid),)).fetchall()
    assert len(log) >= 2 and not any("$argon2" in r[0] for r in log)


def test_system_admin_cannot_reset_a_directors_password_in_the_ui(app, db):
    md = one(db, "select id from app.staff where email = 'md@example.com'")
    admin = client_for(app, "system_admin")
    r = admin.post(f"/admin/staff/{md}/reset", data={"csrf": admin.csrf}, follow_redirects=True)
    assert b"Only the MD or the ops director can reset the password for a md." in r.data
    assert client_for(app, "md").get("/").status_code == 200  # nothing happened to the MD


def test_reinviting_someone_with_a_password_is_refused_with_a_message(app, db):
    qc = one(db, "select id from app.staff where email = 'qc@example.com'")
    admin = client_for(app, "system_admin")
    r = admin.post(f"/admin/staff/{qc}/invite", data={"csrf": admin.csrf}, follow_redirects=True)
    assert b"already has a password; a sign-up link would replace it" in r.data
    client_for(app, "qc")  # the password still works


@pytest.mark.parametrize("change,message", [("role = 'logistics'", "Your role was changed"),
                                            ("active = false", "Your account was deactivated")])
def test_role_change_or_deactivation_signs_out_and_says_why(app, db, change, message):
    email = f"changed.{'role' if 'role' in change else 'active'}@example.com"
    make_person(db, email, "qc")
    c = client_for(app, email)
    db.execute(f"update app.staff set {change} where email = %s", (email,))
    assert message in follow_to_login(c)


def test_session_ends_after_its_lifetime(app, db):
    app.config["SESSION_LIFETIME_HOURS"] = 1
    try:
        c = client_for(app, "sales_lead")
    finally:
        app.config["SESSION_LIFETIME_HOURS"] = 12
    token = app.session_interface.get_signing_serializer(app).loads(session_cookie(c))["token"]
    lifetime = one(db, "select expires_at - created_at from app_private.web_sessions where token_hash = "
                       "sha256(convert_to(%s, 'UTF8'))", token)
    assert lifetime.total_seconds() == 3600
    db.execute("update app_private.web_sessions set created_at = created_at - interval '2 hours', expires_at = "
               "expires_at - interval '2 hours' where token_hash = sha256(convert_to(%s, 'UTF8'))", (token,))
    assert "reached its time limit" in follow_to_login(c)


def secure_flag(app, base_url):
    """Whether the session cookie the sign-in page sets is Secure, served at base_url."""
    r = app.test_client().get("/auth/login", base_url=base_url)
    cookie = r.headers.get("Set-Cookie", "")
    assert r.status_code == 200 and cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return "; Secure" in cookie


def test_cookie_is_secure_unless_plain_http_on_localhost(app):
    assert not secure_flag(app, "http://localhost")
    assert not secure_flag(app, "http://127.0.0.1:5000")
    assert secure_flag(app, "https://tracker.example.com")
    assert secure_flag(app, "http://tracker.example.com")  # plain HTTP elsewhere: the browser keeps it to itself
    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        assert secure_flag(app, "http://localhost")  # the setting overrides
    finally:
        app.config["SESSION_COOKIE_SECURE"] = None


def test_session_cookie_secure_environment_setting(app, monkeypatch):
    for value, expected in [("1", True), ("0", False), ("", None)]:
        monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
        other = create_app({"TESTING": True, "SECRET_KEY": "x", "APP_DATABASE_URL": app.config["APP_DATABASE_URL"]})
        other.extensions["pool"].close()
        assert other.config["SESSION_COOKIE_SECURE"] is expected


def test_secret_key_persists_across_restarts(app, tmp_path, monkeypatch):
    """A random key per start signed everyone out on every restart."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    url = app.config["APP_DATABASE_URL"]
    first = create_app({"TESTING": True, "APP_DATABASE_URL": url}, instance_path=str(tmp_path / "instance"))
    key_file = tmp_path / "instance" / "secret_key"
    try:
        assert key_file.stat().st_mode & 0o777 == 0o600
        c = client_for(first, "designer")
        cookie = session_cookie(c)
    finally:
        first.extensions["pool"].close()
    second = create_app({"TESTING": True, "APP_DATABASE_URL": url}, instance_path=str(tmp_path / "instance"))
    try:
        assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]
        c = second.test_client()
        c.set_cookie("session", cookie)
        assert c.get("/").status_code == 200  # still signed in after the "restart"
    finally:
        second.extensions["pool"].close()
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    third = create_app({"TESTING": True, "APP_DATABASE_URL": url}, instance_path=str(tmp_path / "instance"))
    third.extensions["pool"].close()
    assert third.config["SECRET_KEY"] == "from-the-environment"


# ---------------------------------------------------------------------------- throttling (B)
def test_thirty_parallel_guesses_through_the_web_get_at_most_five_password_checks(app, db, monkeypatch):
    """The check ran before the record: 30 simultaneous guesses were all verified."""
    from tracker.web import auth
    make_person(db, "burst@example.com")
    checks, lock = [], threading.Lock()

    class CountingHasher(type(auth._hasher)):
        def verify(self, hash_, password):
            with lock:
                checks.append(password)
            return super().verify(hash_, password)
    monkeypatch.setattr(auth, "_hasher", CountingHasher())
    barrier, statuses = threading.Barrier(30), []

    def guess(n):
        c = app.test_client()
        token = csrf(c)
        barrier.wait(timeout=30)
        r = c.post("/auth/login", data={"email": "burst@example.com", "password": f"guess {n}", "csrf": token},
                   environ_base={"REMOTE_ADDR": "198.51.100.77"})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [401] * 5 + [429] * 25
    assert len(checks) == 5


def test_strangers_failures_do_not_lock_out_a_browser_that_signed_in_before(app, db):
    """Five wrong guesses by anyone locked the real owner out for 15 minutes."""
    make_person(db, "owner@example.com")
    owner = app.test_client()
    assert sign_in(owner, "owner@example.com", addr="192.0.2.30").status_code == 302
    assert owner.get_cookie("tracker_device", path="/auth/") is not None
    owner.post("/auth/logout", data={"csrf": csrf(owner, "/")})
    stranger = app.test_client()
    for _ in range(5):
        assert sign_in(stranger, "owner@example.com", "wrong", addr="203.0.113.9").status_code == 401
    r = sign_in(stranger, "owner@example.com", addr="203.0.113.9")  # even with the right password
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 14 * 60
    page = r.get_data(as_text=True)
    assert re.search(r"Too many failed sign-ins for this account\. Try again in 1[45] minutes \(at \d\d:\d\d UTC\)",
                     page), page
    r = sign_in(owner, "owner@example.com", addr="192.0.2.30")
    assert r.status_code == 302 and owner.get("/").status_code == 200


# ---------------------------------------------------------------------------- error pages (E)
def test_404_405_and_500_are_pages_of_the_site_without_a_trace(app):
    boom_app = create_app({"TESTING": False, "SECRET_KEY": "x", "APP_DATABASE_URL": app.config["APP_DATABASE_URL"]})

    def boom():
        raise ZeroDivisionError("secret detail of the failure")
    boom_app.add_url_rule("/boom", view_func=boom)
    try:
        c = boom_app.test_client()
        for path, method, status, title in [("/no-such-page", "get", 404, "Not found"),
                                            ("/auth/logout", "get", 405, "Not allowed here"),
                                            ("/boom", "get", 500, "Something went wrong")]:
            r = getattr(c, method)(path)
            page = r.get_data(as_text=True)
            assert r.status_code == status, path
            assert f"<h1>{title}</h1>" in page and 'class="top"' in page, page
            for leak in ("Traceback", "ZeroDivisionError", "secret detail", "Werkzeug", "File \""):
                assert leak not in page, (path, leak)
        assert c.get("/auth/logout").headers.get("Allow")  # 405 still says what is allowed
    finally:
        boom_app.extensions["pool"].close()


def test_forwarded_for_counts_only_behind_a_trusted_proxy(app, db):
    """X-Forwarded-For is the client's address for the sign-in limits only with TRUSTED_PROXIES;
    otherwise anyone could spread guesses over invented addresses."""
    def last_addr():
        return one(db, "select host(client_addr) from app_private.login_attempts where email = 'xff@example.com' "
                       "order by id desc limit 1")
    headers = {"X-Forwarded-For": "203.0.113.77"}
    c = app.test_client()
    c.post("/auth/login", data={"email": "xff@example.com", "password": "x", "csrf": csrf(c)}, headers=headers)
    assert last_addr() == "127.0.0.1"
    proxied = create_app({"TESTING": True, "SECRET_KEY": "x", "APP_DATABASE_URL": app.config["APP_DATABASE_URL"],
                          "TRUSTED_PROXIES": 1})
    try:
        c = proxied.test_client()
        c.post("/auth/login", data={"email": "xff@example.com", "password": "x", "csrf": csrf(c)}, headers=headers)
        assert last_addr() == "203.0.113.77"
    finally:
        proxied.extensions["pool"].close()
