"""Issue 16 (6): an upgrade from the previous release's schema keeps every row and the
audit chain. The previous release is the commit before the newest migration arrived (along first parents)
(UPGRADE_FROM=<commit> to choose another); its own code (git archive) builds a database with
its own data generator (UPGRADE_SAMPLES, default 33,000; 1,000,000 by hand for the figures),
then the current `migrate` runs on it: every table keeps its rows, the chain verifies,
every sample's state is its last event's, and the lifecycle works on the upgraded data."""
import os
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import psycopg
import pytest

from conftest import _url
from tracker.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = int(os.environ.get("UPGRADE_SAMPLES", "33000"))  # its generator needs > 32,767 (smallint)
DB = "tracker_test_upgrade"


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def previous_release() -> str | None:
    if os.environ.get("UPGRADE_FROM"):
        return os.environ["UPGRADE_FROM"]
    current = {p.name for p in (ROOT / "sql" / "migrations").glob("V*.sql")}
    version = lambda name: int(name[1:5])  # noqa: E731
    try:
        # the newest earlier state of this line (first parents, merges included) whose migrations are a
        # prefix of today's: pgmigrate never applies a version below one a database has, so a state holding
        # V0013 but not V0008 (numbered in parallel, merged later) is no release anyone could upgrade from
        # (the folder was sql/schema, with sql/migrations a symlink to it, until issue 17)
        for rev in git("log", "--first-parent", "--format=%H", "--", "sql/schema", "sql/migrations").splitlines():
            names = {n.rsplit("/", 1)[-1] for n in git("ls-tree", "--name-only", rev, "sql/schema/", "sql/migrations/").splitlines()
                     if n.rsplit("/", 1)[-1].startswith("V")}
            if names and names < current and all(n in names for n in current if version(n) <= max(map(version, names))):
                return rev
        return None
    except subprocess.CalledProcessError:
        return None


COUNTS = """select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind = 'r' and n.nspname in ('app', 'app_private', 'audit') order by 1"""


def counts(c) -> dict:
    return {t: c.execute(f"select count(*) from {t}").fetchone()[0] for (t,) in c.execute(COUNTS).fetchall()}


@pytest.fixture(scope="module")
def old_database(tmp_path_factory):
    rev = previous_release()
    if not rev:
        pytest.skip("no git history to find the previous release in (a shallow clone?)")
    old = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "archive", rev, "sql", "tracker", "bench", "scripts"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    if (old / "sql" / "schema").is_dir():  # a release from before the folder had one name
        (old / "sql" / "migrations").unlink(missing_ok=True)
        (old / "sql" / "migrations").symlink_to("schema")
    env = dict(os.environ, DATABASE_URL=_url("postgres"), PYTHONPATH=str(old))
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "bench.generate", "--samples", str(SAMPLES), "--db", DB],
                       cwd=old, env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-2000:]
    print(f"\nprevious release {rev[:10]}: {r.stdout.strip()} ({time.monotonic() - t:.0f} s with its migrations)")
    yield rev, _url(DB)
    with psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{DB}" with (force)')


def test_upgrading_from_the_previous_release_keeps_every_row_and_the_chain(old_database):
    rev, url = old_database
    with psycopg.connect(url) as c:
        before = counts(c)
        old_version = c.execute("select max(version) from public.schema_version").fetchone()[0]
        assert c.execute("select ok from audit.verify_chain()").fetchone()[0]
        assert before["app.samples"] >= SAMPLES
        # a chain with sealed rows and a few still waiting, as a running system has (V0025 moves the seals)
        c.execute("select audit.seal()")
        c.commit()
        for loc in [r[0] for r in c.execute("select id from app.locations order by id limit 2").fetchall()]:
            c.execute("update app.locations set name = name || ' (moved)' where id = %s", (loc,))
        c.commit()
        sealed_before = c.execute("select count(*) from audit.log where hash is not null").fetchone()[0] \
            if c.execute("select to_regclass('audit.seals') is null").fetchone()[0] else \
            c.execute("select count(*) from audit.seals").fetchone()[0]
        waiting = c.execute("select unsealed from audit.verify_chain()").fetchone()[0]
        assert sealed_before > 0 and waiting == 2
        before = counts(c)
    t = time.monotonic()
    migrate(url)
    took = time.monotonic() - t
    with psycopg.connect(url) as c:
        after = counts(c)
        new_version = c.execute("select max(version) from public.schema_version").fetchone()[0]
        print(f"upgrade V{old_version:04d} -> V{new_version:04d} at {before['app.samples']:,} samples: {took:.1f} s")
        assert new_version > old_version
        for table, n in before.items():
            # rows are kept; the log and the rule tables may gain rows (a changed rule is written and
            # audited; a release may ship a new overdue rule, as V0017 the unconfirmed-handover one)
            if table in ("audit.log", "app.transition_rules", "app.overdue_rules"):
                assert after[table] >= n, table
            else:
                assert after[table] == n, f"{table}: {n} rows before the upgrade, {after[table]} after"
        ok, checked, broken, why = c.execute("select ok, rows_checked, first_broken_id, problem from audit.verify_chain()").fetchone()
        assert ok, why
        assert checked >= sealed_before  # every seal kept (and what the release's own writes added since)
        assert c.execute("select sealed from audit.seal()").fetchone()[0] >= 2  # the rows that waited are sealed now
        c.commit()
        assert c.execute("select ok, unsealed from audit.verify_chain()").fetchone() == (True, 0)
        assert c.execute("""select count(*) from app.samples s
                              left join lateral (select to_state from app.sample_events e where e.sample_id = s.id
                                                  order by e.at desc, e.id desc limit 1) last on true
                             where last.to_state is distinct from s.state""").fetchone()[0] == 0
        # the lifecycle works on the upgraded data, as a person
        sid, staff, role = c.execute(
            "select s.id, st.id, st.role::text from app.samples s, app.staff st where s.state = 'received' "
            "and not s.qc_rejected and st.role = 'logistics' and st.active order by s.id limit 1").fetchone()
        token = c.execute("select app_private.start_session(%s)", (staff,)).fetchone()[0]
        c.execute("set local session authorization authenticator")
        c.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))
        factory = c.execute("select min(id) from app.factories where active").fetchone()[0]
        assert c.execute("select app.send_to_factory(%s, %s)", (sid, factory)).fetchone()[0]
        c.rollback()
