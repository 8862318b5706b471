"""Shared helpers for benchmarks: timing loops, pgbench runs, personas, results."""
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import conninfo_to_dict

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


@dataclass
class Result:
    """One line of the results table. ratio = cost relative to the baseline: for times
    ours / baseline, for throughputs baseline / ours; so > 1 always means 'we are slower'."""
    name: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    higher_is_better: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline or not self.figure:
            return None
        return self.baseline / self.figure if self.higher_is_better else self.figure / self.baseline


@dataclass
class Context:
    url: str          # admin
    app_url: str      # authenticator
    dbname: str
    samples: int
    quick: bool

    @property
    def duration(self) -> int:
        return 3 if self.quick else 10

    @property
    def repeats(self) -> int:
        return 40 if self.quick else 200

    def persona(self, email: str) -> tuple[int, str, int | None]:
        with psycopg.connect(self.url) as c:
            row = c.execute("select id, role::text, team_id from app.staff where email = %s", (email,)).fetchone()
        if row is None:
            raise RuntimeError(f"no staff {email} in {self.dbname}")
        return row

    def session(self, email: str) -> str:
        """A web session token of that person (what the web app puts into tracker.session)."""
        with psycopg.connect(self.url) as c:
            row = c.execute("select app_private.start_session(id, interval '1 day') from app.staff where email = %s",
                            (email,)).fetchone()
        if row is None:
            raise RuntimeError(f"no staff {email} in {self.dbname}")
        return row[0]


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed_pairs(run_a, run_b, repeats, warmup=10):
    """Interleave two callables so machine noise hits both alike; returns ms lists."""
    for _ in range(warmup):
        run_a()
        run_b()
    a, b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        run_a()
        a.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        run_b()
        b.append((time.perf_counter() - t) * 1000)
    return a, b


def summary(ms):
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(percentile(ms, 95), 3),
            "n": len(ms)}


def pgbench(url: str, script: str, clients: int, seconds: int, options: str = "", user: str | None = None,
            builtin: str | None = None) -> float:
    """Run pgbench for `seconds` and return tps (without connection time)."""
    params = conninfo_to_dict(url)
    env = dict(os.environ, PGHOST=params.get("host", ""), PGPORT=str(params.get("port", "5432")),
               PGUSER=user or params.get("user", ""), PGDATABASE=params["dbname"])
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    if options:
        env["PGOPTIONS"] = options
    args = [PGBENCH, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)]
    tmp = None
    if builtin:
        args += ["-b", builtin]
    else:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
        tmp.write(script)
        tmp.close()
        args += ["-f", tmp.name]
    try:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        if tmp:
            os.unlink(tmp.name)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"pgbench failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    if failed and int(failed.group(1)):
        raise RuntimeError(f"pgbench: {failed.group(1)} failed transactions")
    return float(m.group(1))
