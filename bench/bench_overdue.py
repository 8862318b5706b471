"""Overdue monitoring (issue 12): who must chase what (app_private.overdue_for) over the
whole data set, the morning job (function + outbox rows, rolled back so it repeats),
the mailer's throughput against a local capture server, the in-doubt window it leaves
per mail, and the digest PDF's render time.

Baselines: a plain scan of the open samples (what any full pass over them costs); raw
smtplib sends of the same messages to the same server (what SMTP alone costs); the
digest's HTML without the PDF step."""
import email.policy
import smtplib
import statistics
import time
from datetime import date

import psycopg
from aiosmtpd.controller import Controller

from alerts import mailer, pdf, render
from alerts.capture import free_port
from alerts.recipient import as_recipient
from alerts.settings import SmtpSettings

from .common import Result

OPEN_SCAN = "select count(*) from app.samples where state not in ('returned', 'cut-for-production') and version > 0"


class Counter:
    def __init__(self):
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        return "250 OK"


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def run(ctx):
    day = date.today()
    runs = 2 if ctx.quick else 3
    results = []
    with psycopg.connect(ctx.url) as c:
        rows = c.execute("select count(*) from app_private.overdue_for(%s)", (day,)).fetchone()[0]
        c.rollback()
        ms = timed(lambda: c.execute("select count(*) from app_private.overdue_for(%s)", (day,)).fetchone(), runs)
        base = timed(lambda: c.execute(OPEN_SCAN).fetchone(), runs)
        results.append(Result(f"overdue_for(day), {ctx.samples:,} samples -> {rows:,} rows", ms, "ms", base,
                              "count the open samples", extra={"rows": rows}))

        def morning():
            with c.transaction(force_rollback=True):
                morning.mails = c.execute("select app_private.queue_overdue_mail(%s)", (day,)).fetchone()[0]
        ms = timed(morning, runs)
        results.append(Result(f"morning job: overdue_for + {morning.mails:,} outbox rows", ms, "ms", base,
                              "count the open samples", extra={"mails": morning.mails}))

    # the mailer against a local SMTP server: N copies of one real overdue mail
    n = 100 if ctx.quick else 500
    sink = Counter()
    port = free_port("127.0.0.1", 0)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings = SmtpSettings("127.0.0.1", port, "none", None, None, "bench@example.com", 30)
    try:
        with psycopg.connect(ctx.url) as c:
            c.execute("delete from app_private.mail_outbox where dedupe_key like 'bench:%%'")
            c.execute("""
                insert into app_private.mail_outbox (kind, staff_id, day, dedupe_key, to_email, subject, payload,
                                                     next_attempt_at)
                select 'overdue', o.staff_id, %(day)s, 'bench:' || g, 'bench@example.com', 'bench', o.payload,
                       now() - interval '1 day'
                  from (select staff_id, jsonb_build_object('full_name', 'Bench', 'lines', jsonb_agg(jsonb_build_object(
                          'sample_id', sample_id, 'title', 'Bench sample', 'state', 'at-factory',
                          'days_overdue', days_overdue, 'held_by', 'Bench', 'reason', reason)))
                               as payload
                          from (select * from app_private.overdue_for(%(day)s) limit 12) x group by staff_id limit 1) o,
                       generate_series(1, %(n)s) g""", {"day": day, "n": n})
            c.commit()
            # drain only the bench rows: the others wait (their next attempt moved a day ahead meanwhile)
            c.execute("update app_private.mail_outbox set next_attempt_at = next_attempt_at + interval '1 day' "
                      "where dedupe_key not like 'bench:%%' and sent_at is null")
            c.commit()
            t = time.perf_counter()
            r = mailer.drain(ctx.url, settings)
            secs = time.perf_counter() - t
            window = c.execute("select avg(extract(epoch from sent_at - sending_since)) * 1000 from "
                               "app_private.mail_outbox where dedupe_key like 'bench:%%'").fetchone()[0]
            cur = c.execute("select * from app_private.mail_outbox where dedupe_key like 'bench:%%' limit 1")
            row, cols = cur.fetchone(), [d.name for d in cur.description]
            msg = render.build(dict(zip(cols, row)), settings.sender).as_bytes(policy=email.policy.SMTP)
            c.execute("delete from app_private.mail_outbox where dedupe_key like 'bench:%%'")
            c.execute("update app_private.mail_outbox set next_attempt_at = next_attempt_at - interval '1 day' "
                      "where dedupe_key not like 'bench:%%' and sent_at is null")
            c.commit()
        assert len(r.sent) == n, r.errors[:3]
        smtp = smtplib.SMTP("127.0.0.1", port)
        t = time.perf_counter()
        for _ in range(n):
            smtp.sendmail(settings.sender, ["bench@example.com"], msg)
        raw = time.perf_counter() - t
        smtp.quit()
    finally:
        controller.stop()
    results.append(Result(f"mailer throughput, {n} mails to a local SMTP server", n / secs, "mails/s", n / raw,
                          "raw smtplib sends, no database", higher_is_better=True))
    results.append(Result("in-doubt window per mail (sending_since -> sent_at)", float(window or 0), "ms"))

    md = ctx.persona("md@example.com")[0]
    with as_recipient(ctx.url, md, ctx.app_url) as c:
        html_ms = timed(lambda: pdf.digest_html(c, day), runs)
        pdf_ms = timed(lambda: pdf.digest_pdf(c, day), runs)
    results.append(Result("weekly digest PDF (as the MD)", pdf_ms, "ms", html_ms, "the same digest as HTML only"))
    return results
