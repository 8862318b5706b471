"""The read replica (issue 18, item 3): scripts/replica.sh (what `make replica` runs) makes
a streaming hot standby with pg_basebackup -R. One per module: a throw-away primary
(migrated, demo data, two personal analyst logins made by `tracker.cli analyst`, as
`make analyst` does) and its standby on ports of their own, both removed at the end.

On the standby the personal logins work with the same RLS: a cost hidden from a designer
stays hidden (positive control: finance reads it), writes are refused (positive control:
the same write on the primary works), changes and new logins on the primary arrive, and
the analytics materialised views arrive by replication after a refresh."""
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.soak.cluster import TempCluster
from tracker.demo import load_demo
from tracker.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "scripts" / "replica.sh")
pytestmark = pytest.mark.slow


def ports(n: int) -> list[int]:
    """Ports for sockets in private temp dirs: they only need to differ from each other."""
    return random.Random().sample(range(55000, 59000), n)


def analyst(url: str, email: str, login: str, role: str, team: str | None = None):
    args = [sys.executable, "-m", "tracker.cli", "analyst", "--email", email, "--login", login, "--role", role,
            "--name", login]
    if team:
        args += ["--team", team]
    subprocess.run(args, cwd=ROOT, env=dict(os.environ, DATABASE_URL=url), check=True, capture_output=True)


class Replica:
    def __init__(self, primary: TempCluster, port: int):
        self.primary, self.port = primary, port
        self.env = dict(os.environ, PRIMARY_SOCKET=str(primary.base), PRIMARY_PORT=str(primary.port),
                        REPLICA_BASE=str(primary.base / "replica"), REPLICA_PORT=str(port), TRACKER_DB="tracker")

    def run(self, *args) -> str:
        out = subprocess.run([SCRIPT, *args], env=self.env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def url(self, user: str | None = None) -> str:
        return self.run("dsn", *([user] if user else []))


@pytest.fixture(scope="module")
def pair():
    p_port, r_port = ports(2)
    with TempCluster(p_port) as primary:
        primary.init().start()
        primary.create_db()
        url = primary.url()
        migrate(url)
        load_demo(url, quiet=True)
        team = psycopg.connect(url).execute("select t.code from app.staff s join app.teams t on t.id = s.team_id "
                                            "where s.email = 'buyer@example.com'").fetchone()[0]
        analyst(url, "fin.analyst@example.com", "fin_analyst", "finance")
        analyst(url, "design.analyst@example.com", "design_analyst", "designer", team)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("select app_private.refresh_analytics('manual')")
        replica = Replica(primary, r_port)
        replica.run("start")
        try:
            yield primary, replica
        finally:
            subprocess.run([SCRIPT, "destroy"], env=replica.env, capture_output=True, timeout=120)


def wait_for(fn, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_it_is_a_streaming_standby(pair):
    primary, replica = pair
    with psycopg.connect(replica.url()) as r:
        assert r.execute("select pg_is_in_recovery()").fetchone()[0] is True
        assert r.execute("show port").fetchone()[0] == str(replica.port)
    with psycopg.connect(primary.url()) as p:
        state = wait_for(lambda: p.execute("select state from pg_stat_replication "
                                           "where application_name = %s", (f"tracker_replica_{replica.port}",)
                                           ).fetchone())
        assert state and state[0] == "streaming"
    assert replica.run("status") == "running"
    assert "behind" in replica.run("lag")


def overview_costs(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as c:
        return c.execute("select count(*), count(total_gbp) from app.sample_overview").fetchone()


def test_a_hidden_cost_stays_hidden_on_the_replica(pair):
    primary, replica = pair
    rows, costs = overview_costs(replica.url("design_analyst"))
    assert rows > 0 and costs == 0                      # the designer's login reads samples, never a cost
    rows_f, costs_f = overview_costs(replica.url("fin_analyst"))
    assert rows_f > 0 and costs_f > 0                   # positive control: finance reads costs there
    # and it is the same answer the primary gives each of them
    assert overview_costs(primary.url(user="design_analyst")) == (rows, costs)
    assert overview_costs(primary.url(user="fin_analyst")) == (rows_f, costs_f)
    costs_table = "select count(*) from app.sample_costs"
    with psycopg.connect(replica.url("design_analyst")) as c:
        assert c.execute(costs_table).fetchone()[0] == 0   # the policy hides every cost row
    with psycopg.connect(replica.url("fin_analyst")) as c:
        assert c.execute(costs_table).fetchone()[0] > 0    # positive control
    with psycopg.connect(replica.url("design_analyst")) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("select * from analytics.spend limit 1")


def test_the_analytics_views_arrive_by_replication(pair):
    primary, replica = pair
    with psycopg.connect(primary.url(), autocommit=True) as p:
        p.execute("select app_private.refresh_analytics('manual')")
        last = p.execute("select max(id) from analytics_private.refreshes").fetchone()[0]
    with psycopg.connect(replica.url()) as r:
        assert wait_for(lambda: r.execute("select max(id) from analytics_private.refreshes").fetchone()[0] == last)
    spend = "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend"
    with psycopg.connect(replica.url("fin_analyst")) as r, psycopg.connect(primary.url(user="fin_analyst")) as p:
        on_replica = r.execute(spend).fetchone()
        assert on_replica[0] > 0
        assert on_replica == p.execute(spend).fetchone()


def test_a_write_is_refused_on_the_replica(pair):
    primary, replica = pair
    sid_sql = "select id from app.samples where state = 'received' order by id limit 1"
    for user in (None, "fin_analyst"):
        with psycopg.connect(replica.url(user)) as r:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                r.execute("update app.samples set title = title where id = (" + sid_sql + ")")
    with psycopg.connect(replica.url()) as r:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            r.execute("select app_private.refresh_analytics('manual')")
    # positive control: the same statement is a write the primary accepts
    with psycopg.connect(primary.url()) as p:
        assert p.execute("update app.samples set title = title where id = (" + sid_sql + ")").rowcount == 1
        p.rollback()


def test_a_change_and_a_new_login_on_the_primary_arrive(pair):
    primary, replica = pair
    body = f"replicated {random.random()}"
    with psycopg.connect(primary.url()) as p:
        p.execute("insert into app.sample_comments (sample_id, author_id, body) select s.id, b.id, %s "
                  "from app.samples s, app.staff b where b.email = 'buyer@example.com' order by s.id limit 1", (body,))
        p.commit()
    with psycopg.connect(replica.url()) as r:
        assert wait_for(lambda: r.execute("select count(*) from app.sample_comments where body = %s",
                                          (body,)).fetchone()[0] == 1)
    analyst(primary.url(), "late.analyst@example.com", "late_analyst", "md")
    with psycopg.connect(replica.url()) as r:
        assert wait_for(lambda: r.execute("select 1 from pg_roles where rolname = 'late_analyst'").fetchone())
    rows, costs = overview_costs(replica.url("late_analyst"))
    assert rows > 0 and costs > 0


def test_a_deactivated_analyst_reads_nothing_on_the_replica(pair):
    primary, replica = pair
    analyst(primary.url(), "gone.analyst@example.com", "gone_analyst", "finance")
    with psycopg.connect(replica.url()) as r:
        assert wait_for(lambda: r.execute("select 1 from pg_roles where rolname = 'gone_analyst'").fetchone())
    assert overview_costs(replica.url("gone_analyst"))[0] > 0  # positive control: active, reads
    with psycopg.connect(primary.url()) as p:
        p.execute("update app.staff set active = false where email = 'gone.analyst@example.com'")
        p.commit()
    url = replica.url("gone_analyst")

    def nothing():
        try:
            return overview_costs(url)[0] == 0
        except psycopg.errors.InsufficientPrivilege:
            return True  # deactivation also revokes the group role
        except psycopg.OperationalError as exc:
            return "permission denied" in str(exc)  # ... and with it the right to connect
    assert wait_for(nothing)


def test_bad_input_is_one_line(tmp_path):
    out = subprocess.run([SCRIPT, "start"], env=dict(os.environ, REPLICA_PORT="x"), capture_output=True, text=True)
    assert out.returncode != 0 and out.stderr.strip().count("\n") == 0 and "REPLICA_PORT" in out.stderr
