"""Near-duplicate lookup (issue 15): app.similar_samples as a buyer through the app's path
(role and session set, the definer applying the samples policies' predicate), against
the owner asking the trigram index for the five nearest titles, with no scoring and no
visibility check. Two kinds of title:
a specific one (an existing sample's own title, as when two buyers type the same thing)
and a generic one that matches a tenth of everything in flight (the worst case)."""
import random

import psycopg

from .common import Result, summary, timed_pairs

OURS = "select id from app.similar_samples(%s, %s, %s)"
BASE = ("select id from app.samples s where s.state not in ('returned', 'cut-for-production') "
        "order by lower(s.title) operator(extensions.<->) lower(%s) limit 5")


def run(ctx):
    _, role, _ = ctx.persona("buyer@example.com")
    token = ctx.session("buyer@example.com")
    with psycopg.connect(ctx.url) as owner:
        rows = owner.execute("select title, category_id, season_id from app.samples "
                             "where state not in ('returned', 'cut-for-production') "
                             "order by id desc limit 2000").fetchall()
    rng = random.Random(15)
    results = []
    for kind, pick in (("specific title", lambda: rng.choice(rows)),
                       ("generic title", lambda: ("wrap dress", rows[0][1], rows[0][2]))):
        n = ctx.repeats * 3
        queries = [pick() for _ in range(n + 15)]  # + the 10 warm-up calls
        it_a, it_b = iter(queries), iter(queries)
        with psycopg.connect(ctx.app_url) as app, psycopg.connect(ctx.url) as owner:
            def ours():
                title, cat, season = next(it_a)
                with app.transaction():
                    app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                                (role, token))
                    app.execute(OURS, (title, cat, season)).fetchall()

            def base():
                title, _, _ = next(it_b)
                owner.execute(BASE, (title,)).fetchall()

            a, b = timed_pairs(ours, base, n)
        sa, sb = summary(a), summary(b)
        results.append(Result(f"near-duplicate lookup, {kind} (buyer, app path), p95", sa["p95_ms"], "ms",
                              sb["p95_ms"], "owner, 5 nearest titles", extra={"ours": sa, "baseline": sb}))
        results.append(Result(f"near-duplicate lookup, {kind}, median", sa["median_ms"], "ms", sb["median_ms"],
                              "owner, 5 nearest titles"))
    return results
