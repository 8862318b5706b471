"""Growth, measured (issue 18 item 5): `make growth` (python -m bench.growth).

For each size (default 100k, 1M and 3M samples) it generates the data set into one
database (tracker_growth, recreated per size so only one size occupies the disk at a
time; dropped at the end unless --keep), then measures, in this order:

* the database size (pg_database_size) and how long the generator took;
* matview refresh: app_private.refresh_analytics('manual'), what the nightly pg_cron
  job runs (every analytics view, CONCURRENTLY);
* dashboard p95: the first tab of five roles' dashboards (buyer, senior buyer,
  logistics, finance, md), in-process through Flask (database + rendering), N requests
  each after a warm-up; the figure is the worst role's p95;
* transitions/s through the public functions at 8 clients, and pgbench simple-update
  on the same cluster in the same run (bench/bench_transitions.py, unchanged).

It prints one table, writes bench/results/growth-<stamp>.json and prints the markdown
rows for bench/RESULTS.md. Bounded: ~1 min of measuring per size plus generation.

  python -m bench.growth [--sizes 100000,1000000,3000000] [--keep] [--requests 40]"""
import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from rich.console import Console

from tracker import config

from . import bench_transitions, bench_web, generate
from .common import Context, percentile

HERE = Path(__file__).resolve().parent
DB = "tracker_growth"
ROLES = ["buyer", "senior_buyer", "logistics", "finance", "md"]
console = Console(stderr=True)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"  # 1-minute load average


def dashboards(ctx, n: int) -> dict:
    os.environ.setdefault("TRACKER_LOG_LEVEL", "warning")  # no request log lines in the output
    from tracker.web import create_app
    app = create_app({"TESTING": True, "SECRET_KEY": "growth", "APP_DATABASE_URL": ctx.app_url})
    out = {}
    try:
        for role in ROLES:
            c = bench_web.client(app, ctx, role)

            def get(c=c):
                r = c.get("/")
                assert r.status_code == 200, r.status_code
            ms = bench_web.timed(get, n)
            out[role] = round(percentile(ms, 95), 1)
    finally:
        app.extensions["pool"].close()
    return out


def measure(samples: int, requests: int) -> dict:
    row = {"samples": samples, "load_before": load()}
    console.print(f"[bold]{samples:,} samples[/]: generating into {DB} (load {row['load_before']})")
    url = generate.recreate_database(DB)
    stats = generate.generate(url, samples)
    row.update(generate_s=round(stats["seconds"]), events=stats["events"], db_bytes=stats["bytes"])
    ctx = Context(url=url, app_url=config.with_dbname(config.app_database_url(url), DB), dbname=DB,
                  samples=samples, quick=False)
    console.print("  refreshing the analytics views")
    with psycopg.connect(url, autocommit=True) as owner:
        t = time.perf_counter()
        owner.execute("select app_private.refresh_analytics('manual')")
        row["refresh_s"] = round(time.perf_counter() - t, 1)
    console.print("  dashboards")
    row["dashboard_p95_ms"] = dashboards(ctx, requests)
    console.print("  transitions (3 x 10 s of pgbench)")
    tr = bench_transitions.run(ctx)
    row["transitions_per_s"] = round(tr[1].figure)
    row["pgbench_simple_update_tps"] = round(tr[1].baseline)
    with psycopg.connect(url) as c:
        row["db_bytes_after"] = c.execute("select pg_database_size(current_database())").fetchone()[0]
    row["load_after"] = load()
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| samples | events | database | generate | matview refresh (all) | dashboard p95, worst of 5 roles "
             "| transitions/s (8 clients) | pgbench simple-update | load before / after |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        worst = max(r["dashboard_p95_ms"], key=r["dashboard_p95_ms"].get)
        lines.append(f"| {r['samples']:,} | {r['events']:,} | {r['db_bytes'] / 2**30:.2f} GiB | {r['generate_s']} s "
                     f"| {r['refresh_s']} s | {r['dashboard_p95_ms'][worst]} ms ({worst}) "
                     f"| {r['transitions_per_s']:,} | {r['pgbench_simple_update_tps']:,} "
                     f"| {r['load_before']} / {r['load_after']} |")
    lines += ["", "dashboard p95 per role (ms): " + "; ".join(
        f"{r['samples']:,}: " + ", ".join(f"{k} {v}" for k, v in r["dashboard_p95_ms"].items()) for r in rows)]
    return "\n".join(lines)


def drop():
    admin = config.with_dbname(config.database_url(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{DB}" with (force)')


def main(argv=None):
    ap = argparse.ArgumentParser(description="growth curve: generate and measure at several sizes")
    ap.add_argument("--sizes", default="100000,1000000,3000000", help="comma-separated sample counts")
    ap.add_argument("--requests", type=int, default=40, help="dashboard requests per role")
    ap.add_argument("--keep", action="store_true", help="keep the last database instead of dropping it")
    args = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        print(f"growth: --sizes must be numbers separated by commas, not {args.sizes!r}", file=sys.stderr)
        sys.exit(2)
    if any(s < 50000 for s in sizes) or args.requests < 1:
        print("growth: every size must be at least 50000 samples (the transitions benchmark needs them) and --requests at least 1", file=sys.stderr)
        sys.exit(2)
    rows = []
    try:
        for s in sizes:
            rows.append(measure(s, args.requests))
            console.print(rows[-1])
    except (psycopg.Error, RuntimeError) as exc:
        print(f"growth: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
    finally:
        if not args.keep:
            drop()
    stamp = datetime.now(timezone.utc)
    out = HERE / "results" / f"growth-{stamp:%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"date": stamp.isoformat(timespec="seconds"), "rows": rows}, indent=2))
    print(markdown(rows))
    console.print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
