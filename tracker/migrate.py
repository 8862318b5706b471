"""Migrate a database: pgmigrate for sql/migrations/, then re-apply sql/reset.sql,
sql/functions/, sql/policies/ and sql/views/ in one transaction (see
sql/CONVENTIONS.md). Running it twice changes nothing."""
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import SQL_DIR

REPEATABLE_DIRS = ("functions", "policies", "views")


def repeatable_files() -> list[Path]:
    files = [SQL_DIR / "reset.sql"]
    for d in REPEATABLE_DIRS:
        files += sorted((SQL_DIR / d).glob("*.sql"))
    return files


def run_pgmigrate(url: str) -> None:
    exe = shutil.which("pgmigrate") or str(Path(sys.executable).parent / "pgmigrate")
    conn = make_conninfo(**conninfo_to_dict(url))
    proc = subprocess.run([exe, "-d", str(SQL_DIR), "-c", conn, "-t", "latest", "migrate"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        raise RuntimeError(f"pgmigrate failed: {lines[-1]}")


def apply_repeatables(url: str) -> None:
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(hashtext('tracker.migrate'))")
            for path in repeatable_files():
                cur.execute("reset role")
                try:
                    cur.execute(path.read_text())
                except psycopg.Error as exc:
                    raise RuntimeError(f"{path.relative_to(SQL_DIR.parent)}: {exc}") from exc
            cur.execute("reset role")


def migrate(url: str) -> None:
    run_pgmigrate(url)
    apply_repeatables(url)
