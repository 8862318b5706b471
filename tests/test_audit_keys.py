"""Every audited table's audit rows name their row (issue 17, item 3). The key is the
table's primary key, read from pg_index when the trigger is attached
(sql/functions/021_audit_triggers.sql): one column gives its value as text, several a
JSON array of the values in key order. The tests walk the catalogue, so a table added
later is covered without editing them."""
from pathlib import Path

import psycopg
import pytest

from tracker.config import SQL_DIR

AUDITED = """
select c.oid::regclass::text as tbl,
       (select array_agg(a.attname::text order by k.n)
          from pg_index i cross join lateral unnest(i.indkey) with ordinality k(attnum, n)
          join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
         where i.indrelid = c.oid and i.indisprimary) as pk,
       t.tgargs
  from pg_trigger t join pg_class c on c.oid = t.tgrelid
 where t.tgfoid = 'audit.tg_any__record_change'::regproc
 order by 1"""


def audited(conn):
    rows = conn.execute(AUDITED).fetchall()
    return [(tbl, pk, [a for a in bytes(args).decode().split("\x00") if a]) for tbl, pk, args in rows]


def test_every_business_table_is_audited(conn):
    tables = {r[0] for r in conn.execute(
        """select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'app' and c.relkind = 'r' and c.relname not in ('sample_events', 'realtime_events')"""
    ).fetchall()}
    assert len(tables) > 20
    assert tables <= {t for t, _, _ in audited(conn)}
    assert "app_private.staff_credentials" in {t for t, _, _ in audited(conn)}


def test_each_audit_trigger_is_keyed_by_its_tables_primary_key(conn):
    found = audited(conn)
    assert len(found) > 20
    wrong = [(t, pk, args) for t, pk, args in found if pk is None or args != pk]
    assert wrong == []
    # the ones the hand-kept list got wrong, and a composite key
    keys = {t: pk for t, pk, _ in found}
    assert keys["app.currencies"] == ["code"] and keys["app.supplier_quality"] == ["supplier_id"]
    assert len(keys["app.duplicate_dismissals"]) == 2


def test_every_audited_tables_audit_rows_carry_their_key(conn):
    """Over every audit row of every audited table (the demo writes to nearly all of them):
    row_id is not null and is exactly the key read back from the logged row."""
    checked = 0
    for tbl, pk, _ in audited(conn):
        key = (f"coalesce(new_row, old_row) ->> '{pk[0]}'" if len(pk) == 1 else
               "jsonb_build_array(" + ", ".join(f"coalesce(new_row, old_row) -> '{k}'" for k in pk) + ")::text")
        total, bad = conn.execute(
            f"select count(*), count(*) filter (where row_id is distinct from {key}) "  # noqa: S608 (catalogue names)
            "from audit.log where table_name = %s", (tbl,)).fetchone()
        assert bad == 0, f"{tbl}: {bad} of {total} audit rows without their key"
        checked += total > 0
    assert checked >= 20


def test_currencies_supplier_quality_and_a_composite_key_are_named(conn):
    conn.execute("update app.currencies set name = name || ' (renamed)' where code = 'GBP'")
    assert conn.execute("select row_id from audit.log order by id desc limit 1").fetchone()[0] == "GBP"
    sup = conn.execute("select supplier_id from app.supplier_quality limit 1").fetchone()[0]
    conn.execute("delete from app.supplier_quality where supplier_id = %s", (sup,))
    assert conn.execute("select table_name, row_id from audit.log order by id desc limit 1").fetchone() == \
        ("app.supplier_quality", str(sup))
    a, b = conn.execute("select min(id), max(id) from app.samples").fetchone()
    staff = conn.execute("select min(id) from app.staff").fetchone()[0]
    conn.execute("insert into app.duplicate_dismissals (sample_a, sample_b, dismissed_by) values (%s, %s, %s)",
                 (a, b, staff))
    assert conn.execute("select row_id from audit.log order by id desc limit 1").fetchone()[0] == f"[{a}, {b}]"


def test_a_table_without_a_primary_key_stops_the_migration(conn):
    attach = (SQL_DIR / "functions" / "021_audit_triggers.sql").read_text()
    conn.execute(attach)  # positive control: today's tables all have one
    conn.execute("reset role")
    conn.execute("create table app.no_key (x int)")
    with pytest.raises(psycopg.Error) as err:
        conn.execute(attach)
    assert err.value.sqlstate == "TR052" and "app.no_key has no primary key" in err.value.diag.message_primary
    conn.rollback()


def test_no_hand_kept_key_list_is_left():
    text = (SQL_DIR / "functions" / "021_audit_triggers.sql").read_text()
    assert "'sample_id'" not in text and "'inspection_id'" not in text
    assert "pg_index" in text and Path(SQL_DIR / "functions" / "020_audit.sql").exists()
