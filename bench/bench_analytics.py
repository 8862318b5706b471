"""Spend analytics (issue 13) at scale:
  * the nightly refresh: seconds per step (spend_facts by its difference, the roll-ups
    REFRESH ... CONCURRENTLY, state_days from the queued samples), and all together against
    the 60 s target;
  * the analytics overview page's server time (Flask in-process, as the MD), p95 against
    the 100 ms target;
  * the same page's queries on the materialised views vs computed live from the base
    tables (a throw-away copy of every analytics view over plain views of the same
    definitions, schemas bench_live*), interleaved: the ratio is what materialising buys;
  * the senior buyer's and finance's headline: the nightly figures vs the live aggregate
    they replaced, and their whole dashboards' p95 after the change."""
import re
import time

import psycopg
from psycopg.rows import tuple_row

from tracker.demo import BUDGETS_SQL
from tracker.web.analytics import TABLES

from .bench_web import client, timed
from .common import Result, summary, timed_pairs

OVERVIEW = ["categories", "trend", "budgets", "over_index", "running_hot", "seasons"]
# in dependency order (the live copies are created one after another)
MATVIEWS = ["spend_facts", "spend_monthly", "spend_buyer_season", "supplier_scorecard", "supplier_season",
            "spend_category_month", "spend_team_month", "spend_season", "supplier_share_leaders", "state_days"]
# the tables the refresh keeps by difference (V0022): the live copy of each is its definition,
# the view <table>_query (re-pointed like the rest), or for state_days its sums done afresh
DEFINED_BY_QUERY = {"spend_facts", "supplier_scorecard"}
LIVE_SOURCES = {
    "state_days": """
        select team_id, coalesce(case when grouping(category_id) = 0 then category_id end, 0) as category_id,
               coalesce(case when grouping(supplier_id) = 0 then supplier_id end, 0) as supplier_id, state,
               sum(stays + (open_since is not null)::integer)::integer as stays, sum(seconds) as closed_seconds,
               count(open_since)::integer as open_stays, coalesce(sum(open_since), 0) as open_since_sum
          from analytics_private.sample_stays_query
         group by grouping sets ((team_id, category_id, state), (team_id, supplier_id, state))""",
}
VIEWS = ["spend", "spend_monthly", "buyer_season", "supplier_scorecard", "state_days", "spend_category_month",
         "spend_team_month", "spend_season", "supplier_share_leaders", "supplier_season_all_teams", "supplier_seasons",
         "category_monthly", "season_spend", "budget_vs_actual", "buyers_running_hot"]
FUNCTIONS = ["analytics.supplier_over_index(date)", "analytics.category_month(date)",
             "analytics.over_indexed_suppliers(date)"]
ROLES = "buyer, senior_buyer, sales_lead, finance, ops_director, md"
LIVE_HEADLINE = ("select count(k.sample_id) as samples, sum(k.total_gbp) as spend from app.samples s "
                 "left join app.sample_costs k on k.sample_id = s.id where s.team_id = %(team)s "
                 "and s.season_id = %(season)s")
NEW_HEADLINE = ("select sum(samples), sum(spend_gbp), (select as_of from analytics.data_as_of) from "
                "analytics.spend_monthly where team_id = %(team)s and season_id = %(season)s")
LIVE_FINANCE = ("select count(k.sample_id), sum(k.total_gbp) from app.samples s left join app.sample_costs k "
                "on k.sample_id = s.id where s.state = 'ordered'")
NEW_FINANCE = ("select sum(ordered), sum(committed_gbp), (select as_of from analytics.data_as_of) "
               "from analytics.buyer_season")


def _live(sql: str) -> str:
    """A definition re-pointed from the materialised views to the live copies."""
    for mv in MATVIEWS:
        sql = sql.replace(f"analytics_private.{mv}", f"@@P.{mv}")
    sql = sql.replace("analytics.", "@@A.")
    return sql.replace("@@P.", "bench_live.").replace("@@A.", "bench_live_analytics.")


def build_live_copies(owner):
    """bench_live.<matview> = a plain view of the same query; bench_live_analytics.<view>
    = each analytics view over those, same options, same grants."""
    owner.execute("drop schema if exists bench_live_analytics cascade")
    owner.execute("drop schema if exists bench_live cascade")
    owner.execute("create schema bench_live authorization tracker_owner")
    owner.execute("create schema bench_live_analytics authorization tracker_owner")
    owner.execute("set role tracker_owner")
    for mv in MATVIEWS:
        if mv in LIVE_SOURCES:
            owner.execute(f"create view bench_live.{mv} as {LIVE_SOURCES[mv]}")
            continue
        source = f"analytics_private.{mv}_query" if mv in DEFINED_BY_QUERY else f"analytics_private.{mv}"
        body = owner.execute("select pg_get_viewdef(%s::regclass)", (source,)).fetchone()[0]
        owner.execute(f"create view bench_live.{mv} as {_live(body)}")
    for v in VIEWS:
        body, opts = owner.execute("select pg_get_viewdef(c.oid), coalesce(array_to_string(c.reloptions, ', '), '') "
                                   "from pg_class c where c.oid = %s::regclass", (f"analytics.{v}",)).fetchone()
        with_ = f" with ({opts})" if opts else ""
        owner.execute(f"create view bench_live_analytics.{v}{with_} as {_live(body)}")
    for sig in FUNCTIONS:
        fn = owner.execute("select pg_get_functiondef(%s::regprocedure)", (sig,)).fetchone()[0]
        owner.execute(_live(fn))
    owner.execute("reset role")
    owner.execute(f"grant usage on schema bench_live_analytics to {ROLES}")
    owner.execute(f"grant select on all tables in schema bench_live_analytics to {ROLES}")
    owner.execute(f"grant execute on all functions in schema bench_live_analytics to {ROLES}")


def overview_queries(live: bool, params):
    out = []
    for key in OVERVIEW:
        sql = TABLES[key][1]
        out.append(_live(sql) if live else sql)
    return out


def run(ctx):
    results = []
    with psycopg.connect(ctx.url, autocommit=True) as owner:
        if not owner.execute("select exists (select 1 from app.budgets)").fetchone()[0]:
            owner.execute(BUDGETS_SQL)
        # 1. the refresh, as pg_cron runs it: once (whatever the figures were: a fresh data set
        # fills them), then again, as on a night after a quiet day (the concurrent refresh's
        # diff finds little to change)
        for label in ("first after the data load", "again"):
            t = time.perf_counter()
            owner.execute("select app_private.refresh_analytics('manual')")
            total = time.perf_counter() - t
            seconds, = owner.execute("select seconds from analytics_private.refreshes order by id desc limit 1").fetchone()
            for mv in MATVIEWS:
                rows = owner.execute(f"select count(*) from analytics_private.{mv}").fetchone()[0]
                results.append(Result(f"refresh {mv} ({rows:,} rows), {label}", float(seconds[mv]),
                                      "s", extra={"rows": rows}))
            results.append(Result(f"refresh all analytics views (nightly job), {label}", round(total, 2), "s", 60.0,
                                  "target, all together"))
        build_live_copies(owner)
        season, month = owner.execute(
            "select id, date_trunc('month', current_date)::date from app.seasons "
            "where current_date between starts_on and ends_on order by starts_on desc limit 1").fetchone()
    p = {"season": season, "ly_season": None, "month": month, "category": None, "supplier": None}

    # 2. the overview's queries: materialised vs live, as the MD (sees everything)
    _, role, _ = ctx.persona("md@example.com")
    token = ctx.session("md@example.com")
    with psycopg.connect(ctx.app_url, row_factory=tuple_row) as app:
        app.execute("set statement_timeout = 0")  # the live baseline can take longer than the web's 30 s
        app.execute("select set_config('role', %s, false), set_config('tracker.session', %s, false)", (role, token))
        app.commit()
        app.autocommit = True

        def page(live):
            def go():
                return [app.execute(q, p).fetchall() for q in overview_queries(live, p)]
            return go
        a, b = page(False)(), page(True)()
        if [sorted(map(str, r)) for r in a] != [sorted(map(str, r)) for r in b]:
            raise RuntimeError("analytics overview: materialised and live figures differ")
        ours, base = timed_pairs(page(False), page(True), 2 if ctx.quick else 3, warmup=1)
        so, sb = summary(ours), summary(base)
        results.append(Result("analytics overview queries (md), median", so["median_ms"], "ms", sb["median_ms"],
                              "same queries computed live", extra={"ours": so, "baseline": sb}))

    # 2b. where the overview's time goes: each table's query, median, as the MD (every team) and
    # a buyer (one team)
    for email in ("md@example.com", "buyer@example.com"):
        _, role, _ = ctx.persona(email)
        token = ctx.session(email)
        with psycopg.connect(ctx.app_url, row_factory=tuple_row) as app:
            app.execute("select set_config('role', %s, false), set_config('tracker.session', %s, false)",
                        (role, token))
            app.commit()
            app.autocommit = True
            for key, sql in zip(OVERVIEW, overview_queries(False, p)):
                s = summary(timed(lambda sql=sql: app.execute(sql, p).fetchall(), 5 if ctx.quick else 20, warmup=2))
                results.append(Result(f"overview table {key} ({role}), median", s["median_ms"], "ms",
                                      extra={"ours": s}))

    # 3. headlines: nightly figures vs the live aggregate they replaced
    me, role, team = ctx.persona("senior_buyer@example.com")
    token = ctx.session("senior_buyer@example.com")
    f_me, f_role, _ = ctx.persona("finance@example.com")
    f_token = ctx.session("finance@example.com")
    with psycopg.connect(ctx.app_url, row_factory=tuple_row) as sb_conn, \
            psycopg.connect(ctx.app_url, row_factory=tuple_row) as fin:
        for c, r, tok in ((sb_conn, role, token), (fin, f_role, f_token)):
            c.execute("select set_config('role', %s, false), set_config('tracker.session', %s, false)", (r, tok))
            c.commit()
            c.autocommit = True
        hp = {"team": team, "season": season}
        live, new = sb_conn.execute(LIVE_HEADLINE, hp).fetchone(), sb_conn.execute(NEW_HEADLINE, hp).fetchone()
        if (live[0] or 0) != (new[0] or 0) or (live[1] or 0) != (new[1] or 0):
            raise RuntimeError(f"senior buyer headline: live {live[:2]} vs analytics {new[:2]}")
        ours, base = timed_pairs(lambda: sb_conn.execute(NEW_HEADLINE, hp).fetchone(),
                                 lambda: sb_conn.execute(LIVE_HEADLINE, hp).fetchone(), ctx.repeats)
        so, sbb = summary(ours), summary(base)
        results.append(Result("senior buyer headline (team spend this season), p95", so["p95_ms"], "ms",
                              sbb["p95_ms"], "live aggregate (before)", extra={"ours": so, "baseline": sbb}))
        ours, base = timed_pairs(lambda: fin.execute(NEW_FINANCE).fetchone(),
                                 lambda: fin.execute(LIVE_FINANCE).fetchone(), ctx.repeats)
        so, sbb = summary(ours), summary(base)
        results.append(Result("finance headline (open orders, all teams), p95", so["p95_ms"], "ms",
                              sbb["p95_ms"], "live aggregate (before)", extra={"ours": so, "baseline": sbb}))

    # 4. whole pages through Flask: the analytics overview and the two dashboards
    from tracker.web import create_app
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "APP_DATABASE_URL": ctx.app_url})
    n = 20 if ctx.quick else 100
    try:
        for label, who, path in [("analytics overview page (md)", "md", "/analytics/"),
                                 ("analytics suppliers page (md)", "md", "/analytics/suppliers"),
                                 ("dashboard senior_buyer", "senior_buyer", "/"),
                                 ("dashboard finance", "finance", "/")]:
            c = client(app, ctx, who)

            def get(c=c, path=path):
                r = c.get(path)
                assert r.status_code == 200, r.status_code
            s = summary(timed(get, n, warmup=3))
            results.append(Result(f"{label}, p95", s["p95_ms"], "ms", 100.0, "target p95", extra={"ours": s}))
    finally:
        app.extensions["pool"].close()
    with psycopg.connect(ctx.url, autocommit=True) as owner:
        owner.execute("drop schema if exists bench_live_analytics cascade")
        owner.execute("drop schema if exists bench_live cascade")
    return results


def side_by_side(argv=None):
    """`python -m bench.bench_analytics [--refresh] [--pages N]`: the quick figures compared
    before/after a change, on tracker_bench as it is (no migration, no live baseline): one
    refresh as the nightly job runs it, and the p50/p95 of the analytics pages as the MD,
    finance and a senior buyer (Flask in-process). Run it from a checkout of the old code
    against the old schema, then from the new code after migrating, and compare; the load
    average is printed beside the figures."""
    import argparse
    import json
    import os

    from tracker import config
    from tracker.web import create_app

    from .bench_web import client
    from .common import Context
    from .generate import bench_url
    ap = argparse.ArgumentParser(description=side_by_side.__doc__.split("\n")[0])
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--pages", type=int, default=0, help="requests per page (0: none)")
    ap.add_argument("--db", default="tracker_bench")
    args = ap.parse_args(argv)
    url = bench_url(args.db)
    app_url = config.with_dbname(config.app_database_url(url), args.db)
    ctx = Context(url, app_url, args.db, 0, False)
    out = {"load_before": os.getloadavg()}
    if args.refresh:
        with psycopg.connect(url, autocommit=True) as owner:
            t = time.perf_counter()
            owner.execute("select app_private.refresh_analytics('manual')")
            out["refresh_s"] = round(time.perf_counter() - t, 1)
            out["per_view_s"] = owner.execute(
                "select seconds from analytics_private.refreshes order by id desc limit 1").fetchone()[0]
    if args.pages:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "APP_DATABASE_URL": app_url})
        try:
            for who, path in [("md", "/analytics/"), ("finance", "/analytics/"), ("senior_buyer", "/analytics/"),
                              ("md", "/analytics/suppliers"), ("md", "/analytics/budgets")]:
                c = client(app, ctx, who)

                def get(c=c, path=path):
                    assert c.get(path).status_code == 200
                s = summary(timed(get, args.pages, warmup=2))
                out[f"{who} {path}"] = {"p50_ms": round(s["median_ms"]), "p95_ms": round(s["p95_ms"])}
        finally:
            app.extensions["pool"].close()
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    side_by_side()
