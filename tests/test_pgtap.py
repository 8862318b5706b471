"""SQL-level tests written in pgTAP (tests/pgtap/*.sql), run with psql against the
shared clone of the demo database; each file rolls itself back."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import _url

FILES = sorted((Path(__file__).resolve().parent / "pgtap").glob("*.sql"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_pgtap_file(shared_db, path):
    proc = subprocess.run(["psql", _url(shared_db), "-X", "-q", "-t", "-A", "-f", str(path)],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr or out
    plan = re.search(r"^1\.\.(\d+)$", out, re.M)
    assert plan, out
    oks = re.findall(r"^ok \d+", out, re.M)
    assert not re.findall(r"^not ok .*$", out, re.M), out
    assert len(oks) == int(plan.group(1)), out
