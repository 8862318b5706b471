"""Near-duplicate lookup (issue 15): app.similar_samples as a buyer through the app's path
(role and session set, the definer applying the samples policies' predicate). Two kinds
of title: a specific one (an existing sample's own title, as when two buyers type the same
thing) and a generic one that matches a tenth of everything in flight (the worst case).

Baselines, each interleaved with ours in the same run (the machine's load varies):
* the previous plan (before V0018: the 60 nearest titles by GiST <->, then scored), the
  same call on a copy of the bench database with that function and index
  (tracker_bench_prev, made from bench/similar_previous.sql when missing);
* the owner asking the title index for the five nearest titles, no scoring, no visibility."""
import random
from pathlib import Path

import psycopg

from tracker import config

from .common import Result, summary, timed_pairs

OURS = "select id from app.similar_samples(%s, %s, %s)"
BASE = ("select sample_id from app_private.sample_match m where m.in_flight "
        "order by lower(m.title) operator(extensions.<->) lower(%s) limit 5")
PREVIOUS_SQL = Path(__file__).with_name("similar_previous.sql")


def previous_db(ctx) -> str:
    """A copy of the bench database with the lookup as it was before V0018 (made once)."""
    name = f"{ctx.dbname}_prev"
    admin_url = config.with_dbname(ctx.url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
            admin.execute(f'create database "{name}" template "{ctx.dbname}"')
            with psycopg.connect(config.with_dbname(ctx.url, name)) as c:
                c.execute(PREVIOUS_SQL.read_text())
                c.execute("analyze app.samples")
    return name


def session(url: str, email: str) -> str:
    with psycopg.connect(url) as c:
        return c.execute("select app_private.start_session(id, interval '1 day') from app.staff where email = %s",
                         (email,)).fetchone()[0]


def run(ctx):
    _, role, _ = ctx.persona("buyer@example.com")
    token = ctx.session("buyer@example.com")
    prev = previous_db(ctx)
    prev_token = session(config.with_dbname(ctx.url, prev), "buyer@example.com")
    prev_app_url = config.with_dbname(ctx.app_url, prev)
    with psycopg.connect(ctx.url) as owner:
        rows = owner.execute("select title, category_id, season_id from app.samples "
                             "where state not in ('returned', 'cut-for-production') "
                             "order by id desc limit 2000").fetchall()
    results = []
    for kind, seed, pick in (("specific title", 15, lambda rng: rng.choice(rows)),
                             ("generic title", 15, lambda rng: ("wrap dress", rows[0][1], rows[0][2]))):
        n = ctx.repeats * 3
        rng = random.Random(seed)
        queries = [pick(rng) for _ in range(n + 15)]  # + the 10 warm-up calls
        it_a, it_b, it_c = iter(queries), iter(queries), iter(queries)
        with psycopg.connect(ctx.app_url) as app, psycopg.connect(prev_app_url) as app_prev, \
                psycopg.connect(ctx.url) as owner:
            def call(conn, tok, it):
                title, cat, season = next(it)
                with conn.transaction():
                    conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                                 (role, tok))
                    return conn.execute(OURS, (title, cat, season)).fetchall()

            def ours():
                call(app, token, it_a)

            def previous():
                call(app_prev, prev_token, it_b)

            def base():
                title, _, _ = next(it_c)
                owner.execute(BASE, (title,)).fetchall()

            a, p = timed_pairs(ours, previous, n)
            _, b = timed_pairs(lambda: None, base, n)
        sa, sp, sb = summary(a), summary(p), summary(b)
        results.append(Result(f"near-duplicate lookup, {kind} (buyer, app path), p95", sa["p95_ms"], "ms",
                              sp["p95_ms"], "previous plan (before V0018), same run",
                              extra={"ours": sa, "previous": sp}))
        results.append(Result(f"near-duplicate lookup, {kind}, median", sa["median_ms"], "ms", sp["median_ms"],
                              "previous plan (before V0018), same run"))
        results.append(Result(f"near-duplicate lookup, {kind}: owner, 5 nearest titles by index, p95",
                              sb["p95_ms"], "ms", None, "", extra={"baseline": sb}))
    return results
