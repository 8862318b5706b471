"""Issue 16 (6): new migrations are linted by squawk (`make lint-migrations`, run here so CI
runs it): lock and statement timeouts, concurrent index builds, safe column changes. The
migrations on main before the linter (V0001-V0014 as they were) are excluded in the Makefile."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "lint-migrations", *args], cwd=ROOT, capture_output=True, text=True)


def test_new_migrations_pass_the_linter():
    r = lint()
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_linter_refuses_an_unsafe_migration(tmp_path):
    """Positive control: a migration that would block a busy table is refused, naming the rules."""
    bad = tmp_path / "V9999__unsafe.sql"
    bad.write_text("alter table app.samples add column colour text not null default 'red';\n"
                   "create index samples_colour_idx on app.samples (colour);\n"
                   "alter table app.samples alter column title type varchar(100);\n")
    r = lint(f"SQUAWK_FILES={bad}")
    assert r.returncode != 0
    for rule in ("require-lock-timeout", "require-concurrent-index-creation", "changing-column-type"):
        assert rule in r.stdout + r.stderr
    good = tmp_path / "V9998__safe.sql"
    good.write_text("set local lock_timeout = '5s';\nset local statement_timeout = '60s';\n"
                    "alter table app.samples add column colour text;\n")
    assert lint(f"SQUAWK_FILES={good}").returncode == 0
