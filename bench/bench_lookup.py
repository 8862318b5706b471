""""Where is sample N?": the lookup logistics makes, the way the web app makes it
(one transaction, role and staff id set, the overview view), against the owner
reading the same row directly."""
import random

import psycopg

from .common import Result, percentile, summary, timed_pairs

SQL = "select id, state, location, holder_name, factory from app.sample_overview where id = %s"


def run(ctx):
    _, role, _ = ctx.persona("logistics@example.com")
    token = ctx.session("logistics@example.com")
    rng = random.Random(4421)
    ids = [1000 + rng.randint(1, ctx.samples) for _ in range(ctx.repeats * 5 + 20)]
    it_a, it_b = iter(ids), iter(ids)
    with psycopg.connect(ctx.app_url) as app, psycopg.connect(ctx.url) as owner:
        def ours():
            with app.transaction():
                app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                            (role, token))
                assert app.execute(SQL, (next(it_a),)).fetchone()

        def base():
            assert owner.execute(SQL, (next(it_b),)).fetchone()

        a, b = timed_pairs(ours, base, ctx.repeats * 5)
    sa, sb = summary(a), summary(b)
    return [Result("where is sample N (logistics, app path), p95", sa["p95_ms"], "ms", sb["p95_ms"],
                   "owner, direct select", extra={"ours": sa, "baseline": sb}),
            Result("where is sample N (logistics, app path), median", sa["median_ms"], "ms", sb["median_ms"],
                   "owner, direct select")]
