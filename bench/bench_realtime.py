"""Realtime under load (issue 11), on loopback, bounded in time and count:

* `make serve`'s gunicorn (its SERVE_ARGS from the Makefile: threaded workers, one relay
  each) against the benchmark database;
* N websocket clients spread over the 12 roles (each its own web session), a driver
  committing R transitions/s (hand to sales / hand to design, as the sales lead) for D s;
* commit -> delivery latency p50/p95/p99 (from just before COMMIT to the message read by
  the client), messages/s, the workers' CPU;
* a leak check: every delivered message re-read as that client (app.realtime_messages
  under its own session): a message it cannot SELECT, or a cost value where it cannot
  read the sample's costs, is a leak; every event of the run it can SELECT but did not
  get is a miss. Targets: p99 < 250 ms, 0 leaks, 0 missed;
* transitions/s with and without the realtime signal triggers (pgbench, interleaved), so
  the cost of the outbox + NOTIFY is known.

  python -m bench.bench_realtime [--quick]     (or: make bench-realtime)

* separately, what an idle sequencer run costs while a snapshot is held (V0024's watermark),
  in a scratch database migrated by the tree to measure (before or after):

  python -m bench.bench_realtime --idle-sequencer <database> [--signals 50000] [--runs 500]"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg

from tracker.roles import ROLES

from .common import Result, percentile, pgbench

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["samples", "sample_costs", "sample_comments", "sample_photos", "qc_inspections"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(ctx, workers=2, threads=150):
    make = (ROOT / "Makefile").read_text()
    args = re.search(r"^SERVE_ARGS := (.*)$", make, re.M).group(1)
    args = args.replace("$(SERVE_WORKERS)", str(workers)).replace("$(SERVE_THREADS)", str(threads)).split()
    port = free_port()
    env = dict(os.environ, SECRET_KEY="bench-realtime", APP_DATABASE_URL=ctx.app_url)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{port}",
                             "tracker.web:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def cookie_for(token, secret="bench-realtime"):
    """A session cookie as the app signs it (Flask's default serializer), without an app."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface
    app = Flask(__name__)
    app.secret_key = secret
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps({"token": token})


class Collector(threading.Thread):
    """One websocket client: records (event id, receive time, message) until told to stop."""

    def __init__(self, base, role, token, cookie):
        super().__init__(daemon=True)
        sys.path.insert(0, str(ROOT / "tests"))
        from realtime_support import HostClient
        self.role, self.token = role, token
        self.ws = HostClient.connect(base.replace("http://", "ws://") + "/live",
                                     headers={"Origin": base, "Cookie": f"session={cookie}"})
        self.got: list[tuple[int, float, dict]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                raw = self.ws.receive(timeout=0.5)
            except Exception:
                return
            if raw is None:
                continue
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] == "hello":
                self.ready.set()
            elif msg["type"] == "events":
                self.got.extend((e["id"], now, e) for e in msg["events"])

    def close(self):
        self.stop.set()
        try:
            self.ws.close()
        except Exception:
            pass


def drive(ctx, rate, seconds, commits: dict, samples: list[int]):
    """Commit `rate` transitions per second for `seconds`, as the sales lead; note each
    transaction's commit time by its transaction id (the outbox row carries it once the
    sequencer has moved the signal; see `commit_times`)."""
    token = ctx.session("sales_lead@example.com")
    sales_exec = ctx.persona("sales_executive@example.com")[0]
    designer = ctx.persona("designer@example.com")[0]
    state = {sid: "with-design" for sid in samples}
    with psycopg.connect(ctx.app_url) as c:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < seconds:
            sid = samples[n % len(samples)]
            c.execute("select set_config('role', 'sales_lead', true), set_config('tracker.session', %s, true)",
                      (token,))
            if state[sid] == "with-design":
                c.execute("select app.hand_to_sales(%s, %s)", (sid, sales_exec))
                state[sid] = "with-sales"
            else:
                c.execute("select app.hand_to_design(%s, %s)", (sid, designer))
                state[sid] = "with-design"
            xact = c.execute("select pg_current_xact_id()::text").fetchone()[0]
            t_commit = time.time()
            c.commit()
            commits[xact] = t_commit
            n += 1
            wait = t0 + n / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    return n


def drain_inbox(url: str):
    """Move every committed signal out of the inbox now (a transaction per batch, as a relay does)."""
    with psycopg.connect(url, autocommit=True) as c:
        while c.execute("select app_private.sequence_realtime()").fetchone()[0]:
            pass


class Sequencer:
    """app_private.sequence_realtime() every `every` seconds on its own connection, as each web
    process's relay runs it; records each batch's size and its oldest signal's wait (from
    the writing transaction's start to the move: the latency the sequencer adds)."""

    def __init__(self, url: str, every: float = 0.02):
        self.url, self.every = url, every
        self.batches: list[tuple[int, float]] = []  # (signals moved, oldest one's wait in s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with psycopg.connect(self.url, autocommit=True) as c:
            while not self._stop.is_set():
                wait = c.execute("select app_private.realtime_backlog()").fetchone()[0]
                moved = c.execute("select app_private.sequence_realtime(5000)").fetchone()[0]  # its own transaction
                if moved:
                    self.batches.append((moved, float(wait or 0)))
                if moved < 5000:
                    self._stop.wait(self.every)

    def __enter__(self):
        drain_inbox(self.url)  # start from an empty inbox
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def results(self, label: str) -> list[Result]:
        waits = [w for _, w in self.batches]
        moved = sum(n for n, _ in self.batches)
        extra = {"signals": moved, "batches": len(self.batches)}
        return [Result(f"realtime sequencer wait p95 (oldest signal of each batch), {label}",
                       percentile(waits, 95) * 1000 if waits else 0.0, "ms", extra=extra),
                Result(f"realtime sequencer wait max, {label}", max(waits, default=0.0) * 1000, "ms", extra=extra)]


def idle_sequencer(url: str, signals: int = 50000, runs: int = 500) -> dict:
    """What an idle sequencer run costs while a snapshot is held (issue 18 note, V0024): a
    REPEATABLE READ transaction holds its snapshot (as an analyst's or a pg_dump does), then
    `signals` signals are written and moved as they come, 5,000 per transaction and per run
    (the rows stay in the inbox's index, not yet removable), then `runs` idle runs are timed,
    each its own transaction on one autocommit connection (as a relay runs it every 20 ms).
    Works against any schema that has app_private.sequence_realtime(integer), so the same
    script measures before and after. The writes go straight into the inbox, each transaction
    taking its xid first (as a signal trigger's transaction has, from its own write)."""
    def timed(c, sql, n):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            c.execute(sql).fetchone()
            times.append((time.perf_counter() - t0) * 1e6)
        return times

    drain_inbox(url)
    with psycopg.connect(url) as holder, psycopg.connect(url) as writer, \
            psycopg.connect(url, autocommit=True) as seq:
        holder.execute("begin isolation level repeatable read")
        holder.execute("select count(*) from app_private.realtime_inbox")        # holds its snapshot
        for done in range(0, signals, 5000):
            writer.execute("select pg_current_xact_id()")
            writer.execute("insert into app_private.realtime_inbox (sample_id, kind) "
                           "select g, 'sample' from generate_series(1, %s) g", (min(5000, signals - done),))
            writer.commit()
            seq.execute("select app_private.sequence_realtime(5000)")
        for _ in range(5):                                                        # settle
            seq.execute("select app_private.sequence_realtime(5000)")
        idle = "select app_private.sequence_realtime(5000)"
        assert seq.execute(idle).fetchone()[0] == 0
        timed(seq, idle, 20)                                                      # warm-up
        held = timed(seq, idle, runs)
        with psycopg.connect(url) as fresh:  # a new backend: its unflushed counters are this transaction's
            fresh.execute(idle)
            walked = fresh.execute("select pg_stat_get_xact_tuples_returned("
                                   "'app_private.realtime_inbox_pkey'::regclass)").fetchone()[0]
            fresh.rollback()
        trip = timed(seq, "select 1", runs)
        holder.rollback()
    with psycopg.connect(url, autocommit=True) as seq:                            # the snapshot gone
        seq.execute("vacuum app_private.realtime_inbox")
        timed(seq, idle, 20)
        free = timed(seq, idle, runs)
    return {"signals": signals, "runs": runs, "walked": walked,
            "held_p50_us": percentile(held, 50), "held_p95_us": percentile(held, 95),
            "free_p50_us": percentile(free, 50), "free_p95_us": percentile(free, 95),
            "select1_p50_us": percentile(trip, 50), "load": os.getloadavg()}


def commit_times(ctx, commits: dict[str, float], lo: int, hi: int) -> dict[int, float]:
    """Outbox id -> commit time of the transaction that left it (so latency includes the wait
    for the sequencer as well as the relay's reads and the socket)."""
    with psycopg.connect(ctx.url) as c:
        rows = c.execute("select id, xact::text from app.realtime_events where id > %s and id <= %s",
                         (lo, hi)).fetchall()
    return {i: commits[x] for i, x in rows if x in commits}


def leak_check(ctx, clients, lo, hi):
    """Re-read, as each client, what it may SELECT among the run's events."""
    leaks = missed = checked = 0
    with psycopg.connect(ctx.app_url) as c:
        for cl in clients:
            with c.transaction():
                c.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                          (cl.role, cl.token))
                visible = {r[0] for r in c.execute(
                    "select id from app.realtime_messages where id > %s and id <= %s", (lo, hi))}
                costs = {r[0] for r in c.execute(
                    "select sample_id from app.sample_costs where sample_id = any(%s)",
                    (list({m["sample"] for _, _, m in cl.got}),))}
            got = {i for i, _, m in cl.got if lo < i <= hi}
            leaks += len(got - visible)
            leaks += sum(1 for i, _, m in cl.got if lo < i <= hi and m["kind"] == "sample"
                         and m["data"].get("total_gbp") is not None and m["sample"] not in costs)
            missed += len(visible - got)
            checked += len(got)
    return leaks, missed, checked


def notify_cost(ctx, clients_n):
    """Transitions/s through the functions with and without the signal triggers, interleaved."""
    from .bench_transitions import OURS, POOL, prepare_pool
    prepare_pool(ctx, clients_n)
    sales_exec = ctx.persona("sales_executive@example.com")[0]
    designer = ctx.persona("designer@example.com")[0]
    script = OURS.format(pool=POOL, sales=sales_exec, designer=designer)
    opts = f"-c role=sales_lead -c tracker.session={ctx.session('sales_lead@example.com')}"
    on, off = [], []
    with psycopg.connect(ctx.url, autocommit=True) as admin:
        try:
            for _ in range(2):
                with Sequencer(ctx.url):  # as each web process's relay runs it
                    on.append(pgbench(ctx.app_url, script, clients_n, ctx.duration, options=opts,
                                      user="authenticator") * 2)
                for t in TABLES:
                    admin.execute(f"alter table app.{t} disable trigger after_change_realtime_signal")
                off.append(pgbench(ctx.app_url, script, clients_n, ctx.duration, options=opts, user="authenticator") * 2)
                for t in TABLES:
                    admin.execute(f"alter table app.{t} enable trigger after_change_realtime_signal")
        finally:
            for t in TABLES:
                admin.execute(f"alter table app.{t} enable trigger after_change_realtime_signal")
    return sum(on) / len(on), sum(off) / len(off)


def run(ctx):
    n_clients, rate, seconds = (48, 10, 10) if ctx.quick else (200, 20, 60)
    results = []
    # samples parked with design for the driver (the same pool the transitions benchmark uses)
    from .bench_transitions import prepare_pool
    prepare_pool(ctx, 1)
    with psycopg.connect(ctx.url) as c:
        samples = [r[0] for r in c.execute("select sample_id from public.bench_pool order by n limit 400")]
    drain_inbox(ctx.url)  # what the other benchmarks left in the inbox
    proc, base = serve(ctx)
    clients: list[Collector] = []
    try:
        emails = [f"{ROLES[i % len(ROLES)]}@example.com" for i in range(n_clients)]
        for i, email in enumerate(emails):
            token = ctx.session(email)
            cl = Collector(base, ROLES[i % len(ROLES)], token, cookie_for(token))
            cl.start()
            clients.append(cl)
        for cl in clients:
            if not cl.ready.wait(30):
                raise RuntimeError("a websocket client got no hello")
        drain_inbox(ctx.url)  # anything left is moved and fanned out before the clock starts
        time.sleep(1)
        with psycopg.connect(ctx.url) as c:
            lo = c.execute("select app_private.realtime_high_water()").fetchone()[0]
        workers = [p for p in psutil.Process(proc.pid).children()]
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in workers)
        commits: dict[int, float] = {}
        t0 = time.monotonic()
        done = drive(ctx, rate, seconds, commits, samples)
        time.sleep(2)  # stragglers
        wall = time.monotonic() - t0
        cpu = sum(sum(p.cpu_times()[:2]) for p in workers) - cpu0
        with psycopg.connect(ctx.url) as c:
            hi = c.execute("select app_private.realtime_high_water()").fetchone()[0]
        for cl in clients:
            cl.close()
        commit_at = commit_times(ctx, commits, lo, hi)
        lat = [(t - commit_at[i]) * 1000 for cl in clients for i, t, _ in cl.got if i in commit_at]
        delivered = sum(len(cl.got) for cl in clients)
        duplicates = sum(len(cl.got) - len({i for i, _, _ in cl.got}) for cl in clients)
        leaks, missed, checked = leak_check(ctx, clients, lo, hi)
    finally:
        for cl in clients:
            cl.close()
        proc.terminate()
        proc.wait(10)
    label = f"{n_clients} clients, {rate} transitions/s for {seconds} s"
    if lat:
        for p in (50, 95, 99):
            results.append(Result(f"realtime commit->delivery p{p} ({label})", percentile(lat, p), "ms",
                                  250.0 if p == 99 else None, "target p99" if p == 99 else ""))
    results += [
        Result(f"realtime messages/s delivered ({label})", delivered / wall, "messages/s",
               extra={"transitions": done, "deliveries": delivered}),
        Result("realtime server CPU (both workers, % of one core)", 100 * cpu / wall, "%"),
        Result("realtime leaks (delivered but not SELECTable, or a hidden cost)", leaks, "messages", 0.0,
               "target", extra={"checked": checked}),
        Result("realtime missed (SELECTable but not delivered)", missed, "messages", 0.0, "target"),
        Result("realtime duplicates (an id delivered twice to one client)", duplicates, "messages", 0.0, "target"),
    ]
    on, off = notify_cost(ctx, 4 if ctx.quick else 8)
    results.append(Result("transitions/s with the realtime signal triggers vs without", on, "transitions/s", off,
                          "same functions, signal triggers disabled", higher_is_better=True))
    return results


if __name__ == "__main__":
    import argparse

    from .run import main
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--idle-sequencer", metavar="DB",
                    help="only time idle sequencer runs with a snapshot held, in database DB (it writes "
                         "signals there: use a scratch database), and print the figures")
    ap.add_argument("--signals", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=500)
    a = ap.parse_args()
    if a.idle_sequencer:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        from tracker import config
        db_url = make_conninfo(**dict(conninfo_to_dict(config.database_url()), dbname=a.idle_sequencer))
        f = idle_sequencer(db_url, a.signals, a.runs)
        print(f"idle sequencer run, {f['signals']:,} signals moved while a snapshot is held, {f['runs']} runs "
              f"(load {f['load'][0]:.2f} {f['load'][1]:.2f} {f['load'][2]:.2f}):")
        print(f"  snapshot held: p50 {f['held_p50_us']:,.0f} us, p95 {f['held_p95_us']:,.0f} us, "
              f"{f['walked']:,} index entries read per run")
        print(f"  snapshot gone (after VACUUM): p50 {f['free_p50_us']:,.0f} us, p95 {f['free_p95_us']:,.0f} us")
        print(f"  round trip of `select 1` on the same connection: p50 {f['select1_p50_us']:,.0f} us")
    else:
        main((["--quick"] if a.quick else []) + ["--only", "realtime"])
