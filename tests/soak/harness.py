"""The concurrency soak (issue 16, part 1): N sessions as random staff doing random legal
and illegal things at once - lifecycle actions (mostly ones the database offers the person
now, some it will refuse), new requests, comments, photos, staff edits, bulk moves
(app.bulk_act, both modes), extending or marking chased what the person must chase, rows of
the old spreadsheet imported (new and again), and calls of every public function in
tests/api_allowlist.yml with hostile arguments - for a fixed time, then
the invariants are checked. Used by tests/soak/test_soak.py (short mode, `make test`) and
`make soak` (long mode): `python -m tests.soak.harness --seconds 60` prints the figures.

What a session may see: our SQLSTATEs, 42501, and 40001/40P01 (retried and counted). An
internal error is recorded with its statement and fails the run."""
import io
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from PIL import Image
from psycopg.types.json import Jsonb

from tests.soak.api import call_sql, describe, entry_points, is_clean

STATES = ["requested", "ordered", "received", "with-design", "with-sales", "at-factory", "returned",
          "cut-for-production"]


def _png(colour) -> tuple[bytes, bytes]:
    out, thumb = io.BytesIO(), io.BytesIO()
    img = Image.new("RGB", (32, 24), colour)
    img.save(out, "PNG")
    img.save(thumb, "JPEG")
    return out.getvalue(), thumb.getvalue()


PHOTO, THUMB = _png((120, 60, 200))


@dataclass
class World:
    """What the sessions aim at, read once as the admin; sessions renewed when one ends."""
    admin_url: str
    people: list = field(default_factory=list)       # (staff id, role)
    tokens: dict = field(default_factory=dict)       # staff id -> session token
    samples: list = field(default_factory=list)
    ids: dict = field(default_factory=dict)          # kind -> ids
    entry: list = field(default_factory=list)        # (signature, logins, name, params)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self):
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            q = lambda sql: [r[0] for r in c.execute(sql)]  # noqa: E731
            self.people = [tuple(r) for r in c.execute("select id, role::text from app.staff where active order by id")]
            for sid, _ in self.people:
                self.tokens[sid] = c.execute("select app_private.start_session(%s, interval '1 day')",
                                             (sid,)).fetchone()[0]
            self.samples = q("select id from app.samples where state not in ('returned', 'cut-for-production') "
                             "order by id") + q("select id from app.samples order by id limit 20")
            self.ids = {
                "supplier": q("select id from app.suppliers where active limit 50"),
                "location": q("select id from app.locations"),
                "factory": q("select id from app.factories where active"),
                "designer": q("select id from app.staff where active and role = 'designer'"),
                "sales": q("select id from app.staff where active and role in ('sales_lead', 'sales_executive')"),
                "category": q("select id from app.categories"),
                "season": q("select id from app.seasons"),
                "staff": [p[0] for p in self.people],
                # names as the old spreadsheet has them (the soak's imports)
                "category_name": q("select name from app.categories"),
                "season_code": q("select code from app.seasons"),
                "team_code": q("select code from app.teams"),
                "location_code": q("select code from app.locations"),
            }
            self.entry = [(sig, logins, *describe(c, sig)) for sig, logins in entry_points()]

    def renew(self, staff_id: int) -> str:
        """A person whose session ended (an admin reset their password, ...) signs in again."""
        with self.lock, psycopg.connect(self.admin_url, autocommit=True) as c:
            self.tokens[staff_id] = c.execute("select app_private.start_session(%s, interval '1 day')",
                                              (staff_id,)).fetchone()[0]
            return self.tokens[staff_id]


# ------------------------------------------------------------------ what a session does
def lifecycle_call(action: str, sid: int, rnd: random.Random, w: World):
    """SQL and arguments for an action on a sample, with plausible values; None if unknown."""
    later = date.today() + timedelta(days=rnd.randint(1, 30))
    pick = lambda k: rnd.choice(w.ids[k])  # noqa: E731
    calls = {
        "order": ("select app.order_sample(p_sample_id => %s, p_supplier_id => %s, p_unit_cost => %s, "
                  "p_currency => %s, p_expected_on => %s)",
                  (sid, pick("supplier"), Decimal(rnd.randint(100, 99999)) / 100, rnd.choice(["EUR", "GBP", "USD"]),
                   later)),
        "withdraw": ("select app.withdraw_request(%s, %s)", (sid, "soak: not needed")),
        "cancel_order": ("select app.cancel_order(%s, %s)", (sid, "soak: not needed")),
        "receive": ("select app.receive_sample(%s, %s)", (sid, pick("location"))),
        "hand_to_design": ("select app.hand_to_design(%s, %s)", (sid, pick("designer"))),
        "hand_to_sales": ("select app.hand_to_sales(%s, %s)", (sid, pick("sales"))),
        "hand_back": ("select app.hand_back(%s, %s)", (sid, pick("location"))),
        "send_to_factory": ("select app.send_to_factory(%s, %s)", (sid, pick("factory"))),
        "return_from_factory": ("select app.return_from_factory(%s, %s)", (sid, pick("location"))),
        "return_to_supplier": ("select app.return_to_supplier(%s, %s)", (sid, f"DHL{rnd.randint(1, 10 ** 6)}")),
        "approve_for_production": ("select app.approve_for_production(%s)", (sid,)),
        "buy_out": ("select app.buy_out(%s)", (sid,)),
        "cut_for_production": ("select app.cut_for_production(%s)", (sid,)),
        "inspect": ("select app.record_inspection(%s, %s::app.qc_result, %s)",
                    (sid, rnd.choice(["pass", "pass", "pass", "reject"]), "soak: seam open")),
        "correct": ("select app.correct_sample(p_sample_id => %s, p_title => %s)", (sid, f"Soak dress {rnd.random()}")),
        "confirm_handover": ("select app.confirm_handover(%s)", (sid,)),
        "override": ("select app.override_state(%s, %s::app.sample_state, %s, %s, %s, %s, %s, %s)",
                     (sid, rnd.choice(STATES), "soak: director's decision", pick("location"),
                      pick(rnd.choice(["designer", "sales"])), pick("factory"), "DHL1", later)),
    }
    return calls.get(action)


ALL_ACTIONS = ["order", "withdraw", "cancel_order", "receive", "hand_to_design", "hand_to_sales", "hand_back",
               "send_to_factory", "return_from_factory", "return_to_supplier", "approve_for_production", "buy_out",
               "cut_for_production", "inspect", "correct", "override", "confirm_handover"]


def do_transition(conn, rnd, w, me):
    sid = rnd.choice(w.samples)
    offered = [r[0] for r in conn.execute("select action from app.available_actions(%s)", (sid,))]
    action = rnd.choice(offered) if offered and rnd.random() < 0.8 else rnd.choice(ALL_ACTIONS)
    call = lifecycle_call(action, sid, rnd, w)
    if call is None:
        return "skipped", None
    value = conn.execute(*call).fetchone()[0]
    return ("inspection" if action == "inspect" else "transition"), value  # an inspection returns its own id


def do_request(conn, rnd, w, me):
    sid = conn.execute("select app.request_sample(%s, %s, %s, %s)",
                       (f"Soak request {rnd.randint(1, 10 ** 6)}", rnd.choice(w.ids["category"]),
                        rnd.choice(w.ids["season"]), rnd.choice(w.ids["supplier"]))).fetchone()[0]
    with w.lock:
        w.samples.append(sid)
    return "request", sid


def do_comment(conn, rnd, w, me):
    conn.execute("insert into app.sample_comments (sample_id, author_id, body) values (%s, app.current_staff_id(), %s)",
                 (rnd.choice(w.samples), f"soak comment {rnd.random()} ünïcödé 😀"))
    return "comment", None


def do_photo(conn, rnd, w, me):
    conn.execute("insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, thumbnail) "
                 "values (%s, app.current_staff_id(), 'image/png', 32, 24, %s, %s)",
                 (rnd.choice(w.samples), PHOTO, THUMB))
    return "photo", None


def do_staff_edit(conn, rnd, w, me):
    target = rnd.choice(w.ids["staff"])
    n = conn.execute("update app.staff set full_name = %s where id = %s and id <> app.current_staff_id()",
                     (f"Soak Person {rnd.randint(1, 999)}", target)).rowcount
    return ("staff_edit" if n else "staff_edit_nothing"), None


def do_search(conn, rnd, w, me):
    conn.execute("select count(*) from app.search_samples(%s)", (rnd.choice(["dress", "soak", "1001", "wool"]),))
    conn.execute("select count(*) from app.sample_overview where state = %s::app.sample_state", (rnd.choice(STATES),))
    return "read", None


def hostile(argtype: str, name: str, rnd: random.Random, w: World):
    if rnd.random() < 0.15:
        return None
    if argtype in ("bigint", "integer"):
        if name == "p_sample_id":
            return rnd.choice(w.samples)
        return rnd.choice([0, -1, 1, rnd.randint(1, 3000), 2 ** 31 - 1])
    if argtype == "text":
        return rnd.choice(["", " ", "x" * 5000, "é😀\u202e", "'; select 1; --", "EUR", "soak", "pass"])
    if argtype == "numeric":
        return rnd.choice([Decimal("NaN"), Decimal("-1"), Decimal("1e20"), Decimal("12.50"), Decimal("0.001")])
    if argtype == "date":
        return rnd.choice([date(1, 1, 1), date(9999, 12, 31), date.today()])
    if argtype == "boolean":
        return rnd.random() < 0.5
    if argtype == "app.qc_result":
        return rnd.choice(["pass", "reject"])
    if argtype == "app.sample_state":
        return rnd.choice(STATES)
    if argtype == "inet":
        return rnd.choice(["127.0.0.1", "::1"])
    if argtype == "interval":
        return rnd.choice([timedelta(hours=1), timedelta(days=-1)])
    if argtype == "bigint[]":
        return rnd.sample(w.samples, min(len(w.samples), rnd.choice([0, 1, 5, 30])))
    if argtype == "jsonb":
        return Jsonb(rnd.choice([{}, {"title": "x" * 300}, {"quantity": -1}, [1, 2], "x", {"to_state": "nowhere"}]))
    if argtype == "timestamp with time zone":
        return rnd.choice(["infinity", "2026-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
    return None


def do_api(conn, rnd, w, me):
    """Any public function with hostile arguments, in a transaction that is rolled back."""
    sig, logins, name, params = rnd.choice([e for e in w.entry if e[1] != ("authenticator",)])
    args = [hostile(t, n, rnd, w) for n, t in params]
    with conn.transaction(force_rollback=True):
        conn.execute(call_sql(name, params), args).fetchall()
    return "api_call", None


# the sample room (issue 14): one move for many samples, legal ones mostly for the person
BULK_VALUES = {"receive": "location", "hand_to_design": "designer", "hand_to_sales": "sales", "hand_back": "location",
               "send_to_factory": "factory", "return_from_factory": "location", "return_to_supplier": None,
               "confirm_handover": None}
BULK_FIELD = {"location": "location_id", "designer": "holder_id", "sales": "holder_id", "factory": "factory_id"}


def do_bulk(conn, rnd, w, me):
    """app.bulk_act on 2-30 samples, "do the others" or all-or-nothing (TR016, nothing changed)."""
    ids = rnd.sample(w.samples, min(len(w.samples), rnd.randint(2, 30)))
    action = rnd.choice(list(BULK_VALUES))
    kind = BULK_VALUES[action]
    values = ({BULK_FIELD[kind]: rnd.choice(w.ids[kind])} if kind else
              {"courier_ref": f"DHL{rnd.randint(1, 10 ** 6)}"} if action == "return_to_supplier" else {})
    rows = conn.execute("select ok, event_id from app.bulk_act(%s, %s, %s, %s)",
                        (action, ids, Jsonb(values), rnd.random() < 0.3)).fetchall()
    return "bulk", [e for ok, e in rows if ok]


def do_overdue(conn, rnd, w, me):
    """Extend or mark chased one of the samples the person must chase today (issue 12), if any."""
    mine = conn.execute("select sample_id, rule_code, due_on from app.my_overdue(current_date) "
                        "order by sample_id limit 20").fetchall()
    if not mine:
        return "overdue_nothing", None
    sid, rule, due = rnd.choice(mine)
    if rnd.random() < 0.5:
        conn.execute("select app.extend_due_date(%s, %s, %s, %s)",
                     (sid, rule, date.today() + timedelta(days=rnd.randint(1, 30)), "soak: supplier asked for more time"))
        return "extend", None
    conn.execute("select app.mark_chased(%s, %s, %s)", (sid, rule, "soak: rang them"))
    return "chased", None


def do_import(conn, rnd, w, me):
    """One row of the old spreadsheet through app.import_sample: a new reference (a sample and its
    import event) or one imported before (nothing); a misspelt season now and then (TR005)."""
    ref = f"SOAK-{rnd.randint(1, 400)}"
    row = {"title": f"Imported soak sample {ref}", "category": rnd.choice(w.ids["category_name"]),
           "season": rnd.choice(w.ids["season_code"] + ["SS 2099"]), "team": rnd.choice(w.ids["team_code"]),
           "state": rnd.choice(["requested", "received"]), "location": rnd.choice(w.ids["location_code"])}
    sid, created = conn.execute("select sample_id, created from app.import_sample(%s, %s)", (ref, Jsonb(row))).fetchone()
    if created:
        with w.lock:
            w.samples.append(sid)
    return ("import" if created else "import_again"), sid if created else None


KINDS = [(do_transition, 50), (do_request, 6), (do_comment, 10), (do_photo, 4), (do_staff_edit, 3), (do_search, 10),
         (do_api, 17), (do_bulk, 4), (do_overdue, 3), (do_import, 3)]


# ------------------------------------------------------------------ running it
@dataclass
class Report:
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)      # kind or SQLSTATE -> count
    retries: Counter = field(default_factory=Counter)       # 40001 / 40P01
    events: set = field(default_factory=set)                # event ids a call acknowledged
    requested: set = field(default_factory=set)             # sample ids a request acknowledged
    inspections: set = field(default_factory=set)           # inspection ids a QC call acknowledged
    imported: set = field(default_factory=set)              # sample ids an import acknowledged
    internal: list = field(default_factory=list)            # (statement kind, sqlstate, message)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def actions(self) -> int:
        return sum(self.outcomes.values())


def session_loop(auth_url: str, w: World, report: Report, deadline: float, seed: int):
    rnd = random.Random(seed)
    kinds, weights = zip(*KINDS)
    with psycopg.connect(auth_url) as conn:
        while time.monotonic() < deadline:
            me = rnd.choice(w.people)
            kind = rnd.choices(kinds, weights)[0]
            state = rnd.getstate()
            for attempt in range(5):
                rnd.setstate(state)  # a retry repeats the same action
                try:
                    with conn.transaction():
                        conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                                     (me[1], w.tokens[me[0]]))
                        outcome, value = kind(conn, rnd, w, me)
                    with report.lock:
                        report.outcomes[outcome] += 1
                        if outcome == "transition":
                            report.events.add(value)
                        elif outcome == "bulk":
                            report.events.update(value)
                        elif outcome == "import":
                            report.imported.add(value)
                        elif outcome == "request":
                            report.requested.add(value)
                        elif outcome == "inspection":
                            report.inspections.add(value)
                    break
                except psycopg.Error as exc:
                    code = exc.sqlstate
                    with report.lock:
                        if code in ("40001", "40P01"):
                            report.retries[code] += 1
                            continue
                        report.outcomes[code or "no sqlstate"] += 1
                        if not is_clean(code, concurrent=True):
                            report.internal.append((kind.__name__, code, str(exc)[:300]))
                    if code == "TR010":  # the person's session ended (reset, role change): sign in again
                        w.renew(me[0])
                    break


def run(admin_url: str, auth_url: str, seconds: float, sessions: int = 20, seed: int = 16) -> Report:
    w = World(admin_url)
    w.load()
    report = Report()
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    threads = [threading.Thread(target=session_loop, args=(auth_url, w, report, deadline, seed + i), daemon=True)
               for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    report.seconds = time.monotonic() - start
    assert not any(t.is_alive() for t in threads), "a soak session hung"
    return report


# ------------------------------------------------------------------ invariants
def check_invariants(conn, before: dict, report: Report) -> list[str]:
    """Every broken invariant, as a sentence (empty: all hold)."""
    problems = []
    q1 = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    bad = q1("""select count(*) from app.samples s
                 left join lateral (select to_state from app.sample_events e where e.sample_id = s.id
                                     order by e.id desc limit 1) last on true
                where last.to_state is distinct from s.state""")
    if bad:
        problems.append(f"{bad} samples are in a state that differs from their last event's to-state")
    new_events = {r[0] for r in conn.execute("select id from app.sample_events where id > %s "
                                             "and action not in ('request', 'inspect', 'import')", (before["event"],))}
    new_imports = {r[0] for r in conn.execute("select sample_id from app.sample_events where id > %s "
                                              "and action = 'import'", (before["event"],))}
    if new_imports != report.imported:
        problems.append(f"imports written {len(new_imports)} != acknowledged {len(report.imported)}")
    new_inspections = {r[0] for r in conn.execute("select (details ->> 'inspection_id')::bigint from app.sample_events "
                                                  "where id > %s and action = 'inspect'", (before["event"],))}
    if new_inspections != report.inspections:
        problems.append(f"inspections written {len(new_inspections)} != acknowledged {len(report.inspections)}")
    if new_events != report.events:
        problems.append(f"events written {len(new_events)} != transitions acknowledged {len(report.events)} "
                        f"(unacknowledged {sorted(new_events - report.events)[:5]}, "
                        f"lost {sorted(report.events - new_events)[:5]})")
    new_requests = {r[0] for r in conn.execute("select sample_id from app.sample_events where id > %s and "
                                               "action = 'request'", (before["event"],))}
    if new_requests != report.requested:
        problems.append(f"requests written {len(new_requests)} != acknowledged {len(report.requested)}")
    # every change has its audit row: state changes (samples UPDATE whose state differs), new samples,
    # comments and photos, each against the rows that appeared
    moved = q1("select count(*) from app.sample_events where id > %s and from_state is distinct from to_state "
               "and action not in ('request', 'import')", before["event"])
    audited_moves = q1("""select count(*) from audit.log where id > %s and table_name = 'app.samples' and op = 'UPDATE'
                           and old_row ->> 'state' is distinct from new_row ->> 'state'""", before["audit"])
    if moved != audited_moves:
        problems.append(f"{moved} state changes but {audited_moves} audited state changes")
    for table, key in (("app.samples", "sample"), ("app.sample_comments", "comment"), ("app.sample_photos", "photo")):
        rows = q1(f"select count(*) from {table} where id > %s", before[key])
        audited = q1("select count(*) from audit.log where id > %s and table_name = %s and op = 'INSERT'",
                     before["audit"], table)
        if rows != audited:
            problems.append(f"{rows} new rows in {table} but {audited} audited inserts")
    ok, checked, broken, why = conn.execute("select ok, rows_checked, first_broken_id, problem from audit.verify_chain()").fetchone()
    if not ok:
        problems.append(f"audit chain broken at {broken}: {why}")
    deadlocks = q1("select deadlocks from pg_stat_database where datname = current_database()") - before["deadlocks"]
    if deadlocks or report.retries["40P01"]:
        problems.append(f"{deadlocks} deadlocks (server), {report.retries['40P01']} seen by sessions")
    if report.internal:
        problems.append(f"{len(report.internal)} internal errors, e.g. {report.internal[:3]}")
    return problems


def snapshot(conn) -> dict:
    q1 = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    return {"event": q1("select coalesce(max(id), 0) from app.sample_events"),
            "audit": q1("select coalesce(max(id), 0) from audit.log"),
            "sample": q1("select coalesce(max(id), 0) from app.samples"),
            "comment": q1("select coalesce(max(id), 0) from app.sample_comments"),
            "photo": q1("select coalesce(max(id), 0) from app.sample_photos"),
            "deadlocks": q1("select deadlocks from pg_stat_database where datname = current_database()")}


def summary(report: Report) -> str:
    acked = len(report.events) + len(report.requested) + len(report.inspections) + len(report.imported)
    return (f"{report.actions} actions in {report.seconds:.1f} s ({report.actions / report.seconds:.0f}/s), "
            f"{acked} transitions acknowledged ({acked / report.seconds:.1f}/s), retries {dict(report.retries)}, "
            f"outcomes {dict(report.outcomes.most_common())}")
