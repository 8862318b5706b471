"""The API boundary (issue 9): staff roles and personal logins execute only the reviewed
public entry points in `app`; none takes an identity or a row; every definer finds the
caller from the session; and called with hostile arguments, as every role, nothing the
caller cannot SELECT appears in a result, an error message, its DETAIL or its HINT.

The attacks that were possible on the earlier main (forging an `app.staff` row into
`app_private.lock_sample` / `apply_change`) are replayed here as regression tests."""
import itertools
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import act_as
from tracker.roles import ROLES

ALLOW = yaml.safe_load((Path(__file__).parent / "api_allowlist.yml").read_text())
SCHEMAS = ["app", "app_private", "audit", "analytics"]


def norm(sig: str) -> str:
    return sig.replace(", ", ",")


def executable(conn, role: str) -> set[str]:
    return {norm(r[0]) for r in conn.execute(
        """select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = any(%s) and has_schema_privilege(%s, n.oid, 'USAGE')
              and has_function_privilege(%s, p.oid, 'EXECUTE')""", (SCHEMAS, role, role))}


def allowed(role: str) -> set[str]:
    return {norm(s) for s in ALLOW["staff"] + ALLOW["by_role"].get(role, [])}


# ---------------------------------------------------------------- (a) the allow-list
@pytest.mark.parametrize("role", ROLES)
def test_each_role_executes_exactly_its_allow_list(conn, role):
    got = executable(conn, role)
    assert got - allowed(role) == set(), f"{role} can execute functions nobody reviewed"
    assert allowed(role) - got == set(), f"{role} lost part of its API"


@pytest.mark.parametrize("role", ["buyer", "finance", "system_admin"])
def test_a_personal_login_executes_exactly_its_roles_allow_list(conn, role):
    conn.execute("create role test_boundary_login login")
    conn.execute(f"grant {role} to test_boundary_login")
    assert executable(conn, "test_boundary_login") == allowed(role)


def test_authenticator_executes_only_the_sign_in_functions(conn):
    assert executable(conn, "authenticator") == {norm(s) for s in ALLOW["authenticator"]}


def test_app_private_grants_nothing_to_staff(conn):
    granted = conn.execute(
        """select n.nspname, r.rolname from pg_namespace n, aclexplode(n.nspacl) a join pg_roles r on r.oid = a.grantee
            where n.nspname = 'app_private' and r.rolname = any(%s)""", (ROLES,)).fetchall()
    assert granted == []


# ---------------------------------------------------------------- (b) no row-typed parameter
def test_no_executable_function_takes_a_row(conn):
    every = set().union(*(executable(conn, r) for r in ROLES + ["authenticator"]))
    rows = conn.execute(
        """select p.oid::regprocedure::text, t.typname
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
                  unnest(p.proargtypes) arg join pg_type t on t.oid = arg
            where n.nspname = any(%s) and (t.typtype = 'c' or t.typrelid <> 0 or t.typname in ('record', 'anyelement'))""",
        (SCHEMAS,)).fetchall()
    offenders = {norm(sig) for sig, _ in rows} & every
    assert offenders == set()
    # positive control: the internals do take rows, and nobody may call them
    assert any("app.staff" in sig for sig, _ in rows)


# ---------------------------------------------------------------- (c) definers derive identity
IDENTITY_MARKERS = ("app_private.perform_action(", "app_private.require_staff()", "app.current_staff_id()",
                    "app_private.require_counter()",
                    "app_private.require_credentials_admin(", "current_setting('tracker.session'", "session_user")


def test_every_executable_definer_finds_the_caller_from_the_session(conn):
    every = set().union(*(executable(conn, r) for r in ROLES))
    rows = conn.execute(
        """select p.oid::regprocedure::text, p.prosrc, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = any(%s) and p.prosecdef""", (SCHEMAS,)).fetchall()
    checked = 0
    for sig, src, config in rows:
        assert config and any(c.startswith("search_path=pg_catalog") for c in config), f"{sig}: search_path not pinned"
        if norm(sig) not in every or sig in ("app.clock()", "audit.verify_chain()"):
            continue  # clock and the chain verifier read no person's data
        assert any(m in src for m in IDENTITY_MARKERS), f"{sig} does not derive identity from the session"
        checked += 1
    assert checked >= 18


# ---------------------------------------------------------------- attacks replayed
FORGED_MD = "row(11, 'x', 'x', 'md', null, true, null, now(), 1)::app.staff"  # every column of app.staff


@pytest.fixture
def ordered_hidden_from_liaison(conn):
    sid = conn.execute("select min(id) from app.samples where state = 'ordered'").fetchone()[0]
    liaison = conn.execute("select id, role::text, team_id from app.staff where email = 'factory_liaison@example.com'"
                           ).fetchone()
    return sid, {"id": liaison[0], "role": liaison[1], "team_id": liaison[2]}


@pytest.mark.parametrize("sql", [
    f"select (app_private.lock_sample(%s, {FORGED_MD})).*",
    f"select app_private.apply_change((select s from app.samples s where id = %s), 'override', "
    f"'cut-for-production', '{{}}', {FORGED_MD}, 'x', '{{}}', true)",
    f"select app_private.can_see_sample((select s from app.samples s where id = %s), {FORGED_MD})",
    "select app_private.perform_action(%s, 'override', '{\"to_state\": \"returned\", \"reason\": \"x\"}', null)",
], ids=["lock_sample", "apply_change", "can_see_sample", "perform_action"])
def test_forged_identity_through_app_private_is_refused(conn, ordered_hidden_from_liaison, sql):
    sid, liaison = ordered_hidden_from_liaison
    # positive control: the sample exists and RLS hides it from the liaison
    act_as(conn, liaison)
    assert conn.execute("select count(*) from app.samples where id = %s", (sid,)).fetchone()[0] == 0
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute(sql, (sid,))
    act_as(conn, None)
    assert err.value.sqlstate == "42501"
    assert conn.execute("select state::text from app.samples where id = %s", (sid,)).fetchone()[0] == "ordered"


def test_forged_identity_from_a_personal_login_is_refused(conn, ordered_hidden_from_liaison):
    sid, _ = ordered_hidden_from_liaison
    conn.execute("insert into app.staff (email, full_name, role) values ('fl.analyst@example.com', 'F L', 'factory_liaison')")
    conn.execute("select app_private.grant_personal_login('fl.analyst@example.com', 'test_fl_analyst')")
    conn.execute("set local session authorization test_fl_analyst")
    assert conn.execute("select app.current_staff_id()").fetchone()[0] is not None  # it is somebody
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute(f"select (app_private.lock_sample(%s, {FORGED_MD})).*", (sid,))
    assert err.value.sqlstate == "42501"
    # the public entry point says "not found" for the hidden sample, never its state
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app.send_to_factory(%s, 1)", (sid,))
    assert err.value.sqlstate == "TR006" and err.value.diag.message_primary == f"sample {sid} not found"
    conn.execute("set local session authorization default")


def test_notify_payload_is_an_opaque_event_id(fresh_db):
    """Attack (finding 8): any login could LISTEN and read sample id and action from the payload."""
    from helpers import Lifecycle
    lc = Lifecycle(fresh_db)
    fresh_db.commit()
    with psycopg.connect(fresh_db.info.dsn, autocommit=True) as listener:
        listener.execute("listen realtime_events")
        sid = lc.make("ordered")
        fresh_db.commit()
        fresh_db.execute("select app_private.sequence_realtime()")  # what a relay does moments later
        fresh_db.commit()
        payloads = [n.payload for n in listener.notifies(timeout=2, stop_after=2)]
    events = [str(r[0]) for r in fresh_db.execute(
        "select id from app.realtime_events where sample_id = %s order by id", (sid,))]
    assert len(events) == 2  # the sample and its costing
    assert payloads == events[-1:]  # one NOTIFY per sequenced batch: its newest outbox id, nothing else
    assert all(p.isdigit() for p in payloads)


# ---------------------------------------------------------------- hostile arguments, every role
MARK = "ZQXMARK"


@pytest.fixture(scope="module")
def hostile_world(shared_db):
    """Secrets planted where some roles cannot look: hidden samples' titles and style codes,
    PO numbers and payment terms, QC notes, supplier contacts."""
    from conftest import _url
    with psycopg.connect(_url(shared_db)) as c:
        sql = [
            # a request (hidden from design, sales, QC, factory liaison)
            f"update app.samples set title = '{MARK}1 request', style_code = '{MARK}S1' "
            "where id = (select min(id) from app.samples where state = 'requested')",
            # an order (hidden from QC and the factory liaison)
            f"update app.samples set title = '{MARK}2 order', style_code = '{MARK}S2' "
            "where id = (select min(id) from app.samples where state = 'ordered')",
            # another team's finished sample (hidden from WW buyers)
            f"update app.samples set title = '{MARK}3 done', style_code = '{MARK}S3' where id = (select min(s.id) "
            "from app.samples s join app.teams t on t.id = s.team_id where t.code <> 'WW' and s.state = 'returned')",
            f"update app.sample_costs set po_number = '{MARK}PO', payment_terms = '{MARK}TERMS' "
            "where sample_id in (select min(sample_id) from app.sample_costs)",
            f"with i as (insert into app.qc_inspections (sample_id, inspector_id, result) select min(s.id), "
            f"(select min(id) from app.staff where role = 'qc'), 'pass' from app.samples s where s.state = 'received' "
            f"returning id) insert into app.qc_inspection_notes (inspection_id, notes) select id, '{MARK}NOTE' from i",
            f"insert into app.supplier_contacts (supplier_id, name, email) values "
            f"((select min(id) from app.suppliers), '{MARK}CONTACT', 'zq@example.com')",
            f"insert into app.sample_comments (sample_id, author_id, body) values ((select min(id) from app.samples "
            f"where state = 'requested'), (select min(id) from app.staff), '{MARK}COMMENT zanzibar')",
        ]
        for s in sql:
            c.execute(s)
        functions = c.execute(
            """select p.oid::regprocedure::text, p.proname, array(select format_type(t, null) from unnest(p.proargtypes) t)
                 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                where n.nspname = any(%s) and p.prokind = 'f'
                  and has_function_privilege('buyer', p.oid, 'EXECUTE')""", (SCHEMAS,)).fetchall()
        yield c, functions
        c.rollback()


def visible_text(c, role_person) -> str:
    act_as(c, role_person)
    text = c.execute(
        """select concat_ws(' ', (select string_agg(title || ' ' || coalesce(style_code, ''), ' ') from app.samples),
                  (select string_agg(coalesce(po_number, '') || ' ' || coalesce(payment_terms, ''), ' ') from app.sample_costs),
                  (select string_agg(notes, ' ') from app.qc_inspection_notes),
                  (select string_agg(name, ' ') from app.supplier_contacts),
                  (select string_agg(body, ' ') from app.sample_comments))""").fetchone()[0]
    act_as(c, None)
    return text or ""


def hidden_sample_id(c, person) -> int:
    act_as(c, person)
    seen = {r[0] for r in c.execute("select id from app.samples")}
    act_as(c, None)
    ids = [r[0] for r in c.execute(f"select id from app.samples where title like '{MARK}%%' order by id")]
    return next((i for i in ids if i not in seen), ids[0])


def hostile_values(argtype: str, hidden: int) -> list:
    return {
        "bigint": [hidden, -1, 0, 2 ** 62, None],
        "bigint[]": [[hidden], [-1], [], None, [hidden, 2 ** 62]],
        "jsonb": ['{"location_id": 1, "to_state": "returned"}', "{}", None, '[1, 2]', '{"holder_id": "x"}'],
        "integer": [hidden % 2 ** 31, -1, 2 ** 31 - 1, 0, None],
        # "zanzibar" is a word of a comment on a hidden request: search must not find it
        "text": ["zanzibar", "'); select 1; --", "", "x" * 5000, None],
        "numeric": [-1, 10 ** 11, 0, 1, None],
        "date": [date(1900, 1, 1), date(2999, 12, 31), date.today() + timedelta(days=3), None, None],
        "boolean": [True, False, None, True, False],
        "app.qc_result": ["reject", "pass", None, "reject", "pass"],
        "app.sample_state": ["cut-for-production", "requested", "at-factory", None, "received"],
        "timestamp with time zone": [datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2999, 1, 1, tzinfo=timezone.utc),
                                     datetime.now(timezone.utc), None, datetime.now(timezone.utc)],
    }[argtype]


@pytest.mark.parametrize("role", ROLES)
def test_hostile_arguments_reveal_nothing_hidden(hostile_world, role):
    c, functions = hostile_world
    row = c.execute("select id, role::text, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
    person = {"id": row[0], "role": row[1], "team_id": row[2]}
    seen = visible_text(c, person)
    everything = c.execute(
        f"""select concat_ws(' ', (select string_agg(title || ' ' || coalesce(style_code, ''), ' ') from app.samples
                                    where title like '{MARK}%%'), '{MARK}PO', '{MARK}TERMS', '{MARK}NOTE',
                                    '{MARK}CONTACT', '{MARK}COMMENT')""").fetchone()[0]
    secrets = {w for w in everything.split() if w.startswith(MARK) and w not in seen}
    # positive control: every role but the directors (who read everything) has secrets to keep
    assert bool(secrets) == (role not in ("ops_director", "md")), (role, secrets)
    hidden = hidden_sample_id(c, person)
    calls = 0
    for sig, name, argtypes in functions:
        vectors = [[hostile_values(t, hidden)[k] for t in argtypes] for k in range(5)] if argtypes else [[]]
        for args in vectors:
            casts = [f"%s::{t}" for t in argtypes]
            sql = f"select * from {sig.split('(')[0]}({', '.join(casts)})" if args else f"select * from {sig.split('(')[0]}()"
            out = ""
            with c.transaction(force_rollback=True):
                act_as(c, person)
                try:
                    with c.transaction():
                        out = " ".join(str(r) for r in c.execute(sql, args).fetchall())
                except psycopg.Error as exc:
                    d = exc.diag
                    out = " ".join(filter(None, [d.message_primary, d.message_detail, d.message_hint, str(exc)]))
                    assert not (exc.sqlstate or "").startswith("XX"), f"{role} {sig} {args}: internal error {exc}"
                act_as(c, None)
            calls += 1
            leaked = {s for s in secrets if s in out}
            assert not leaked, f"{role} {sig}{tuple(args)} revealed {leaked}: {out[:300]}"
    assert calls > 60
