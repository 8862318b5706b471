"""app_private.sample_match (V0023): what the near-duplicate check matches a sample on, off the
write path of a move. A move leaves its row alone; a rename, a new category, closing and
reopening rewrite it; it always equals what it is derived from; and no role reads it except
through the definer functions that apply the samples policies."""
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import act_as
from helpers import Lifecycle

ROLES = yaml.safe_load((Path(__file__).parents[1] / "sql" / "permission_matrix.yml").read_text())["roles"]

# the row as the triggers must keep it, from app.samples
DERIVED = """
select s.id, s.category_id, s.title, s.style_code, s.state not in ('returned', 'cut-for-production')
  from app.samples s"""
KEPT = """
select m.sample_id, m.category_id, m.title, m.style_code, m.in_flight
  from app_private.sample_match m"""


def where(conn, sid):
    """The physical address of the sample's match row: a new one after any write to it."""
    return conn.execute("select ctid from app_private.sample_match where sample_id = %s", (sid,)).fetchone()[0]


def test_a_move_does_not_write_the_match_row_but_a_rename_does(conn):
    life = Lifecycle(conn)
    sid = life.make("received")
    before = where(conn, sid)
    life.call("logistics", "select app.hand_to_design(%s, %s)", (sid, life.designer))
    life.call("designer", "select app.hand_to_sales(%s, %s)", (sid, life.sales_exec))
    assert life.state(sid) == "with-sales"
    assert where(conn, sid) == before  # two moves: the row was not touched
    # positive control: what it matches on changes -> the row is rewritten
    sid2 = life.make("requested")
    before2 = where(conn, sid2)
    life.call("buyer", "update app.samples set title = 'Zyxwvut wrap dress' where id = %s returning id", (sid2,))
    assert where(conn, sid2) != before2
    assert conn.execute("select title from app_private.sample_match where sample_id = %s", (sid2,)).fetchone()[0] \
        == "Zyxwvut wrap dress"


@pytest.mark.parametrize("state, in_flight", [
    ("requested", True), ("ordered", True), ("received", True), ("with-design", True), ("with-sales", True),
    ("at-factory", True), ("returned", False), ("cut-for-production", False)])
def test_in_flight_follows_the_state(conn, state, in_flight):
    life = Lifecycle(conn)
    sid = life.make(state, approved=state == "cut-for-production")
    assert conn.execute("select in_flight from app_private.sample_match where sample_id = %s",
                        (sid,)).fetchone()[0] is in_flight


def test_the_table_equals_its_definition_after_every_kind_of_change(conn):
    life = Lifecycle(conn)
    made = {state: life.make(state) for state in ("requested", "ordered", "with-design", "returned")}
    # a buyer's own changes before receipt: title, style code, category
    other_category = conn.execute("select max(id) from app.categories").fetchone()[0]
    life.call("buyer", "update app.samples set style_code = 'ZX-991', category_id = %s where id = %s returning id",
              (other_category, made["requested"]))
    # the order gives a supplier and moves the sample on (nothing matched changes)
    life.call("buyer", "select app.order_sample(%s, %s, 50.00, 'GBP', %s)",
              (made["requested"], life.supplier, life.expected))
    # a director reopens a returned sample; another is returned (closes)
    life.call("ops_director", "select app.override_state(%s, 'received', 'found it', %s)",
              (made["returned"], life.location))
    life.call("logistics", "select app.return_to_supplier(%s, 'DHL9')", (made["with-design"],))
    # renames elsewhere: a supplier and a category
    conn.execute("update app.suppliers set name = 'Qwertz Mills' where id = %s", (life.supplier,))
    conn.execute("update app.categories set name = 'Quxwear' where id = %s", (other_category,))
    derived = set(conn.execute(DERIVED).fetchall())
    kept = set(conn.execute(KEPT).fetchall())
    assert kept == derived
    assert conn.execute("select in_flight from app_private.sample_match where sample_id = %s",
                        (made["returned"],)).fetchone()[0] is True
    assert conn.execute("select in_flight from app_private.sample_match where sample_id = %s",
                        (made["with-design"],)).fetchone()[0] is False
    # the search document stays on the sample, rebuilt by the renames
    assert conn.execute("select search @@ to_tsquery('simple', 'qwertz & quxwear') from app.samples "
                        "where id = %s", (made["requested"],)).fetchone()[0]


def test_no_samples_index_is_gist(conn):
    """Every move rewrites every index of app.samples (it is never a HOT update: the state is
    indexed). The dearest kind to write, GiST (the trigram indexes), belongs on
    app_private.sample_match; the full-text GIN stays (its pending list makes a move cheap)."""
    kinds = conn.execute("""
        select am.amname, count(*) from pg_index i join pg_class c on c.oid = i.indexrelid
          join pg_am am on am.oid = c.relam
         where i.indrelid = %s::regclass group by am.amname""", ("app.samples",)).fetchall()
    assert dict(kinds).keys() == {"btree", "gin"} and dict(kinds)["gin"] == 1
    match = dict(conn.execute("""
        select am.amname, count(*) from pg_index i join pg_class c on c.oid = i.indexrelid
          join pg_am am on am.oid = c.relam
         where i.indrelid = 'app_private.sample_match'::regclass group by am.amname""").fetchall())
    assert match == {"btree": 1, "gist": 3}


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reads_the_table_directly(conn, role):
    life = Lifecycle(conn)
    sid = life.make("ordered")
    person = life.people.get(role)
    # positive control: the same person asks the definer function
    assert life.call(person, "select count(*) from app.similar_samples('Test wrap dress')") is not None
    act_as(conn, person)
    with conn.transaction():
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.transaction():
                conn.execute("select title from app_private.sample_match where sample_id = %s", (sid,))
    act_as(conn, None)
