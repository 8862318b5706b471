"""python -m alerts [--dry-run] [--queue DAY] [--loop SECONDS]   drain the mail outbox over SMTP
python -m alerts capture [--port 8025]                            run the local capture server
python -m alerts run-local                                        make run: capture (unless SMTP_HOST) + queue + mailer loop
python -m alerts in-doubt [--resend ID]                           rows a crash left in doubt
python -m alerts schedule HH:MM                                   move the morning job (GMT)"""
import argparse
import sys
from datetime import date

import psycopg

from tracker import config

from . import mailer
from .settings import smtp_settings


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["capture"]:
        from . import capture
        capture.main(argv[1:])
        return 0
    if argv[:1] == ["run-local"]:
        from . import capture
        capture.run_local(argv[1:])
        return 0
    url = config.database_url()
    if argv[:1] == ["in-doubt"]:
        ap = argparse.ArgumentParser(prog="python -m alerts in-doubt")
        ap.add_argument("--resend", type=int, metavar="ID", help="make the row pending again (you checked it was not delivered)")
        args = ap.parse_args(argv[1:])
        if args.resend:
            ok = mailer.release_in_doubt(url, args.resend)
            print(f"#{args.resend} {'will be sent on the next run' if ok else 'is not in doubt'}")
            return 0 if ok else 1
        for r in mailer.in_doubt(url):
            print(f"#{r['id']} {r['kind']} to {r['to_email']} since {r['sending_since']:%Y-%m-%d %H:%M:%S} "
                  f"{r['message_id']}: {r['subject']}")
        return 0
    if argv[:1] == ["schedule"]:
        ap = argparse.ArgumentParser(prog="python -m alerts schedule")
        ap.add_argument("at", help="HH:MM, GMT (cron.timezone)")
        args = ap.parse_args(argv[1:])
        hh, mm = (int(x) for x in args.at.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise SystemExit("give a time as HH:MM")
        with psycopg.connect(url) as db:
            db.execute("select cron.schedule('tracker-alerts-morning', %s, "
                       "'select app_private.queue_overdue_mail(current_date)')", (f"{mm} {hh} * * *",))
        print(f"tracker-alerts-morning now runs at {hh:02d}:{mm:02d} GMT")
        return 0
    ap = argparse.ArgumentParser(prog="python -m alerts", description=mailer.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="print what would be sent; change nothing")
    ap.add_argument("--queue", metavar="DAY", nargs="?", const=str(date.today()),
                    help="first run the morning job for DAY (default today), as pg_cron does")
    ap.add_argument("--loop", type=float, metavar="SECONDS", help="keep draining every SECONDS")
    args = ap.parse_args(argv)
    if args.queue:
        with psycopg.connect(url) as db:
            n = db.execute("select app_private.queue_overdue_mail(%s)", (date.fromisoformat(args.queue),)).fetchone()[0]
        print(f"queued {n} overdue mail(s) for {args.queue}")
    s = smtp_settings()
    if args.dry_run:
        mailer.dry_run(url, s.sender)
        return 0
    if args.loop:
        print(f"mailer: draining the outbox to {s.host}:{s.port} every {args.loop:g} s", flush=True)
        mailer.loop(url, s, args.loop, log=lambda m: print(m, flush=True))
        return 0
    r = mailer.drain(url, s)
    print(f"sent {len(r.sent)}, retry later {len(r.retry)}, failed {len(r.failed)}")
    for e in r.errors:
        print("  " + e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
