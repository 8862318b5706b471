"""Generate docs/permissions.md from the database catalogue: effective grants (through the
`staff` group role), column grants, RLS policies and their comments, the lifecycle rules
(app.transition_rules), who may execute which function, and the NOTE lines of sql/policies/.
Never hand-written; tests/test_docs.py fails when it is stale."""
from pathlib import Path

import psycopg
import yaml

from .config import ROOT, SQL_DIR
from .roles import ROLES, STATES

SCHEMAS = ("app", "app_private", "audit", "analytics", "analytics_private")
OPS = [("SELECT", "S"), ("INSERT", "I"), ("UPDATE", "U"), ("DELETE", "D")]
OUT = ROOT / "docs" / "permissions.md"
EVERYONE = "staff"  # the NOLOGIN group role every staff role is a member of (V0019)


def _tables(conn):
    return conn.execute("""
        select n.nspname || '.' || c.relname, c.relkind::text, coalesce(obj_description(c.oid, 'pg_class'), ''),
               c.relrowsecurity, c.relforcerowsecurity
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm')
         order by c.relkind::text desc, 1""", (list(SCHEMAS),)).fetchall()


def _effective(conn):
    """(table, role) -> {privilege: None (whole table) or [columns]}: what each role may do,
    counting what it inherits from the staff group."""
    rows = conn.execute("""
        select n.nspname || '.' || c.relname, r.role, p.priv, has_table_privilege(r.role, c.oid, p.priv),
               array(select a.attname from pg_attribute a
                      where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and p.priv <> 'DELETE'
                        and has_column_privilege(r.role, c.oid, a.attnum, p.priv) order by a.attnum)::text[]
          from pg_class c join pg_namespace n on n.oid = c.relnamespace,
               unnest(%s::text[]) r(role), unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p(priv)
         where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm')""", (ROLES, list(SCHEMAS))).fetchall()
    out = {}
    for table, role, priv, whole, cols in rows:
        if whole:
            out.setdefault((table, role), {})[priv] = None
        elif cols:
            out.setdefault((table, role), {})[priv] = cols
    return out


def _column_grants(conn):
    rows = conn.execute("""
        select n.nspname || '.' || c.relname, r.rolname, a.privilege_type, att.attname
          from pg_attribute att join pg_class c on c.oid = att.attrelid join pg_namespace n on n.oid = c.relnamespace,
               aclexplode(att.attacl) a join pg_roles r on r.oid = a.grantee
         where n.nspname = any(%s) and att.attacl is not null
         order by att.attnum""", (list(SCHEMAS),)).fetchall()
    out = {}
    for table, role, priv, col in rows:
        out.setdefault((table, role, priv), []).append(col)
    return out


def _policies(conn):
    return conn.execute("""
        select p.schemaname || '.' || p.tablename, p.policyname, p.cmd, p.roles::text[], p.qual, p.with_check,
               coalesce(obj_description(pol.oid, 'pg_policy'), ''), p.permissive = 'PERMISSIVE'
          from pg_policies p
          join pg_class c on c.relname = p.tablename
          join pg_namespace n on n.oid = c.relnamespace and n.nspname = p.schemaname
          join pg_policy pol on pol.polrelid = c.oid and pol.polname = p.policyname
         where p.schemaname = any(%s)
         order by 1, 3, 2""", (list(SCHEMAS),)).fetchall()


def _functions(conn):
    return conn.execute("""
        select p.oid::regprocedure::text, p.prosecdef, coalesce(obj_description(p.oid, 'pg_proc'), ''),
               array(select r from unnest(%s::text[]) r where has_function_privilege(r, p.oid, 'EXECUTE'))
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('app', 'analytics') and p.prokind = 'f'
         order by 1""", (ROLES,)).fetchall()


def _rules(conn):
    return conn.execute("""
        select action, from_state::text, to_state::text, roles::text[], required, verb, description
          from app.transition_rules
         order by from_state nulls first, action = 'override', action""").fetchall()


def _comment(conn, signature):
    return conn.execute("select coalesce(obj_description(to_regprocedure(%s), 'pg_proc'), '')",
                        (signature,)).fetchone()[0]


def notes():
    """Every `-- NOTE:` of sql/policies/, whole: a note goes on over the comment lines under it
    until a blank line, code, another NOTE, or a new unindented sentence after a full stop."""
    out = []
    for path in sorted((SQL_DIR / "policies").glob("*.sql")):
        current = None
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith("-- NOTE:"):
                current = [s[len("-- NOTE:"):].strip()]
                out.append((path.name, current))
            elif current is not None and s.startswith("--") and s[2:].strip() and (
                    line.startswith("--  ") or not current[-1].endswith(".")):
                current.append(s[2:].strip())
            else:
                current = None
    return [(name, " ".join(parts)) for name, parts in out]


def _applies(policy_roles, role):
    return role in policy_roles or EVERYONE in policy_roles or "public" in policy_roles


def _who(roles):
    roles = [r for r in ROLES if r in roles]
    if set(roles) == set(ROLES):
        return "every staff role"
    return ", ".join(roles) or "no staff role"


def _grantee(name):
    return f"{EVERYONE} (every staff role)" if name == EVERYONE else name


def _lifecycle(conn):
    rules = _rules(conn)
    lines = ["## The lifecycle: who may do what to a sample, from each state", "",
             "Rendered from `app.transition_rules` (the rows of `app_private.lifecycle_rules()` in",
             "`sql/functions/030_transition_rules.sql`). Every action goes through `app_private.perform_action`,",
             "which checks (TR codes in `sql/CONVENTIONS.md`):", "",
             "* " + _comment(conn, "app_private.check_rule(app.samples, text, app.staff)"),
             "* " + _comment(conn, "app_private.action_in_scope(app.samples, text, app.staff)"),
             "* " + _comment(conn, "app_private.allowed_when_qc_rejected(text)"),
             "* " + _comment(conn, "app_private.unmet_precondition(app.samples, text)"),
             "* " + _comment(conn, "app_private.validate_values(bigint, text, jsonb)"),
             "",
             "A role sees only the actions of the rows that name it, on samples it can see",
             "(`app.available_actions(sample)` answers for one sample, with the fields each action needs).",
             "`to` is the state the sample moves to (`-` = it stays where it is).", ""]
    lines += ["### At a glance: the actions each role has in each state", "",
              "| from | " + " | ".join(ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for state in [None] + STATES:
        row = [r for r in rules if r[1] == state]
        cells = [", ".join(sorted({r[0] for r in row if role in r[3]})) or "-" for role in ROLES]
        lines.append(f"| {state or '(new)'} | " + " | ".join(cells) + " |")
    lines.append("")
    for state in [None] + STATES:
        row = [r for r in rules if r[1] == state]
        lines += [f"### From `{state}`" if state else "### A new sample", "",
                  "| action | to | who | needs | the rule |", "|---|---|---|---|---|"]
        for action, _, to_state, roles, required, verb, description in row:
            lines.append(f"| `{action}` ({verb}) | {to_state or '-'} | {_who(roles)} | "
                         f"{', '.join(required) or '-'} | {description} |")
        lines.append("")
    return lines


def render(conn: psycopg.Connection) -> str:
    tables = _tables(conn)
    effective = _effective(conn)
    colgrants = _column_grants(conn)
    policies = _policies(conn)
    by_table = {}
    for row in policies:
        by_table.setdefault(row[0], []).append(row)
    matrix = yaml.safe_load((SQL_DIR / "permission_matrix.yml").read_text())

    kinds = {t[0]: t[1] for t in tables}

    def cell(table, role):
        out = []
        privs = effective.get((table, role), {})
        for priv, letter in OPS:
            if priv not in privs:
                continue
            if privs[priv] is not None:
                out.append(letter.lower() + "*")
                continue
            has_policy = any(_applies(row[3], role) and row[2] in (priv, "ALL") and row[7]
                             for row in by_table.get(table, []))
            out.append(letter if kinds[table] != "r" or has_policy else f"({letter})")
        return " ".join(out) or "-"

    lines = [
        "# Permissions",
        "",
        "Generated by `make docs` from the database catalogue (grants, column grants, RLS policies and",
        "their comments, the lifecycle rules). Do not edit by hand: `tests/test_docs.py` fails when this",
        "file is stale.",
        "",
        f"Every staff role is a member of the NOLOGIN group role `{EVERYONE}`; a grant or policy `to {EVERYONE}`",
        "is for all twelve. The tables below show what each role ends up with.",
        "",
        "## Who may touch which table",
        "",
        "S/I/U/D = SELECT/INSERT/UPDATE/DELETE on the whole table; lower case with `*` = on some columns only",
        "(listed per table below); `(S)` = granted, but no policy names the role, so it reads no rows",
        "(granted so that views joining the table work for everyone). A grant lets a role try; the RLS",
        "policies below decide which rows. Every table also has a RESTRICTIVE policy `all_staff_identified`:",
        "whatever the role, nothing is read or written unless an active staff member is resolved from the session.",
        "",
        "| table | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for table, kind, *_ in tables:
        lines.append(f"| `{table}`{' (view)' if kind == 'v' else ''} | " + " | ".join(cell(table, r) for r in ROLES) + " |")

    lines += ["", "## Sensitive field groups", ""]
    for name, spec in matrix["field_groups"].items():
        table = spec["table"]
        readers = [r for r in ROLES if any(row[2] in ("SELECT", "ALL") and row[7] and _applies(row[3], r)
                                           for row in by_table.get(table, []))]
        writers = [(r, p) for r in ROLES for p in ("INSERT", "UPDATE")
                   if set(effective.get((table, r), {}).get(p) or []) & set(spec["fields"])]
        lines.append(f"* **{name}** (`{table}`: {', '.join(spec['fields'])}): read by "
                     f"{', '.join(readers) or 'nobody'}; written by "
                     f"{', '.join(f'{r} ({p.lower()})' for r, p in writers) or 'the lifecycle functions only'}.")
        lines.append("  Every other role gets no rows, so the fields read as NULL in every view.")
    lines.append("")

    lines += _lifecycle(conn)

    lines += ["## Tables, grants and policies", "",
              "Policy names say `<command>_<audience>_<scope>`; the scope is the word `sql/permission_matrix.yml`",
              "uses for the same rows (its `scopes:` list says what each means).", ""]
    for table, kind, comment, rls, force in tables:
        lines.append(f"### `{table}`{' (view)' if kind == 'v' else ''}")
        lines.append("")
        if comment:
            lines.append(comment)
            lines.append("")
        if kind == "r":
            lines.append(f"Row-level security: {'enabled' if rls else 'DISABLED'}, "
                         f"{'forced (the owner is not exempt)' if force else 'NOT forced'}.")
            lines.append("")
        col_lines = [f"* {priv} ({', '.join(cols)}) to {_grantee(role)}"
                     for (t, role, priv), cols in sorted(colgrants.items())
                     if t == table and (role in ROLES or role == EVERYONE)]
        if col_lines:
            lines.append("Column grants:")
            lines.append("")
            lines += col_lines
            lines.append("")
        pols = by_table.get(table, [])
        if kind == "r" and not pols:
            lines.append("No policy: no staff role sees or changes a row.")
            lines.append("")
        for _, name, cmd, roles, qual, check, pcomment, permissive in pols:
            kind_word = "" if permissive else "RESTRICTIVE, "
            lines.append(f"* `{name}` — {kind_word}{cmd} to {', '.join(_grantee(r) for r in roles)}: {pcomment}")
            if qual:
                lines.append(f"  - rows: `{' '.join(qual.split())}`")
            if check and check != qual:
                lines.append(f"  - new rows must satisfy: `{' '.join(check.split())}`")
        if pols:
            lines.append("")

    functions = _functions(conn)
    lines += ["## Functions (schemas app and analytics)", "",
              "| function | definer? | executable by | what it does |", "|---|---|---|---|"]
    for sig, secdef, comment, execs in functions:
        lines.append(f"| `{sig}` | {'yes' if secdef else 'no'} | {_who(execs)} | {comment} |")

    lines += ["", "## What each role may execute", "",
              "The entry points every staff role may call, then what each role may call besides",
              "(`tests/api_allowlist.yml` is the reviewed list; a test fails on anything else).", ""]
    common = [sig.split("(")[0] for sig, _, _, execs in functions if set(execs) == set(ROLES)]
    lines.append(f"* **every staff role**: {', '.join(f'`{f}`' for f in common)}")
    for role in ROLES:
        own = [sig.split("(")[0] for sig, _, _, execs in functions if role in execs and set(execs) != set(ROLES)]
        lines.append(f"* **{role}** besides: {', '.join(f'`{f}`' for f in own) or 'nothing'}")

    lines += ["", "## Deliberate omissions (NOTE lines in sql/policies/)", ""]
    for fname, note in notes():
        lines.append(f"* `{fname}`: {note}")
    lines.append("")
    return "\n".join(lines)


def write_permissions(url: str, path: Path = OUT) -> Path:
    with psycopg.connect(url) as conn:
        text = render(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
