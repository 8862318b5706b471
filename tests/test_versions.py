"""One optimistic-concurrency mechanism (issue 17, item 5): every update of a sample or a
staff row bumps its `version` (a BEFORE UPDATE trigger), and a form that acted on what it
showed sends that version: app.expect_sample_version refuses a stale one (TR017) inside the
action's transaction, so nothing changes and the person is told why."""
import re

import psycopg
import pytest

from conftest import act_as, cloned_web_app, signed_in_client
from helpers import Lifecycle


# ---------------------------------------------------------------- in SQL, acting as each persona
def version(conn, sid):
    return conn.execute("select version from app.samples where id = %s", (sid,)).fetchone()[0]


def test_every_change_bumps_the_version_whoever_makes_it(conn):
    life = Lifecycle(conn)
    sid = life.make("ordered")
    v = version(conn, sid)
    life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))  # a lifecycle action
    assert version(conn, sid) == v + 1
    other = conn.execute("select max(id) from app.locations").fetchone()[0]
    act_as(conn, life.people.get("logistics"))
    assert conn.execute("update app.samples set location_id = %s where id = %s", (other, sid)).rowcount == 1
    act_as(conn, None)
    assert version(conn, sid) == v + 2  # a direct edit the grants allow
    staff = conn.execute("select id, version from app.staff where email = 'qc@example.com'").fetchone()
    conn.execute("update app.staff set full_name = full_name || ' ' where id = %s", (staff[0],))
    assert conn.execute("select version from app.staff where id = %s", (staff[0],)).fetchone()[0] == staff[1] + 1


DERIVED = {"search", "version"}  # what may change without the sample changing


def test_the_version_watches_every_column_of_a_sample_but_the_derived_ones(conn):
    """before_update_bump_version names its columns (so a rename's search rebuild leaves versions
    alone): read from the catalogue, a new column missing from that list fails here."""
    columns = {r[0] for r in conn.execute(
        "select attname from pg_attribute where attrelid = 'app.samples'::regclass and attnum > 0 "
        "and not attisdropped").fetchall()}
    watched = {r[0] for r in conn.execute(
        "select a.attname from pg_trigger t cross join unnest(t.tgattr) k(attnum) "
        "join pg_attribute a on a.attrelid = t.tgrelid and a.attnum = k.attnum "
        "where t.tgrelid = 'app.samples'::regclass and t.tgname = 'before_update_bump_version'").fetchall()}
    assert DERIVED < columns
    assert watched == columns - DERIVED


def test_renaming_a_supplier_refreshes_search_but_changes_no_version(conn):
    life = Lifecycle(conn)
    sid = life.make("ordered")
    supplier = conn.execute("select supplier_id from app.samples where id = %s", (sid,)).fetchone()[0]
    v = version(conn, sid)
    audited = conn.execute("select count(*) from audit.log where table_name = 'app.samples'").fetchone()[0]
    conn.execute("update app.suppliers set name = 'Zyxwvut Mills' where id = %s", (supplier,))
    assert conn.execute("select search @@ to_tsquery('english', 'zyxwvut') from app.samples where id = %s",
                        (sid,)).fetchone()[0]
    assert version(conn, sid) == v  # nobody's open form goes stale for a name elsewhere
    assert conn.execute("select count(*) from audit.log where table_name = 'app.samples'").fetchone()[0] == audited
    life.call("logistics", "select app.receive_sample(%s, %s)", (sid, life.location))
    assert version(conn, sid) == v + 1  # positive control: a real change still bumps it


def test_a_stale_version_is_refused_and_changes_nothing(conn):
    life = Lifecycle(conn)
    sid = life.make("received")
    seen = version(conn, sid)
    life.call("logistics", "select app.hand_to_design(%s, %s)", (sid, life.designer))  # someone else acts first
    conn.execute("savepoint s")
    act_as(conn, life.people.get("logistics"))
    with pytest.raises(psycopg.Error) as err:
        conn.execute("select app.expect_sample_version(%s, %s)", (sid, seen))
        conn.execute("select app.hand_back(%s, %s)", (sid, life.location))
    assert err.value.sqlstate == "TR017"
    assert f"someone changed sample {sid} since you opened it" in err.value.diag.message_primary
    conn.execute("rollback to savepoint s")
    act_as(conn, None)
    assert life.state(sid) == "with-design"
    # positive control: with the version it has now, the same action goes through
    act_as(conn, life.people.get("logistics"))
    conn.execute("select app.expect_sample_version(%s, %s)", (sid, version(conn, sid)))
    conn.execute("select app.hand_back(%s, %s)", (sid, life.location))
    act_as(conn, None)
    assert life.state(sid) == "received"


def test_a_hidden_sample_is_not_found_whatever_the_version(conn):
    """The check never tells someone who cannot see a sample that it exists (nor its version)."""
    life = Lifecycle(conn)
    sid = life.make("requested")  # designers see nothing before the order
    v = version(conn, sid)
    for guess in (v, v + 1):
        conn.execute("savepoint s")
        act_as(conn, life.people.get("designer"))
        with pytest.raises(psycopg.Error) as err:
            conn.execute("select app.expect_sample_version(%s, %s)", (sid, guess))
        assert err.value.sqlstate == "TR006"
        conn.execute("rollback to savepoint s")
    act_as(conn, life.people.get("buyer"))  # positive control: its requester may
    conn.execute("select app.expect_sample_version(%s, %s)", (sid, v))
    act_as(conn, None)


# ---------------------------------------------------------------- through the sample page
@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_versions") as app:
        yield app


def test_two_people_with_the_same_page_open_the_second_is_told(app, db):
    sid = db.execute("select id from app.samples where state = 'received' and not qc_rejected "
                     "and transit_from is null order by id limit 1").fetchone()[0]
    location = db.execute("select id from app.locations order by id limit 1").fetchone()[0]
    designer = db.execute("select id from app.staff where email = 'designer@example.com'").fetchone()[0]
    first, second = signed_in_client(app, "logistics"), signed_in_client(app, "logistics")
    pages = [c.get(f"/samples/{sid}").get_data(as_text=True) for c in (first, second)]
    shown = [re.search(r'name="version" value="(\d+)"', p).group(1) for p in pages]
    assert shown[0] == shown[1]
    r = first.post(f"/samples/{sid}/act/hand_to_design",
                   data={"csrf": first.csrf, "version": shown[0], "holder": designer})
    assert r.status_code == 303
    assert db.execute("select state::text from app.samples where id = %s", (sid,)).fetchone()[0] == "with-design"
    r = second.post(f"/samples/{sid}/act/hand_back",
                    data={"csrf": second.csrf, "version": shown[1], "location": location})
    page = second.get(r.location).get_data(as_text=True)
    assert f"Someone changed sample {sid} since you opened it" in page
    assert db.execute("select state::text from app.samples where id = %s", (sid,)).fetchone()[0] == "with-design"
    fresh = re.search(r'name="version" value="(\d+)"', page).group(1)
    assert fresh != shown[1]  # the page now shows the current version; acting again works
    r = second.post(f"/samples/{sid}/act/hand_back",
                    data={"csrf": second.csrf, "version": fresh, "location": location})
    assert f"Sample {sid}" in second.get(r.location).get_data(as_text=True)
    assert db.execute("select state::text from app.samples where id = %s", (sid,)).fetchone()[0] == "received"
