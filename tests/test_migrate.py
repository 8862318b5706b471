"""Migrating twice changes nothing: same catalogue, no new audit rows."""
import subprocess

from conftest import db_url
from tracker.migrate import migrate

PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


def snapshot(url):
    schema = subprocess.run([PG_DUMP, "--schema-only", "--no-owner", url], check=True, capture_output=True,
                            text=True).stdout
    # pg_dump 15.14+ brackets the dump with a random \\restrict key
    return "\n".join(line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_migrate_twice_changes_nothing(fresh_db):
    url = db_url(fresh_db)
    audit = lambda: fresh_db.execute("select count(*), max(id) from audit.log").fetchone()  # noqa: E731
    fresh_db.commit()
    before_schema, before_audit = snapshot(url), audit()
    fresh_db.commit()
    migrate(url)
    migrate(url)
    assert audit() == before_audit
    assert snapshot(url) == before_schema
    assert fresh_db.execute("select count(*) from app.transition_rules").fetchone()[0] == fresh_db.execute(
        "select count(*) from app_private.lifecycle_rules()").fetchone()[0] == 46
    assert fresh_db.execute("select ok from audit.verify_chain()").fetchone()[0]


def test_a_changed_rule_is_restored_and_audited_on_an_existing_database(fresh_db):
    """An upgrade: a database whose rules differ from sql/functions/030 (an older release,
    or a hand edit) migrates cleanly; the rule is put back and the change is in the audit log."""
    url = db_url(fresh_db)
    fresh_db.execute("set session_replication_role = replica")  # the hand edit: no audit trigger
    fresh_db.execute("update app.transition_rules set roles = '{qc}' where action = 'receive'")
    fresh_db.execute("delete from app.transition_rules where action = 'cancel_order'")
    fresh_db.execute("set session_replication_role = origin")
    fresh_db.commit()
    before = fresh_db.execute("select max(id) from audit.log").fetchone()[0]
    fresh_db.commit()
    migrate(url)
    assert fresh_db.execute("select roles::text from app.transition_rules where action = 'receive'"
                            ).fetchone()[0] == "{logistics}"
    assert fresh_db.execute("select count(*) from app.transition_rules where action = 'cancel_order'"
                            ).fetchone()[0] == 1
    logged = fresh_db.execute("select op, new_row ->> 'action' from audit.log where id > %s "
                              "and table_name = 'app.transition_rules' order by id", (before,)).fetchall()
    assert sorted(logged) == [("INSERT", "cancel_order"), ("UPDATE", "receive")]
    assert fresh_db.execute("select ok from audit.verify_chain()").fetchone()[0]


def test_every_table_has_rls_enabled_and_forced(conn):
    rows = conn.execute("""
        select n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('app', 'app_private', 'audit') and c.relkind = 'r'""").fetchall()
    assert len(rows) >= 18
    assert [r[0] for r in rows if not (r[1] and r[2])] == []


def test_every_policy_has_a_comment_and_names_its_roles(conn):
    rows = conn.execute("""
        select p.polname, c.relname, obj_description(p.oid, 'pg_policy'), p.polroles
          from pg_policy p join pg_class c on c.oid = p.polrelid""").fetchall()
    assert rows
    assert [r[:2] for r in rows if not r[2]] == []
    assert [r[:2] for r in rows if 0 in r[3]] == []  # 0 = PUBLIC


def test_security_definer_functions_pin_search_path(conn):
    rows = conn.execute("""
        select p.oid::regprocedure::text, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('app', 'app_private', 'audit') and p.prosecdef""").fetchall()
    assert rows
    bad = [name for name, cfg in rows if not any(c.startswith("search_path=pg_catalog") for c in (cfg or []))]
    assert bad == []


def test_public_has_no_rights_on_anything(conn):
    rows = conn.execute("""
        select 'function ' || p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('app', 'app_private', 'audit') and has_function_privilege('public', p.oid, 'execute')
        union all
        select 'table ' || c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('app', 'app_private', 'audit')
           and exists (select 1 from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a where a.grantee = 0)
        union all
        select 'schema ' || nspname from pg_namespace
         where nspname in ('app', 'app_private', 'audit')
           and exists (select 1 from aclexplode(coalesce(nspacl, acldefault('n', nspowner))) a where a.grantee = 0)
    """).fetchall()
    assert rows == []
