"""Issue 16 (3): the web layer fuzzed like the SQL API. Every route of the app (read from
Flask's URL map, so new pages are fuzzed without touching this file), as random signed-in
roles and anonymously, with hostile path values, query parameters and form fields (names
taken from the templates and the forms' definitions, values hostile); POSTs carry the
right CSRF token most of the time so they reach the database. Never a 500, and never an
"unexpected database error" in the log (a database error the page did not expect).

WEB_FUZZ_EXAMPLES sets the number of requests (default 300; `make soak` runs 3,000)."""
import logging
import os
import re
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import AnyConverter, IntegerConverter

from conftest import _url, cloned_web_app
from tracker.demo import demo_password
from tracker.roles import ROLES
from tracker.web import lists, reference, samples

EXAMPLES = int(os.environ.get("WEB_FUZZ_EXAMPLES", "300"))
ROOT = Path(__file__).resolve().parent.parent
SKIP_ENDPOINTS = {"static", "auth.logout"}  # logout ends the fuzzing client's own session


def field_names() -> list[str]:
    """Every form and query parameter name the app reads or renders."""
    names = set()
    for path in (ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'name="([a-z_]+)"', path.read_text()))
    for path in (ROOT / "tracker" / "web").glob("*.py"):
        names |= set(re.findall(r'request\.(?:args|form|files)\.get(?:list)?\("([a-z_]+)"', path.read_text()))
    for _, fields in samples.ACTIONS.values():
        names |= {f[0] for f in fields}
    for kind in reference.KINDS.values():
        names |= {c[0] for c in kind[3]}
    names |= {"sort", "dir", "team", "buyer", "supplier", "category", "season", "state", "overdue", "page"}
    names.discard("csrf")
    return sorted(names)


FIELDS = field_names()
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
HOSTILE = st.one_of(
    st.text(_chars, max_size=30),
    st.sampled_from(["", " ", "0", "-1", "1", "1001", "99999999999999999999", "1e309", "NaN", "Infinity", "-0",
                     "2026-02-30", "0001-01-01", "9999-12-31", "yesterday", "on", "true", "pass", "reject",
                     "received", "withdrawn", "cut-for-production", "EUR", "xx", "title", "desc", "asc",
                     "total_gbp", "'; select 1; --", "%00", "../../etc/passwd", "<script>x</script>", "\r\nX: y",
                     "😀" * 50, "é" * 5000, "x" * 100_000]),
)
INT_SEGMENT = st.one_of(st.sampled_from([0, 1, 1001, 1100, 1300, 2 ** 31, 2 ** 63 - 1, 10 ** 30]),
                        st.integers(0, 5000))
LOGINS = [None] + ROLES


@pytest.fixture(scope="module")
def web(template):
    with cloned_web_app(template, "tracker_test_fuzz_web") as app:
        errors: list[logging.LogRecord] = []

        class Catch(logging.Handler):
            def emit(self, record):
                errors.append(record)

        handler = Catch(level=logging.ERROR)
        app.logger.addHandler(handler)
        clients = {}
        for role in ROLES:  # before the fuzz's failed sign-ins can throttle this address
            assert signed_in(app, clients, role) is not None
        yield app, clients, errors
        app.logger.removeHandler(handler)


def signed_in(app, clients, role):
    """A test client signed in as the demo person of that role (signed in again if the fuzz
    ended its session); None for anonymous."""
    if role is None:
        return app.test_client()
    c = clients.get(role)
    if c is not None and c.get("/people/").status_code == 200:
        return c
    c = app.test_client()
    page = c.get("/auth/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/auth/login", data={"email": f"{role}@example.com", "password": demo_password(), "csrf": csrf})
    if r.status_code != 302:
        return None  # the fuzz deactivated this person (an admin form): fuzz the others
    c.csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").get_data(as_text=True)).group(1)
    clients[role] = c
    return c


def routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            out.append((rule, method))
    return sorted(out, key=lambda rm: (rm[0].rule, rm[1]))


def path_for(rule, values: dict) -> str:
    return rule.build(values, append_unknown=False)[1].split("|", 1)[-1]


def url_value(converter, draw):
    if isinstance(converter, IntegerConverter):
        return draw(INT_SEGMENT)
    if isinstance(converter, AnyConverter):
        return draw(st.sampled_from(sorted(converter.items)))
    return draw(st.one_of(st.sampled_from(["suppliers", "factories", "locations", "categories", "seasons", "order",
                                           "receive", "correct", "override", "inspect", "nope"]),
                          st.text(_chars, min_size=1, max_size=20)))


def test_the_checker_sees_an_unexpected_database_error(web):
    """Positive control: a database error a page does not expect is logged where the fuzz looks."""
    app, clients, errors = web
    errors.clear()
    with app.test_request_context():
        exc = psycopg.errors.lookup("XX000")("boom")
        assert samples.friendly(exc) == "Something went wrong; nothing was changed."
    assert [e.getMessage() for e in errors] == ["unexpected database error"]


# ------------------------------------------------------------------ what the fuzz found, replayed
@pytest.mark.parametrize("path", ["/admin/staff/new", "/admin/staff/0"])
def test_an_empty_staff_form_is_a_sentence_not_a_database_error(web, path):
    """Found by the fuzz: an empty form raised 23502 (not-null on staff.email) into "Something went
    wrong", and staff id 0 was taken for a new person (0 is falsy)."""
    app, clients, errors = web
    client = signed_in(app, clients, "ops_director")
    with psycopg.connect(_url(app.dbname)) as db:
        before = db.execute("select count(*) from app.staff").fetchone()[0]
    errors.clear()
    r = client.post(path, data={"csrf": client.csrf})
    assert r.status_code == 422 and "Fill in the name, the email address, the role." in r.get_data(as_text=True)
    assert errors == []
    with psycopg.connect(_url(app.dbname)) as db:
        assert db.execute("select count(*) from app.staff").fetchone()[0] == before
    # positive control: staff 0 with every field is an edit of nobody (404), not a new person
    r = client.post("/admin/staff/0", data={"csrf": client.csrf, "full_name": "Zero", "email": "zero@example.com",
                                            "role": "qc", "row_version": "1"})
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/samples/10000000000000000000000000000/act/order", "/samples/9223372036854775808",
                                  "/samples/photos/99999999999999999999999"])
def test_a_number_beyond_bigint_in_a_url_is_a_404(web, path):
    """Found by the fuzz: a sample number of 10^30 reached app.order_sample as numeric (42883,
    "function does not exist") and the page said "Something went wrong"."""
    app, clients, errors = web
    client = signed_in(app, clients, "buyer")
    errors.clear()
    r = client.post(path, data={"csrf": client.csrf}) if "/act/" in path else client.get(path)
    assert r.status_code == 404 and errors == []
    # positive control: the largest bigint is still a sample number (one that does not exist)
    assert client.get("/samples/9223372036854775807").status_code == 404
    assert client.get("/samples/1001").status_code == 200


# last: the fuzz may end sessions and throttle this address's sign-ins for the tests above
def test_no_request_gets_a_500_or_an_unexpected_database_error(web):
    app, clients, errors = web
    table = routes(app)
    assert len(table) > 25  # positive control: the URL map was read
    seen = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        rule, method = data.draw(st.sampled_from(table), label="route")
        role = data.draw(st.sampled_from(LOGINS), label="role")
        values = {name: url_value(rule._converters[name], data.draw)  # noqa: SLF001
                  for name in sorted(rule.arguments)}
        params = data.draw(st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=6), label="params")
        with_csrf = data.draw(st.integers(0, 9), label="csrf") > 0
        path = path_for(rule, values)
        client = signed_in(app, clients, role)  # all drawn first: what follows depends on the database
        if client is None:
            return
        errors.clear()
        if method == "GET":
            r = client.get(path, query_string=params)
        else:
            if with_csrf:
                params["csrf"] = getattr(client, "csrf", "")
            r = client.post(path, data=params)
        seen.append(r.status_code)
        logged = [rec.getMessage() for rec in errors]
        assert r.status_code < 500 and not logged, f"{role} {method} {path} {params!r:.300} -> {r.status_code} {logged}"

    fuzz()
    assert len(seen) >= min(EXAMPLES, 10)
    if os.environ.get("FUZZ_REPORT"):
        from collections import Counter
        print(f"\n{len(seen)} requests: {dict(Counter(seen))}")
