"""Docs that cannot go stale: docs/permissions.md is regenerated from the catalogue
and must equal the committed file; `make help` lists every target."""
import re
import subprocess
from pathlib import Path

from tracker.docs import OUT, render

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
