"""Command line: python -m tracker.cli <command>. Errors print one line and exit non-zero."""
import argparse
import sys

import psycopg

from . import config


def cmd_migrate(args):
    from .migrate import migrate
    migrate(config.database_url())
    print("migrated")


def cmd_demo(args):
    from .demo import load_demo
    load_demo(config.database_url(), quiet=args.quiet)


def _age(seconds) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def cmd_verify_audit(args):
    """Exit 0: the sealed chain is intact (the unsealed window is reported); 1: the chain is
    broken (tampering); 2, only with --max-unsealed: intact, but a row has waited longer
    than that to be sealed (is the pg_cron job tracker-audit-seal running?)."""
    with psycopg.connect(config.database_url()) as conn:
        ok, checked, broken, problem, unsealed, oldest = conn.execute(
            "select ok, rows_checked, first_broken_id, problem, unsealed, extract(epoch from oldest_unsealed) "
            "from audit.verify_chain()").fetchone()
    window = f"{unsealed} unsealed" + (f", the oldest {_age(float(oldest))} old" if unsealed else "")
    if not ok:
        print(f"audit chain BROKEN at row {broken}: {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"audit chain intact: {checked} rows verified; {window}")
    if args.max_unsealed is not None and unsealed and float(oldest) > args.max_unsealed:
        print(f"audit sealer behind: the oldest unsealed row is {_age(float(oldest))} old (limit {args.max_unsealed:g} s); "
              "is the pg_cron job tracker-audit-seal running? (python -m tracker.cli seal-audit seals now)",
              file=sys.stderr)
        sys.exit(2)


def cmd_seal_audit(args):
    """Link every committed unsealed audit row into the hash chain (what the pg_cron job
    does); with --every, keep doing it until interrupted."""
    import time
    if args.batch < 1 or args.batch > 1_000_000:
        raise ValueError("--batch takes 1 to 1000000 rows")
    if args.every is not None and not 0.1 <= args.every <= 3600:
        raise ValueError("--every takes 0.1 to 3600 seconds")
    with psycopg.connect(config.database_url(), autocommit=True) as conn:
        while True:
            total, batches, lag = 0, 0, 0.0
            while True:
                sealed, last_seq, max_lag = conn.execute(
                    "select sealed, last_seq, extract(epoch from max_lag) from audit.seal(%s)", (args.batch,)).fetchone()
                total += sealed
                batches += 1 if sealed else 0
                lag = max(lag, float(max_lag or 0))
                if sealed < args.batch:
                    break
                print(f"  sealed {total} rows so far (chain at {last_seq}) ...", flush=True)
            if args.every is None or total or not args.quiet:
                print(f"sealed {total} rows in {batches} batch{'es' if batches != 1 else ''}; chain at {last_seq}"
                      + (f"; the oldest waited {_age(lag)}" if total else ""), flush=True)
            if args.every is None:
                return
            time.sleep(args.every)


def cmd_analyst(args):
    """Create a personal login for a staff member (creating the staff row if needed)."""
    import os
    with psycopg.connect(config.database_url()) as conn:
        staff = conn.execute("select id from app.staff where lower(email) = lower(%s)", (args.email,)).fetchone()
        if staff is None:
            if not args.role:
                raise ValueError(f"no staff member {args.email}; give --role (and --team, --name) to create one")
            team = None
            if args.team:
                row = conn.execute("select id from app.teams where code = upper(%s)", (args.team,)).fetchone()
                if row is None:
                    raise ValueError(f"no team {args.team}")
                team = row[0]
            conn.execute("insert into app.staff (email, full_name, role, team_id) values (%s, %s, %s, %s)",
                         (args.email, args.name or args.login, args.role, team))
        login = conn.execute("select app_private.grant_personal_login(%s, %s, %s)",
                             (args.email, args.login, os.environ.get(args.password_env) if args.password_env
                              else None)).fetchone()[0]
        role = conn.execute("select role::text from app.staff where login_role = %s", (login,)).fetchone()[0]
    print(f"login {login} can now connect; it acts as {args.email} with the {role} policies")


def cmd_docs(args):
    from .docs import write_permissions
    path = write_permissions(config.database_url())
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tracker")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply migrations, functions, policies and views").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("demo", help="load the deterministic demo data (idempotent)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("verify-audit", help="verify the audit hash chain and report the unsealed window")
    p.add_argument("--max-unsealed", type=float, metavar="SECONDS",
                   help="exit 2 when a row has waited longer than this to be sealed (for monitoring, e.g. 30)")
    p.set_defaults(fn=cmd_verify_audit)
    p = sub.add_parser("seal-audit", help="link committed audit rows into the hash chain now (what pg_cron does)")
    p.add_argument("--batch", type=int, default=50000, help="rows per committed batch (default 50000)")
    p.add_argument("--every", type=float, metavar="SECONDS", help="keep sealing every SECONDS until interrupted")
    p.add_argument("--quiet", action="store_true", help="with --every, print only when something was sealed")
    p.set_defaults(fn=cmd_seal_audit)
    p = sub.add_parser("analyst", help="give a staff member a personal LOGIN role (DBA only)")
    p.add_argument("--email", required=True)
    p.add_argument("--login", required=True, help="the database login name")
    p.add_argument("--role", help="group role, when the staff row must be created")
    p.add_argument("--team", help="team code, for buyers")
    p.add_argument("--name", help="full name, when the staff row must be created")
    p.add_argument("--password-env", help="name of an environment variable holding the password")
    p.set_defaults(fn=cmd_analyst)
    sub.add_parser("docs", help="write docs/permissions.md from the catalogue").set_defaults(fn=cmd_docs)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (psycopg.Error, RuntimeError, ValueError) as exc:
        print(f"tracker {args.command}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
