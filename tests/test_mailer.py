"""The mailer against a real SMTP server (aiosmtpd, started here) and the real cluster:
one clean mail per person (HTML + text, a link per sample), a second run sends nothing,
SMTP refusing then accepting delivers exactly once, SMTP down is retried later, a
crash between the server's accept and our commit sends no duplicate, --dry-run
changes nothing, welcome mails per role, PDFs rendered as the recipient."""
import os
import re
import socket
import subprocess
import sys
from datetime import date, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller

from alerts import mailer, pdf, render
from alerts.recipient import as_recipient
from alerts.settings import SmtpSettings
from alerts.welcome import GUIDE, ROLE_NAMES
from conftest import act_as, db_url
from tracker.roles import ROLES

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An SMTP server keeping what it accepted; refuses the next `refuse` DATA with 451."""

    def __init__(self):
        self.messages = []
        self.refuse = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    sink.settings = SmtpSettings("127.0.0.1", port, "none", None, None, "Tracker <tracker@example.com>", 10)
    yield sink
    controller.stop()


def one(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def outbox(db, where="true"):
    return db.execute(f"select id, kind, staff_id, to_email, attempts, sent_at is not null, failed_at is not null, "
                      f"(sending_since is not null and sent_at is null) from app_private.mail_outbox where {where} order by id").fetchall()


def queue(db, day=None, keep=None):
    n = one(db, "select app_private.queue_overdue_mail(%s)", (day or date.today(),))
    if keep:
        db.execute("delete from app_private.mail_outbox where id not in (select id from app_private.mail_outbox "
                   "order by id limit %s)", (keep,))
    db.commit()
    return n


def test_one_mail_per_person_html_and_text_with_a_link_per_sample_and_a_rerun_sends_nothing(fresh_db, smtp):
    url = db_url(fresh_db)
    n = queue(fresh_db)
    assert n > 3
    r = mailer.drain(url, smtp.settings)
    assert len(r.sent) == n and not r.retry and not r.failed
    assert len(smtp.messages) == n
    to = [m["To"] for m in smtp.messages]
    assert len(set(to)) == len(to), "one mail per person"
    rows = fresh_db.execute("select to_email, payload from app_private.mail_outbox where kind = 'overdue'").fetchall()
    expected = {e: p for e, p in rows}
    for m in smtp.messages:
        text = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        lines = expected[m["To"]]["lines"]
        for line in lines:
            assert f"/samples/{line['sample_id']}" in text and f'href="http://127.0.0.1:5000/samples/{line["sample_id"]}"' in html
            assert line["title"] in text and f"{line['days_overdue']} day" in text and line["held_by"] in text
        assert m["Message-ID"].startswith("<outbox-") and m["Auto-Submitted"] == "auto-generated"
        assert "CC" not in m and "Cc" not in m
    # the job again the same day, and the mailer again: nothing new
    assert queue(fresh_db) == 0
    r = mailer.drain(url, smtp.settings)
    assert r.sent == [] and len(smtp.messages) == n


def test_smtp_refusing_then_accepting_delivers_exactly_once(fresh_db, smtp):
    url = db_url(fresh_db)
    queue(fresh_db, keep=1)
    smtp.refuse = 1
    r = mailer.drain(url, smtp.settings)
    assert r.sent == [] and len(r.retry) == 1 and smtp.messages == []
    (oid, _, _, _, attempts, sent, failed, sending), = outbox(fresh_db)
    assert (attempts, sent, failed, sending) == (1, False, False, False)
    assert one(fresh_db, "select next_attempt_at > now() from app_private.mail_outbox") is True
    # backoff: not yet due
    assert mailer.drain(url, smtp.settings).sent == [] and smtp.messages == []
    fresh_db.execute("update app_private.mail_outbox set next_attempt_at = now()")  # the minute has passed
    fresh_db.commit()
    assert mailer.drain(url, smtp.settings).sent == [oid]
    assert mailer.drain(url, smtp.settings).sent == []
    assert len(smtp.messages) == 1
    assert outbox(fresh_db)[0][4:] == (2, True, False, False)


def test_smtp_down_is_retried_later_with_backoff(fresh_db):
    url = db_url(fresh_db)
    queue(fresh_db, keep=2)
    down = SmtpSettings("127.0.0.1", free_port(), "none", None, None, "t@example.com", 2)
    r = mailer.drain(url, down, log=lambda m: None)
    assert r.sent == [] and len(r.retry) == 1, "stops at the first row when the server is down"
    assert [row[4] for row in outbox(fresh_db)] == [1, 0]
    assert one(fresh_db, "select min(last_error) from app_private.mail_outbox") .startswith("SmtpDown")
    assert mailer.backoff_minutes(1) == 1 and mailer.backoff_minutes(4) == 8 and mailer.backoff_minutes(30) == 360


def run_mailer(url, port, **env):
    e = {**os.environ, "DATABASE_URL": url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), **env}
    e.pop("APP_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "alerts"], cwd=ROOT, env=e, capture_output=True, text=True, timeout=120)


def test_a_crash_between_the_servers_accept_and_our_commit_sends_no_duplicate(fresh_db, smtp):
    url = db_url(fresh_db)
    queue(fresh_db, keep=1)
    port = smtp.settings.port
    crashed = run_mailer(url, port, ALERTS_TEST_CRASH_AFTER_ACCEPT="1")
    assert crashed.returncode == 17, crashed.stderr
    assert len(smtp.messages) == 1, "the server accepted the mail before the crash"
    (oid, *_rest, sent, failed, sending), = outbox(fresh_db)
    assert (sent, failed, sending) == (False, False, True), "in doubt: sending_since without sent_at"
    restarted = run_mailer(url, port)
    assert restarted.returncode == 0 and "sent 0" in restarted.stdout
    assert len(smtp.messages) == 1, "restart sent a duplicate"
    assert [r["id"] for r in mailer.in_doubt(url)] == [oid]
    # positive control: once a person releases it, the mailer does send it again
    assert mailer.release_in_doubt(url, oid)
    assert run_mailer(url, port).returncode == 0
    assert len(smtp.messages) == 2 and smtp.messages[0]["Message-ID"] == smtp.messages[1]["Message-ID"]


def test_dry_run_prints_what_would_be_sent_and_changes_nothing(fresh_db, smtp, capsys):
    url = db_url(fresh_db)
    n = queue(fresh_db)
    before = outbox(fresh_db)
    fresh_db.commit()
    assert mailer.dry_run(url, "t@example.com") == n
    out = capsys.readouterr().out
    assert f"{n} mail(s) would be sent" in out and "Subject: " in out and "/samples/" in out
    assert outbox(fresh_db) == before and smtp.messages == []


# ------------------------------------------------------------------ welcome mail
def invite(conn, role):
    team = one(conn, "select min(id) from app.teams") if role in ("buyer", "senior_buyer") else None
    sid = one(conn, "insert into app.staff (email, full_name, role, team_id) values (%s, 'New Person', %s, %s) "
                    "returning id", (f"new.{role}@example.com", role, team))
    md = conn.execute("select id, role::text, team_id from app.staff where email = 'md@example.com'").fetchone()
    act_as(conn, {"id": md[0], "role": md[1], "team_id": md[2]})
    token = one(conn, "select app.create_invite(%s)", (sid,))
    act_as(conn, None)
    return sid, token


@pytest.mark.parametrize("role", ROLES)
def test_welcome_mail_is_role_aware_and_carries_the_expiring_link(conn, role):
    sid, token = invite(conn, role)
    row = conn.execute("select id, kind, staff_id, day, dedupe_key, to_email, subject, payload from "
                       "app_private.mail_outbox where staff_id = %s and kind = 'welcome'", (sid,)).fetchone()
    assert row, "create_invite queued no welcome mail"
    keys = ["id", "kind", "staff_id", "day", "dedupe_key", "to_email", "subject", "payload"]
    msg = render.build(dict(zip(keys, row)), "t@example.com")
    text = msg.get_body(("plain",)).get_content()
    sees, can, steps = GUIDE[role]
    assert f"Your role: {ROLE_NAMES[role]}." in text and sees in text and can in text
    assert all(s in text for s in steps) and len(steps) == 3
    assert f"http://127.0.0.1:5000/auth/invite/{token}" in text
    assert f"expires on {date.today() + timedelta(days=7):%d %b %Y}" in text
    assert one(conn, "select invite_token_hash = encode(sha256(convert_to(%s, 'UTF8')), 'hex') "
                     "from app_private.staff_credentials where staff_id = %s", (token, sid)) is True
    # what the mail says about costs is what the database does: act as a demo person of the role
    demo = conn.execute("select id, role::text, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
    act_as(conn, {"id": demo[0], "role": demo[1], "team_id": demo[2]})
    try:
        costs = one(conn, "select count(*) from app.sample_costs")
    except psycopg.errors.InsufficientPrivilege:
        costs = 0
    act_as(conn, None)
    assert ("without costs" in sees) == (costs == 0), (role, costs)


def test_the_welcome_mail_is_sent_and_its_token_is_not_kept(fresh_db, smtp):
    sid, token = invite(fresh_db, "designer")
    fresh_db.commit()
    r = mailer.drain(db_url(fresh_db), smtp.settings)
    assert len(r.sent) == 1 and token in smtp.messages[0].get_body(("plain",)).get_content()
    assert one(fresh_db, "select payload ? 'token' from app_private.mail_outbox where staff_id = %s", (sid,)) is False


# ------------------------------------------------------------------ PDFs, as the recipient
def pdftext(body: bytes, tmp_path, name="x.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(body)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_a_factory_liaisons_pdf_holds_no_costs(fresh_db, tmp_path):
    url = db_url(fresh_db)
    liaison = one(fresh_db, "select id from app.staff where email = 'factory_liaison@example.com'")
    finance = one(fresh_db, "select id from app.staff where email = 'finance@example.com'")
    day = date.today()
    open_before = one(fresh_db, "select count(*) from app_private.web_sessions where staff_id in (%s, %s) "
                                "and ended_at is null", (liaison, finance))
    at_factory = [r[0] for r in fresh_db.execute(
        "select sample_id from app_private.overdue_for(%s) where staff_id = %s and rule_code = 'at-factory-too-long'",
        (day, liaison))]
    assert at_factory, "the demo has an overdue sample at a factory"
    costs = [str(r[0]) for r in fresh_db.execute(
        "select to_char(total_gbp, 'FM999,999,990.00') from app.sample_costs where sample_id = any(%s)", (at_factory,))]
    assert costs, "those samples have costs (so the test can fail)"
    with as_recipient(url, liaison) as c:
        text = pdftext(pdf.my_overdue_pdf(c, day), tmp_path)
    assert all(f"{s}" in text for s in at_factory) and "My overdue samples" in text
    assert "£" not in text and "Cost" not in text and not any(c in text for c in costs)
    # positive control: make finance responsible for the same rule; their PDF shows the costs
    fresh_db.execute("update app.overdue_rules set responsible_role = 'finance' where code = 'at-factory-too-long'")
    fresh_db.commit()
    with as_recipient(url, finance) as c:
        text = pdftext(pdf.my_overdue_pdf(c, day), tmp_path, "f.pdf")
    assert "Cost" in text and all(f"£{c}" in text for c in costs)
    # the rendering sessions are ended, not left open
    assert one(fresh_db, "select count(*) from app_private.web_sessions where staff_id in (%s, %s) and ended_at is null",
               (liaison, finance)) == open_before


def test_the_digest_renders_with_charts_for_a_director(fresh_db, tmp_path):
    url = db_url(fresh_db)
    md = one(fresh_db, "select id from app.staff where email = 'md@example.com'")
    with as_recipient(url, md) as c:
        body = pdf.digest_pdf(c, date.today())
    assert body.startswith(b"%PDF")
    text = pdftext(body, tmp_path)
    for heading in ("Weekly sample digest", "Overdue by responsible role", "Overdue by team", "Most at risk of being lost",
                    "Spend this week vs last", "Supplier QC rejects"):
        assert heading in text
    out = Path(os.environ.get("DIGEST_PNG_DIR", tmp_path))
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(tmp_path / "x.pdf"), str(out / "digest")],
                   check=True)
    png = next(out.glob("digest*.png"))
    assert png.stat().st_size > 10_000  # a page with charts and tables, not a blank one


def test_a_digest_queued_for_each_director_is_mailed_with_its_pdf(fresh_db, smtp):
    assert one(fresh_db, "select app_private.queue_digests(%s)", (date.today(),)) == 2
    assert one(fresh_db, "select app_private.queue_digests(%s)", (date.today(),)) == 0  # once a week
    fresh_db.commit()
    r = mailer.drain(db_url(fresh_db), smtp.settings)
    assert len(r.sent) == 2
    for m in smtp.messages:
        (att,) = list(m.iter_attachments())
        assert att.get_content_type() == "application/pdf" and att.get_content().startswith(b"%PDF")
    assert {m["To"] for m in smtp.messages} == {"ops_director@example.com", "md@example.com"}
    assert not re.search(r"buyer@|finance@", " ".join(m["To"] for m in smtp.messages))


def test_a_long_list_is_capped_and_says_how_many_more(conn):
    day = date.today()
    assert one(conn, "select app_private.queue_overdue_mail(%s, 2)", (day,)) > 0
    keys = ["id", "kind", "staff_id", "day", "dedupe_key", "to_email", "subject", "payload"]
    row = conn.execute(f"select {', '.join(keys)} from app_private.mail_outbox where kind = 'overdue' "
                       "and to_email = 'logistics@example.com'").fetchone()
    row = dict(zip(keys, row))
    total = one(conn, "select count(*) from app_private.overdue_for(%s) o join app.staff s on s.id = o.staff_id "
                      "where s.email = 'logistics@example.com'", (day,))
    assert total > 2 and len(row["payload"]["lines"]) == 2 and row["payload"]["total"] == total
    assert row["subject"].startswith(f"{total} overdue samples")
    text = render.build(row, "t@example.com").get_body(("plain",)).get_content()
    assert f"and {total - 2} more, the least overdue" in text and "/alerts/my-overdue.pdf" in text
    days = [line["days_overdue"] for line in row["payload"]["lines"]]
    assert days == sorted(days, reverse=True) and days[0] == one(
        conn, "select max(days_overdue) from app_private.overdue_for(%s) o join app.staff s on s.id = o.staff_id "
              "where s.email = 'logistics@example.com'", (day,))
