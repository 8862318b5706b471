"""A local SMTP capture server (aiosmtpd): every mail it receives is stored in
app_private.mail_capture, where system admins read it at /alerts/mail. `make run`
starts it, so a new user sees the mails without an SMTP server."""
import argparse
import signal
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
