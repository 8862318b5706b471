"""`make bench`: run every benchmark in bench/ against a generated data set and print
one table (name, figure, unit, baseline, ratio). Each benchmark runs its baseline in
the same run, interleaved where it can, so the ratio holds on a noisy machine.

  python -m bench.run              # 1M samples (generated if the data set is missing)
  python -m bench.run --quick      # 50k samples, short runs: the CI smoke test
  python -m bench.run --only rls   # one benchmark
Results go to bench/results/<timestamp>.json; a full run also rewrites bench/RESULTS.md."""
import argparse
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from tracker import config

from . import generate
from .common import Context

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["transitions", "audit", "rls", "lookup", "web", "similar", "bulk", "import", "analytics", "overdue",
              "realtime", "pooler"]
console = Console(width=150)


def ensure_data(dbname: str, samples: int) -> str:
    url = generate.bench_url(dbname)
    try:
        with psycopg.connect(url) as c:
            have = c.execute("select count(*) from app.samples").fetchone()[0]
    except psycopg.Error:
        have = None
    if have != samples:
        console.print(f"[bold]generating {samples:,} samples into {dbname}[/] (had {have})")
        url = generate.recreate_database(dbname)
        stats = generate.generate(url, samples)
        console.print(f"generated in {stats['seconds']:.0f} s; database {stats['bytes'] / 2**30:.2f} GiB")
        return url
    # bring functions/policies up to date without regenerating
    from tracker.migrate import migrate
    migrate(url)
    return url


def machine() -> str:
    mem = ""
    try:
        mem = f", {int(open('/proc/meminfo').read().split()[1]) // 2**20} GiB"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="run the benchmarks")
    ap.add_argument("--quick", action="store_true", help="50k samples, short runs (CI smoke test)")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--db", help="database name (default tracker_bench, or tracker_bench_quick with --quick)")
    ap.add_argument("--only", choices=BENCHMARKS, action="append")
    args = ap.parse_args(argv)
    samples = args.samples or (50_000 if args.quick else 1_000_000)
    args.db = args.db or ("tracker_bench_quick" if args.quick else "tracker_bench")
    try:
        url = ensure_data(args.db, samples)
        app_url = config.with_dbname(config.app_database_url(url), args.db)
        ctx = Context(url=url, app_url=app_url, dbname=args.db, samples=samples, quick=args.quick)
        results = []
        for name in args.only or BENCHMARKS:
            console.print(f"running [bold]{name}[/] ...")
            t = time.perf_counter()
            mod = importlib.import_module(f"bench.bench_{name}")
            for r in mod.run(ctx):
                r.extra["benchmark"] = name
                results.append(r)
            console.print(f"  done in {time.perf_counter() - t:.0f} s")
    except (psycopg.Error, RuntimeError) as exc:
        print(f"bench: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)

    table = Table(title=f"benchmarks, {samples:,} samples ({'quick' if args.quick else 'full'})")
    for col in ("benchmark", "figure", "unit", "baseline", "vs", "ratio"):
        table.add_column(col, justify="right" if col in ("figure", "baseline", "ratio") else "left")
    for r in results:
        table.add_row(r.name, fmt(r.figure), r.unit, fmt(r.baseline), r.baseline_name,
                      f"{r.ratio:.2f}x" if r.ratio else "-")
    console.print(table)
    console.print("ratio > 1 means slower than the baseline (time: ours/baseline; throughput: baseline/ours)")

    stamp = datetime.now(timezone.utc)
    payload = {"date": stamp.isoformat(timespec="seconds"), "machine": machine(), "samples": samples,
               "quick": args.quick,
               "results": [dict(asdict(r), ratio=r.ratio) for r in results]}
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"{stamp:%Y%m%dT%H%M%S}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(payload, indent=2))
    console.print(f"wrote {out.relative_to(HERE.parent)}")
    if not args.quick and not args.only:
        write_results_md(payload)
        console.print("wrote bench/RESULTS.md")


def write_results_md(payload):
    lines = ["# Benchmark results", "",
             f"Latest full `make bench`: {payload['date']} on {payload['machine']}, "
             f"{payload['samples']:,} samples (generated by `make data`).", "",
             "ratio > 1 means slower than the baseline (time: ours / baseline; throughput: baseline / ours).",
             "Each baseline ran in the same run, interleaved where possible.", "",
             "| benchmark | figure | unit | baseline | baseline is | ratio |", "|---|---:|---|---:|---|---:|"]
    for r in payload["results"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        lines.append(f"| {r['name']} | {fmt(r['figure'])} | {r['unit']} | {fmt(r['baseline'])} | "
                     f"{r['baseline_name']} | {ratio} |")
    lines += ["", "## Reading the figures", "",
              "* Audited writes append unsealed rows and never wait on one another; the sealer chains",
              "  them (every 2 s in the benchmark; its lag is a row above). What serialises commits is the realtime signal",
              "  (an advisory lock and a NOTIFY at every commit): compare the figures with it off. The",
              "  checks themselves cost little: compare the functions with the bare writes that fire the",
              "  same triggers.",
              "* The RLS dashboard figures isolate the policies (persona set once per session); the lookup",
              "  figure is the web app's whole per-request path (BEGIN, role and staff id, query, COMMIT),",
              "  so its ratio is mostly three extra round trips of ~0.05 ms.",
              "* The owner's team-spend baseline is slower than the RLS query: with the policies' InitPlan",
              "  parameters the planner picks index-driven joins; with the literal team id it prefers hashing.",
              ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
