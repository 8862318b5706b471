"""Issue 16 (4): `make backup` / `make restore FILE=...` (scripts/backup.sh). A clone of the
demo database is backed up and restored into an empty throw-away cluster (port 54392);
then policies, grants and comments are identical (the two schema dumps compare equal),
the roles and their memberships are the same, every table's count is equal, the audit
chain verifies, and the web app signs in and works on the restored copy. A restore over an
existing database and a truncated backup are refused with a sentence."""
import os
import re
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from conftest import db_url
from tests.soak.cluster import PGBIN, TempCluster
from tracker.demo import demo_password

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "backup.sh"


def backup_sh(*args, url: str, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=url)
    r = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def schema_dump(url: str) -> str:
    out = subprocess.run([str(PGBIN / "pg_dump"), "--schema-only", "--dbname", url], check=True,
                         capture_output=True, text=True).stdout
    # the per-run lines: the random \restrict key of newer pg_dump versions, and the version comments;
    # a policy's role list is printed in pg_roles' physical order, which a restore may change
    lines = [line for line in out.splitlines() if not re.match(r"^(\\restrict|\\unrestrict|-- Dumped (from|by))", line)]
    # and a view's column re-printed after the round trip may gain its implied alias (x::numeric AS "numeric")
    return "\n".join(re.sub(r' AS "[^"]+"(?=,|$)', "", re.sub(
        r"(?<= TO )([a-z_]+(?:, [a-z_]+)+)(?= USING| WITH CHECK|;)",
        lambda m: ", ".join(sorted(m.group(1).split(", "))), line)) for line in lines)


ROLES_SQL = """select r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
                      r.rolbypassrls, coalesce(s.setconfig, r.rolconfig)::text,
                      array(select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
                             where m.member = r.oid order by 1)::text
                 from pg_roles r left join pg_db_role_setting s on s.setrole = r.oid and s.setdatabase = 0
                where r.rolname !~ '^pg_' and r.rolname <> current_user order by 1"""
COUNTS_SQL = """select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where c.relkind in ('r', 'p') and n.nspname in ('app', 'app_private', 'audit', 'analytics', 'cron')
                 order by 1"""


def counts(c) -> dict:
    return {t: c.execute(f"select count(*) from {t}").fetchone()[0] for (t,) in c.execute(COUNTS_SQL).fetchall()}


@pytest.fixture(scope="module")
def target():
    with TempCluster(54392) as cl:
        cl.init()
        cl.start()
        yield cl


def test_backup_and_restore_into_an_empty_cluster(fresh_db, target, tmp_path):
    fresh_db.commit()
    src = db_url(fresh_db)
    file = tmp_path / "tracker.dump"
    t = time.monotonic()
    out = backup_sh("backup", str(file), url=src).stdout
    backup_s = time.monotonic() - t
    assert file.exists() and (tmp_path / "tracker.roles.sql").exists() and "backup:" in out
    assert not list(tmp_path.glob("*.partial"))
    dest = target.url("tracker")
    t = time.monotonic()
    out = backup_sh("restore", str(file), url=dest).stdout
    restore_s = time.monotonic() - t
    print(f"\nbackup {backup_s:.1f} s, restore {restore_s:.1f} s ({file.stat().st_size / 2 ** 20:.1f} MiB)")
    assert "audit chain intact" in out

    assert schema_dump(dest) == schema_dump(src)  # tables, policies, grants, comments, functions, triggers
    with psycopg.connect(src) as a, psycopg.connect(dest) as b:
        assert b.execute(ROLES_SQL).fetchall() == a.execute(ROLES_SQL).fetchall()
        before, after = counts(a), counts(b)
        assert after == before and after["app.samples"] > 100 and after["audit.log"] > 100
        assert b.execute("select ok from audit.verify_chain()").fetchone()[0]

    # the app works on the restored copy: sign in, read a sample, request a new one
    from tracker.web import create_app
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "APP_DATABASE_URL": target.url("tracker", "authenticator")})
    try:
        client = app.test_client()
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/auth/login").get_data(as_text=True)).group(1)
        r = client.post("/auth/login", data={"email": "buyer@example.com", "password": demo_password(), "csrf": csrf})
        assert r.status_code == 302
        page = client.get("/").get_data(as_text=True)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        with psycopg.connect(dest) as b:
            cat, season = b.execute("select min(id), (select max(id) from app.seasons) from app.categories").fetchone()
        r = client.post("/samples/new", data={"csrf": csrf, "title": "Restored and working", "category": cat,
                                              "season": season})
        assert r.status_code == 303
        assert client.get(r.location).status_code == 200
    finally:
        app.extensions["pool"].close()
    with psycopg.connect(dest) as b:
        assert b.execute("select count(*) from app.samples where title = 'Restored and working'").fetchone()[0] == 1
        assert b.execute("select ok from audit.verify_chain()").fetchone()[0]
        # the new cluster's transaction ids are not the source's: what is written here is sealed here too
        assert b.execute("select sealed from audit.seal()").fetchone()[0] >= 1  # the requested sample, at least
        b.commit()
        assert b.execute("select ok, unsealed from audit.verify_chain()").fetchone() == (True, 0)

    # a second restore over the now existing database is refused, and changes nothing
    r = backup_sh("restore", str(file), url=dest, check=False)
    assert r.returncode != 0 and "already exists on that server and holds the tracker" in r.stderr
    with psycopg.connect(dest) as b:
        assert b.execute("select count(*) from app.samples where title = 'Restored and working'").fetchone()[0] == 1


def test_a_truncated_backup_is_refused(fresh_db, target, tmp_path):
    fresh_db.commit()
    file = tmp_path / "whole.dump"
    backup_sh("backup", str(file), url=db_url(fresh_db))
    cut = tmp_path / "cut.dump"
    cut.write_bytes(file.read_bytes()[:2000])
    (tmp_path / "cut.roles.sql").write_text((tmp_path / "whole.roles.sql").read_text())
    r = backup_sh("restore", str(cut), url=target.url("from_a_cut_file"), check=False)
    assert r.returncode != 0 and "is not a pg_dump custom-format archive (truncated?)" in r.stderr
    with psycopg.connect(target.url("postgres")) as c:  # refused before anything was created
        assert c.execute("select count(*) from pg_database where datname = 'from_a_cut_file'").fetchone()[0] == 0


def test_restore_into_an_existing_empty_database(fresh_db, target, tmp_path):
    """`scripts/pg.sh drop-db` leaves an empty database behind: a restore may use it."""
    fresh_db.commit()
    file = tmp_path / "again.dump"
    backup_sh("backup", str(file), url=db_url(fresh_db))
    target.create_db("empty_before")
    out = backup_sh("restore", str(file), url=target.url("empty_before")).stdout
    assert "audit chain intact" in out
    with psycopg.connect(target.url("empty_before")) as c, psycopg.connect(db_url(fresh_db)) as src:
        assert counts(c) == counts(src)
