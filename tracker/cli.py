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


def cmd_verify_audit(args):
    with psycopg.connect(config.database_url()) as conn:
        ok, checked, broken, problem = conn.execute(
            "select ok, rows_checked, first_broken_id, problem from audit.verify_chain()").fetchone()
    if ok:
        print(f"audit chain intact: {checked} rows verified")
        return
    print(f"audit chain BROKEN at row {broken}: {problem}", file=sys.stderr)
    sys.exit(1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tracker")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply migrations, functions, policies and views").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("demo", help="load the deterministic demo data (idempotent)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_demo)
    sub.add_parser("verify-audit", help="verify the audit hash chain").set_defaults(fn=cmd_verify_audit)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except (psycopg.Error, RuntimeError, ValueError) as exc:
        print(f"tracker {args.command}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
