"""500 concurrent web clients, with and without PgBouncer (issue 18, item 2), on loopback,
bounded in time: `make bench-pooler` (python -m bench.run --only pooler).

Three servers, one after another, each `make serve`'s gunicorn (SERVE_ARGS from the
Makefile: 2 gthread workers x 150 threads, one realtime relay each):
  * direct:            the app's pool (10 per worker) straight to Postgres;
  * pooler:            the same pool through PgBouncer (transaction pooling, 20 server
                       connections), prepare_threshold=None;
  * pooler, big pool:  100 app connections per worker into PgBouncer, still 20 server
                       connections: what several app processes look like to the server.
For each (twice, A B C C B A, in a full run): N clients (asyncio, one keep-alive HTTP/1.1 connection each, spread over the
twelve roles, each its own web session) request their dashboard in a closed loop for D
seconds. Reported: requests/s, latency p50/p95/p99, errors, and the most server
connections the web app's login held (sampled from pg_stat_activity).
The figure compared is requests/s through the pooler against direct (baseline)."""
import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tracker.roles import ROLES

from .bench_realtime import free_port
from .common import Result, percentile

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-pooler"


def start_pooler(port: int, size: int):
    env = dict(os.environ, POOLER_PORT=str(port), POOLER_SIZE=str(size), POOLER_MAX_CLIENTS="2000")
    subprocess.run([str(ROOT / "scripts" / "pooler.sh"), "start"], env=env, check=True, capture_output=True)
    return env


def stop_pooler(env):
    subprocess.run([str(ROOT / "scripts" / "pooler.sh"), "destroy"], env=env, check=False, capture_output=True)


def serve(app_url: str, extra_env: dict):
    make = (ROOT / "Makefile").read_text()
    args = re.search(r"^SERVE_ARGS := (.*)$", make, re.M).group(1)
    args = args.replace("$(SERVE_WORKERS)", "2").replace("$(SERVE_THREADS)", "150").split()
    port = free_port()
    env = dict(os.environ, SECRET_KEY=SECRET, APP_DATABASE_URL=app_url, TRACKER_LOG_LEVEL="warning", **extra_env)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", *args, "--backlog", "2048", "--bind",
                             f"127.0.0.1:{port}", "tracker.web:create_app()"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def cookies(ctx) -> list[str]:
    app = Flask("bench")
    app.secret_key = SECRET
    signer = SecureCookieSessionInterface().get_signing_serializer(app)
    return [signer.dumps({"token": ctx.session(f"{r}@example.com")}) for r in ROLES]


async def one_client(port: int, cookie: str, until: float, lat: list, errors: list):
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: session={cookie}\r\n\r\n").encode()
    reader = writer = None
    while time.monotonic() < until:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            t = time.monotonic()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            status = int(head.split(b" ", 2)[1])
            headers = head.decode("latin-1").lower()
            m = re.search(r"content-length: (\d+)", headers)
            if m:
                await reader.readexactly(int(m.group(1)))
            else:  # chunked
                while True:
                    size = int((await reader.readline()).strip() or b"0", 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            if status != 200:
                errors.append(status)
            else:
                lat.append((time.monotonic() - t) * 1000)
            if "connection: close" in headers:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.1)
    if writer is not None:
        writer.close()


async def load(port: int, cookie_list: list[str], clients: int, seconds: float):
    lat, errors = [], []
    until = time.monotonic() + seconds
    await asyncio.gather(*(one_client(port, cookie_list[i % len(cookie_list)], until, lat, errors)
                           for i in range(clients)))
    return lat, errors


def watch_connections(url: str, dbname: str, stop: threading.Event, out: list):
    with psycopg.connect(url, autocommit=True) as c:
        while not stop.is_set():
            out.append(c.execute("select count(*) from pg_stat_activity where usename = 'authenticator' "
                                 "and datname = %s and application_name is distinct from 'tracker-realtime-relay'",
                                 (dbname,)).fetchone()[0])
            stop.wait(0.5)


def drop_pooled_server_connections(penv: dict, dbname: str):
    """PgBouncer's console: close its idle server connections, so the next round counts only its own."""
    dsn = subprocess.run([str(ROOT / "scripts" / "pooler.sh"), "app-dsn"], env=penv, capture_output=True,
                         text=True, check=True).stdout.strip()
    console = make_conninfo(**dict(conninfo_to_dict(dsn), dbname="pgbouncer", user="pgbouncer_admin"))
    subprocess.run(["/usr/lib/postgresql/15/bin/psql", console, "-Xqc", f"KILL {dbname}"], capture_output=True)
    subprocess.run(["/usr/lib/postgresql/15/bin/psql", console, "-Xqc", f"RESUME {dbname}"], capture_output=True)


def measure(ctx, label, app_url, extra_env, cookie_list, clients, seconds):
    proc, port = serve(app_url, extra_env)
    try:
        asyncio.run(load(port, cookie_list, 24, 2))  # warm-up: every role's first page, the pools filled
        stop, conns = threading.Event(), []
        watcher = threading.Thread(target=watch_connections, args=(ctx.url, ctx.dbname, stop, conns), daemon=True)
        watcher.start()
        t = time.monotonic()
        lat, errors = asyncio.run(load(port, cookie_list, clients, seconds))
        elapsed = time.monotonic() - t
        stop.set()
        watcher.join(5)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    rps = len(lat) / elapsed
    stats = {"label": label, "requests": len(lat), "rps": round(rps, 1), "errors": len(errors),
             "error_kinds": sorted({str(e) for e in errors})[:5],
             "p50_ms": round(percentile(lat, 50), 1) if lat else None,
             "p95_ms": round(percentile(lat, 95), 1) if lat else None,
             "p99_ms": round(percentile(lat, 99), 1) if lat else None,
             "server_connections_max": max(conns, default=0), "load": round(os.getloadavg()[0], 1)}
    print(f"  {label}: {stats}", flush=True)
    return stats


CONFIGS = [("direct", False, "10"), ("pooler", True, "10"), ("pooler, app pool 100/worker", True, "100")]


def run(ctx):
    """Quick: each configuration once for 5 s. Full: twice for 20 s, in the order A B C C B A so
    drift in the machine's load hits every configuration alike; the figures are the means."""
    clients = 500
    seconds = 5 if ctx.quick else 20
    order = CONFIGS if ctx.quick else CONFIGS + CONFIGS[::-1]
    cookie_list = cookies(ctx)
    pport = free_port()
    penv = start_pooler(pport, 20)
    pooled = make_conninfo(**dict(conninfo_to_dict(ctx.app_url), port=str(pport)))
    rounds: dict[str, list[dict]] = {}
    try:
        for label, via_pooler, pool_size in order:
            drop_pooled_server_connections(penv, ctx.dbname)
            env = {"APP_POOL_SIZE": pool_size, **({"APP_DATABASE_POOLED": "1"} if via_pooler else {})}
            rounds.setdefault(label, []).append(
                measure(ctx, label, pooled if via_pooler else ctx.app_url, env, cookie_list, clients, seconds))
    finally:
        stop_pooler(penv)

    def mean(label, key):
        values = [r[key] for r in rounds[label] if r[key] is not None]
        return round(sum(values) / len(values), 1) if values else 0

    out = []
    base_rps, base_p95 = mean("direct", "rps"), mean("direct", "p95_ms")
    for label, _, _ in CONFIGS:
        errors = sum(r["errors"] for r in rounds[label])
        conns = max(r["server_connections_max"] for r in rounds[label])
        extra = {"rounds": rounds[label], "seconds": seconds, "clients": clients}
        out.append(Result(f"{clients} web clients, dashboards, {label}: requests/s", mean(label, "rps"), "req/s",
                          base_rps, "direct", higher_is_better=True, extra=extra))
        out.append(Result(f"{clients} web clients, {label}: p95 latency (errors {errors}, "
                          f"server connections <= {conns})", mean(label, "p95_ms"), "ms", base_p95, "direct",
                          extra=extra))
    return out
