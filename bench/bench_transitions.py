"""Transitions per second through the PL/pgSQL functions (role and scope checks, RLS
visibility, row lock, audit trigger, realtime signal) with 8 concurrent clients, against
(a) the bare UPDATE + INSERT the function does (same triggers), without the checks, and
(b) pgbench's built-in simple-update (`pgbench -N`) on the same cluster (issue 18's
target: >= 0.40 of it). The audit sealer runs beside the transitions as pg_cron runs
it, every 2 s, and the realtime sequencer as each web process's relay runs it, every
20 ms; their lag under that load is reported too. For comparison in the same run:
the serial audit chain as it was before V0015, and the transitions with the realtime
signal's triggers off (until V0021 their commit-time advisory lock and NOTIFY serialised
commits; now they append to an inbox)."""
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tracker.config import with_dbname

from .bench_audit import Sealer, realtime_signal_off, serial_chain
from .bench_realtime import Sequencer
from .common import PGBENCH, Result, pgbench

POOL = 500

OURS = """
\\set n random(1, {pool})
select sample_id as sid from bench_pool where client = :client_id and n = :n \\gset
select app.hand_to_sales(:sid, {sales});
select app.hand_to_design(:sid, {designer});
"""

# one statement per transition, like one function call: same round trips, same triggers
BARE = """
\\set n random(1, {pool})
select sample_id as sid from bench_pool where client = :client_id and n = :n \\gset
with u as (update app.samples set state = 'with-sales', holder_id = {sales}, version = version + 1, updated_at = now(), state_changed_at = now() where id = :sid returning id), e as (insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role) select id, 'hand_to_sales', 'with-design', 'with-sales', {actor}, 'sales_lead' from u returning id, sample_id) select count(*) from e;
with u as (update app.samples set state = 'with-design', holder_id = {designer}, version = version + 1, updated_at = now(), state_changed_at = now() where id = :sid returning id), e as (insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role) select id, 'hand_to_design', 'with-sales', 'with-design', {actor}, 'sales_lead' from u returning id, sample_id) select count(*) from e;
"""


def prepare_pool(ctx, clients):
    """Give each pgbench client its own POOL samples, parked with design, so two
    clients never contend for one row and every transition is legal. The lowest ids among
    returned samples and those handed between design and sales, so every run takes the
    same ones again (a run leaves them with design or sales) instead of using up the
    returned ones."""
    with psycopg.connect(ctx.url) as c:
        c.execute("set session_replication_role = replica")
        c.execute("drop table if exists public.bench_pool")
        c.execute("create table public.bench_pool (client int, n int, sample_id bigint, primary key (client, n))")
        designer = c.execute("select id from app.staff where email = 'designer@example.com'").fetchone()[0]
        c.execute("""
            insert into public.bench_pool
            select (rn - 1) / %(pool)s, 1 + (rn - 1) %% %(pool)s, id
              from (select id, row_number() over (order by id) rn from app.samples
                     where state in ('returned', 'with-design', 'with-sales')  -- the same ones again next run
                       and supplier_id is not null and not qc_rejected
                       and withdrawn_at is null order by id limit %(total)s) x""",
                  {"pool": POOL, "total": POOL * clients})
        c.execute("""update app.samples s set state = 'with-design', holder_id = %s, courier_ref = null,
                     qc_rejected = false, transit_from = null, transit_since = null
                     from public.bench_pool p where p.sample_id = s.id""", (designer,))
        # the triggers are off: what the keep-match trigger would have written (V0023)
        c.execute("""update app_private.sample_match m set in_flight = true
                     from public.bench_pool p where p.sample_id = m.sample_id and not m.in_flight""")
        c.execute("grant select on public.bench_pool to sales_lead")
        c.execute("grant usage on schema public to sales_lead")
        c.execute("analyze public.bench_pool")


def ensure_pgbench_tables(ctx):
    params = conninfo_to_dict(ctx.url)
    dbname = "tracker_pgbench"
    admin = with_dbname(ctx.url, "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        exists = c.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            c.execute(f'create database "{dbname}"')
    url = with_dbname(ctx.url, dbname)
    with psycopg.connect(url) as c:
        ready = c.execute("select to_regclass('public.pgbench_accounts') is not null").fetchone()[0]
    if not ready:
        import os
        import subprocess
        env = dict(os.environ, PGHOST=params.get("host", ""), PGPORT=str(params.get("port", "5432")),
                   PGUSER=params.get("user", ""))
        subprocess.run([PGBENCH, "-i", "-q", "-s", "10", dbname], env=env, check=True, capture_output=True)
    return url


def run(ctx):
    clients = 8
    prepare_pool(ctx, clients)
    sales_lead, _, _ = ctx.persona("sales_lead@example.com")
    designer, _, _ = ctx.persona("designer@example.com")
    sales_exec, _, _ = ctx.persona("sales_executive@example.com")
    fmt = {"pool": POOL, "sales": sales_exec, "designer": designer, "actor": sales_lead}
    pgbench_url = ensure_pgbench_tables(ctx)
    simple = pgbench(pgbench_url, "", clients, ctx.duration, builtin="simple-update")
    bare = pgbench(ctx.url, BARE.format(**fmt), clients, ctx.duration) * 2
    t = time.perf_counter()
    with Sealer(ctx.url) as sealer, Sequencer(ctx.url) as sequencer:
        ours = pgbench(ctx.app_url, OURS.format(**fmt), clients, ctx.duration,
                       options=f"-c role=sales_lead -c tracker.session={ctx.session('sales_lead@example.com')}",
                       user="authenticator") * 2
    seconds = time.perf_counter() - t
    with serial_chain(ctx.url), Sequencer(ctx.url):  # the same transitions under the chain as before V0015
        serial = pgbench(ctx.app_url, OURS.format(**fmt), clients, ctx.duration,
                         options=f"-c role=sales_lead -c tracker.session={ctx.session('sales_lead@example.com')}",
                         user="authenticator") * 2
    with realtime_signal_off(ctx.url), Sealer(ctx.url):
        ours_rt = pgbench(ctx.app_url, OURS.format(**fmt), clients, ctx.duration,
                          options=f"-c role=sales_lead -c tracker.session={ctx.session('sales_lead@example.com')}",
                          user="authenticator") * 2
    simple = (simple + pgbench(pgbench_url, "", clients, ctx.duration, builtin="simple-update")) / 2
    with psycopg.connect(ctx.url) as c:
        ok, unsealed = c.execute("select ok, unsealed from audit.verify_chain()").fetchone()
    if not ok or unsealed:
        raise RuntimeError(f"audit chain not intact and sealed after the transitions benchmark (unsealed: {unsealed})")
    return sealer.results(f"{clients} clients' transitions", seconds) + sequencer.results(
        f"{clients} clients' transitions") + [
        Result(f"transitions/s, {clients} clients, vs bare UPDATE+INSERT", ours, "transitions/s", bare,
               "bare writes (same triggers), no checks", higher_is_better=True),
        Result(f"transitions/s, {clients} clients, vs pgbench simple-update", ours, "transitions/s", simple,
               "pgbench -N (simple-update) tps, mean of runs before and after", higher_is_better=True),
        Result(f"transitions/s, {clients} clients, vs the serial chain before V0015", ours, "transitions/s", serial,
               "same transitions, chain head locked by every writer until commit", higher_is_better=True),
        Result(f"transitions/s, {clients} clients, realtime signal off, vs pgbench simple-update", ours_rt,
               "transitions/s", simple, "pgbench -N (simple-update) tps, mean of runs before and after",
               higher_is_better=True),
    ]
