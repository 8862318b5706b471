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
    sub.add_parser("verify-audit", help="verify the audit hash chain").set_defaults(fn=cmd_verify_audit)
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
    except (psycopg.Error, RuntimeError, ValueError) as exc:
        print(f"tracker {args.command}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
