"""`make run` on a fresh clone sets everything up and serves a page; the demo data
is then queryable. Slow (a new venv and cluster), so it runs once, last."""
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_make_run_on_a_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # test the working tree as it is (CI runs on a clean clone of main, where they are equal)
    for path in subprocess.run(["git", "ls-files", "-m", "-o", "--exclude-standard"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split():
        if (ROOT / path).is_file():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, clone / path)
    for path in subprocess.run(["git", "diff", "--name-only", "--diff-filter=D", "HEAD"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.split():
        (clone / path).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_DATABASE_URL")}
    # pytest's tmp dir is private to root, so this also exercises the fallback of the
    # cluster to a folder under the system temp dir
    env.update(PORT="5071", TRACKER_PG_PORT="54371")
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 420
        body = None
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:5071/auth/login", timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(1)
        output = (tmp_path / "run.log").read_text()
        assert body is not None, f"make run did not serve a page:\n{output[-3000:]}"
        assert "Sign in" in body
        assert "buyer@example.com" in output  # the demo logins are printed on start
        dsn = subprocess.run(["make", "-s", "dsn"], cwd=clone, env=env, check=True, capture_output=True,
                             text=True).stdout.strip()
        count = subprocess.run(["psql", dsn, "-Atc", "select count(*) from app.samples"], check=True,
                               capture_output=True, text=True).stdout.strip()
        assert int(count) >= 250
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        subprocess.run(["make", "-s", "stop"], cwd=clone, env=env)
        subprocess.run(["scripts/pg.sh", "destroy"], cwd=clone, env=env)
        log.close()
