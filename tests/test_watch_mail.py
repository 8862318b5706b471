"""The Watching section of the daily mail (issue 15, item 4): what changed on the samples
and suppliers a person watches since their last mail, queued by the morning job
(app_private.queue_overdue_mail -> app_private.queue_watch_mail), sent by the real mailer
to a real SMTP server (test_mailer's sink) and read back. Each "never appears" has a
positive control: someone who may see it does get it."""
from datetime import timedelta

import psycopg
import pytest

from alerts import mailer
from conftest import Staff, act_as, db_url
from helpers import Lifecycle
from test_mailer import smtp  # noqa: F401  (the aiosmtpd sink fixture)


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def watch(conn, person: dict, sample=None, supplier=None):
    """As the person, through their own grants and policies (the Watch button's path)."""
    act_as(conn, person)
    conn.execute("insert into app.watches (staff_id, sample_id, supplier_id) values (app.current_staff_id(), %s, %s)",
                 (sample, supplier))
    act_as(conn, None)
    conn.commit()


def new_person(conn, name: str, email: str, role: str, team_like: str | None = None) -> dict:
    conn.execute("insert into app.staff (full_name, email, role, team_id) values (%s, %s, %s, "
                 "(select team_id from app.staff where email = %s))", (name, email, role, team_like))
    conn.commit()
    return Staff(conn).get(email)


def mails_by_recipient(smtp_sink) -> dict:
    out = {}
    for m in smtp_sink.messages:
        out[m["To"]] = (m["Subject"], m.get_body(("plain",)).get_content(), m.get_body(("html",)).get_content())
    return out


@pytest.fixture
def world(fresh_db):
    conn = fresh_db
    lc = Lifecycle(conn)
    people = Staff(conn)
    other_buyer = people.get(one(conn, "select email from app.staff where role = 'buyer' and active and team_id <> "
                                       "(select team_id from app.staff where email = 'buyer@example.com') "
                                       "order by id limit 1"))
    ours = lc.make("ordered")                           # the demo buyer's team (WW)
    theirs = lc.make("ordered", requester=other_buyer["email"])  # another team's, in flight
    conn.commit()
    # watchers with nothing overdue of their own, so their mail is the Watching section alone
    wendy = new_person(conn, "Wendy Watcher", "wendy.watch@example.com", "buyer", "buyer@example.com")
    dan = new_person(conn, "Dan Designer-Watcher", "dan.watch@example.com", "designer", "designer@example.com")
    mo = new_person(conn, "Mo Director-Watcher", "mo.watch@example.com", "md")
    supplier = lc.supplier
    for p in (wendy, mo):
        watch(conn, p, sample=ours)
        watch(conn, p, sample=theirs)
    watch(conn, dan, sample=ours)
    for p in (dan, mo):
        watch(conn, p, supplier=supplier)
    return {"conn": conn, "lc": lc, "ours": ours, "theirs": theirs, "wendy": wendy, "dan": dan, "mo": mo,
            "other_buyer": other_buyer, "supplier": supplier}


def test_watching_section_shows_what_changed_only_as_the_recipient_may_see_it(world, smtp):
    conn, lc = world["conn"], world["lc"]
    ours, theirs = world["ours"], world["theirs"]
    md = lc.people.get("md")
    # changes after the watches began
    lc.call("logistics", "select app.receive_sample(%s, %s)", (ours, lc.location))
    conn.commit()
    lc.call("finance", "update app.sample_costs set po_number = 'PO-WATCH-SECRET' "
                       "where sample_id = %s returning 1", (ours,))
    conn.commit()
    lc.call(md, "insert into app.sample_comments (sample_id, author_id, body) values (%s, %s, 'Hem looks short') "
                "returning id", (theirs, md["id"]))
    conn.commit()
    # the other team's sample leaves flight: the buyer Wendy no longer sees it at all
    lc.call(world["other_buyer"], "select app.cancel_order(%s, 'Supplier cannot deliver')", (theirs,))
    conn.commit()
    # the watched supplier is put on hold, and a new request from it (requested: hidden from designers)
    lc.call("senior_buyer", "select app.hold_supplier(%s, 'Quality review booked')", (world["supplier"],))
    conn.commit()
    lc.call("senior_buyer", "select app.lift_supplier_hold(%s, 'Review passed')", (world["supplier"],))
    conn.commit()
    fresh = lc.call("buyer", "select app.request_sample('Watched-supplier trench', %s, %s, %s)",
                    (lc.category, lc.season, world["supplier"]))
    conn.commit()

    assert one(conn, "select app_private.queue_overdue_mail(current_date)") > 0
    conn.commit()
    r = mailer.drain(db_url(conn), smtp.settings)
    assert not r.retry and not r.failed
    mails = mails_by_recipient(smtp)

    # Wendy (buyer, WW): her team's sample with its receipt; the other team's sample has left
    # flight, so neither it, its comment nor its cancellation reaches her
    _, text, html = mails[world["wendy"]["email"]]
    assert "WATCHING: what changed since your last mail" in text and ">Watching</h2>" in html
    assert f"#{ours}" in text and f"/samples/{ours}" in html and "receive: ordered → received" in text
    assert f"#{theirs}" not in text and f"/samples/{theirs}" not in html
    assert "Hem looks short" not in text + html and "Supplier cannot deliver" not in text + html
    # the director (positive control) sees both, the comment as a change (never its words)
    mo_subject, mo_text, mo_html = mails[world["mo"]["email"]]
    # nothing overdue for a director: the mail is the Watching section alone
    assert mo_subject.startswith("Watching: ") and "Nothing you are responsible for is overdue" in mo_text
    assert f"#{ours}" in mo_text and f"#{theirs}" in mo_text and "commented" in mo_text
    assert "cancel order: ordered → returned" in mo_text
    assert "Hem looks short" not in mo_text

    # never a cost or a PO, not even to the director who may read them
    for _, t, h in mails.values():
        assert "PO-WATCH-SECRET" not in t + h and "120.00" not in t + h and "£" not in t + h and "€" not in t + h

    # the supplier: hold and lift with reasons for both watchers; the new request only to the
    # director (a designer cannot see a requested sample)
    _, dan_text, dan_html = mails[world["dan"]["email"]]
    for t in (dan_text, mo_text):
        assert "put on hold: Quality review booked" in t and "hold lifted: Review passed" in t
    assert f"sample {fresh} requested" in mo_text
    assert str(fresh) not in dan_text + dan_html and "Watched-supplier trench" not in dan_text + dan_html
    # Dan sees the watched sample's receipt (designers see received samples)
    assert f"#{ours}" in dan_text and "receive: ordered → received" in dan_text


def test_the_next_mail_starts_where_the_last_ended_and_a_rerun_adds_nothing(world, smtp):
    conn, lc = world["conn"], world["lc"]
    ours, wendy = world["ours"], world["wendy"]
    lc.call("logistics", "select app.receive_sample(%s, %s)", (ours, lc.location))
    conn.commit()
    day = one(conn, "select current_date")
    one(conn, "select app_private.queue_overdue_mail(%s)", (day,))
    conn.commit()
    payload = one(conn, "select payload from app_private.mail_outbox where staff_id = %s", (wendy["id"],))
    assert [i["id"] for i in payload["watching"]["items"]] == [ours]
    # a re-run the same day queues nothing new; the waiting mail's section is rewritten, once
    lc.call("logistics", "select app.hand_to_design(%s, %s)", (ours, lc.designer))
    conn.commit()
    assert one(conn, "select count(*) from app_private.mail_outbox where staff_id = %s", (wendy["id"],)) == 1
    assert one(conn, "select app_private.queue_watch_mail(%s)", (day,)) == 0
    conn.commit()
    payload = one(conn, "select payload from app_private.mail_outbox where staff_id = %s", (wendy["id"],))
    assert payload["watching"]["items"][0]["count"] == 2
    r = mailer.drain(db_url(conn), smtp.settings)
    assert not r.retry and not r.failed
    # the next day: only what changed after the sent mail's window
    # nothing new yet: no mail
    assert one(conn, "select app_private.queue_watch_mail(%s)", (day + timedelta(days=1),)) == 0
    lc.call("designer", "select app.hand_back(%s, %s)", (ours, lc.location))
    conn.commit()
    # Wendy, Dan and Mo all watch it: one mail each, nothing overdue for the day after in this test
    assert one(conn, "select app_private.queue_watch_mail(%s)", (day + timedelta(days=1),)) == 3
    conn.commit()
    nxt = one(conn, "select payload from app_private.mail_outbox where staff_id = %s and day = %s",
              (wendy["id"], day + timedelta(days=1)))
    changes = nxt["watching"]["items"][0]["changes"]
    assert len(changes) == 1 and changes[0]["what"].startswith("hand back")


def test_a_watch_on_a_sample_never_mails_a_change_from_before_the_watch(world):
    conn, lc = world["conn"], world["lc"]
    # the ordering happened before anyone watched: nothing to report yet
    assert one(conn, "select app_private.watch_changes(%s, current_date, now())", (world["wendy"]["id"],))["total"] == 0
    lc.call("logistics", "select app.receive_sample(%s, %s)", (world["ours"], lc.location))
    conn.commit()  # positive control: a change after the watch is reported
    assert one(conn, "select app_private.watch_changes(%s, current_date, now())", (world["wendy"]["id"],))["total"] == 1


def test_staff_cannot_call_the_mail_functions(world):
    conn = world["conn"]
    act_as(conn, world["wendy"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select app_private.watch_changes(%s, current_date, now())", (world["mo"]["id"],))
    conn.rollback()
    # positive control: the owner's job reads it
    assert "items" in one(conn, "select app_private.watch_changes(%s, current_date, now())", (world["mo"]["id"],))
