"""A buyer's dashboard through RLS, against the same query run by the owner with the
policies' conditions written into the WHERE clause. Both must return the same rows."""
import psycopg
from psycopg.rows import tuple_row

from .common import Result, summary, timed_pairs

MY_OPEN = """
select id, title, state, supplier, total_gbp, days_in_state
  from app.sample_overview
 where requested_by = %(me)s and state not in ('returned', 'cut-for-production')
 order by state_changed_at desc, id desc limit 50
"""
# the owner (RLS bypassed) runs the same view with the policies' conditions spelled out:
# samples: own team or in flight; costs: own team only
MY_OPEN_OWNER = """
select id, title, state, supplier, case when team_id = %(team)s then total_gbp end, days_in_state
  from app.sample_overview
 where requested_by = %(me)s and state not in ('returned', 'cut-for-production')
   and (team_id = %(team)s or state not in ('returned', 'cut-for-production'))
 order by state_changed_at desc, id desc limit 50
"""
TEAM_SPEND = """
select state, count(*), sum(total_gbp) from app.sample_overview where team_id = %(team)s group by state order by state
"""
# for the team's own samples both policies reduce to team_id = the team
TEAM_SPEND_OWNER = """
select state, count(*), sum(total_gbp) from app.sample_overview where team_id = %(team)s group by state order by state
"""


def run(ctx):
    me, role, team = ctx.persona("buyer@example.com")
    params = {"me": me, "team": team}
    results = []
    with psycopg.connect(ctx.app_url, row_factory=tuple_row) as app, \
            psycopg.connect(ctx.url, row_factory=tuple_row, autocommit=True) as owner:
        # the persona is set once for the session, so the timing isolates what RLS adds to the
        # query itself (the web app's per-request transaction cost is measured by bench_lookup)
        app.execute("select set_config('role', %s, false), set_config('tracker.session', %s, false)",
                    (role, ctx.session("buyer@example.com")))
        app.commit()
        app.autocommit = True

        def as_buyer(sql):
            return lambda: app.execute(sql, params).fetchall()

        def as_owner(sql):
            return lambda: owner.execute(sql, params).fetchall()

        for label, ours_sql, base_sql in [("buyer dashboard: my open samples (RLS)", MY_OPEN, MY_OPEN_OWNER),
                                          ("buyer dashboard: team spend by state (RLS)", TEAM_SPEND, TEAM_SPEND_OWNER)]:
            a, b = as_buyer(ours_sql)(), as_owner(base_sql)()
            if [tuple(map(str, r)) for r in a] != [tuple(map(str, r)) for r in b] or not a:
                raise RuntimeError(f"{label}: RLS and owner queries disagree ({len(a)} vs {len(b)} rows)")
            ours, base = timed_pairs(as_buyer(ours_sql), as_owner(base_sql), ctx.repeats)
            so, sb = summary(ours), summary(base)
            results.append(Result(label + ", median", so["median_ms"], "ms", sb["median_ms"],
                                  "owner, same WHERE", extra={"ours": so, "baseline": sb, "rows": len(a)}))
            results.append(Result(label + ", p95", so["p95_ms"], "ms", sb["p95_ms"], "owner, same WHERE"))
    return results
