"""Putting right what people get wrong (issue 10, items 14-15), in the database:
correcting a sample and its order, cancelling an order, removing a photo added by
mistake, and who may read colleagues' e-mail addresses and sign-in times. Who may
correct or cancel in which state is in the lifecycle matrix (test_lifecycle_matrix.py);
here: what changes, what is kept, what the timeline and the audit log say."""
from datetime import date, timedelta

import psycopg
import pytest

from conftest import act_as
from helpers import Lifecycle
from tracker.roles import ROLES


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def refused(lc, who, sql, params=()):
    with pytest.raises(psycopg.Error) as err:
        with lc.conn.transaction():
            lc.call(who, sql, params)
    return err.value


def row(conn, sql, *params):
    return conn.execute(sql, params).fetchone()


# ---------------------------------------------------------------- correcting
def test_buyer_corrects_details_and_order_and_the_timeline_says_what(lc, conn):
    sid = lc.make("ordered")
    other_cat = row(conn, "select max(id) from app.categories")[0]
    later = date.today() + timedelta(days=30)
    lc.call("buyer", "select app.correct_sample(%s, p_title => 'Linen wrap dress', p_style_code => 'WD-22', "
                     "p_category_id => %s, p_expected_on => %s, p_unit_cost => 95.5, p_currency => 'usd', "
                     "p_quantity => 3, p_po_number => 'PO-778', p_note => 'typo in the order')",
            (sid, other_cat, later))
    s = row(conn, "select title, style_code, category_id, expected_on, state::text from app.samples where id = %s", sid)
    assert s == ("Linen wrap dress", "WD-22", other_cat, later, "ordered")
    cost = row(conn, "select unit_cost, currency, quantity, po_number, fx_rate_to_gbp = "
                     "(select gbp_rate from app.currencies where code = 'USD') from app.sample_costs where sample_id = %s",
               sid)
    assert cost == (95.5, "USD", 3, "PO-778", True)  # the rate is re-read for the new currency
    ev = row(conn, "select action, from_state::text, to_state::text, note, details from app.sample_events "
                   "where sample_id = %s order by id desc limit 1", sid)
    assert ev[:4] == ("correct", "ordered", "ordered", "typo in the order")
    assert set(ev[4]["corrected"]) == {"title", "style_code", "category_id", "expected_on", "unit_cost", "currency",
                                       "quantity", "po_number"}
    assert ev[4]["was"]["title"] == "Test wrap dress"
    # the event, which everyone who sees the sample reads, names cost fields but holds no cost
    assert "95.5" not in str(ev[4]) and "unit_cost" not in ev[4]
    # the audit log holds the old and new cost, with the buyer as the actor
    audit = row(conn, "select staff_id, old_row ->> 'unit_cost', new_row ->> 'unit_cost' from audit.log "
                      "where table_name = 'app.sample_costs' and row_id = %s order by id desc limit 1", str(sid))
    assert audit == (lc.people.get("buyer")["id"], "120.00", "95.50")


def test_a_blank_style_code_or_po_clears_it_and_null_leaves_it(lc, conn):
    sid = lc.make("ordered")
    lc.call("buyer", "select app.correct_sample(%s, p_style_code => 'X1', p_po_number => 'PO-1')", (sid,))
    lc.call("buyer", "select app.correct_sample(%s, p_title => 'Renamed')", (sid,))
    assert row(conn, "select style_code from app.samples where id = %s", sid)[0] == "X1"
    lc.call("buyer", "select app.correct_sample(%s, p_style_code => '', p_po_number => ' ')", (sid,))
    assert row(conn, "select style_code from app.samples where id = %s", sid)[0] is None
    assert row(conn, "select po_number from app.sample_costs where sample_id = %s", sid)[0] is None


@pytest.mark.parametrize("kwargs,code,words", [
    ("p_title => ' '", "TR004", "needs a title"),
    ("p_unit_cost => 0", "TR005", "above zero"),
    ("p_quantity => 0", "TR005", "at least 1"),
    ("p_currency => 'XXX'", "TR005", "unknown currency"),
    ("p_expected_on => current_date - 1", "TR005", "in the past"),
    ("p_title => 'Test wrap dress'", "TR005", "nothing differs"),
    ("p_category_id => 999999", "TR005", "category 999999 does not exist"),
])
def test_bad_corrections_are_refused_and_change_nothing(lc, conn, kwargs, code, words):
    sid = lc.make("ordered")
    before = row(conn, "select s.*, c.* from app.samples s join app.sample_costs c on c.sample_id = s.id "
                       "where s.id = %s", sid)
    err = refused(lc, "buyer", f"select app.correct_sample(%s, {kwargs})", (sid,))
    assert err.sqlstate == code and words in str(err), str(err)
    assert row(conn, "select s.*, c.* from app.samples s join app.sample_costs c on c.sample_id = s.id "
                     "where s.id = %s", sid) == before


def test_a_request_has_no_order_to_correct(lc, conn):
    sid = lc.make("requested")
    err = refused(lc, "buyer", "select app.correct_sample(%s, p_unit_cost => 10)", (sid,))
    assert err.sqlstate == "TR005" and "has no order" in str(err)
    err = refused(lc, "buyer", "select app.correct_sample(%s, p_expected_on => current_date + 3)", (sid,))
    assert err.sqlstate == "TR005" and "belongs to an order" in str(err)
    # positive control: the request's own details can be corrected
    lc.call("buyer", "select app.correct_sample(%s, p_title => 'Boucle jacket')", (sid,))
    assert row(conn, "select title from app.samples where id = %s", sid)[0] == "Boucle jacket"


def test_another_teams_buyer_and_a_colleague_cannot_correct(lc, conn):
    sid = lc.make("ordered")
    # a buyer of another team sees the in-flight sample but may not correct it
    other = row(conn, "select s.id, s.role::text, s.team_id, s.email from app.staff s where s.role = 'buyer' "
                      "and s.active and s.team_id <> (select team_id from app.samples where id = %s) limit 1", sid)
    err = refused(lc, dict(zip(("id", "role", "team_id", "email"), other)),
                  "select app.correct_sample(%s, p_title => 'Hijacked')", (sid,))
    assert err.sqlstate == "TR003"
    # the team's senior buyer may (positive control)
    lc.call("senior_buyer", "select app.correct_sample(%s, p_title => 'Fixed by the senior buyer')", (sid,))
    assert row(conn, "select title from app.samples where id = %s", sid)[0] == "Fixed by the senior buyer"


def test_a_correction_is_offered_only_where_it_is_allowed(lc, conn):
    sid = lc.make("ordered")

    def offered(who):
        act_as(conn, lc.people.get(who))
        actions = [r[0] for r in conn.execute("select action from app.available_actions(%s)", (sid,))]
        act_as(conn, None)
        return actions

    assert {"correct", "cancel_order"} <= set(offered("buyer"))
    assert not {"correct", "cancel_order"} & set(offered("logistics"))


# ---------------------------------------------------------------- cancelling an order
def test_cancelling_an_order_shows_it_as_withdrawn_and_keeps_the_cost(lc, conn):
    sid = lc.make("ordered")
    err = refused(lc, "buyer", "select app.cancel_order(%s, ' ')", (sid,))
    assert err.sqlstate == "TR004" and "needs a reason" in str(err)
    lc.call("buyer", "select app.cancel_order(%s, 'supplier cannot deliver before the show')", (sid,))
    s = row(conn, "select state::text, display_state, withdrawn_at is not null from app.sample_overview "
                  "where id = %s", sid)
    assert s == ("returned", "withdrawn", True)
    assert row(conn, "select count(*) from app.sample_costs where sample_id = %s", sid)[0] == 1
    ev = row(conn, "select action, note from app.sample_events where sample_id = %s order by id desc limit 1", sid)
    assert ev == ("cancel_order", "supplier cannot deliver before the show")
    # once received, the order cannot be cancelled: the sample is returned instead
    rec = lc.make("received")
    err = refused(lc, "buyer", "select app.cancel_order(%s, 'too late')", (rec,))
    assert err.sqlstate == "TR001"


# ---------------------------------------------------------------- removing a photo
def add_photo(conn, lc, who, sid, age=timedelta(0)):
    person = lc.people.get(who)
    act_as(conn, person)
    pid = conn.execute("insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, "
                       "thumbnail, caption) values (%s, app.current_staff_id(), 'image/png', 1, 1, '\\x89', '\\xff', "
                       "'wrong one') returning id", (sid,)).fetchone()[0]
    act_as(conn, None)
    if age:
        conn.execute("update app.sample_photos set created_at = created_at - %s where id = %s", (age, pid))
    return pid


def visible_photos(conn, lc, who, sid):
    act_as(conn, lc.people.get(who))
    ids = [r[0] for r in conn.execute("select id from app.sample_photos where sample_id = %s", (sid,))]
    act_as(conn, None)
    return ids


def test_the_uploader_removes_a_photo_it_is_hidden_kept_and_audited(lc, conn):
    sid = lc.make("with-design")
    pid = add_photo(conn, lc, "designer", sid)
    assert pid in visible_photos(conn, lc, "logistics", sid)
    err = refused(lc, "designer", "select app.remove_photo(%s, '')", (pid,))
    assert err.sqlstate == "TR004"
    lc.call("designer", "select app.remove_photo(%s, 'photo of the wrong sample')", (pid,))
    for who in ("designer", "logistics", "ops_director"):
        assert pid not in visible_photos(conn, lc, who, sid)
    # kept: the row (with its image) and the change in the audit log
    assert row(conn, "select image is not null, removed_reason from app.sample_photos where id = %s", pid) == \
        (True, "photo of the wrong sample")
    assert row(conn, "select op, staff_id from audit.log where table_name = 'app.sample_photos' and row_id = %s "
                     "order by id desc limit 1", str(pid)) == ("UPDATE", lc.people.get("designer")["id"])
    assert row(conn, "select action, note from app.sample_events where sample_id = %s order by id desc limit 1",
               sid) == ("remove_photo", "photo of the wrong sample")
    # a second removal finds nothing
    assert refused(lc, "designer", "select app.remove_photo(%s, 'again')", (pid,)).sqlstate == "TR006"


@pytest.mark.parametrize("who,age,allowed", [
    ("designer", timedelta(hours=1), True),       # the uploader, soon after
    ("designer", timedelta(hours=25), False),     # the uploader, too late
    ("logistics", timedelta(hours=1), False),     # someone else
    ("sales_lead", timedelta(hours=1), False),
    ("ops_director", timedelta(days=90), True),   # a director, any time
    ("md", timedelta(days=90), True),
])
def test_who_may_remove_a_photo(lc, conn, who, age, allowed):
    sid = lc.make("with-design")
    pid = add_photo(conn, lc, "designer", sid, age)
    act_as(conn, lc.people.get(who))
    offered = pid in [r[0] for r in conn.execute("select app.removable_photos(%s)", (sid,))]
    act_as(conn, None)
    assert offered == allowed
    if allowed:
        lc.call(who, "select app.remove_photo(%s, 'mistake')", (pid,))
        assert pid not in visible_photos(conn, lc, "logistics", sid)
    else:
        assert refused(lc, who, "select app.remove_photo(%s, 'mistake')", (pid,)).sqlstate == "TR002"
        assert pid in visible_photos(conn, lc, "logistics", sid)


def test_a_photo_of_a_hidden_sample_is_not_found(lc, conn):
    sid = lc.make("ordered")
    pid = add_photo(conn, lc, "buyer", sid)
    # QC cannot see an ordered sample: its photo does not exist for them
    assert refused(lc, "qc", "select app.remove_photo(%s, 'x')", (pid,)).sqlstate == "TR006"
    act_as(conn, lc.people.get("qc"))
    assert conn.execute("select count(*) from app.removable_photos(%s)", (sid,)).fetchone()[0] == 0
    act_as(conn, None)


def test_nobody_updates_or_deletes_a_photo_directly(lc, conn):
    sid = lc.make("with-design")
    pid = add_photo(conn, lc, "designer", sid)
    for who in ("designer", "ops_director"):
        for sql in ("update app.sample_photos set removed_at = now() where id = %s",
                    "delete from app.sample_photos where id = %s"):
            assert refused(lc, who, sql, (pid,)).sqlstate == "42501"


# ---------------------------------------------------------------- the staff directory
ADMINS = {"system_admin", "ops_director", "md"}


@pytest.mark.parametrize("role", ROLES)
def test_email_and_sign_in_times_only_for_staff_admins(lc, conn, role):
    me = lc.people.get(role)
    act_as(conn, me)
    # everyone reads their own address through the who-am-I function
    assert conn.execute("select app.current_staff_email()").fetchone()[0] == me["email"]
    act_as(conn, None)
    if role in ADMINS:
        lc.call(role, "select count(email) from app.staff")
        assert lc.call(role, "select count(*) from app.last_sign_ins()") >= 0
    else:
        assert refused(lc, role, "select email from app.staff limit 1").sqlstate == "42501"
        assert refused(lc, role, "select login_role from app.staff limit 1").sqlstate == "42501"
        assert refused(lc, role, "select * from app.last_sign_ins()").sqlstate == "42501"  # not granted
        # positive control: names, roles and teams are there
        assert lc.call(role, "select count(full_name) from app.staff where active") > 10


def test_last_sign_in_is_the_latest_session(lc, conn):
    who = lc.people.get("qc")
    conn.execute("select app_private.start_session(%s)", (who["id"],))
    latest = row(conn, "select max(created_at) from app_private.web_sessions where staff_id = %s", who["id"])[0]
    act_as(conn, lc.people.get("system_admin"))
    got = conn.execute("select signed_in_at from app.last_sign_ins() where staff_id = %s", (who["id"],)).fetchone()
    act_as(conn, None)
    assert got[0] == latest
