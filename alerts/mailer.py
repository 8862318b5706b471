"""Drain app_private.mail_outbox over SMTP, never sending a row twice.

Per row, on the owner's connection:
  1. claim it (FOR UPDATE SKIP LOCKED, so two mailers never take the same row), render
     it, open/reuse the SMTP connection and get MAIL FROM and RCPT TO accepted;
  2. commit `sending_since` in that same transaction, right before DATA;
  3. send DATA; on the server's 250, commit `sent_at` at once.
An SMTP refusal (4xx, 5xx, connection lost) before the 250 clears `sending_since` and
schedules a retry with exponential backoff (1, 2, 4 ... minutes, at most 6 hours; a
permanent 5xx or the 10th failure marks the row failed). A crash (kill -9, power)
between 2 and 3 leaves `sending_since` without `sent_at`: the row is *in doubt* (the
server may or may not have it) and is never resent automatically - `python -m alerts
in-doubt` lists such rows and `--resend ID` sends one after a person checked. So the
mail is delivered at most once; exactly once unless the mailer dies inside the
window between committing `sending_since` and committing `sent_at` (one SMTP DATA
round trip; bench/bench_overdue.py measures it).
"""
import email.policy
import os
import smtplib
import ssl
import sys
import time
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

from . import render
from .settings import SmtpSettings

MAX_ATTEMPTS = 10
PENDING = """
select o.*, p.active as recipient_active
  from app_private.mail_outbox o join app.staff p on p.id = o.staff_id
 where o.sent_at is null and o.failed_at is null and o.sending_since is null and o.next_attempt_at <= now()
 order by o.next_attempt_at, o.id
 limit 1
   for update of o skip locked"""


@dataclass
class Result:
    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class SmtpDown(Exception):
    """The server cannot be reached: stop this run, retry later."""


def backoff_minutes(attempts: int) -> int:
    return min(2 ** max(attempts - 1, 0), 360)


def connect(s: SmtpSettings) -> smtplib.SMTP:
    try:
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        smtp.ehlo_or_helo_if_needed()
        if s.user:
            smtp.login(s.user, s.password or "")
        return smtp
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpDown(f"cannot reach SMTP {s.host}:{s.port}: {exc}") from exc


def _envelope(smtp: smtplib.SMTP, sender: str, to: str) -> None:
    """MAIL FROM + RCPT TO; raises SMTPResponseException on refusal."""
    code, resp = smtp.mail(sender)
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    code, resp = smtp.rcpt(to)
    if code not in (250, 251):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused({to: (code, resp)})


def _refused(db, row, exc: Exception, result: Result) -> None:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = next(iter(exc.recipients.values()))[0]
    permanent = code is not None and 500 <= code < 600
    attempts = row["attempts"] + 1
    message = f"{type(exc).__name__}: {exc}"[:500]
    if permanent or attempts >= MAX_ATTEMPTS:
        db.execute("update app_private.mail_outbox set sending_since = null, attempts = %s, last_error = %s, "
                   "failed_at = now() where id = %s", (attempts, message, row["id"]))
        result.failed.append(row["id"])
    else:
        db.execute("update app_private.mail_outbox set sending_since = null, attempts = %s, last_error = %s, "
                   "next_attempt_at = now() + make_interval(mins => %s) where id = %s",
                   (attempts, message, backoff_minutes(attempts), row["id"]))
        result.retry.append(row["id"])
    result.errors.append(f"#{row['id']} to {row['to_email']}: {message}")


def drain(admin_url: str, s: SmtpSettings, limit: int | None = None, log=print) -> Result:
    """Send what is due; returns what happened. Stops early when SMTP is down."""
    result = Result()
    smtp = None
    crash_after_accept = os.environ.get("ALERTS_TEST_CRASH_AFTER_ACCEPT") == "1"  # the crash test's hook
    with psycopg.connect(admin_url, row_factory=dict_row) as db:
        try:
            while limit is None or len(result.sent) < limit:
                down = None
                with db.transaction():
                    row = db.execute(PENDING).fetchone()
                    if row is None:
                        break
                    if not row["recipient_active"]:
                        db.execute("update app_private.mail_outbox set failed_at = now(), "
                                   "last_error = 'the recipient is no longer active' where id = %s", (row["id"],))
                        result.failed.append(row["id"])
                        continue
                    try:
                        msg = render.build(row, s.sender, admin_url)
                    except Exception as exc:  # a template or PDF failure must not stop the other mails
                        _refused(db, row, exc, result)
                        continue
                    try:
                        if smtp is None:
                            smtp = connect(s)
                        _envelope(smtp, s.sender, row["to_email"])
                    except SmtpDown as exc:
                        _refused(db, row, exc, result)
                        down = exc
                    except (smtplib.SMTPException, OSError) as exc:
                        _refused(db, row, exc, result)
                        smtp = _reset(smtp)
                        continue
                    else:
                        # committed with this transaction: from here until sent_at is
                        # committed the row is "in doubt" and no mailer takes it again
                        db.execute("update app_private.mail_outbox set sending_since = now(), message_id = %s "
                                   "where id = %s", (msg["Message-ID"], row["id"]))
                if down is not None:
                    log(f"SMTP down, will retry later: {down}")
                    break
                try:
                    code, resp = smtp.data(msg.as_bytes(policy=email.policy.SMTP))  # CRLF line ends
                    if code != 250:
                        raise smtplib.SMTPDataError(code, resp)
                except (smtplib.SMTPException, OSError) as exc:
                    with db.transaction():
                        _refused(db, row, exc, result)
                    smtp = _reset(smtp)
                    continue
                if crash_after_accept:
                    os._exit(17)  # simulated crash: accepted by the server, not yet marked sent
                with db.transaction():
                    # the welcome mail's sign-up token is not kept once it has been mailed
                    db.execute("update app_private.mail_outbox set sent_at = now(), attempts = attempts + 1, "
                               "last_error = null, payload = payload - 'token' where id = %s", (row["id"],))
                result.sent.append(row["id"])
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
    return result


def _reset(smtp):
    """After an error the connection may be unusable: drop it, reconnect next time."""
    if smtp is not None:
        try:
            smtp.rset()
            return smtp
        except (smtplib.SMTPException, OSError):
            try:
                smtp.close()
            except OSError:
                pass
    return None


def dry_run(admin_url: str, sender: str, out=None) -> int:
    """Print what would be sent now; changes nothing."""
    out = out or sys.stdout
    with psycopg.connect(admin_url, row_factory=dict_row) as db:
        rows = db.execute("select * from app_private.mail_outbox where sent_at is null and failed_at is null "
                          "and sending_since is null and next_attempt_at <= now() order by next_attempt_at, id"
                          ).fetchall()
        db.rollback()
    for row in rows:
        msg = render.build(row, sender, admin_url)
        text = msg.get_body(("plain",)).get_content()
        attached = [p.get_filename() for p in msg.iter_attachments()]
        print(f"--- #{row['id']} {row['kind']} To: {msg['To']}\nSubject: {msg['Subject']}"
              + (f"\nAttached: {', '.join(attached)}" if attached else "") + f"\n\n{text}", file=out)
    print(f"{len(rows)} mail(s) would be sent", file=out)
    return len(rows)


def in_doubt(admin_url: str, older_than_seconds: int = 0) -> list[dict]:
    with psycopg.connect(admin_url, row_factory=dict_row) as db:
        return db.execute("select id, kind, to_email, subject, sending_since, message_id from app_private.mail_outbox "
                          "where sending_since is not null and sent_at is null and failed_at is null "
                          "and sending_since < now() - make_interval(secs => %s) order by id",
                          (older_than_seconds,)).fetchall()


def release_in_doubt(admin_url: str, outbox_id: int) -> bool:
    """A person checked the row was not delivered: make it pending again."""
    with psycopg.connect(admin_url) as db:
        return db.execute("update app_private.mail_outbox set sending_since = null, next_attempt_at = now() "
                          "where id = %s and sending_since is not null and sent_at is null", (outbox_id,)).rowcount == 1


def loop(admin_url: str, s: SmtpSettings, every: float = 10.0, log=print) -> None:
    while True:
        r = drain(admin_url, s, log=log)
        if r.sent or r.retry or r.failed:
            log(f"mailer: sent {len(r.sent)}, retry later {len(r.retry)}, failed {len(r.failed)}")
        time.sleep(every)
