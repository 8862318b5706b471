"""The schedule lives in pg_cron (issue 12): the migrations create the jobs
tracker-alerts-* in the database pg_cron serves (cron.database_name, the embedded
cluster's `tracker`), their commands succeed, and pg_cron itself runs the morning
job's function. Test clones have no pg_cron (it serves one database per cluster), so
this test migrates that database - idempotent, as `make run` does."""
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tracker import config
from tracker.migrate import migrate

JOBS = {"tracker-alerts-morning": "0 6 * * *", "tracker-alerts-weekly-digest": "5 6 * * 1",
        "tracker-alerts-purge-run-details": "30 3 * * *"}


@pytest.fixture(scope="module")
def cron_db():
    admin = conninfo_to_dict(config.database_url())
    with psycopg.connect(make_conninfo(**admin)) as c:
        name = c.execute("select current_setting('cron.database_name', true)").fetchone()[0]
    if not name:
        pytest.skip("pg_cron is not loaded on this server")
    url = make_conninfo(**dict(admin, dbname=name))
    migrate(url)
    return url


def test_the_migrations_create_the_jobs(cron_db):
    with psycopg.connect(cron_db) as c:
        jobs = dict(c.execute("select jobname, schedule from cron.job where jobname like 'tracker-alerts-%'").fetchall())
    assert jobs == JOBS


def test_each_jobs_command_succeeds(cron_db):
    with psycopg.connect(cron_db) as c:
        for name, command in c.execute("select jobname, command from cron.job where jobname like 'tracker-alerts-%' "
                                       "order by jobid").fetchall():
            with c.transaction(force_rollback=True):
                c.execute(command)
        purge = c.execute("select command from cron.job where jobname = 'tracker-alerts-purge-run-details'").fetchone()[0]
        assert "cron.job_run_details" in purge and "30 days" in purge


@pytest.mark.slow
def test_pg_cron_runs_the_morning_function(cron_db):
    """pg_cron 1.4 schedules by the minute: a probe job calling overdue_for (read-only)
    runs within ~60 s; its run is recorded as succeeded."""
    with psycopg.connect(cron_db, autocommit=True) as c:
        job = c.execute("select cron.schedule('tracker-alerts-probe', '* * * * *', "
                        "'select count(*) from app_private.overdue_for(current_date)')").fetchone()[0]
        try:
            deadline = time.time() + 75
            status = None
            while time.time() < deadline and status is None:
                time.sleep(2)
                row = c.execute("select status from cron.job_run_details where jobid = %s and status in "
                                "('succeeded', 'failed') order by runid desc limit 1", (job,)).fetchone()
                status = row[0] if row else None
            assert status == "succeeded"
        finally:
            c.execute("select cron.unschedule(%s)", (job,))
            c.execute("delete from cron.job_run_details where jobid = %s", (job,))
