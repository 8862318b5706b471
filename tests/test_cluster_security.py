"""Another OS user cannot reach the embedded cluster (issue 9, finding 3).

The socket uses trust auth, so whoever can connect to it is the superuser. pg.sh keeps
the base, data and socket dirs 0700 and owned by the server's OS user wherever they
fall back to, and refuses dirs that someone else planted. Checked on this run's own
cluster and on throwaway clusters that reproduce the two reported set-ups: root with a
long checkout path (socket in $TMPDIR/tracker-sock-<key>) and a non-root user with
umask 022. The throwaway clusters use their own ports and private socket dirs."""
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_SH = ROOT / "scripts" / "pg.sh"
AS_ROOT = os.geteuid() == 0
SERVER_USER = "postgres" if AS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
LONG_PATH_PORT = "54342"
NON_ROOT_PORT = "54343"

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")),
                                reason="DATABASE_URL is set: no embedded cluster")
needs_root = pytest.mark.skipif(not AS_ROOT, reason="needs root to act as the OS users nobody and postgres")


def pg_sh(script: Path, *args: str, port: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_DATABASE_URL")}
    env.update(TRACKER_PG_PORT=port, TMPDIR="/tmp")
    return subprocess.run([str(script), *args], env=env, check=check, capture_output=True, text=True,
                          timeout=90)


def socket_dir(dsn: str) -> Path:
    return Path(parse_qs(urlsplit(dsn).query)["host"][0])


def psql_as(user: str | None, dsn: str) -> subprocess.CompletedProcess:
    """`select current_user` through psql as OS user `user` (None: as ourselves)."""
    cmd = ["psql", dsn, "-XAtc", "select current_user"]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=30)


def assert_refused(dsn: str):
    out = psql_as("nobody", dsn)
    assert out.returncode != 0 and "Permission denied" in out.stderr, \
        f"OS user nobody reached the cluster: rc={out.returncode} {out.stdout!r} {out.stderr!r}"


def assert_private(path: Path, owner: str = SERVER_USER):
    st = os.stat(path)
    assert (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name) == (0o700, owner), path


def key(checkout: Path) -> str:
    return hashlib.sha1(str(checkout).encode()).hexdigest()[:12]


def checkout(top: Path, name: str) -> Path:
    """A copy of scripts/pg.sh at <top>/<name>/scripts/pg.sh: pg.sh keys everything on its own location."""
    repo = top / name
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(PG_SH, repo / "scripts" / "pg.sh")
    for d in (top, repo, repo / "scripts"):
        d.chmod(0o755)
    return repo


@pytest.fixture
def scratch():
    """A dir under /tmp for throwaway checkouts (pytest's tmp_path is not reachable by postgres)."""
    top = Path(tempfile.mkdtemp(prefix="tracker-sec-", dir="/tmp"))
    planted = []
    yield top, planted
    for p in planted:
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.exists():
            shutil.rmtree(p)
    shutil.rmtree(top, ignore_errors=True)


# --- this run's cluster ---------------------------------------------------------------

def test_cluster_dirs_are_private_to_the_server_user():
    dsn = pg_sh(PG_SH, "dsn", port=os.environ.get("TRACKER_PG_PORT", "54329")).stdout.strip()
    base = Path(pg_sh(PG_SH, "base", port=os.environ.get("TRACKER_PG_PORT", "54329")).stdout.strip())
    for d in (base, base / "data", socket_dir(dsn)):
        assert_private(d)


@needs_root
def test_another_os_user_cannot_connect_to_the_cluster():
    dsn = pg_sh(PG_SH, "dsn", port=os.environ.get("TRACKER_PG_PORT", "54329")).stdout.strip()
    assert_refused(dsn)
    # positive controls: the same command works for the server's user and for root
    for user in (SERVER_USER, None):
        out = psql_as(user, dsn)
        assert (out.returncode, out.stdout.strip()) == (0, "postgres"), out.stderr


# --- the two reported set-ups, on throwaway clusters ----------------------------------

@needs_root
def test_long_path_as_root_socket_fallback_is_private(scratch):
    top, planted = scratch
    repo = checkout(top, "a-checkout-whose-path-is-too-long-for-a-unix-socket-" + "x" * 40)
    script = repo / "scripts" / "pg.sh"
    try:
        pg_sh(script, "start", port=LONG_PATH_PORT)
        dsn = pg_sh(script, "dsn", port=LONG_PATH_PORT).stdout.strip()
        sock = socket_dir(dsn)
        planted.append(sock)
        assert sock == Path("/tmp") / f"tracker-sock-{key(repo)}"  # the fallback is what is tested
        for d in (repo / ".pg", repo / ".pg" / "data", sock):
            assert_private(d)
        assert stat.S_IMODE(os.lstat(sock / f".s.PGSQL.{LONG_PATH_PORT}").st_mode) == 0o700
        assert_refused(dsn)
        assert psql_as(None, dsn).stdout.strip() == "postgres"

        # opened up as an older pg.sh left it, nobody gets in as the superuser (so the
        # refusal above is the permissions' doing); `start` closes it again
        sock.chmod(0o755)
        (sock / f".s.PGSQL.{LONG_PATH_PORT}").chmod(0o777)
        assert psql_as("nobody", dsn).stdout.strip() == "postgres"
        pg_sh(script, "start", port=LONG_PATH_PORT)
        assert_private(sock)
        assert_refused(dsn)
    finally:
        pg_sh(script, "destroy", port=LONG_PATH_PORT, check=False)
    assert not sock.exists(), "destroy leaves the socket fallback dir behind"


@needs_root
def test_non_root_user_with_umask_022_keeps_the_cluster_private(scratch):
    top, _ = scratch
    repo = checkout(top, "repo")
    for p in (top, *top.rglob("*")):
        shutil.chown(p, "postgres", "postgres")
    run = lambda *args, check=True: subprocess.run(  # noqa: E731
        ["runuser", "-u", "postgres", "--", "env", f"TRACKER_PG_PORT={NON_ROOT_PORT}", "TMPDIR=/tmp",
         "bash", "-c", 'umask 022 && exec "$0" "$@"', str(repo / "scripts" / "pg.sh"), *args],
        cwd="/", check=check, capture_output=True, text=True, timeout=90)
    try:
        run("start")
        dsn = run("dsn").stdout.strip()
        assert socket_dir(dsn) == repo / ".pg" / "run"
        for d in (repo / ".pg", repo / ".pg" / "data", repo / ".pg" / "run"):
            assert_private(d, "postgres")
        assert_refused(dsn)
        assert psql_as("postgres", dsn).stdout.strip() == "postgres"
    finally:
        run("destroy", check=False)


@needs_root
@pytest.mark.parametrize("plant", ["socket dir", "socket symlink", "base dir"])
def test_a_dir_planted_by_another_user_is_refused(scratch, plant):
    """The fallback names are predictable (a hash of the checkout path): another user can
    create them first. pg.sh must refuse them rather than adopt them."""
    top, planted = scratch
    nobody = pwd.getpwnam("nobody")
    if plant == "base dir":  # postgres cannot reach a root-only checkout: data dir in /tmp
        private = top / "private"
        private.mkdir(mode=0o700)
        repo = checkout(private, "repo")
        private.chmod(0o700)
        target = Path("/tmp") / f"tracker-pg-{key(repo)}"
    else:  # long path: the socket dir in /tmp
        repo = checkout(top, "a-checkout-whose-path-is-too-long-for-a-unix-socket-" + "y" * 40)
        target = Path("/tmp") / f"tracker-sock-{key(repo)}"
    planted.append(target)
    decoy = top / "decoy"
    decoy.mkdir(mode=0o755)
    if plant == "socket symlink":
        target.symlink_to(decoy)
        os.lchown(target, nobody.pw_uid, nobody.pw_gid)
    else:
        target.mkdir(mode=0o777)
        target.chmod(0o777)
        os.chown(target, nobody.pw_uid, nobody.pw_gid)
    script = repo / "scripts" / "pg.sh"
    try:
        out = pg_sh(script, "start", port=LONG_PATH_PORT, check=False)
        assert out.returncode != 0, f"pg.sh started a cluster in a dir nobody planted:\n{out.stderr}"
        assert out.stderr.strip().splitlines() == [out.stderr.strip()] and str(target) in out.stderr \
            and "nobody" in out.stderr, out.stderr
        assert not (repo / ".pg" / "data").exists() and not (target / "data").exists()
        st = os.lstat(target)
        assert (st.st_uid, os.stat(decoy).st_uid) == (nobody.pw_uid, 0)  # left alone
    finally:
        pg_sh(script, "destroy", port=LONG_PATH_PORT, check=False)
