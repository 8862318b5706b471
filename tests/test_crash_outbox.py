"""Issue 16 (2), the mailer's side: the postmaster of a throw-away cluster (port 54393,
never the shared one) is SIGKILLed while the mailer drains the outbox into a slow SMTP
server. After crash recovery every outbox row is sent once, still pending, or "in doubt"
(the server may have it; never resent by itself); a second run sends every pending row
exactly once; no Message-ID reaches the server twice."""
import threading
import time
from collections import Counter
import psycopg
import pytest

from alerts import mailer
from alerts.settings import SmtpSettings
from tests.soak.cluster import TempCluster
from tests.test_mailer import Sink, free_port
from tracker.demo import load_demo
from tracker.migrate import migrate

PORT = 54393


class SlowSink(Sink):
    """Accepts every mail, slowly, so the cut falls in the middle of a run."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def cluster():
    with TempCluster(PORT) as cl:
        cl.init()
        cl.start()
        cl.create_db()
        migrate(cl.url())
        load_demo(cl.url(), quiet=True, samples=200)
        yield cl


def rows(url):
    with psycopg.connect(url) as c:
        return c.execute("select id, sent_at is not null, sending_since is not null and sent_at is null, "
                         "failed_at is not null from app_private.mail_outbox order by id").fetchall()


def test_a_power_cut_during_the_mailers_run_sends_nothing_twice(cluster):
    from aiosmtpd.controller import Controller
    sink = SlowSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = cluster.url()
        with psycopg.connect(url) as c:
            # enough mail for a run that takes a while: the overdue lists of several days
            queued = sum(c.execute("select app_private.queue_overdue_mail(current_date + %s)", (d,)).fetchone()[0]
                         for d in range(0, 40, 2))
            c.commit()
        assert queued >= 20, "the demo should have overdue mail to send"
        settings = SmtpSettings("127.0.0.1", port, "none", None, None, "Tracker <tracker@example.com>", 10)
        errors = []

        def drain():
            try:
                mailer.drain(url, settings, log=lambda *a: None)
            except Exception as exc:  # noqa: BLE001 - the cut is expected to break the run
                errors.append(exc)

        runner = threading.Thread(target=drain, daemon=True)
        runner.start()
        deadline = time.monotonic() + 30
        while len(sink.messages) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(sink.messages) >= 5, "the run did not start"
        cluster.kill9()  # mid-run: some rows sent, one perhaps in doubt, the rest pending
        runner.join(30)
        delivered_at_cut = len(sink.messages)
        assert delivered_at_cut < queued, "the cut came after the run had finished; it proves nothing"
        recovery = cluster.start()

        after = rows(url)
        sent = [r[0] for r in after if r[1]]
        doubt = [r[0] for r in after if r[2]]
        pending = [r[0] for r in after if not r[1] and not r[2] and not r[3]]
        assert len(after) == queued and sent and pending
        assert len(doubt) <= 1, "at most the one mail in flight at the cut is in doubt"
        # every row marked sent reached the server exactly once
        ids = Counter(m["Message-ID"] for m in sink.messages)
        assert all(n == 1 for n in ids.values()), "a mail reached the server twice"
        assert len(sink.messages) in (len(sent), len(sent) + len(doubt))

        # the next run sends the pending rows, once each, and leaves the one in doubt alone
        result = mailer.drain(url, settings, log=lambda *a: None)
        final = rows(url)
        assert all(r[1] or r[2] for r in final), "every row is sent, or in doubt for a person to decide"
        ids = Counter(m["Message-ID"] for m in sink.messages)
        assert all(n == 1 for n in ids.values()), "a mail reached the server twice after the restart"
        assert len(sink.messages) >= queued - len(doubt)
        print(f"\noutbox crash: {queued} mails queued, {delivered_at_cut} delivered before the cut, "
              f"{len(doubt)} in doubt, crash recovery {recovery:.1f} s, then {len(result.sent)} sent by the next run")
    finally:
        controller.stop()
