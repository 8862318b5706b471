"""Realtime (issue 11): the outbox and its signals in SQL, then real websockets against
the app served on loopback, both by Werkzeug (make run) and by gunicorn (make serve),
on a private clone of the demo database. Every "receives nothing" has a positive
control: another role, or the same role later, receives the same kind of message."""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from werkzeug.serving import make_server

from conftest import Staff, _url, act_as, cloned_web_app
from helpers import Lifecycle
from realtime_support import LiveClient, session_cookie
from simple_websocket import ConnectionError as Refused
from tracker.roles import ROLES
from tracker.web import realtime

ROOT = Path(__file__).resolve().parent.parent
PNG = bytes.fromhex("89504e470d0a1a0a")  # the table checks type and size, not pixels

# an *ordered* sample of the demo buyer's team (WW): who sees it, who sees its costs
SEES_ORDERED = {"buyer", "senior_buyer", "designer", "sales_lead", "sales_executive", "logistics", "finance",
                "ops_director", "md", "system_admin"}
SEES_COSTS = {"buyer", "senior_buyer", "sales_lead", "finance", "ops_director", "md"}


# --------------------------------------------------------------------------------------
# SQL level: what leaves a signal, and what the NOTIFY payload says
# --------------------------------------------------------------------------------------
def sequence(conn) -> int:
    """What each relay does every few tens of milliseconds: move the committed signals from the
    inbox into the outbox, in commit order."""
    return conn.execute("select app_private.sequence_realtime()").fetchone()[0]


def outbox(conn, since):
    with psycopg.connect(_url(conn.info.dbname), autocommit=True) as relay:  # as a relay does: its own transaction
        sequence(relay)
    return conn.execute("select kind, sample_id, ref_id from app.realtime_events where id > %s order by id",
                        (since,)).fetchall()


def test_every_change_a_page_shows_leaves_one_signal_per_thing_per_transaction(fresh_db):
    conn = fresh_db
    life = Lifecycle(conn)
    sid = life.make("ordered")  # one transaction: the request and the order, with its costing
    conn.commit()
    assert outbox(conn, 0)[-2:] == [("sample", sid, None), ("cost", sid, None)]
    top = conn.execute("select max(id) from app.realtime_events").fetchone()[0]
    # a transition updates the sample and writes an event: one 'sample' signal
    life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))
    assert outbox(conn, top) == []  # nothing before the commit
    conn.commit()
    assert outbox(conn, top) == [("sample", sid, None)]
    top = conn.execute("select max(id) from app.realtime_events").fetchone()[0]
    buyer = Staff(conn).get("buyer")
    cid = life.call(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'Hem?') "
                           "returning id", (sid, buyer["id"]))
    conn.commit()
    pid = life.call(buyer, "insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, "
                           "thumbnail) values (%s, %s, 'image/png', 1, 1, %s, %s) returning id",
                    (sid, buyer["id"], PNG, PNG))
    conn.commit()
    life.call("finance", "update app.sample_costs set po_number = 'PO-RT-1' where sample_id = %s returning 1", (sid,))
    conn.commit()
    iid = life.call("qc", "select app.record_inspection(%s, 'pass')", (sid,))
    conn.commit()
    assert outbox(conn, top) == [("comment", sid, cid), ("photo", sid, pid), ("cost", sid, None),
                                 ("inspection", sid, iid), ("sample", sid, None)]
    # a rolled-back change leaves nothing
    top = conn.execute("select max(id) from app.realtime_events").fetchone()[0]
    life.call(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'oops') "
                     "returning id", (sid, buyer["id"]))
    conn.rollback()
    assert outbox(conn, top) == []


def test_writers_do_not_wait_for_each_other_and_ids_follow_commit_order(template):
    """Two writers: the second commits while the first is still open (no lock between writers
    of different samples), and the outbox ids are in the order the commits became visible to
    the sequencer, whoever wrote first."""
    name = "tracker_test_realtime_order"
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'create database "{name}" template "{template}"')
    try:
        with psycopg.connect(_url(name)) as a, psycopg.connect(_url(name)) as b, \
                psycopg.connect(_url(name), autocommit=True) as seq:
            buyer = Staff(a).get("buyer")
            s1, s2 = [r[0] for r in a.execute("select id from app.samples order by id limit 2").fetchall()]
            a.rollback()
            sequence(seq)                                    # start from an empty inbox
            top = seq.execute("select app_private.realtime_high_water()").fetchone()[0]
            comment = "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'x')"
            act_as(a, buyer)
            a.execute(comment, (s1, buyer["id"]))          # a writes first and stays open
            act_as(b, buyer)
            b.execute(comment, (s2, buyer["id"]))
            t = threading.Thread(target=b.commit)
            t.start()
            t.join(5)
            assert not t.is_alive()                          # b did not wait for a
            assert sequence(seq) == 1                        # only b's signal has committed
            a.commit()
            assert sequence(seq) == 1
            rows = seq.execute("select sample_id from app.realtime_events where id > %s order by id",
                               (top,)).fetchall()
            assert [r[0] for r in rows] == [s2, s1]
            assert sequence(seq) == 0                        # each signal moves once
            assert seq.execute("select count(*) from app_private.realtime_inbox").fetchone()[0] == 0
    finally:
        with psycopg.connect(_url("postgres"), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def test_one_sequencer_at_a_time_and_ids_become_visible_as_a_prefix(fresh_db):
    """A second sequencer never waits for the first and never moves a row twice; the first's ids
    are invisible until it commits, and nothing after them can become visible before them."""
    conn = fresh_db
    life = Lifecycle(conn)
    url = _url(conn.info.dbname)
    with psycopg.connect(url, autocommit=True) as first, psycopg.connect(url, autocommit=True) as second:
        sequence(second)                               # start from an empty inbox
        sid = life.make("ordered")                     # a sample and a costing signal
        conn.commit()
        top = second.execute("select app_private.realtime_high_water()").fetchone()[0]
        # a sequencer whose statement goes on after its move: it holds the lock until it ends
        moved = []
        slow = threading.Thread(target=lambda: moved.append(first.execute(
            "select app_private.sequence_realtime(), pg_sleep(2)").fetchone()[0]))
        slow.start()
        deadline = time.monotonic() + 5
        while not second.execute("select count(*) from pg_locks where locktype = 'advisory' and granted"
                                 ).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))
        conn.commit()                                  # a third signal arrives meanwhile
        t = time.monotonic()
        assert sequence(second) == 0                   # the lock is taken: it skips, at once
        assert time.monotonic() - t < 1
        assert second.execute("select app_private.realtime_high_water()").fetchone()[0] == top  # not yet visible
        slow.join(10)
        assert moved == [2]
        assert second.execute("select app_private.realtime_high_water()").fetchone()[0] == top + 2
        assert sequence(second) == 1
        kinds = second.execute("select kind from app.realtime_events where id > %s order by id", (top,)).fetchall()
        assert [k[0] for k in kinds] == ["sample", "cost", "sample"]
        # a batch is capped; the rest waits for the next run, oldest first
        for body in ("a", "b", "c"):
            buyer = Staff(conn).get("buyer")
            life.call(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, %s) "
                             "returning id", (sid, buyer["id"], body))
            conn.commit()
        assert second.execute("select app_private.sequence_realtime(2)").fetchone()[0] == 2
        assert second.execute("select app_private.sequence_realtime(2)").fetchone()[0] == 1
        with pytest.raises(psycopg.Error) as err:
            second.execute("select app_private.sequence_realtime(0)")
        assert err.value.sqlstate == "TR020"


def test_only_the_web_login_may_run_the_sequencer(fresh_db):
    """Staff roles cannot move, forge or read inbox rows; the authenticator may run the
    sequencer (positive control) and nothing else on the inbox."""
    conn = fresh_db
    conn.commit()
    for role in ROLES:
        for sql in ("select app_private.sequence_realtime()",
                    "select * from app_private.realtime_inbox",
                    "insert into app_private.realtime_inbox (sample_id, kind) values (1, 'sample')",
                    "insert into app.realtime_events (sample_id, kind) values (1, 'sample')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"set local role {role}")
                conn.execute(sql)
    with psycopg.connect(_url(conn.info.dbname, "authenticator"), autocommit=True) as web:
        assert web.execute("select app_private.sequence_realtime()").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            web.execute("select * from app_private.realtime_inbox")


def test_realtime_messages_depend_only_on_role_and_team(conn):
    """The relay shares one query per (role, team): that is sound only while no policy
    behind app.realtime_messages looks at the person (beyond 'is there one')."""
    tables = ["realtime_events", "samples", "sample_costs", "sample_events", "sample_comments", "sample_photos",
              "qc_inspections", "staff", "teams", "categories", "seasons", "suppliers", "locations", "factories"]
    if True:
        rows = conn.execute("select tablename, policyname, coalesce(qual, '') from pg_policies where schemaname = 'app' "
                         "and tablename = any(%s) and cmd in ('SELECT', 'ALL') and permissive = 'PERMISSIVE'",
                         (tables,)).fetchall()
    assert len(rows) > len(tables)  # the policies are there (positive control)
    personal = [(t, p) for t, p, q in rows if "current_staff_id" in q]
    assert personal == [], f"policies that depend on the person: {personal}; group subscribers by person instead"


# --------------------------------------------------------------------------------------
# Websockets against a served app
# --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Live:
    def __init__(self, base, app, dbname, kind):
        self.base, self.app, self.dbname, self.kind = base, app, dbname, kind
        self.admin = psycopg.connect(_url(dbname), autocommit=True)
        self.people = Staff(self.admin)
        self.clients: list[LiveClient] = []

    def token(self, who: str) -> str:
        person = self.people.get(who)
        return self.admin.execute("select app_private.start_session(%s)", (person["id"],)).fetchone()[0]

    def client(self, who: str, since=None, token=None) -> LiveClient:
        c = LiveClient(self.base, session_cookie(self.app, token or self.token(who)), since=since)
        self.clients.append(c)
        return c.hello()

    def act(self, who, sql, params=()):
        """One committed statement as a persona (the web app's path: authenticator, role, session)."""
        with psycopg.connect(_url(self.dbname)) as c:
            act_as(c, self.people.get(who) if isinstance(who, str) else who)
            cur = c.execute(sql, params)
            row = cur.fetchone() if cur.description else None
            c.commit()
            return row[0] if row else None

    def make(self, state, **kw):
        with psycopg.connect(_url(self.dbname)) as c:
            sid = Lifecycle(c).make(state, **kw)
            c.commit()
        sequence(self.admin)  # its signals are in the outbox before the test goes on, as moments later
        return sid

    def visible_ids(self, who, since):
        with psycopg.connect(_url(self.dbname)) as c:
            act_as(c, self.people.get(who))
            return [r[0] for r in c.execute("select id from app.realtime_messages where id > %s order by id",
                                            (since,)).fetchall()]

    def close(self):
        for c in self.clients:
            c.close()
        self.admin.close()


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def live(request, template):
    kind = request.param
    with cloned_web_app(template, f"tracker_test_realtime_{kind}") as app:
        if kind == "werkzeug":
            srv = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=srv.serve_forever, daemon=True)
            thread.start()
            base = f"http://127.0.0.1:{srv.server_port}"
        else:
            port = free_port()
            env = dict(os.environ, SECRET_KEY="test", APP_DATABASE_URL=app.config["APP_DATABASE_URL"])
            proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *serve_args(port), "tracker.web:create_app()"],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            base = f"http://127.0.0.1:{port}"
            wait_for_port(port, proc)
        lv = Live(base, app, app.dbname, kind)
        try:
            yield lv
        finally:
            lv.close()
            if kind == "werkzeug":
                srv.shutdown()
                if "realtime" in app.extensions:
                    app.extensions["realtime"].stop()
            else:
                proc.terminate()
                proc.wait(10)


def serve_args(port: int) -> list[str]:
    """What `make serve` runs (two workers: two relays), read from the Makefile."""
    make = (ROOT / "Makefile").read_text()
    line = re.search(r"^SERVE_ARGS := (.*)$", make, re.M).group(1)
    args = line.replace("$(SERVE_WORKERS)", "2").replace("$(SERVE_THREADS)", "64").split()
    return args + ["--bind", f"127.0.0.1:{port}"]


def wait_for_port(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def kinds_for(client, sid):
    return sorted({e["kind"] for e in client.events if e["sample"] == sid})


def test_authorisation_matrix_every_role_every_kind(live):
    """12 roles x (comment, photo, cost, transition, inspection) on one sample: each
    receives exactly what its policies let it SELECT, and never a hidden cost value."""
    sid = live.make("ordered")
    clients = {r: live.client(r) for r in ROLES}
    start = max(c.cursor for c in clients.values())
    buyer = live.people.get("buyer")
    # phase 1: the sample is ordered (QC and the factory liaison cannot see it yet)
    live.act(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'Check the hem')",
             (sid, buyer["id"]))
    live.act(buyer, "insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, "
                    "thumbnail, caption) values (%s, %s, 'image/png', 1, 1, %s, %s, 'front')",
             (sid, buyer["id"], PNG, PNG))
    live.act("finance", "update app.sample_costs set po_number = 'PO-SECRET-77' where sample_id = %s returning 1",
             (sid,))
    assert clients["md"].pump(5, until=lambda c: len(kinds_for(c, sid)) == 3)
    for c in clients.values():
        c.pump(0.3)
    for role, c in clients.items():
        want = sorted(({"comment", "photo"} if role in SEES_ORDERED else set())
                      | ({"cost"} if role in SEES_COSTS else set()))
        assert kinds_for(c, sid) == want, role
    # phase 2: received (now everyone sees it), then inspected
    phase2 = max(clients["md"].ids())
    live.act("logistics", "select app.receive_sample(%s, (select min(id) from app.locations))", (sid,))
    live.act("qc", "select app.record_inspection(%s, 'pass')", (sid,))
    for c in clients.values():
        assert c.pump(5, until=lambda c: "inspection" in kinds_for(c, sid))
        c.pump(0.2)
    for role, c in clients.items():
        assert {"sample", "inspection"} <= set(kinds_for(c, sid)), role
        states = [e["data"]["state"] for e in c.events if e["sample"] == sid and e["kind"] == "sample"]
        assert states and states[-1] == "received", role
        totals = {e["data"]["total_gbp"] for e in c.events if e["sample"] == sid and e["kind"] == "sample"}
        raw = json.dumps(c.events)
        if role in SEES_COSTS:
            assert None not in totals and "PO-SECRET-77" in raw, role
        else:
            assert totals == {None} and "PO-SECRET-77" not in raw and "unit_cost" not in raw, role
    # what each received is exactly what it can SELECT from the outbox view: none extra, none
    # missed (QC and the factory liaison only from phase 2: they see phase 1's rows *now*)
    top = max(clients["md"].ids())
    for role, c in clients.items():
        since = start if role in SEES_ORDERED else phase2
        got = [i for i in c.ids() if since < i <= top]
        assert got == [i for i in live.visible_ids(role, since) if i <= top], role


def test_a_sample_the_role_cannot_see_sends_nothing(live):
    sid = live.make("ordered")
    fl, logistics = live.client("factory_liaison"), live.client("logistics")
    buyer = live.people.get("buyer")
    live.act(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'Secret hem note')",
             (sid, buyer["id"]))
    assert logistics.pump(5, until=lambda c: sid in {e["sample"] for e in c.events})  # positive control
    fl.pump(0.5)
    assert sid not in {e["sample"] for e in fl.events}
    assert "Secret hem note" not in json.dumps(fl.events)


def test_subscribers_with_the_same_security_context_share_one_query(live):
    if live.kind != "werkzeug":
        pytest.skip("counts the in-process relay's queries")
    clients = [live.client("buyer"), live.client("buyer"), live.client("buyer"),
               live.client("logistics"), live.client("logistics"), live.client("md")]
    relay = live.app.extensions["realtime"]
    for c in live.clients:
        c.pump(0.1)
    before = dict(relay.stats)
    contexts = {(c.role, c.team_id) for c in relay.subs if c.closed is None}
    sid = live.make("ordered")  # request + order: one or two batches
    for c in clients:
        assert c.pump(5, until=lambda c: sid in {e["sample"] for e in c.events})
    with relay.lock:  # the fan-out to the other groups may still be running
        batches = relay.stats["batches"] - before["batches"]
        queries = relay.stats["group_queries"] - before["group_queries"]
    assert batches >= 1
    assert queries == batches * len(contexts)
    assert len(contexts) < len(relay.subs)


def test_a_foreign_origin_or_no_session_is_refused(live):
    token = live.token("buyer")
    with pytest.raises(Refused, match="403"):
        LiveClient(live.base, session_cookie(live.app, token), origin="http://evil.example")
    with pytest.raises(Refused, match="403"):
        LiveClient(live.base, None)
    with pytest.raises(Refused, match="403"):
        LiveClient(live.base, session_cookie(live.app, "0" * 64))
    live.client("buyer", token=token)  # positive control: same cookie, own origin


def test_socket_closed_within_seconds_when_the_session_ends(live):
    token = live.token("designer")
    gone, stays = live.client("designer", token=token), live.client("designer")
    with psycopg.connect(live.app.config["APP_DATABASE_URL"]) as c:  # sign out, as the web app does
        c.execute("select set_config('role', 'designer', true), set_config('tracker.session', %s, true)", (token,))
        assert c.execute("select app.end_session()").fetchone()[0] is True
    t0 = time.monotonic()
    assert gone.pump(5, until=lambda c: any(m["type"] == "revoked" for m in c.others))
    assert time.monotonic() - t0 < 3
    sid = live.make("ordered")
    assert stays.pump(5, until=lambda c: sid in {e["sample"] for e in c.events})  # positive control
    gone.pump(0.3)
    assert sid not in {e["sample"] for e in gone.events}
    assert not gone.ws.connected


def test_deactivation_and_expiry_close_sockets(live):
    person = live.admin.execute(
        "insert into app.staff (full_name, email, role, team_id) select 'Rita Realtime', 'rita.rt@example.com', "
        "'buyer', team_id from app.staff where email = 'buyer@example.com' returning id").fetchone()[0]
    rita = live.client("rita.rt@example.com")
    expiring_token = live.token("logistics")
    expiring = live.client("logistics", token=expiring_token)
    live.act("md", "update app.staff set active = false where id = %s returning 1", (person,))
    assert rita.pump(5, until=lambda c: any(m["type"] == "revoked" for m in c.others))
    # an expiry changes no row (no NOTIFY): the periodic re-check finds it
    live.admin.execute("update app_private.web_sessions set expires_at = now() where token_hash = "
                       "sha256(convert_to(%s, 'UTF8'))", (expiring_token,))
    assert expiring.pump(realtime.SESSION_CHECK_SECONDS + 3,
                         until=lambda c: any(m["type"] == "revoked" for m in c.others))


def test_resume_after_disconnect_replays_exactly_what_was_missed(live):
    at_factory = live.make("at-factory")
    hidden = live.make("ordered")                # the factory liaison cannot see this one
    first = live.client("factory_liaison")
    cursor = first.cursor
    first.close()
    md = live.people.get("md")
    for sid, body in ((at_factory, "one"), (hidden, "two"), (at_factory, "three")):
        live.act(md, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, %s)",
                 (sid, md["id"], body))
    again = live.client("factory_liaison", since=cursor)
    expected = live.visible_ids("factory_liaison", cursor)
    assert len(expected) == 2
    again.pump(5, until=lambda c: len(c.events) >= 2)  # replayed, or live if the relay had not got there yet
    again.pump(0.3)
    assert again.ids() == expected
    assert [e["data"]["body"] for e in again.events] == ["one", "three"]
    # and the live feed goes on after the replay, with no duplicate
    live.act(md, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'four')",
             (at_factory, md["id"]))
    assert again.pump(5, until=lambda c: len(c.events) == 3)
    assert again.ids() == sorted(set(again.ids()))


def test_a_client_too_far_behind_is_told_to_reload(live, monkeypatch):
    if live.kind != "werkzeug":
        pytest.skip("changes the in-process limit")
    c = live.client("md")
    monkeypatch.setattr(realtime, "REPLAY_MAX_IDS", 0)
    live.make("ordered")
    c.pump(1, until=lambda c: c.events)
    behind = LiveClient(live.base, session_cookie(live.app, live.token("md")), since=c.cursor - 1)
    assert behind.pump(3, until=lambda c: any(m["type"] == "reload" for m in c.others))


def test_relay_survives_losing_its_connections_and_misses_nothing(live):
    c = live.client("md")
    start = c.cursor
    # kill every relay's LISTEN and reader connection (what a Postgres restart does to them)
    killed = live.admin.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                "where application_name = 'tracker-realtime-relay' and datname = %s",
                                (live.dbname,)).fetchone()[0]
    assert killed >= 2
    made = [live.make("ordered") for _ in range(3)]  # committed while the relays are away
    assert c.pump(10, until=lambda c: set(made) <= {e["sample"] for e in c.events})
    c.pump(0.3)
    assert c.ids() == live.visible_ids("md", start)


def test_a_listener_learns_nothing_but_ids(live):
    """Any login may LISTEN: the payloads are bare ids (and nothing at all on session changes)."""
    live.client("md")  # a socket, so this process's relay (and its sequencer) runs
    with psycopg.connect(_url(live.dbname), autocommit=True) as listener:
        listener.execute("listen realtime_events")
        listener.execute("listen realtime_sessions")
        listener.execute("listen sample_events")
        sid = live.make("received")
        buyer = live.people.get("buyer")
        live.act(buyer, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'words')",
                 (sid, buyer["id"]))
        live.act("finance", "update app.sample_costs set po_number = 'PO-9' where sample_id = %s returning 1", (sid,))
        token = live.token("qc")
        live.admin.execute("update app_private.web_sessions set ended_at = now(), end_reason = 'signed_out' "
                           "where token_hash = sha256(convert_to(%s, 'UTF8'))", (token,))
        got = list(listener.notifies(timeout=1.5))
    events = [n for n in got if n.channel == "realtime_events"]  # one per sequenced batch
    assert len(events) >= 1 and all(re.fullmatch(r"[0-9]+", n.payload) for n in events)
    assert {n.payload for n in got if n.channel == "realtime_sessions"} == {""}
    assert {n.channel for n in got} == {"realtime_events", "realtime_sessions"}
