"""Bulk receive (issue 14): a box of 30 and of 500 samples received in one app.bulk_act
call, against the same samples received one call at a time in one transaction (both as
logistics through the app's path; each round is rolled back so the samples stay ordered).

Stocktake (issue 14): a count of a location holding 5,000 samples (500 in the quick run),
by logistics through the app's path: start (fixes what is expected), one app.count_sample
per scan (the figure a person feels on each scan), the report, close; then the directors'
"missing at a stocktake" list (app.missing_samples) with that count's misses in it. All in
one transaction that is rolled back."""
import time

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
    results += stocktake(ctx)
    return results


def stocktake(ctx):
    size = 500 if ctx.quick else 5_000
    logistics = ctx.session("logistics@example.com")
    director = ctx.session("md@example.com")

    def as_person(conn, role, token):
        conn.execute("set local session authorization authenticator")
        conn.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))

    def as_owner(conn):
        conn.execute("reset role")
        conn.execute("set local session authorization default")

    with psycopg.connect(ctx.url) as conn, conn.transaction(force_rollback=True):
        # a location with exactly `size` samples on its shelves (moved there, as the owner, for this run)
        loc = conn.execute("insert into app.locations (code, name, kind) values ('BENCH-COUNT', 'Bench count', "
                           "'shelf') returning id").fetchone()[0]
        moved = conn.execute("update app.samples set location_id = %s where id in (select id from app.samples "
                             "where state = 'received' order by id limit %s)", (loc, size)).rowcount
        if moved < size:
            return []
        as_person(conn, "logistics", logistics)
        t = time.perf_counter()
        take = conn.execute("select app.start_stocktake(%s)", (loc,)).fetchone()[0]
        start_ms = (time.perf_counter() - t) * 1000
        expected = conn.execute("select expected from app.stocktakes where id = %s", (take,)).fetchone()[0]
        # 98 % of the shelf is found; the last 2 % are missing
        found = expected[: size - size // 50]
        scans = []
        for sid in found:
            t = time.perf_counter()
            conn.execute("select * from app.count_sample(%s, %s)", (take, sid)).fetchone()
            scans.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        rows = conn.execute("select count(*) from app.stocktake_report(%s)", (take,)).fetchone()[0]
        report_ms = (time.perf_counter() - t) * 1000
        conn.execute("select app.close_stocktake(%s)", (take,))
        as_owner(conn)
        as_person(conn, "md", director)
        t = time.perf_counter()
        missing = conn.execute("select count(*) from (select * from app.missing_samples "
                               "order by closed_at desc, sample_id limit 10) x").fetchone()[0]
        n_missing = conn.execute("select count(*) from app.missing_samples").fetchone()[0]
        missing_ms = (time.perf_counter() - t) * 1000
        assert rows == size and missing == 10 and n_missing >= size // 50
    s = summary(scans)
    return [Result(f"stocktake of {size:,} samples: start (expected list fixed)", round(start_ms, 1), "ms", None, ""),
            Result(f"stocktake of {size:,} samples: one scan (count_sample), median", s["median_ms"], "ms", None, "",
                   extra={"scans": s, "all_scans_s": round(sum(scans) / 1000, 1)}),
            Result(f"stocktake of {size:,} samples: one scan (count_sample), p95", s["p95_ms"], "ms", None, ""),
            Result(f"stocktake of {size:,} samples: report (found, missing, unexpected)", round(report_ms, 1), "ms",
                   None, ""),
            Result(f"directors' missing-at-stocktake list ({n_missing:,} missing): first 10 and the count",
                   round(missing_ms, 1), "ms", None, "")]
