"""The audit trigger's cost: one business UPDATE per transaction with auditing (the
trigger appending an unsealed row) and without it (session_replication_role = replica),
with the sealer running beside the audited run as pg_cron runs it (every 2 s), so its
cost is in the figure; and the sealer's lag under that load (issue 18: audited /
unaudited <= 1.5, the unsealed window <= 10 s)."""
import threading
import time
from contextlib import contextmanager

import psycopg

from .common import Result, pgbench

SCRIPT = """
\\set sid random(1001, {hi})
update app.samples set updated_at = now() where id = :sid;
"""


SERIAL_TRIGGER = """
set local role audit_owner;
create or replace function audit.bench_serial_record_change() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, audit, pg_temp
as $fn$
declare
  v_old jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) - 'search' end;
  v_new jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) - 'search' end;
  v_head record;
  v_id bigint := nextval(pg_get_serial_sequence('audit.log', 'id'));
  v_at timestamptz := clock_timestamp();
  v_staff bigint := app.current_staff_id();
  v_role text := case when current_setting('role') <> 'none' then current_setting('role') else session_user::text end;
  v_hash bytea;
begin
  if tg_op = 'UPDATE' and v_old = v_new then return null; end if;
  -- what every audited write did before V0015: lock the chain head until commit
  select last_seq, last_hash into v_head from audit.chain_head for update;
  v_hash := audit.link_hash(v_head.last_hash, v_id, v_at, txid_current(), v_staff, v_role, session_user::text,
                            'app.samples', tg_op, coalesce(v_new, v_old) ->> 'id', v_old, v_new);
  insert into audit.log (id, at, txid, staff_id, db_role, session_role, table_name, op, row_id, old_row, new_row)
  overriding system value
  values (v_id, v_at, txid_current(), v_staff, v_role, session_user::text, 'app.samples', tg_op,
          coalesce(v_new, v_old) ->> 'id', v_old, v_new);
  insert into audit.seals (seq, log_id, prev_hash, hash) values (v_head.last_seq + 1, v_id, v_head.last_hash, v_hash);
  update audit.chain_head set last_id = v_id, last_seq = v_head.last_seq + 1, last_hash = v_hash;
  return null;
end
$fn$;
grant execute on function audit.bench_serial_record_change() to tracker_owner;
reset role;
alter table app.samples disable trigger audit_change;
create trigger bench_serial_audit after insert or update or delete on app.samples
  for each row execute function audit.bench_serial_record_change();
"""


@contextmanager
def serial_chain(url: str):
    """The chain as it was before V0015, for a same-run comparison: on app.samples the
    audit trigger is swapped for one that seals at insert under the chain head's row
    lock (held until commit). Benchmark database only; undone afterwards."""
    with psycopg.connect(url) as c:
        c.execute("select audit.seal()")  # the serial trigger chains after the sealed head
        c.execute(SERIAL_TRIGGER)
    try:
        yield
    finally:
        with psycopg.connect(url) as c:
            c.execute("drop trigger if exists bench_serial_audit on app.samples")
            c.execute("drop function if exists audit.bench_serial_record_change()")
            c.execute("alter table app.samples enable trigger audit_change")


@contextmanager
def realtime_signal_off(url: str):
    """The realtime signal's deferred triggers off (benchmark database only; undone after),
    which isolates what the audit chain costs. Until V0021 they took one advisory lock and
    NOTIFYed at every commit, serialising commits; now they append to an inbox."""
    tables = ("samples", "sample_costs")
    with psycopg.connect(url) as c:
        for t in tables:
            c.execute(f"alter table app.{t} disable trigger after_change_realtime_signal")
    try:
        yield
    finally:
        with psycopg.connect(url) as c:
            for t in tables:
                c.execute(f"alter table app.{t} enable trigger after_change_realtime_signal")


class Sealer:
    """audit.seal() every `every` seconds on its own connection, like the pg_cron job;
    records each batch's size, the oldest row's wait (the lag) and the time spent."""

    def __init__(self, url: str, every: float = 2.0):
        self.url, self.every = url, every
        self.batches: list[tuple[int, float, float]] = []  # (rows, lag s, seconds spent)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with psycopg.connect(self.url, autocommit=True) as c:
            while True:
                t = time.perf_counter()
                while True:
                    rows, lag = c.execute("select sealed, coalesce(extract(epoch from max_lag), 0) "
                                          "from audit.seal()").fetchone()
                    self.batches.append((rows, float(lag), time.perf_counter() - t))
                    if rows < 50000:
                        break
                if self._stop.wait(max(0.0, self.every - (time.perf_counter() - t))):
                    return

    def __enter__(self):
        with psycopg.connect(self.url, autocommit=True) as c:  # start from an empty window
            while c.execute("select sealed from audit.seal()").fetchone()[0]:
                pass
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        with psycopg.connect(self.url, autocommit=True) as c:  # what the load left behind
            t = time.perf_counter()
            rows, lag = c.execute("select sealed, coalesce(extract(epoch from max_lag), 0) from audit.seal()").fetchone()
            self.batches.append((rows, float(lag), time.perf_counter() - t))

    @property
    def max_lag(self) -> float:
        return max((lag for rows, lag, _ in self.batches if rows), default=0.0)

    @property
    def rows(self) -> int:
        return sum(rows for rows, _, _ in self.batches)

    @property
    def busy(self) -> float:
        return sum(s for _, _, s in self.batches)

    def results(self, label: str, seconds: float) -> list[Result]:
        rate = self.rows / self.busy if self.busy else 0.0
        return [
            Result(f"sealer lag (oldest row's wait), {label}", self.max_lag, "s", 10.0, "the documented bound",
                   extra={"rows": self.rows, "batches": len(self.batches), "busy_s": round(self.busy, 2)}),
            Result(f"sealer throughput while sealing, {label}", rate, "rows/s", self.rows / seconds if seconds else None,
                   "audit rows written per second", higher_is_better=True),
        ]


def run(ctx):
    """Audited / unaudited is the audit trigger alone: the unaudited runs have every other
    trigger on samples (the search document, the realtime signal) and only audit_change
    disabled (ALTER TABLE in the benchmark database, restored after). Also: every trigger
    off (session_replication_role = replica, the definition before V0015), the serial chain
    as it was before V0015 in the same run, and all of it again with the realtime signal
    off, which isolates the audit chain from the realtime signal's commit-time lock."""
    clients = 4
    script = SCRIPT.format(hi=1000 + ctx.samples)

    def unaudited():
        with psycopg.connect(ctx.url) as c:
            c.execute("alter table app.samples disable trigger audit_change")
        try:
            return pgbench(ctx.url, script, clients, ctx.duration)
        finally:
            with psycopg.connect(ctx.url) as c:
                c.execute("alter table app.samples enable trigger audit_change")

    def serial():
        with serial_chain(ctx.url):
            return pgbench(ctx.url, script, clients, ctx.duration)

    def audited():
        t = time.perf_counter()
        with Sealer(ctx.url) as sealer:
            tps = pgbench(ctx.url, script, clients, ctx.duration)
        return tps, sealer, time.perf_counter() - t

    no_triggers = [pgbench(ctx.url, script, clients, ctx.duration, options="-c session_replication_role=replica")]
    without = [unaudited()]
    with_audit, sealer, seconds = audited()
    old = serial()
    without.append(unaudited())
    no_triggers.append(pgbench(ctx.url, script, clients, ctx.duration, options="-c session_replication_role=replica"))
    with realtime_signal_off(ctx.url):
        without_rt = [unaudited()]
        with_audit_rt, sealer_rt, seconds_rt = audited()
        old_rt = serial()
        without_rt.append(unaudited())
    with psycopg.connect(ctx.url) as c:
        ok, unsealed = c.execute("select ok, unsealed from audit.verify_chain()").fetchone()
    if not ok or unsealed:
        raise RuntimeError(f"audit chain not intact and sealed after the audit benchmark (unsealed: {unsealed})")
    return [
        Result(f"audited UPDATE tps, {clients} clients, sealer running", with_audit, "tps", sum(without) / 2,
               "same UPDATE, audit trigger off, other triggers on (mean before/after)", higher_is_better=True,
               extra={"unaudited_runs": without}),
        Result(f"audited UPDATE tps, {clients} clients, vs no triggers at all", with_audit, "tps",
               sum(no_triggers) / 2, "same UPDATE, session_replication_role = replica (mean before/after)",
               higher_is_better=True, extra={"no_trigger_runs": no_triggers}),
        Result(f"audited UPDATE tps, {clients} clients, vs the serial chain before V0015", with_audit, "tps", old,
               "same UPDATE, chain head locked by every writer until commit", higher_is_better=True),
        Result(f"audited UPDATE tps, {clients} clients, realtime signal off", with_audit_rt, "tps", sum(without_rt) / 2,
               "same, audit trigger off too (mean before/after)", higher_is_better=True,
               extra={"unaudited_runs": without_rt}),
        Result(f"audited UPDATE tps, {clients} clients, realtime signal off, vs the serial chain", with_audit_rt, "tps",
               old_rt, "same, chain head locked by every writer until commit", higher_is_better=True),
    ] + sealer.results("audited UPDATE load", seconds) + sealer_rt.results("audited UPDATE, realtime off", seconds_rt)
