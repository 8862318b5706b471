"""Issue 16 (3): every public SQL function, called as random roles with hostile
arguments (property-based, hypothesis). A failing call may only raise our own
SQLSTATE (TRxxx) or PostgreSQL's permission error; an internal error (XX000), an
unvalidated 22xxx/23xxx (it leaks a constraint name), a program limit (54xxx), a bare
P0001 or a timeout is a bug. The functions come from tests/api_allowlist.yml, so an
entry point added there is fuzzed without touching this file.

FUZZ_EXAMPLES sets the calls per function (default 40: ~1,500 calls in `make test`;
`make soak` runs 300 per function, over 10,000 calls). Bugs found here are kept below
as REGRESSIONS and replayed on every run."""
import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import _url, act_as
from soak.api import call_sql, describe, entry_points, is_clean
from tracker.roles import ROLES

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
LOGINS = ROLES + ["authenticator"]
SIGNATURES = entry_points()

_text_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
HOSTILE_TEXT = st.one_of(
    st.none(),
    st.text(_text_chars, max_size=40),
    st.sampled_from(["", " ", "\t\r\n", "'; select 1; --", "%s", "\\", "null", "ＷＩＤＥ", "😀" * 10, "\u202e\u200b",
                     "\x01\x7f\x1b[2J", "a" * 4001, "x" * 100_000, "é" * 1_000_000]),
)
BIG_INT = st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), st.sampled_from([0, -1, 1, 2 ** 31 - 1, -2 ** 31]))
BIG_BIGINT = st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.sampled_from([0, -1, 2 ** 63 - 1, -2 ** 63]))
NUMERIC = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10 ** 6, max_value=10 ** 6),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1e100"), Decimal("-0.001"),
                     Decimal("0.0000001"), Decimal("99999999999.999"), Decimal(0), Decimal(10) ** 20]))
DATES = st.one_of(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
                  st.sampled_from(["infinity", "-infinity", date.today(), date.today() - timedelta(days=1),
                                   date.today() + timedelta(days=1)]))


@pytest.fixture(scope="module")
def world(shared_db):
    """A connection to the shared clone and pools of real ids to aim at (so calls get past 'not found')."""
    with psycopg.connect(_url(shared_db)) as c:
        q = lambda sql: [r[0] for r in c.execute(sql)]  # noqa: E731
        pools = {
            # the demo buyer's own samples, a few in every state (so calls get past scope checks), and others
            "sample": q("""select id from (select s.id, row_number() over (partition by s.state, s.requested_by = b.id
                                                                          order by s.id) as n
                                             from app.samples s, app.staff b where b.email = 'buyer@example.com') x
                            where n <= 3"""),
            "staff": q("select id from app.staff order by id"),
            "location": q("select id from app.locations"),
            "factory": q("select id from app.factories"),
            "supplier": q("select id from app.suppliers order by id limit 20"),
            "category": q("select id from app.categories"),
            "season": q("select id from app.seasons"),
            "photo": q("select id from app.sample_photos order by id limit 20") or [1],
            "attempt": q("select id from app_private.login_attempts order by id desc limit 5") or [1],
            "email": q("select email from app.staff limit 10"),
            "action": q("select distinct action from app.transition_rules"),
            "currency": q("select code from app.currencies") + ["eur", "XXX", "EURO"],
            "person": q("select id || ':' || role from app.staff where active and email = role || '@example.com'"),
        }
        pools["base"] = baseline(pools, q)
        # per action: the demo buyer's samples in a state the action starts from, and the roles that may take it
        pools["rules"] = {a: (q(f"""select s.id from app.samples s join app.staff b on b.id = s.requested_by
                                      where b.email = 'buyer@example.com' and s.state in
                                            (select from_state from app.transition_rules where action = '{a}')
                                      order by s.id limit 12"""),
                              q(f"select distinct unnest(roles)::text from app.transition_rules where action = '{a}'"))
                          for a in pools["action"]}
        described = {sig: describe(c, sig) for sig, _ in SIGNATURES}
        c.rollback()
        yield c, pools, described
        c.rollback()


def baseline(pools: dict, q) -> dict:
    """A valid value for each parameter name we know, so that a call with one or two hostile
    values reaches the code behind the first check."""
    designers = q("select id from app.staff where active and role in ('designer', 'sales_lead', 'sales_executive')")
    return {
        "p_title": st.just("Fuzz wrap dress"), "p_category_id": st.sampled_from(pools["category"]),
        "p_season_id": st.sampled_from(pools["season"]), "p_supplier_id": st.sampled_from(pools["supplier"]),
        "p_on_loan": st.booleans(), "p_unit_cost": st.just(Decimal("12.50")), "p_currency": st.just("EUR"),
        "p_expected_on": st.just(date.today() + timedelta(days=10)), "p_quantity": st.just(1),
        "p_reason": st.just("fuzzing"), "p_location_id": st.sampled_from(pools["location"]),
        "p_holder_id": st.sampled_from(designers), "p_factory_id": st.sampled_from(pools["factory"]),
        "p_courier_ref": st.just("DHL123"), "p_result": st.sampled_from(["pass", "reject"]),
        "p_to_state": st.sampled_from(["requested", "ordered", "received", "with-design", "with-sales",
                                       "at-factory", "returned", "cut-for-production"]),
        "p_sample_id": st.sampled_from(pools["sample"]), "p_photo_id": st.sampled_from(pools["photo"]),
        "p_query": st.sampled_from(["dress", "4421", "#1001", "SR-A-01"]), "p_limit": st.just(50), "p_offset": st.just(0),
        "p_staff_id": st.sampled_from(pools["staff"]), "p_email": st.sampled_from(pools["email"]),
        "p_client_addr": st.just("127.0.0.1"), "p_attempt_id": st.sampled_from(pools["attempt"]),
        "p_password_ok": st.booleans(), "p_lifetime": st.just(timedelta(hours=1)),
        "p_action": st.sampled_from(pools["action"]),
        **{k: st.none() for k in ("p_style_code", "p_note", "p_fx_rate", "p_po_number", "p_return_due_on", "p_notes",
                                   "p_device_token", "p_user_agent", "p_new_password_hash")},
    }


# entry point -> its action in app.transition_rules, where the names differ
ACTION_OF = {"request_sample": "request", "order_sample": "order", "receive_sample": "receive", "withdraw_request": "withdraw",
             "correct_sample": "correct", "record_inspection": "inspect", "override_state": "override"}


def rule_of(sig: str, pools: dict):
    name = sig.split("(")[0].split(".")[-1]
    return pools["rules"].get(ACTION_OF.get(name, name))


def strategy_for(name: str, argtype: str, pools: dict, rule=None):
    """A valid value three times in four, else a hostile one (when we know a valid one)."""
    hostile = hostile_for(name, argtype, pools)
    base = pools["base"].get(name)
    if name == "p_sample_id" and rule and rule[0]:
        base = st.sampled_from(rule[0])
    if base is None:
        return hostile
    return st.integers(0, 3).flatmap(lambda k: hostile if k == 0 else base)


def hostile_for(name: str, argtype: str, pools: dict):
    """Hostile values for one parameter; real ids mixed in, chosen by the parameter's name."""
    ids = next((pools[k] for k in pools if name in (f"p_{k}_id", f"p_{k}")), None)
    if name in ("p_holder_id", "p_staff_id"):
        ids = pools["staff"]
    if argtype in ("bigint", "integer"):
        wide = BIG_BIGINT if argtype == "bigint" else BIG_INT
        return st.one_of(st.sampled_from(ids), wide, st.none()) if ids else st.one_of(wide, st.none())
    if argtype == "text":
        return st.one_of(st.sampled_from(ids), HOSTILE_TEXT) if ids else HOSTILE_TEXT
    if argtype == "numeric":
        return st.one_of(NUMERIC, st.none())
    if argtype == "date":
        return st.one_of(DATES, st.none())
    if argtype == "boolean":
        return st.one_of(st.booleans(), st.none())
    if argtype == "app.qc_result":
        return st.sampled_from(["pass", "reject", None])
    if argtype == "app.sample_state":
        return st.sampled_from(["requested", "ordered", "received", "with-design", "with-sales", "at-factory",
                                "returned", "cut-for-production", None])
    if argtype == "inet":
        return st.one_of(st.ip_addresses().map(str), st.none())
    if argtype == "bigint[]":
        element = st.one_of(st.sampled_from(pools["sample"]), BIG_BIGINT, st.none())
        return st.one_of(st.none(), st.lists(element, max_size=8), st.lists(st.sampled_from(pools["sample"]),
                                                                             min_size=400, max_size=600))
    if argtype == "jsonb":
        # JSON has no Infinity (psycopg would send the token, refused as 22P02 before any function runs)
        scalar = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                           st.floats(allow_nan=False, allow_infinity=False),
                           HOSTILE_TEXT.filter(lambda t: t is None or len(t) < 5000))
        keys = st.one_of(st.sampled_from(["title", "category", "season", "supplier", "unit_cost", "currency",
                                          "expected_on", "quantity", "state", "external_ref", "to_state", "reason",
                                          "location_id", "holder_id", "factory_id", "note", "po_number"]),
                         st.text(_text_chars, max_size=10))
        return st.one_of(st.none(), st.dictionaries(keys, scalar, max_size=8), st.lists(scalar, max_size=3),
                         scalar).map(lambda v: Jsonb(v) if v is not None else None)
    if argtype == "timestamp with time zone":
        return st.one_of(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                      timezones=st.just(timezone.utc)),
                         st.sampled_from(["infinity", "-infinity"]), st.none())
    if argtype == "interval":
        return st.one_of(st.timedeltas(min_value=timedelta(days=-10 ** 6), max_value=timedelta(days=10 ** 6)),
                         st.none())  # no infinite interval before PostgreSQL 17
    raise AssertionError(f"no hostile values for {argtype} ({name}): teach strategy_for this type")


def person_for(c, pools, login: str):
    if login == "authenticator":
        return login
    row = next(p for p in pools["person"] if p.split(":")[1] == login)
    return {"id": int(row.split(":")[0]), "role": login}


def become(c, who):
    if who == "authenticator":
        act_as(c, None)
        c.execute("set local session authorization authenticator")
    else:
        act_as(c, who)


def call_once(c, pools, sig: str, described, login: str, args: list):
    """One call in a rolled-back transaction. Returns (sqlstate or None, message). On success
    the sample it touched still obeys the lifecycle invariant."""
    name, params = described
    with c.transaction(force_rollback=True):
        c.execute("set local statement_timeout = '20s'")
        become(c, person_for(c, pools, login))
        try:
            with c.transaction():
                c.execute(call_sql(name, params), args).fetchall()
            outcome = (None, "")
        except psycopg.Error as exc:
            outcome = (exc.sqlstate, f"{exc.sqlstate}: {exc.diag.message_primary} | {exc.diag.message_detail}")
        act_as(c, None)
        if outcome[0] is None and params and params[0][0] == "p_sample_id" and isinstance(args[0], int):
            bad = c.execute(
                """select s.state::text, e.to_state::text from app.samples s
                     left join lateral (select to_state from app.sample_events where sample_id = s.id
                                         order by id desc limit 1) e on true
                    where s.id = %s and s.state is distinct from e.to_state""", (args[0],)).fetchone()
            assert bad is None, f"{sig} left sample {args[0]} in {bad[0]} but its last event says {bad[1]}"
    return outcome


@pytest.mark.parametrize("sig,logins", SIGNATURES, ids=[s for s, _ in SIGNATURES])
def test_hostile_arguments_never_cause_an_internal_error(world, sig, logins):
    c, pools, described = world
    params = described[sig][1]
    calls = []
    rule = rule_of(sig, pools)
    likely = st.sampled_from(rule[1]) if rule and rule[1] else st.sampled_from(logins)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
              suppress_health_check=list(HealthCheck))
    @given(login=st.integers(0, 3).flatmap(lambda k: st.sampled_from(LOGINS) if k == 0 else likely),
           args=st.tuples(*(strategy_for(n, t, pools, rule) for n, t in params)))
    def fuzz(login, args):
        code, message = call_once(c, pools, sig, described[sig], login, list(args))
        calls.append(code)
        assert code is None or is_clean(code), f"{login} {sig}{args!r:.400} -> internal error {message:.400}"

    fuzz()
    assert len(calls) >= min(EXAMPLES, 2)  # it ran
    if os.environ.get("FUZZ_REPORT"):
        from collections import Counter
        print(f"\n{sig}: {len(calls)} calls {dict(Counter(code or 'ok' for code in calls))}")


# Bugs the fuzzer found, replayed exactly: (login, signature, arguments, the SQLSTATE now raised)
ORDER = "app.order_sample"  # a name: the signature (and trailing parameters added later) come from the allow-list
CORRECT = "app.correct_sample"
LATER = date.today() + timedelta(days=10)
REGRESSIONS = [
    # an infinite exchange rate: 22003 "numeric field overflow" from sample_costs.fx_rate_to_gbp
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("12.50"), "EUR", LATER, 1, Decimal("Infinity"), None, None, None), "TR005"),
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("12.50"), "EUR", LATER, 1, Decimal("NaN"), None, None, None), "TR005"),
    # a rate that rounds to zero at 6 places: 23514 sample_costs_fx_rate_to_gbp_check
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("12.50"), "EUR", LATER, 1, Decimal("0.0000001"), None, None, None), "TR005"),
    # a cost that rounds to zero: 23514 sample_costs_unit_cost_check
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("0.001"), "EUR", LATER, 1, None, None, None, None), "TR005"),
    # a total beyond numeric(14,2): 22003 from the generated total_gbp
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("9999999.00"), "EUR", LATER, 2 ** 31 - 1, None, None, None, None), "TR005"),
    # a 41-character PO number: 23514 sample_costs_po_number_check
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("12.50"), "EUR", LATER, 1, None, "P" * 41, None, None), "TR005"),
    # correcting the quantity of an order into a total beyond numeric(14,2)
    ("buyer", CORRECT, ("correctable-order", None, None, None, None, None, Decimal("9999999999.00"), None, 2 ** 31 - 1,
                        None, None), "TR005"),
    # a 4,001-character rejection reason: 23514 sample_comments_body_check on the rejection comment
    ("qc", "app.record_inspection", ("inspectable", "reject", "a" * 4001, None), "TR005"),
    # positive controls: the same calls with ordinary values go through
    ("buyer", ORDER, ("ordered-sample", 1, Decimal("12.50"), "EUR", LATER, 3, Decimal("0.85"), "P" * 40, None, None), None),
    ("qc", "app.record_inspection", ("inspectable", "reject", "a" * 2000, None), None),
    # an infinite day: 22008 "cannot subtract infinite dates" from app.overdue_hits (issue 12's, found after the merge)
    ("buyer", "app.my_overdue", ("infinity", None), None),
    ("buyer", "app.overdue_hits", (1001, "requested", "-infinity", date.today(), None, None, "infinity"), None),
]
# placeholders above -> a sample of the demo buyer in the state the call needs
AIMS = {"ordered-sample": "requested", "correctable-order": "ordered", "inspectable": "received"}


@pytest.mark.parametrize("login,sig,args,expected", REGRESSIONS, ids=[f"{r[1]}-{r[3]}" for r in REGRESSIONS])
def test_fuzz_regressions(world, login, sig, args, expected):
    c, pools, described = world
    sig = next(s for s, _ in SIGNATURES if s.startswith(sig + "("))
    args = list(args) + [None] * (len(described[sig][1]) - len(args))  # parameters added since: their defaults
    if args and args[0] in AIMS:
        args[0] = c.execute("""select min(s.id) from app.samples s join app.staff b on b.id = s.requested_by
                                where b.email = 'buyer@example.com' and s.state = %s and not s.qc_rejected""",
                            (AIMS[args[0]],)).fetchone()[0]
    code, message = call_once(c, pools, sig, described[sig], login, args)
    assert code == expected, message


def test_the_checker_flags_an_internal_error(world):
    """Positive control: the rule above does reject an unvalidated error."""
    c, *_ = world
    with c.transaction(force_rollback=True):
        with pytest.raises(psycopg.Error) as err:
            with c.transaction():
                c.execute("select 1 / 0")
    assert not is_clean(err.value.sqlstate) and is_clean("TR005") and not is_clean("XX000")
