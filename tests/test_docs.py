"""Docs that cannot go stale: docs/permissions.md is regenerated from the catalogue
and must equal the committed file; `make help` lists every target."""
import re
import subprocess
from pathlib import Path

import yaml

from tracker.docs import OUT, render
from tracker.roles import ROLES

ROOT = Path(__file__).resolve().parent.parent


def test_permissions_document_is_current(conn):
    assert OUT.exists(), "run `make docs`"
    assert render(conn) == OUT.read_text(), "docs/permissions.md is stale: run `make docs` and commit it"


def test_make_help_lists_every_target_with_a_comment():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    documented = set(re.findall(r"^([a-z][a-z-]*):.*## ", makefile, re.M))
    assert targets == documented, f"targets without a ## comment: {targets - documented}"
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for t in targets:
        assert t in out


def test_readme_mentions_the_two_commands_and_every_sqlstate_is_documented(conn):
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    conventions = (ROOT / "sql" / "CONVENTIONS.md").read_text()
    used = set()
    for path in (ROOT / "sql").rglob("*.sql"):
        used |= set(re.findall(r"errcode = '(TR\d{3})'", path.read_text()))
    documented = set(re.findall(r"`(TR\d{3})`", conventions))
    assert used and used == documented


def test_the_document_renders_every_lifecycle_rule(conn):
    """The core permission of the product, who may move a sample from which state and what they
    must give, is in the document: one row per app.transition_rules row, under its state."""
    text = OUT.read_text()
    rules = conn.execute("select action, coalesce(from_state::text, ''), roles::text[], required "
                         "from app.transition_rules").fetchall()
    assert len(rules) > 40
    for action, from_state, roles, required in rules:
        heading = f"### From `{from_state}`" if from_state else "### A new sample"
        section = text.split(heading, 1)[1].split("\n### ", 1)[0]
        row = next((line for line in section.splitlines() if line.startswith(f"| `{action}` (")), None)
        assert row, (action, from_state)
        cells = [c.strip() for c in row.split("|")]
        assert all(r in cells[3] for r in roles) or cells[3] == "every staff role", row
        assert cells[4] == (", ".join(required) or "-"), row


def test_note_lines_are_read_whole():
    """A NOTE spanning several comment lines reaches the document as one sentence, not cut after
    its first line; each one ends like a sentence."""
    from tracker.docs import notes
    found = notes()
    assert len(found) > 30
    for fname, note in found:
        assert note.endswith((".", ")")), (fname, note)
    text = OUT.read_text()
    assert "so they run only inside the definer entry points above" in text  # a line-three continuation


def test_policy_names_end_with_the_matrix_scope(conn):
    """sql/permission_matrix.yml, the policy names and the document say the same words: a role's
    scoped rows (not `all`, not `none`) come from a policy named `..._<scope>` that applies to it."""
    matrix = yaml.safe_load((ROOT / "sql" / "permission_matrix.yml").read_text())
    policies = conn.execute("select schemaname || '.' || tablename, policyname, cmd, roles::text[] "
                            "from pg_policies where permissive = 'PERMISSIVE'").fetchall()
    checked = 0
    for table, ops in matrix["tables"].items():
        for op in ("select", "update", "delete"):
            for who, spec in (ops or {}).get(op, {}).items():
                scope = spec["rows"] if isinstance(spec, dict) else spec
                if scope in ("all", "none", "denied"):
                    continue
                roles = ROLES if who == "everyone" else [who]
                for role in roles:
                    names = [name for t, name, cmd, pol_roles in policies
                             if t == table and cmd in (op.upper(), "ALL")
                             and (role in pol_roles or "staff" in pol_roles)]
                    assert any(n.endswith("_" + scope) for n in names), (table, op, role, scope, names)
                    checked += 1
    assert checked > 30


def test_python_names_the_roles_and_states_the_database_defines(conn):
    """tracker/roles.py mirrors the enums, and the staff group's members are exactly the twelve."""
    from tracker.roles import STATES
    assert ROLES == conn.execute("select enum_range(null::app.staff_role)::text[]").fetchone()[0]
    assert STATES == conn.execute("select enum_range(null::app.sample_state)::text[]").fetchone()[0]
    members = {r[0] for r in conn.execute(
        "select m.member::regrole::text from pg_auth_members m where m.roleid = 'staff'::regrole")}
    assert members == set(ROLES)


def test_triggers_are_attached_beside_their_tables():
    """A table's triggers are in its own block in sql/policies/ (the file that starts by naming
    it), not scattered over sql/functions/: there, only the audit log's own guards and the
    catalogue-wide audit attach remain."""
    statement = re.compile(r"create (?:or replace |constraint )trigger \w+ [^;]*? on (\w+)\.(\w+)\b", re.S | re.I)
    functions = {p.name: statement.findall(p.read_text()) for p in (ROOT / "sql" / "functions").glob("*.sql")}
    assert {name for name, found in functions.items() if found} == {"020_audit.sql"}
    assert {t for _, t in functions["020_audit.sql"]} == {"log"}
    checked = 0
    for path in (ROOT / "sql" / "policies").glob("*.sql"):
        text = path.read_text()
        for schema, table in statement.findall(text):
            assert f"{schema}.{table}" in text.splitlines()[0], f"{path.name} attaches a trigger to {schema}.{table}"
            checked += 1
    assert checked > 20  # positive control: the statements were found
