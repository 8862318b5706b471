"""The sample room's leftovers (issue 14): the overdue rule for handovers nobody confirmed
(a row of app.overdue_rules, in the lists and the morning mail, edited, extended and
chased like the others), and samples a stocktake missed, on the directors' dashboard
until accounted for (app.missing_samples, under RLS)."""
from datetime import date, datetime, time, timedelta, timezone

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import act_as, cloned_web_app, signed_in_client
from helpers import Lifecycle

RULE = "handover-unconfirmed"
D0 = date(2030, 3, 2)  # after every demo change: nothing of the demo is "changed since"


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def ids(conn, role, team=None):
    return {r[0] for r in conn.execute("select id from app.staff where active and role = %s "
                                       "and team_id is not distinct from %s", (role, team))}


def handed_over(lc, who, action, value, state="received", on=D0):
    """A sample handed over by `who` (through the real function), its handover dated `on`."""
    sid = lc.make(state)
    lc.call(who, f"select app.{action}(%s, %s)", (sid, value))
    lc.conn.execute("update app.samples set transit_since = case when transit_from is not null then %s end, "
                    "state_changed_at = %s where id = %s",
                    (datetime.combine(on, time(10), tzinfo=timezone.utc),) * 2 + (sid,))
    return sid


def chasers(conn, sid, day):
    rows = conn.execute("select staff_id, via from app_private.overdue_for(%s, %s) where rule_code = %s",
                        (day, sid, RULE)).fetchall()
    return {r[0] for r in rows}, {r[1] for r in rows}


def call_as(conn, who, sql, params=()):
    try:
        with conn.transaction():
            act_as(conn, who)
            row = conn.execute(sql, params).fetchone()
            act_as(conn, None)
            return row[0] if row else None
    except psycopg.Error as exc:
        act_as(conn, None)
        return exc


# ---------------------------------------------------------------- the handover rule
def test_the_rule_is_a_row_like_the_others(conn):
    row = conn.execute("select condition, states::text[], days_allowed, responsible_role::text, active "
                       "from app.overdue_rules where code = %s", (RULE,)).fetchone()
    assert row == ("unconfirmed_handover", ["with-design", "with-sales", "at-factory"], 1, "logistics", True)


def test_an_unconfirmed_handover_is_overdue_the_day_after_its_due_day_for_the_sender(lc, conn):
    logistics = lc.people.get("logistics")
    sid = handed_over(lc, "logistics", "hand_to_design", lc.designer)
    assert chasers(conn, sid, D0 + timedelta(days=1)) == (set(), set()), "fired on its due day"
    # the logistics person who handed it over chases it, nobody else
    assert chasers(conn, sid, D0 + timedelta(days=2)) == ({logistics["id"]}, {"sender"})
    row = conn.execute("select days_overdue, reason from app_private.overdue_for(%s, %s) where rule_code = %s",
                       (D0 + timedelta(days=5), sid, RULE)).fetchone()
    assert row[0] == 4 and row[1] == "handed over 02 Mar 2030, not confirmed by the receiver"
    # confirmed by the receiver: overdue for nobody (and the other rules of the state still apply)
    lc.call("designer", "select app.confirm_handover(%s)", (sid,))
    assert chasers(conn, sid, D0 + timedelta(days=5)) == (set(), set())


def test_a_handover_by_someone_of_another_role_goes_to_logistics(lc, conn):
    """Design hands to sales: the sender is a designer, so logistics (the role, as for the other
    logistics rules: the sample's team's, else those without a team) chases it."""
    sid = lc.make("with-design")
    lc.call("designer", "select app.confirm_handover(%s)", (sid,))
    lc.call("designer", "select app.hand_to_sales(%s, %s)", (sid, lc.sales_exec))
    conn.execute("update app.samples set transit_since = %s where id = %s",
                 (datetime.combine(D0, time(10), tzinfo=timezone.utc), sid))
    got, via = chasers(conn, sid, D0 + timedelta(days=2))
    team = one(conn, "select team_id from app.samples where id = %s", (sid,))
    assert got == (ids(conn, "logistics", team) or ids(conn, "logistics")) and got
    assert via <= {"team", "role"} and lc.designer not in got and lc.sales_exec not in got


def test_a_sample_sent_to_a_factory_waits_for_the_factory_liaison(lc, conn):
    sid = handed_over(lc, "logistics", "send_to_factory", lc.factory)
    assert chasers(conn, sid, D0 + timedelta(days=2))[0] == {lc.people.get("logistics")["id"]}
    # a factory liaison who sends it there needs no confirmation, so there is nothing to chase
    sid2 = handed_over(lc, "factory_liaison", "send_to_factory", lc.factory)
    assert one(conn, "select transit_from from app.samples where id = %s", (sid2,)) is None
    assert chasers(conn, sid2, D0 + timedelta(days=30)) == (set(), set())


def test_it_shows_in_the_lists_and_in_the_morning_mail(lc, conn, today):
    logistics = lc.people.get("logistics")
    sid = handed_over(lc, "logistics", "hand_to_design", lc.designer, on=today - timedelta(days=3))
    fresh = handed_over(lc, "logistics", "hand_to_design", lc.designer, on=today)
    act_as(conn, lc.people.get("md"))
    rows = dict(conn.execute("select id, overdue_reason from app.sample_overview where id = any(%s) and is_overdue",
                             ([sid, fresh],)).fetchall())
    act_as(conn, None)
    assert set(rows) == {sid} and "not confirmed by the receiver" in rows[sid]
    conn.execute("select app_private.queue_overdue_mail(%s)", (today,))
    lines = conn.execute("select l ->> 'rule' from app_private.mail_outbox o, jsonb_array_elements(o.payload -> 'lines') l "
                         "where o.kind = 'overdue' and o.staff_id = %s and o.day = %s and (l ->> 'sample_id')::bigint = %s",
                         (logistics["id"], today, sid)).fetchall()
    assert lines == [(RULE,)]
    # nobody else is mailed about it (the rule's line goes to its sender only)
    assert one(conn, "select count(*) from app_private.mail_outbox o, jsonb_array_elements(o.payload -> 'lines') l "
                     "where o.kind = 'overdue' and o.day = %s and (l ->> 'sample_id')::bigint = %s "
                     "and l ->> 'rule' = %s", (today, sid, RULE)) == 1


def test_the_ops_director_edits_it_like_the_others(lc, conn):
    director = lc.people.get("ops_director")
    sid = handed_over(lc, "logistics", "hand_to_design", lc.designer)
    assert call_as(conn, director, "update app.overdue_rules set days_allowed = 3 where code = %s returning 1",
                   (RULE,)) == 1
    assert chasers(conn, sid, D0 + timedelta(days=2)) == (set(), set())
    assert chasers(conn, sid, D0 + timedelta(days=4))[0] == {lc.people.get("logistics")["id"]}
    assert call_as(conn, director, "update app.overdue_rules set active = false where code = %s returning 1",
                   (RULE,)) == 1
    assert chasers(conn, sid, D0 + timedelta(days=40)) == (set(), set())
    bad = call_as(conn, director, "update app.overdue_rules set days_allowed = 400, active = true where code = %s "
                                  "returning 1", (RULE,))
    assert isinstance(bad, psycopg.Error) and bad.sqlstate == "TR033"
    # a buyer cannot edit it at all (the positive control is the director above)
    refused = call_as(conn, lc.people.get("buyer"), "update app.overdue_rules set days_allowed = 9 where code = %s "
                                                    "returning 1", (RULE,))
    assert isinstance(refused, psycopg.errors.InsufficientPrivilege)


def test_the_sender_extends_and_marks_it_chased_and_an_extension_holds_for_that_handover_only(lc, conn):
    logistics = lc.people.get("logistics")
    sid = handed_over(lc, "logistics", "hand_to_design", lc.designer, on=date.today() - timedelta(days=5))
    new_due = date.today() + timedelta(days=3)
    # the receiver is not the one who chases it
    refused = call_as(conn, lc.people.get("designer"), "select app.extend_due_date(%s, %s, %s, 'busy')",
                      (sid, RULE, new_due))
    assert isinstance(refused, psycopg.Error) and refused.sqlstate == "TR031"
    assert call_as(conn, logistics, "select app.extend_due_date(%s, %s, %s, 'studio closed until Thursday')",
                   (sid, RULE, new_due)) == new_due
    assert chasers(conn, sid, new_due)[0] == set()
    assert chasers(conn, sid, new_due + timedelta(days=1))[0] == {logistics["id"]}
    # extended, so not overdue today: nothing to mark chased
    chased = call_as(conn, logistics, "select app.mark_chased(%s, %s, 'rang the studio')", (sid, RULE))
    assert isinstance(chased, psycopg.Error) and chased.sqlstate == "TR030"
    # a new handover in the same state (to another designer) is a new wait: the extension was for the last one
    other = one(conn, "select id from app.staff where role = 'designer' and active and id <> %s order by id limit 1",
                (lc.designer,))
    lc.call("designer", "select app.hand_to_design(%s, %s)", (sid, other))
    conn.execute("update app.samples set transit_since = %s where id = %s",
                 (datetime.combine(date.today() - timedelta(days=4), time(10), tzinfo=timezone.utc), sid))
    assert one(conn, "select state::text from app.samples where id = %s", (sid,)) == "with-design"
    got = chasers(conn, sid, date.today())[0]
    assert got and lc.designer not in got  # the sender is now a designer: logistics chases it


def test_marking_an_overdue_handover_chased(lc, conn):
    logistics = lc.people.get("logistics")
    sid = handed_over(lc, "logistics", "hand_to_design", lc.designer, on=date.today() - timedelta(days=5))
    assert call_as(conn, logistics, "select app.mark_chased(%s, %s, 'rang the studio')", (sid, RULE)) == date.today()
    assert chasers(conn, sid, date.today() + timedelta(days=1))[0] == set()
    # positive control: the day after tomorrow it is back
    assert chasers(conn, sid, date.today() + timedelta(days=2))[0] == {logistics["id"]}


# ---------------------------------------------------------------- missing at a stocktake
def count(lc, found, location=None):
    """A closed count of the location by logistics that found `found`; returns its id."""
    logistics = lc.people.get("logistics")
    take = lc.call(logistics, "select app.start_stocktake(%s)", (location or lc.location,))
    for sid in found:
        lc.call(logistics, "select * from app.count_sample(%s, %s)", (take, sid))
    lc.call(logistics, "select app.close_stocktake(%s)", (take,))
    return take


def missing(conn, who):
    act_as(conn, who)
    rows = {r[0]: r[1] for r in conn.execute("select sample_id, stocktake_id from app.missing_samples")}
    act_as(conn, None)
    return rows


def test_missing_samples_are_listed_until_accounted_for(lc, conn):
    a, b, c = (lc.make("received") for _ in range(3))
    md = lc.people.get("md")
    assert not {a, b, c} & set(missing(conn, md))
    take = count(lc, [a])
    assert {k: v for k, v in missing(conn, md).items() if k in (a, b, c)} == {b: take, c: take}
    # something happens to b (it is handed to design): b is accounted for
    lc.call("logistics", "select app.hand_to_design(%s, %s)", (b, lc.designer))
    assert b not in missing(conn, md) and c in missing(conn, md)
    # a later count of any location that finds c accounts for it too
    other = one(conn, "select max(id) from app.locations")
    count(lc, [c], other)
    assert c not in missing(conn, md)
    assert a not in missing(conn, md)  # found the first time


def test_a_sample_missed_twice_is_listed_once_with_the_latest_count(lc, conn):
    sid = lc.make("received")
    first = count(lc, [])
    second = count(lc, [])
    assert missing(conn, lc.people.get("ops_director"))[sid] == second != first


@pytest.mark.parametrize("role", ["buyer", "senior_buyer", "designer", "sales_lead", "qc", "factory_liaison",
                                  "finance", "system_admin"])
def test_only_those_who_read_stocktakes_see_missing_samples(lc, conn, role):
    sid = lc.make("received")
    count(lc, [])
    assert sid in missing(conn, lc.people.get("logistics"))  # positive control
    assert missing(conn, lc.people.get(role)) == {}


# ---------------------------------------------------------------- the directors' dashboard
@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_sample_room_followups") as app:
        yield app


def test_the_directors_dashboard_counts_and_links_missing_samples(app, db):
    gone = db.execute("select sample_id, stocktake_id from app.missing_samples order by sample_id").fetchall()
    assert gone, "the demo's count left one sample missing"
    for role in ("md", "ops_director"):
        page = signed_in_client(app, role).get("/").get_data(as_text=True)
        assert f'Missing at a stocktake: <strong class="bad">{len(gone)}</strong>' in page
        for sid, take in gone:
            assert f'href="/samples/{sid}"' in page and f'href="/stocktake/{take}"' in page
    # other dashboards do not carry it
    assert "Missing at a stocktake" not in signed_in_client(app, "logistics").get("/").get_data(as_text=True)
    c = signed_in_client(app, "md")
    full = c.get("/stocktake/missing").get_data(as_text=True)
    assert all(f'href="/samples/{sid}"' in full for sid, _ in gone)
    csv = c.get("/stocktake/missing.csv").get_data(as_text=True).splitlines()
    assert csv[0].startswith("No.,Title,State,Expected at,Count") and len(csv) == len(gone) + 1
    # a buyer's view of the same page lists nothing (RLS: stocktakes are not theirs)
    buyer = signed_in_client(app, "buyer").get("/stocktake/missing").get_data(as_text=True)
    assert not any(f'href="/samples/{sid}"' in buyer for sid, _ in gone)


# ---------------------------------------------------------------- bulk = singles
# every bulk move, from a state it applies to, by a role that may: (action, from, who, values, single call)
MOVES = [
    ("receive", "ordered", "logistics", lambda lc: {"location_id": lc.location},
     "select app.receive_sample(%s, %s)", lambda lc: (lc.location,)),
    ("hand_to_design", "received", "logistics", lambda lc: {"holder_id": lc.designer},
     "select app.hand_to_design(%s, %s)", lambda lc: (lc.designer,)),
    ("hand_to_sales", "received", "logistics", lambda lc: {"holder_id": lc.sales_exec},
     "select app.hand_to_sales(%s, %s)", lambda lc: (lc.sales_exec,)),
    ("hand_back", "with-design", "logistics", lambda lc: {"location_id": lc.location},
     "select app.hand_back(%s, %s)", lambda lc: (lc.location,)),
    ("send_to_factory", "received", "logistics", lambda lc: {"factory_id": lc.factory},
     "select app.send_to_factory(%s, %s)", lambda lc: (lc.factory,)),
    ("return_from_factory", "at-factory", "factory_liaison", lambda lc: {"location_id": lc.location},
     "select app.return_from_factory(%s, %s)", lambda lc: (lc.location,)),
    ("return_to_supplier", "received", "logistics", lambda lc: {"courier_ref": "DHL 1234"},
     "select app.return_to_supplier(%s, %s)", lambda lc: ("DHL 1234",)),
    ("confirm_handover", "with-design", "designer", lambda lc: {},
     "select app.confirm_handover(%s)", lambda lc: ()),
]
SAME = ("state, holder_id, location_id, factory_id, received_on, return_due_on, courier_ref, transit_from, "
        "transit_since is not null, version")


@pytest.mark.parametrize("action,state,who,values,single,args", MOVES, ids=[m[0] for m in MOVES])
def test_a_bulk_move_leaves_each_sample_and_its_timeline_as_the_single_call_does(lc, conn, action, state, who,
                                                                                  values, single, args):
    one_by_one, together = lc.make(state), lc.make(state)
    lc.call(who, single, (one_by_one, *args(lc)))
    got = bulk_rows(lc, who, action, [together], values(lc))
    assert got[together][0] is True, got
    rows = [conn.execute(f"select {SAME} from app.samples where id = %s", (sid,)).fetchone()
            for sid in (one_by_one, together)]
    assert rows[0] == rows[1]
    events = [conn.execute("select action, from_state::text, to_state::text, actor_id, details - 'handed_over_at' "
                           "from app.sample_events where sample_id = %s order by id desc limit 1", (sid,)).fetchone()
              for sid in (one_by_one, together)]
    assert events[0] == events[1] and events[0][0] == action


def bulk_rows(lc, who, action, ids, values, all_or_nothing=False):
    act_as(lc.conn, lc.people.get(who))
    rows = lc.conn.execute("select sample_id, ok, event_id, code, message from app.bulk_act(%s, %s, %s, %s)",
                           (action, ids, Jsonb(values), all_or_nothing)).fetchall()
    act_as(lc.conn, None)
    return {r[0]: r[1:] for r in rows}


def test_a_refused_sample_leaves_no_trace_and_the_others_one_event_each(lc, conn):
    ordered = [lc.make("ordered") for _ in range(3)]
    requested = lc.make("requested")
    audit_before = one(conn, "select count(*) from audit.log where table_name = 'app.samples' "
                             "and row_id = %s", (str(requested),))
    got = bulk_rows(lc, "logistics", "receive", ordered + [requested], {"location_id": lc.location})
    assert [got[s][0] for s in ordered] == [True] * 3 and got[requested][0] is False
    assert {got[s][1] for s in ordered} == {r[0] for r in conn.execute(
        "select id from app.sample_events where sample_id = any(%s) and action = 'receive'", (ordered,))}
    assert one(conn, "select count(*) from audit.log where table_name = 'app.samples' and row_id = %s",
               (str(requested),)) == audit_before
    assert one(conn, "select version from app.samples where id = %s", (requested,)) == 1  # only its request
