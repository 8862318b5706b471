"""The web layer: sign-in, CSRF, and pages showing exactly what the database lets
the signed-in person see (Flask test client against the real database)."""
import re

import pytest

from conftest import db_url
from tracker.demo import demo_password
from tracker.web import create_app


@pytest.fixture(scope="module")
def app(shared_db):
    from conftest import _url
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "APP_DATABASE_URL": _url(shared_db, "authenticator")})
    yield app
    app.extensions["pool"].close()


def csrf(client, path="/auth/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, email, password=None):
    token = csrf(client)
    return client.post("/auth/login", data={"email": email, "password": password or demo_password(), "csrf": token})


def test_login_page_and_redirect(app):
    c = app.test_client()
    r = c.get("/")
    assert r.status_code == 302 and "/auth/login" in r.location
    assert b"Sign in" in c.get("/auth/login").data


def test_wrong_password_and_inactive_are_refused_alike(app, shared_conn):
    c = app.test_client()
    r = login(c, "buyer@example.com", "wrong")
    assert r.status_code == 401 and b"do not match an active account" in r.data
    inactive = shared_conn.execute("select email from app.staff where not active limit 1").fetchone()[0]
    r = login(c, inactive)
    assert r.status_code == 401


def test_post_without_csrf_is_refused(app):
    c = app.test_client()
    c.get("/auth/login")
    r = c.post("/auth/login", data={"email": "buyer@example.com", "password": demo_password()})
    assert r.status_code == 400


def test_buyer_sees_samples_and_own_costs_not_others(app, shared_conn):
    c = app.test_client()
    assert login(c, "buyer@example.com").status_code == 302
    r = c.get("/")
    assert r.status_code == 200 and b"Samples" in r.data
    own = shared_conn.execute(
        "select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id "
        "where s.team_id = (select team_id from app.staff where email = 'buyer@example.com') limit 1").fetchone()[0]
    other = shared_conn.execute(
        "select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id "
        "where s.team_id <> (select team_id from app.staff where email = 'buyer@example.com') "
        "and s.state in ('ordered', 'received') limit 1").fetchone()[0]
    assert "Cost</dt>" in c.get(f"/samples/{own}").get_data(as_text=True)
    page = c.get(f"/samples/{other}")
    assert page.status_code == 200 and "Cost</dt>" not in page.get_data(as_text=True)


def test_factory_liaison_gets_404_for_a_request(app, shared_conn):
    c = app.test_client()
    login(c, "factory_liaison@example.com")
    requested = shared_conn.execute("select id from app.samples where state = 'requested' limit 1").fetchone()[0]
    assert c.get(f"/samples/{requested}").status_code == 404
    at_factory = shared_conn.execute("select id from app.samples where state = 'at-factory' limit 1").fetchone()[0]
    page = c.get(f"/samples/{at_factory}").get_data(as_text=True)
    assert "bring it back from the factory" in page


def test_logout(app):
    c = app.test_client()
    login(c, "md@example.com")
    assert c.get("/").status_code == 200
    c.post("/auth/logout", data={"csrf": csrf(c, "/")})
    assert c.get("/").status_code == 302
