"""The audit trigger's cost: one business UPDATE per transaction with auditing
(trigger + hash chain) and without it (session_replication_role = replica)."""
from .common import Result, pgbench

SCRIPT = """
\\set sid random(1001, {hi})
update app.samples set updated_at = now() where id = :sid;
"""


def run(ctx):
    clients = 4
    script = SCRIPT.format(hi=1000 + ctx.samples)
    with_audit = pgbench(ctx.url, script, clients, ctx.duration)
    without = pgbench(ctx.url, script, clients, ctx.duration, options="-c session_replication_role=replica")
    return [Result(f"audited UPDATE tps, {clients} clients", with_audit, "tps", without,
                   "same UPDATE with triggers off", higher_is_better=True)]
