"""Realtime: NOTIFY -> one relay per web process -> websockets.

The database signals every change by an opaque id (app.realtime_events, NOTIFY
realtime_events; sql/functions/080_realtime.sql). Writers leave their signals in an
inbox without waiting for each other; a sequencer moves the committed ones into the
outbox in batches and NOTIFYs once per batch, so ids become visible in commit order and
"every id after N" is an exact cursor. Each web process runs one Relay: a thread with
one autocommit LISTEN connection and one reader connection, and beside it the
sequencer (every REALTIME_SEQUENCE_SECONDS) and the audit sealer, each on its own
connection. On a signal it reads
the new ids' messages (app.realtime_messages) **as each subscriber**: authenticator ->
SET LOCAL ROLE + the subscriber's session token, the same path as a page request, so
RLS decides what anyone receives. Subscribers with the same security context (role and
buying team: the only things the policies behind the view depend on, checked by
tests/test_realtime.py) share one query per batch of events.

A socket is opened at /live?since=<id> from a page, with the session cookie and the
page's own Origin. It first replays what that person may see after `since`, then
receives live messages; each carries its id. Sessions are re-checked when any session
ends (NOTIFY realtime_sessions, no payload) and every few seconds, and a socket whose
session is no longer active is closed with a "revoked" message.
"""
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg
from flask import Blueprint, abort, current_app, g, request
from flask_sock import Sock
from psycopg.rows import dict_row

from . import db

log = logging.getLogger(__name__)
bp = Blueprint("realtime", __name__)
sock = Sock()

REPLAY_MAX_IDS = 20000      # a client further behind than this many events reloads the page
REPLAY_MAX_ROWS = 2000      # and so does one with more visible events than this to replay
SESSION_CHECK_SECONDS = 3   # sessions that merely expire are noticed within this
HEARTBEAT_SECONDS = 15      # application-level ping (carries the cursor); protocol pings too
BATCH_LIMIT = 5000          # events read per group query
APP_NAME = "tracker-realtime-relay"  # how the relay's two connections show in pg_stat_activity
# While its relay runs, each web process also seals the audit chain this often (audit.seal:
# idempotent, one sealer at a time under its advisory lock). pg_cron seals too, but the
# pg_cron Debian 12 ships schedules in minutes only; this keeps the unsealed window at
# seconds wherever the app serves. 0 leaves sealing to pg_cron / `make seal-audit`.
AUDIT_SEAL_SECONDS = 2
# While its relay runs, each web process moves committed realtime signals from the inbox to
# the outbox this often (app_private.sequence_realtime: one sequencer at a time; another
# process's finds the lock taken and skips). It is the latency realtime adds to a commit, at
# the cost of one small transaction per interval per process. pg_cron does it too, as a
# backstop, once a minute on pg_cron 1.4.
REALTIME_SEQUENCE_SECONDS = 0.02
SEQUENCE_SQL = "select app_private.sequence_realtime(5000) >= 5000"  # one batch; true when it was full
# /readyz says "not ready" when a committed signal has waited longer than this for a sequencer
# (every relay's sequencer stopped, or a stuck one holding the lock: realtime is stalled)
REALTIME_BACKLOG_SECONDS = 10

MESSAGES_SQL = """
select app.current_staff_id() as me,
       coalesce((select jsonb_agg(jsonb_build_object('id', m.id, 'kind', m.kind, 'sample', m.sample_id,
                                                     'at', m.at, 'data', m.data) order by m.id)
                   from (select * from app.realtime_messages
                          where id > %(after)s and id <= %(upto)s order by id limit %(limit)s) m), '[]') as messages
"""
SESSIONS_SQL = "select t.token, (app_private.resume_session(t.token)).status from unnest(%s::text[]) t(token)"


@dataclass(eq=False)
class Subscriber:
    token: str
    role: str
    team_id: int | None
    staff_id: int
    cursor: int = 0
    out: queue.Queue = field(default_factory=queue.Queue)
    closed: str | None = None

    @property
    def context(self):
        return (self.role, self.team_id)

    def push(self, messages: list[dict], upto: int):
        """Queue what is new to this socket (ids it has not had) and move its cursor."""
        fresh = [m for m in messages if m["id"] > self.cursor]
        if fresh:
            self.out.put({"type": "events", "events": fresh, "cursor": upto})
        self.cursor = max(self.cursor, upto)

    def revoke(self, reason: str):
        if self.closed is None:
            self.closed = reason
            self.out.put({"type": "revoked", "reason": reason})


class Relay:
    """One per web process: LISTEN, read each batch of new events once per security
    context, fan out to that context's sockets, and keep an eye on their sessions."""

    def __init__(self, url: str, seal_every: float = AUDIT_SEAL_SECONDS,
                 sequence_every: float = REALTIME_SEQUENCE_SECONDS):
        self.url = url
        self.seal_every = seal_every
        self.sequence_every = sequence_every
        self.sealer: threading.Thread | None = None
        self.sequencer: threading.Thread | None = None
        self.lock = threading.RLock()
        self.subs: set[Subscriber] = set()
        self.high: int | None = None        # every event up to here has been fanned out
        self.listening = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.reader: psycopg.Connection | None = None
        self.stats = {"batches": 0, "group_queries": 0, "messages": 0, "reconnects": 0, "revoked": 0}

    # --- lifecycle ---------------------------------------------------------------
    def start(self, wait: float = 30):
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.stopping.clear()
                self.thread = threading.Thread(target=self._run, name="realtime-relay", daemon=True)
                self.thread.start()
            if self.seal_every and (self.sealer is None or not self.sealer.is_alive()):
                self.sealer = self._periodic("audit-sealer", self.seal_every,
                                             "select sealed >= 20000 from audit.seal(20000)")
            if self.sequence_every and (self.sequencer is None or not self.sequencer.is_alive()):
                self.sequencer = self._periodic("realtime-sequencer", self.sequence_every, SEQUENCE_SQL)
        if not self.listening.wait(wait):
            raise RuntimeError(f"the realtime relay could not LISTEN within {wait:g} s")

    def stop(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(5)
        for t in (self.sealer, self.sequencer):
            if t:
                t.join(5)

    def _periodic(self, name: str, every: float, sql: str) -> threading.Thread:
        """A thread that runs `sql` every `every` seconds on its own autocommit connection
        (so a sealer busy behind pg_cron's never delays a websocket), at once again while the
        query says a batch was full, and reconnects after an error."""
        def run():
            while not self.stopping.is_set():
                try:
                    with psycopg.connect(self.url, autocommit=True, application_name=f"tracker-{name}") as conn:
                        while True:
                            full = conn.execute(sql).fetchone()[0]
                            if not full and self.stopping.wait(every):
                                return
                            if self.stopping.is_set():
                                return
                except psycopg.Error as e:
                    if self.stopping.is_set():
                        return
                    log.warning("%s: %s; trying again in 5 s", name, e)
                    self.stopping.wait(5)
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        return t

    def subscribe(self, sub: Subscriber) -> int:
        """Register a socket; returns the point from which the relay will feed it."""
        self.start()
        with self.lock:
            sub.cursor = self.high
            self.subs.add(sub)
            return self.high

    def unsubscribe(self, sub: Subscriber):
        with self.lock:
            self.subs.discard(sub)

    # --- the thread --------------------------------------------------------------
    def _run(self):
        backoff = 0.2
        while not self.stopping.is_set():
            log.info("realtime relay connecting")
            try:
                with psycopg.connect(self.url, autocommit=True, application_name=APP_NAME) as listen, \
                        psycopg.connect(self.url, row_factory=dict_row, application_name=APP_NAME) as reader:
                    self.reader = reader
                    listen.execute("listen realtime_events")
                    listen.execute("listen realtime_sessions")
                    if self.high is None:
                        # what committed while no relay ran is older than any page this process
                        # will serve: sequence it first, so it is behind the starting point
                        while listen.execute(SEQUENCE_SQL).fetchone()[0]:
                            pass
                    top = listen.execute("select app_private.realtime_high_water()").fetchone()[0]
                    with self.lock:
                        if self.high is None:
                            self.high = top
                        else:                   # back after a drop: catch up from the table
                            self._deliver(top)
                        self._check_sessions()
                    self.listening.set()
                    log.info("realtime relay listening from event %s", self.high)
                    backoff = 0.2
                    self._loop(listen)
            except psycopg.Error as e:
                self.listening.clear()
                if self.stopping.is_set():
                    break
                self.stats["reconnects"] += 1
                log.warning("realtime relay lost its connection (%s); reconnecting in %.1f s", e, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.reader = None

    def _loop(self, listen: psycopg.Connection):
        last_check = time.monotonic()
        while not self.stopping.is_set():
            events = sessions = False
            for n in listen.notifies(timeout=0.5, stop_after=1):
                if n.channel == "realtime_events":
                    events = True
                else:
                    sessions = True
            with self.lock:
                if events:
                    # one read of the high-water mark batches every commit so far; the
                    # notifications queued meanwhile then find nothing new
                    top = listen.execute("select app_private.realtime_high_water()").fetchone()[0]
                    self._deliver(top)
                if sessions or time.monotonic() - last_check > SESSION_CHECK_SECONDS:
                    self._check_sessions()
                    last_check = time.monotonic()

    def _deliver(self, top: int):
        """Fan out every event in (high, top] (called with the lock held)."""
        lo = self.high
        if top <= lo:
            return
        while lo < top:
            upto = min(top, lo + BATCH_LIMIT)
            groups: dict[tuple, list[Subscriber]] = {}
            for s in self.subs:
                if s.closed is None:
                    groups.setdefault(s.context, []).append(s)
            for members in groups.values():
                messages = self._read_as_group(members, lo, upto)
                for s in members:
                    if s.closed is None:
                        s.push(messages, upto)
                self.stats["messages"] += len(messages) * len(members)
            lo = upto
            self.high = upto
        self.stats["batches"] += 1

    def _read_as_group(self, members: list[Subscriber], after: int, upto: int) -> list[dict]:
        """The group's messages, read through a live session of one of its members."""
        for s in list(members):
            if s.closed is not None:
                continue
            with self.reader.transaction():
                self.reader.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                                    (s.role, s.token))
                row = self.reader.execute(MESSAGES_SQL, {"after": after, "upto": upto,
                                                         "limit": BATCH_LIMIT}).fetchone()
            self.stats["group_queries"] += 1
            if row["me"] is not None:
                return row["messages"]
            # that session ended between checks: close it, read through another member
            s.revoke("signed_out")
            self.stats["revoked"] += 1
        return []

    def _check_sessions(self):
        subs = [s for s in self.subs if s.closed is None]
        if not subs:
            return
        tokens = sorted({s.token for s in subs})
        with self.reader.transaction():
            rows = self.reader.execute(SESSIONS_SQL, (tokens,)).fetchall()
        status = {r["token"]: r["status"] for r in rows}
        for s in subs:
            if status.get(s.token) != "active":
                s.revoke(status.get(s.token) or "unknown")
                self.stats["revoked"] += 1


def relay() -> Relay:
    app = current_app
    r = app.extensions.get("realtime")
    if r is None:
        with _create_lock:
            r = app.extensions.get("realtime")
            if r is None:
                r = app.extensions["realtime"] = Relay(app.config["REALTIME_DATABASE_URL"])  # direct, never pooled (tracker/web/db.py)
    return r


_create_lock = threading.Lock()


def page_cursor() -> int:
    """The newest committed event id, read *before* a page's content: a socket opened
    from that page replays from here, so nothing between render and connect is lost."""
    with db.anonymous() as conn:
        return conn.execute("select app_private.realtime_high_water() as high").fetchone()["high"]


def allowed_origins() -> set[str]:
    origins = {f"{'https' if request.is_secure else 'http'}://{request.host}".lower()}
    public = current_app.config.get("PUBLIC_URL")
    if public:
        u = urlsplit(public)
        origins.add(f"{u.scheme}://{u.netloc}".lower())
    return origins


@bp.before_request
def check_socket():
    """Refuse the upgrade (HTTP 403) for a foreign Origin or without a live session."""
    origin = (request.headers.get("Origin") or "").lower()
    if origin not in allowed_origins():
        abort(403, "This live connection did not come from this site.")
    if g.user is None:
        abort(403, "Sign in to receive live updates.")


@sock.route("/live", bp=bp)
def live(ws):
    """One socket: replay what this person may see after ?since=, then the live feed."""
    token, user = g.session_token, g.user
    sub = Subscriber(token=token, role=user["role"], team_id=user["team_id"], staff_id=user["id"])
    r = relay()
    start = r.subscribe(sub)
    try:
        since = request.args.get("since", type=int)
        if since is None or since > start:
            since = start
        if start - since > REPLAY_MAX_IDS:
            ws.send(json.dumps({"type": "reload", "reason": "too far behind"}))
            return
        if since < start:
            with db.with_session(token, user["role"]) as conn:
                row = conn.execute(MESSAGES_SQL, {"after": since, "upto": start,
                                                  "limit": REPLAY_MAX_ROWS + 1}).fetchone()
            if row["me"] is None:
                ws.send(json.dumps({"type": "revoked", "reason": "signed_out"}))
                return
            if len(row["messages"]) > REPLAY_MAX_ROWS:
                ws.send(json.dumps({"type": "reload", "reason": "too far behind"}))
                return
            if row["messages"]:
                ws.send(json.dumps({"type": "events", "events": row["messages"], "cursor": start}))
        ws.send(json.dumps({"type": "hello", "cursor": max(start, sub.cursor)}))
        quiet_since = time.monotonic()
        while ws.connected:
            try:
                item = sub.out.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() - quiet_since < HEARTBEAT_SECONDS:
                    continue
                item = {"type": "ping", "cursor": sub.cursor}
            quiet_since = time.monotonic()
            ws.send(json.dumps(item, default=str))
            if item["type"] == "revoked":
                ws.close(reason=1008, message="session ended")
                return
    finally:
        r.unsubscribe(sub)


def relay_ready():
    """/readyz: this process's relay is listening (started here if no page has started it yet)."""
    try:
        relay().start(wait=5)
    except RuntimeError:
        return "the realtime relay is not listening to the database"
    with db.pool().connection(timeout=5) as conn:
        waited = conn.execute("select app_private.realtime_backlog() as waited").fetchone()["waited"]
    if waited is not None and waited > REALTIME_BACKLOG_SECONDS:
        return (f"a change has waited {waited:.0f} s for the realtime sequencer "
                f"(limit {REALTIME_BACKLOG_SECONDS} s): live updates are stalled")
    return None


def init_app(app):
    from . import health
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": HEARTBEAT_SECONDS})
    app.register_blueprint(bp)
    health.register_check("realtime", relay_ready)
