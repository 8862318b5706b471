"""A local SMTP capture server (aiosmtpd): every mail it receives is stored in
app_private.mail_capture, where system admins read it at /alerts/mail. `make run`
starts it, so a new user sees the mails without an SMTP server."""
import argparse
import os
import signal
import socket
import threading
from email import message_from_bytes, policy

import psycopg
from aiosmtpd.controller import Controller

from tracker import config


class CaptureHandler:
    def __init__(self, url: str):
        self.url = url
        self.lock = threading.Lock()
        self.conn = psycopg.connect(url, autocommit=True)

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.conn.execute(
                "insert into app_private.mail_capture (mail_from, rcpt_to, subject, message_id, message) "
                "values (%s, %s, %s, %s, %s)",
                (envelope.mail_from, list(envelope.rcpt_tos), str(msg.get("Subject", "")),
                 str(msg.get("Message-ID", "")), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


def start(url: str, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    controller = Controller(CaptureHandler(url), hostname=host, port=port)
    controller.start()
    return controller


def free_port(host: str, preferred: int) -> int:
    """preferred if nobody listens there (another checkout's make run may), else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise OSError("no free port")


def run_local(argv=None) -> None:
    """`make run`: without SMTP_HOST, start the capture server; queue today's overdue
    mail (as the morning job would) and keep draining the outbox."""
    from datetime import date

    from . import mailer
    from .settings import smtp_settings
    ap = argparse.ArgumentParser(prog="python -m alerts run-local")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between outbox drains")
    args = ap.parse_args(argv)
    url = config.database_url()
    if not os.environ.get("SMTP_HOST"):
        port = free_port("127.0.0.1", int(os.environ.get("ALERTS_CAPTURE_PORT", "8025")))
        start(url, "127.0.0.1", port)
        os.environ.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SECURITY="none")
        print(f"mail: local capture on 127.0.0.1:{port}; the system admin reads it under Mail (/alerts/mail)", flush=True)
    with psycopg.connect(url) as db:
        n = db.execute("select app_private.queue_overdue_mail(%s)", (date.today(),)).fetchone()[0]
    s = smtp_settings()
    print(f"mail: queued {n} overdue mail(s) for today; draining the outbox to {s.host}:{s.port} every {args.every:g} s",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    mailer.loop(url, s, args.every, log=lambda m: print(m, flush=True))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m alerts capture", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8025)
    args = ap.parse_args(argv)
    controller = start(config.database_url(), args.host, args.port)
    print(f"mail capture listening on {args.host}:{args.port} (stored in app_private.mail_capture)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
