"""A throw-away PostgreSQL 15 cluster for the crash and backup tests: initdb under the
system temp dir, a Unix socket only, on a port of its own (54391-54399), pg_cron preloaded
like the project's cluster. Run as postgres (runuser) when we are root. Only processes this
cluster started are ever signalled: the postmaster from its own postmaster.pid and that
postmaster's children."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))


def _as_pg(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd="/", **kw)


class TempCluster:
    def __init__(self, port: int, dbname: str = "tracker", conf: str = ""):
        self.port, self.dbname, self.extra_conf = port, dbname, conf
        self.base = Path(tempfile.mkdtemp(prefix=f"tracker-tmp-{port}-"))
        self.data = self.base / "data"
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)

    # ------------------------------------------------------------ life cycle
    def init(self):
        _as_pg([str(PGBIN / "initdb"), "-D", str(self.data), "-U", self.user, "--auth-local=trust",
                "--auth-host=reject", "-E", "UTF8", "--locale=C.UTF-8"])
        conf = (f"\nlisten_addresses = ''\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
                f"unix_socket_permissions = 0700\nshared_preload_libraries = 'pg_cron'\n"
                f"cron.database_name = '{self.dbname}'\nfsync = on\n{self.extra_conf}\n")
        _as_pg(["bash", "-c", f"cat >> '{self.data}/postgresql.conf'"], input=conf)
        return self

    def start(self) -> float:
        """Start (recovering after a crash); returns the seconds until it accepts connections."""
        t = time.monotonic()
        try:
            _as_pg([str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-t", "120",
                    "start"])
        except subprocess.CalledProcessError as exc:
            log = (self.base / "log").read_text()[-3000:] if (self.base / "log").exists() else ""
            raise RuntimeError(f"the throw-away cluster did not start: {exc.stdout} {exc.stderr}\n{log}") from exc
        return time.monotonic() - t

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) +
                           [str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                           capture_output=True, cwd="/")

    def destroy(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()

    # ------------------------------------------------------------ faults
    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def children(self, pid: int) -> list[int]:
        out = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == pid:
                    out.append(int(proc.name))
        return out

    def kill9(self):
        """A power cut: SIGKILL to this cluster's postmaster and every one of its children at once."""
        pid = self.postmaster_pid()
        victims = [pid] + self.children(pid)
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # wait until they are gone; a zombie not yet reaped by its parent still "exists" for the
        # next postmaster's lock-file check, so after a while its stale postmaster.pid is removed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in victims):
            time.sleep(0.05)
        live = [p for p in victims if Path(f"/proc/{p}").exists() and self._state(p) != "zombie"]
        assert not live, f"still running after SIGKILL: {live}"
        if Path(f"/proc/{pid}").exists():
            (self.data / "postmaster.pid").unlink()

    @staticmethod
    def _state(pid: int) -> str:
        try:
            return "zombie" if (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z") else "live"
        except OSError:
            return "zombie"

    # ------------------------------------------------------------ connecting
    def url(self, dbname: str | None = None, user: str | None = None) -> str:
        return make_conninfo(host=str(self.base), port=self.port, user=user or self.user, dbname=dbname or self.dbname)

    def create_db(self, name: str | None = None):
        with psycopg.connect(self.url("postgres"), autocommit=True) as c:
            c.execute(f'create database "{name or self.dbname}"')
