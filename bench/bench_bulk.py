"""Bulk receive (issue 14): a box of 30 and of 500 samples received in one app.bulk_act
call, against the same samples received one call at a time in one transaction (both as
logistics through the app's path; each round is rolled back so the samples stay ordered)."""
import psycopg
from psycopg.types.json import Jsonb

from .common import Result, summary, timed_pairs


def run(ctx):
    _, role, _ = ctx.persona("logistics@example.com")
    token = ctx.session("logistics@example.com")
    with psycopg.connect(ctx.url) as owner:
        ordered = [r[0] for r in owner.execute("select id from app.samples where state = 'ordered' "
                                               "order by id desc limit 500")]
        location = owner.execute("select min(id) from app.locations").fetchone()[0]
    results = []
    for size in (30, 500):
        ids = ordered[:size]
        if len(ids) < size:
            continue
        with psycopg.connect(ctx.app_url) as a, psycopg.connect(ctx.app_url) as b:
            def session(conn):
                conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)",
                             (role, token))

            def bulk():
                with a.transaction(force_rollback=True):
                    session(a)
                    rows = a.execute("select ok from app.bulk_act('receive', %s, %s)",
                                     (ids, Jsonb({"location_id": location}))).fetchall()
                    assert all(r[0] for r in rows)

            def singles():
                with b.transaction(force_rollback=True):
                    session(b)
                    for sid in ids:
                        b.execute("select app.receive_sample(%s, %s)", (sid, location))

            n = max(3, ctx.repeats // (10 if size == 500 else 2))
            x, y = timed_pairs(bulk, singles, n, warmup=2)
        sx, sy = summary(x), summary(y)
        results.append(Result(f"bulk receive of {size} (one call), median", sx["median_ms"], "ms", sy["median_ms"],
                              f"{size} single calls", extra={"ours": sx, "baseline": sy}))
    return results
