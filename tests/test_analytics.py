"""Spend analytics (issue 13) against the real database: every figure is checked
against an independent computation over the base tables written here in Python (never
the views' SQL); months without spend, YoY across a year boundary and currency
conversion; scoping for every role x every analytics object; budgets (who edits,
audited, refused amounts); the manual refresh; REFRESH ... CONCURRENTLY while a
reader holds a query open; the pg_cron job."""
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest

from conftest import _url, act_as, db_url
from tracker import config
from tracker.roles import ROLES

LONDON = ZoneInfo("Europe/London")
CENT = Decimal("0.01")
ALL = {"finance", "sales_lead", "ops_director", "md"}
TEAM = {"buyer", "senior_buyer"}


# ---------------------------------------------------------------- the independent computation
def base_rows(conn):
    """Costed samples with everything a figure needs, read as the owner from the base tables."""
    return conn.execute("""
        select s.id, s.team_id, s.season_id, s.requested_by, s.category_id, s.supplier_id, s.state::text,
               s.received_on, s.qc_rejected, k.unit_cost, k.quantity, k.fx_rate_to_gbp,
               (select min(e.at) from app.sample_events e where e.sample_id = s.id and e.action = 'order'),
               s.created_at
          from app.samples s join app.sample_costs k on k.sample_id = s.id""").fetchall()


def gbp(unit, qty, rate) -> Decimal:
    return (Decimal(unit) * qty * Decimal(rate)).quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(ts: datetime) -> date:
    return ts.astimezone(LONDON).date().replace(day=1)


def expected_facts(conn, team=None):
    """(month, season, team, buyer, category, supplier) -> [samples, spend, committed, ordered,
    received, cut, returned, rejected], for samples ordered onward with a cost."""
    out = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0, 0, 0, 0, 0])
    for (sid, t, season, buyer, cat, sup, state, received_on, rejected, unit, qty, rate, ordered_at,
         created_at) in base_rows(conn):
        if state == "requested" or sup is None or (team is not None and t != team):
            continue
        v = out[(month_of(ordered_at or created_at), season, t, buyer, cat, sup)]
        spend = gbp(unit, qty, rate)
        v[0] += 1
        v[1] += spend
        v[2] += spend if state == "ordered" else 0
        v[3] += state == "ordered"
        v[4] += received_on is not None
        v[5] += state == "cut-for-production"
        v[6] += state == "returned"
        v[7] += bool(rejected)
    return dict(out)


def by_month_category(facts):
    out = defaultdict(Decimal)
    for (month, _, _, _, cat, _), v in facts.items():
        out[(month, cat)] += v[1]
    return out


def add_months(d: date, n: int) -> date:
    k = d.year * 12 + d.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def refresh(conn):
    act_as(conn, None)
    conn.execute("select app_private.refresh_analytics('manual')")


def persona(conn, role):
    row = conn.execute("select id, team_id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()
    return {"id": row[0], "role": role, "team_id": row[1]}


def as_role(conn, role, sql, params=None, fetch="all"):
    """Run sql as the role's demo persona in a savepoint: rows, or the SQLSTATE."""
    try:
        with conn.transaction():
            act_as(conn, persona(conn, role))
            cur = conn.execute(sql, params)
            rows = cur.fetchall() if fetch == "all" else cur.fetchone()
            act_as(conn, None)
            return rows
    except psycopg.Error as exc:
        return exc.sqlstate


# ---------------------------------------------------------------- figures
def test_spend_facts_match_the_base_tables(conn):
    refresh(conn)
    want = expected_facts(conn)
    got = as_role(conn, "finance", """
        select month, season_id, team_id, buyer_id, category_id, supplier_id, samples, spend_gbp, committed_gbp,
               ordered, received, cut_for_production, returned, qc_rejected from analytics.spend""")
    assert len(want) > 50
    assert {r[:6]: list(r[6:]) for r in got} == {k: v for k, v in want.items()}


def test_monthly_rollup_mom_and_yoy_match_and_empty_months_read_zero(conn):
    refresh(conn)
    spend = by_month_category(expected_facts(conn))
    rows = as_role(conn, "md", """
        select month, category_id, spend_gbp, prev_month_gbp, mom_change_gbp, same_month_last_year_gbp,
               yoy_change_gbp, mom_pct, yoy_pct from analytics.category_monthly""")
    cats = [r[0] for r in conn.execute("select id from app.categories").fetchall()]
    first, last = min(m for m, _ in spend), max(m for m, _ in spend)
    months = []
    m = first
    while m <= last:
        months.append(m)
        m = add_months(m, 1)
    assert {(r[0], r[1]) for r in rows} == {(m, c) for m in months for c in cats}, "one row per month x category"
    zero_months = year_boundaries = 0
    for month, cat, cur, prev, mom, ly, yoy, mom_pct, yoy_pct in rows:
        want = spend.get((month, cat), Decimal(0))
        assert cur == want, (month, cat)
        zero_months += want == 0
        if month == first:
            assert prev is None and mom is None
        else:
            want_prev = spend.get((add_months(month, -1), cat), Decimal(0))
            assert (prev, mom) == (want_prev, want - want_prev)
            if want_prev:
                assert mom_pct == (100 * (want - want_prev) / want_prev).quantize(Decimal("0.1"), ROUND_HALF_UP)
            if month.month == 1 and want_prev:
                year_boundaries += 1  # January against December of the year before
        if add_months(month, -12) < first:
            assert ly is None and yoy is None and yoy_pct is None
        else:
            want_ly = spend.get((add_months(month, -12), cat), Decimal(0))
            assert (ly, yoy) == (want_ly, want - want_ly)
            if want_ly:
                assert yoy_pct == (100 * (want - want_ly) / want_ly).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert zero_months > 0, "the demo has months without spend in some category"
    assert year_boundaries > 0, "a January is compared with the December before"


def test_category_month_is_category_monthly_for_one_month(conn):
    refresh(conn)
    months = [r[0] for r in conn.execute("select distinct month from analytics_private.spend_monthly").fetchall()]
    assert len(months) > 12
    for m in months:
        a = as_role(conn, "md", "select * from analytics.category_monthly where month = %s order by category_id", (m,))
        b = as_role(conn, "md", "select * from analytics.category_month(%s) order by category_id", (m,))
        assert a == b and a, m


def test_currency_conversion_uses_the_orders_fx_rate(conn):
    """Two samples ordered in January 2019 (no other spend then): 2 x 123.45 EUR at 0.85 and
    1 x 99.99 USD at 0.79 are £209.87 (half up from 209.865) and £78.99 (78.9921)."""
    ids = {}
    for cur, unit, qty, rate in (("EUR", "123.45", 2, "0.85"), ("USD", "99.99", 1, "0.79")):
        sid = conn.execute("""
            insert into app.samples (title, category_id, season_id, team_id, requested_by, supplier_id, state)
            select 'FX test', (select min(id) from app.categories), (select min(id) from app.seasons),
                   s.team_id, s.id, (select min(id) from app.suppliers), 'ordered'
              from app.staff s where s.email = 'buyer@example.com' returning id""").fetchone()[0]
        conn.execute("""insert into app.sample_costs (sample_id, team_id, unit_cost, quantity, currency, fx_rate_to_gbp)
                        select id, team_id, %s, %s, %s, %s from app.samples where id = %s""", (unit, qty, cur, rate, sid))
        conn.execute("""insert into app.sample_events (sample_id, action, from_state, to_state, actor_role, at)
                        values (%s, 'order', 'requested', 'ordered', 'buyer', '2019-01-15 23:30+00')""", (sid,))
        ids[cur] = sid
    refresh(conn)
    got = as_role(conn, "finance", "select sum(spend_gbp), sum(committed_gbp), sum(samples), sum(ordered) "
                                   "from analytics.spend where month = '2019-01-01'", fetch="one")
    assert got == (Decimal("288.86"), Decimal("288.86"), 2, 2)
    # and the month with no spend before it reads zero, not missing
    dec = as_role(conn, "finance", "select sum(spend_gbp) from analytics.category_monthly where month = '2019-02-01'",
                  fetch="one")
    assert dec == (Decimal(0),)


def expected_over_index(facts, month):
    """(category, supplier) -> (spend, share, last year's share or None, over_indexed) for the
    month of the given facts, as the issue defines it."""
    ly = add_months(month, -12)
    spend = defaultdict(Decimal)
    for (m, _, _, _, cat, sup), v in facts.items():
        if m in (month, ly):
            spend[(m, cat, sup)] += v[1]
    cat_total = defaultdict(Decimal)
    for (m, cat, _), v in spend.items():
        cat_total[(m, cat)] += v
    out = {}
    for (m, cat, sup), v in spend.items():
        if m != month or not cat_total[(m, cat)]:
            continue
        share = v / cat_total[(m, cat)]
        had_category = cat_total.get((ly, cat), 0) > 0
        ly_share = spend.get((ly, cat, sup), 0) / cat_total[(ly, cat)] if had_category else None
        over = share >= Decimal("0.05") and had_category and (not ly_share or share >= Decimal("1.2") * ly_share)
        out[(cat, sup)] = (v, share, ly_share, over)
    return out


def pct(x):
    return None if x is None else (100 * x).quantize(Decimal("0.1"), ROUND_HALF_UP)


def test_supplier_over_index_matches_shares_computed_here(conn):
    refresh(conn)
    facts = expected_facts(conn)
    month = max(m for m, *_ in facts)
    want = expected_over_index(facts, month)
    rows = as_role(conn, "md", "select category_id, supplier_id, spend_gbp, share_pct, last_year_share_pct, over_indexed "
                               "from analytics.supplier_over_index(%s)", (month,))
    assert rows and len(rows) == len(want)
    flagged = 0
    for cat, sup, s, share_pct, ly_pct, over in rows:
        spend, share, _, want_over = want[(cat, sup)]
        assert s == spend
        assert share_pct == pct(share)
        assert over == want_over, (cat, sup)
        flagged += over
    assert flagged > 0


def test_supplier_share_leaders_are_every_teams_shares_of_at_least_5_percent(conn):
    """The precomputed all-teams shares, every month: exactly the suppliers with >= 5 % of a
    category's spend, their share and last year's, and the over-index flag."""
    refresh(conn)
    facts = expected_facts(conn)
    rows = as_role(conn, "finance", "select month, category_id, supplier_id, spend_gbp, share_pct, "
                                    "last_year_share_pct, over_indexed from analytics.supplier_share_leaders")
    got = {(m, c, s): tuple(r) for m, c, s, *r in rows}
    want = {}
    for month in {k[0] for k in facts}:
        for (cat, sup), (spend, share, ly_share, over) in expected_over_index(facts, month).items():
            if share >= Decimal("0.05"):
                want[(month, cat, sup)] = (spend, pct(share), pct(ly_share), over)
    assert len(want) > 20 and any(v[3] for v in want.values())
    assert got == want


@pytest.mark.parametrize("role", ["md", "finance", "buyer", "senior_buyer"])
def test_over_indexed_suppliers_are_the_over_indexed_rows_for_the_callers_scope(conn, role):
    """The overview's fast path gives, month by month, exactly the over-indexed rows of the
    caller's scope: every team for finance and directors (from the precomputed shares), the
    own team's shares for buyers (computed live; never the all-teams figures)."""
    refresh(conn)
    team = persona(conn, role)["team_id"] if role in TEAM else None
    facts = expected_facts(conn, team)
    months = sorted({k[0] for k in facts})[-14:]
    flagged = 0
    for month in months:
        want = {(c, s): (v[0], pct(v[1]), pct(v[2]))
                for (c, s), v in expected_over_index(facts, month).items() if v[3]}
        rows = as_role(conn, role, "select category_id, supplier_id, spend_gbp, share_pct, last_year_share_pct "
                                   "from analytics.over_indexed_suppliers(%s)", (month,))
        assert {(c, s): tuple(r) for c, s, *r in rows} == want, month
        slow = as_role(conn, role, "select category_id, supplier_id, spend_gbp, share_pct, last_year_share_pct "
                                   "from analytics.supplier_over_index(%s) where over_indexed", (month,))
        assert sorted(rows) == sorted(slow)
        flagged += len(rows)
    assert flagged > 0, "positive control: some supplier is over-indexed in the caller's scope"


def test_budget_vs_actual_and_running_hot_match(conn):
    refresh(conn)
    facts = expected_facts(conn)
    actual = defaultdict(Decimal)
    buyer = defaultdict(Decimal)
    for (_, season, team, b, cat, _), v in facts.items():
        actual[(team, season, cat)] += v[1]
        buyer[(season, b)] += v[1]
    budgets = {(t, s, c): a for t, s, c, a in conn.execute(
        "select team_id, season_id, category_id, amount_gbp from app.budgets").fetchall()}
    rows = as_role(conn, "finance", "select team_id, season_id, category_id, budget_gbp, actual_gbp, over_budget "
                                    "from analytics.budget_vs_actual")
    assert {(t, s, c) for t, s, c, *_ in rows} == set(actual) | set(budgets)
    over = 0
    for t, s, c, b, a, flag in rows:
        assert b == budgets.get((t, s, c)) and a == actual.get((t, s, c), 0)
        assert flag == (a > (b or 0))
        over += flag
    assert 0 < over < len(rows), "some categories are over budget, some are not"
    hot = as_role(conn, "finance", "select season_id, buyer_id, spend_gbp from analytics.buyers_running_hot")
    assert {(s, b): v for s, b, v in hot} == dict(buyer)


def test_outcomes_and_scorecard_match(conn):
    refresh(conn)
    rows = conn.execute("""
        select s.supplier_id, s.received_on, s.expected_on, s.qc_rejected, s.state::text,
               (s.created_at at time zone 'Europe/London')::date, s.last_qc_result is not null
          from app.samples s join app.sample_costs k on k.sample_id = s.id
         where s.state <> 'requested' and s.supplier_id is not null""").fetchall()
    want = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for sup, rec, exp, rej, state, created, inspected in rows:
        w = want[sup]
        w[0] += 1
        w[1] += (rec - created).days if rec else 0
        w[2] += bool(rec and exp and rec > exp)
        w[3] += bool(rej)
        w[4] += state == "returned"
        w[5] += inspected
    got = as_role(conn, "md", "select supplier_id, sum(samples), sum(lead_days_sum), sum(late_deliveries), "
                              "sum(qc_rejected), sum(returned), sum(inspected) from analytics.supplier_scorecard "
                              "group by 1")
    assert {r[0]: list(r[1:]) for r in got} == dict(want)


@pytest.mark.parametrize("role", ["md", "finance", "buyer", "senior_buyer"])
def test_supplier_seasons_are_the_scorecard_of_the_callers_teams_by_season(conn, role):
    """The suppliers page's season x supplier rows: every team together for the roles that see
    every team (precomputed), the team's own for buyers; each figure computed here."""
    refresh(conn)
    team = persona(conn, role)["team_id"] if role in TEAM else None
    rows = conn.execute("""
        select s.team_id, s.season_id, s.supplier_id, s.received_on, s.expected_on, s.qc_rejected, s.state::text,
               (s.created_at at time zone 'Europe/London')::date, s.last_qc_result is not null, k.unit_cost,
               k.quantity, k.fx_rate_to_gbp
          from app.samples s join app.sample_costs k on k.sample_id = s.id
         where s.state <> 'requested' and s.supplier_id is not null""").fetchall()
    want = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, 0, Decimal(0), Decimal(0)])
    for t, season, sup, rec, exp, rej, state, created, inspected, unit, qty, rate in rows:
        if team is not None and t != team:
            continue
        w = want[(season, sup)]
        spend = gbp(unit, qty, rate)
        w[0] += 1
        w[1] += rec is not None
        w[2] += (rec - created).days if rec else 0
        w[3] += bool(rec and exp and rec > exp)
        w[4] += inspected
        w[5] += bool(rej)
        w[6] += state == "returned"
        w[7] += state == "cut-for-production"
        w[8] += spend
        w[9] += spend if state == "ordered" else 0
    got = as_role(conn, role, """select season_id, supplier_id, samples, received, lead_days_sum, late_deliveries,
                                        inspected, qc_rejected, returned, cut_for_production, spend_gbp, committed_gbp
                                   from analytics.supplier_seasons""")
    assert len(want) > 5
    assert {(r[0], r[1]): list(r[2:]) for r in got} == dict(want)


def expected_state_days(conn, until):
    """(team, category or 0, supplier or 0, state) -> [stays, days]: the events walked here,
    each stay from the move into the state to the next move (`until` for the open one)."""
    samples = {r[0]: r[1:] for r in conn.execute("""
        select s.id, s.team_id, s.category_id, s.supplier_id from app.samples s
          join app.sample_costs k on k.sample_id = s.id
         where s.state <> 'requested' and s.supplier_id is not null""").fetchall()}
    events = conn.execute("""select sample_id, to_state::text, at from app.sample_events
                              where to_state is not null and from_state is distinct from to_state
                              order by sample_id, at, id""").fetchall()
    want = defaultdict(lambda: [0, 0.0])
    for i, (sid, state, at) in enumerate(events):
        if sid not in samples or state in ("returned", "cut-for-production"):
            continue
        end = events[i + 1][2] if i + 1 < len(events) and events[i + 1][0] == sid else until
        team, cat, sup = samples[sid]
        for key in ((team, cat, 0, state), (team, 0, sup, state)):
            want[key][0] += 1
            want[key][1] += (end - at).total_seconds() / 86400
    return want


def state_days_as(conn, role):
    return as_role(conn, role, "select team_id, coalesce(category_id, 0), coalesce(supplier_id, 0), state::text, "
                               "stays, days_sum from analytics.state_days")


def assert_state_days_match(conn, team=None):
    """analytics.state_days (as the MD, or a buyer of `team`) against the walk, open stays
    counted to the latest refresh ("data as of")."""
    as_of = conn.execute("select max(started_at) from analytics_private.refreshes where finished_at is not null"
                         ).fetchone()[0]
    want = {k: v for k, v in expected_state_days(conn, as_of).items() if team is None or k[0] == team}
    got = state_days_as(conn, "md" if team is None else "buyer")
    assert len(got) == len(want) > 10
    for t, cat, sup, state, stays, days in got:
        assert stays == want[(t, cat, sup, state)][0], (t, cat, sup, state)
        assert abs(float(days) - want[(t, cat, sup, state)][1]) < 0.006, (t, cat, sup, state)
    return got


def test_state_days_match_the_events_walked_here(conn):
    """Each stay runs from the event that entered the state to the next move (the refresh's
    time for the open one); summed per team x category and per team x supplier."""
    refresh(conn)
    assert_state_days_match(conn)
    assert_state_days_match(conn, persona(conn, "buyer")["team_id"])


def test_state_days_are_kept_from_the_queued_samples_only(conn):
    """V0022: the stays are summed again only for the samples queued since the last refresh
    (new moves, a new category): after new samples, new moves and a correction the figures
    equal the walk again; until the refresh nothing changes; a refresh with nothing
    queued reads no events and only moves the open stays' end to its own time."""
    from helpers import Lifecycle
    refresh(conn)
    unchanged_at_start = sorted(state_days_as(conn, "md"))
    assert conn.execute("select count(*) from analytics_private.stays_queue").fetchone()[0] == 0
    lc = Lifecycle(conn)
    lc.make("with-design")  # requested, ordered, received: closed stays; with design: the open one
    moved = lc.make("received")
    lc.call("logistics", "select app.send_to_factory(%s, %s)", (moved, lc.factory))
    corrected = lc.make("ordered")
    assert conn.execute("select count(distinct sample_id) from analytics_private.stays_queue").fetchone()[0] == 3
    refresh(conn)
    assert_state_days_match(conn)
    before = sorted(state_days_as(conn, "md"))
    assert before != unchanged_at_start, "positive control: the new samples were counted"
    # a correction moves an ordered sample's stays to another category (no move of state)
    other_cat = conn.execute("select max(id) from app.categories where id <> %s", (lc.category,)).fetchone()[0]
    lc.call("buyer", "select app.correct_sample(%s, p_category_id => %s, p_note => 'wrong category')",
            (corrected, other_cat))
    # a sample of the demo data moves on: its old closed stays are counted once, not twice
    demo = conn.execute("""select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id
                            where s.state = 'received' and s.supplier_id is not null and not s.qc_rejected
                            order by s.id limit 1""").fetchone()[0]
    lc.call("logistics", "select app.hand_to_design(%s, %s)", (demo, lc.designer))
    queued = {r[0] for r in conn.execute("select sample_id from analytics_private.stays_queue").fetchall()}
    assert queued == {corrected, demo}
    assert sorted(state_days_as(conn, "md")) == before, "nothing changes until the refresh"
    refresh(conn)
    assert conn.execute("select count(*) from analytics_private.stays_queue").fetchone()[0] == 0
    assert_state_days_match(conn)
    counted = conn.execute("select category_id from analytics_private.sample_stays where sample_id = %s",
                           (corrected,)).fetchall()
    assert counted and {c for c, in counted} == {other_cat}
    # nothing queued: the same stays, the open ones longer by the time between the refreshes
    stays = {r[:4]: r[4] for r in state_days_as(conn, "md")}
    refresh(conn)
    assert {r[:4]: r[4] for r in state_days_as(conn, "md")} == stays
    assert_state_days_match(conn)
    # the same, done from scratch: the kept rows equal their definitions
    for table in ("sample_stays", "spend_facts", "supplier_scorecard"):
        diff = conn.execute(f"""select count(*) from (
            (select * from analytics_private.{table} except all select * from analytics_private.{table}_query)
            union all
            (select * from analytics_private.{table}_query except all select * from analytics_private.{table})) d
        """).fetchone()[0]
        assert diff == 0, table
    # spend_facts by difference: the corrected sample's spend moved to its new category (a
    # changed key: one row deleted or changed, one inserted or changed), every figure as computed here
    got = as_role(conn, "finance", """
        select month, season_id, team_id, buyer_id, category_id, supplier_id, samples, spend_gbp, committed_gbp,
               ordered, received, cut_for_production, returned, qc_rejected from analytics.spend""")
    assert {r[:6]: list(r[6:]) for r in got} == expected_facts(conn)
    assert any(k[4] == other_cat and k[2] == lc.people.get("buyer")["team_id"] for k in expected_facts(conn))


def test_a_buyer_changing_a_category_directly_queues_the_sample(conn):
    """Buyers may update a sample's category without the lifecycle (a column grant): the
    trigger queues it all the same, through the private queue they cannot read."""
    sb = persona(conn, "buyer")
    sid, cat = conn.execute("""select s.id, s.category_id from app.samples s join app.sample_costs k on k.sample_id = s.id
                                where s.team_id = %s and s.state = 'ordered' and s.supplier_id is not null
                                order by s.id limit 1""", (sb["team_id"],)).fetchone()
    refresh(conn)
    other = conn.execute("select min(id) from app.categories where id <> %s", (cat,)).fetchone()[0]
    assert as_role(conn, "buyer", "update app.samples set category_id = %s where id = %s returning id",
                   (other, sid), fetch="one") == (sid,)
    assert as_role(conn, "buyer", "select count(*) from analytics_private.stays_queue", fetch="one") == "42501"
    assert conn.execute("select array_agg(sample_id) from analytics_private.stays_queue").fetchone()[0] == [sid]
    refresh(conn)
    assert_state_days_match(conn)


# ---------------------------------------------------------------- scoping: every role x every object
# each object, and the figure that must equal the owner's computation for the caller's scope
OBJECTS = {
    "analytics.spend": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend",
    "analytics.spend_monthly": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend_monthly",
    "analytics.buyer_season": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.buyer_season",
    "analytics.category_month()": "select null, coalesce(sum(spend_gbp), 0) from analytics.category_month(%(month)s)",
    "analytics.category_monthly": "select null, coalesce(sum(spend_gbp), 0) from analytics.category_monthly",
    "analytics.season_spend": "select null, coalesce(sum(spend_gbp), 0) from analytics.season_spend",
    "analytics.budget_vs_actual": "select null, coalesce(sum(actual_gbp), 0) from analytics.budget_vs_actual",
    "analytics.buyers_running_hot": "select null, coalesce(sum(spend_gbp), 0) from analytics.buyers_running_hot",
    "analytics.supplier_over_index()": "select null, coalesce(sum(spend_gbp), 0) from analytics.supplier_over_index(%(month)s)",
    "analytics.supplier_scorecard": "select count(*), coalesce(sum(samples), 0) from analytics.supplier_scorecard",
    "analytics.state_days": "select count(*), coalesce(sum(stays), 0) from analytics.state_days",
    "analytics.data_as_of": "select count(*), 0 from analytics.data_as_of",
    "analytics.spend_category_month": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend_category_month",
    "analytics.spend_season": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend_season",
    "analytics.spend_team_month": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.spend_team_month",
    "analytics.supplier_share_leaders": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.supplier_share_leaders",
    "analytics.over_indexed_suppliers()": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.over_indexed_suppliers(%(month)s)",
    "analytics.teams": "select count(*), 0 from analytics.teams",
    "analytics.supplier_season_all_teams": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.supplier_season_all_teams",
    "analytics.supplier_seasons": "select count(*), coalesce(sum(spend_gbp), 0) from analytics.supplier_seasons",
}
# the owner's figure for a scope (team None: every team), from the materialised views and the
# independent computation above
OWNER = {
    "analytics.spend": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_facts where {t}",
    "analytics.spend_monthly": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_monthly where {t}",
    "analytics.buyer_season": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_buyer_season where {t}",
    "analytics.supplier_scorecard": "select count(*), coalesce(sum(samples), 0) from analytics_private.supplier_scorecard where {t}",
    "analytics.state_days": "select count(*), coalesce(sum(stays), 0) from analytics_private.state_days where {t}",
    "analytics.spend_category_month": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_category_month where {t}",
    "analytics.spend_season": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_season where {t}",
    "analytics.spend_team_month": "select count(*), coalesce(sum(spend_gbp), 0) from analytics_private.spend_team_month where {t}",
}
CASES = [(o, r) for o in OBJECTS for r in ROLES]


def expectation(role):
    return "all" if role in ALL else "team" if role in TEAM else "denied"


@pytest.mark.parametrize("obj,role", CASES, ids=[f"{o}-{r}" for o, r in CASES])
def test_scope_of_every_analytics_object_for_every_role(conn, obj, role):
    refresh(conn)
    month = conn.execute("select max(month) from analytics_private.spend_facts").fetchone()[0]
    got = as_role(conn, role, OBJECTS[obj], {"month": month}, fetch="one")
    scope = expectation(role)
    if scope == "denied":
        assert got == "42501", f"{role} must not read {obj}"
        # positive control: the figures exist
        assert conn.execute("select count(*) from analytics_private.spend_facts").fetchone()[0] > 0
        return
    team = persona(conn, role)["team_id"] if scope == "team" else None
    if obj == "analytics.data_as_of":
        assert got[0] == 1
        return
    if obj == "analytics.teams":
        every = conn.execute("select count(*) from app.teams").fetchone()[0]
        assert every > 1, "positive control: there are other teams to hide"
        assert got[0] == (every if scope == "all" else 1)
        return
    if obj == "analytics.supplier_share_leaders":
        # every team together: only for the roles that see every team
        facts = expected_facts(conn)
        want = sum((v[0] for m in {k[0] for k in facts} for v in expected_over_index(facts, m).values()
                    if v[1] >= Decimal("0.05")), Decimal(0))
        assert want > 0, "positive control: there are all-teams shares to hide"
        assert tuple(got) == ((0, 0) if scope == "team" else (got[0], want))
        return
    if obj == "analytics.supplier_season_all_teams":
        # every team together: only for the roles that see every team
        want = sum((v[1] for v in expected_facts(conn).values()), Decimal(0))
        assert want > 0, "positive control: there are all-teams figures to hide"
        assert tuple(got) == ((0, 0) if scope == "team" else (got[0], want))
        return
    if obj == "analytics.over_indexed_suppliers()":
        over = {k: v for k, v in expected_over_index(expected_facts(conn, team), month).items() if v[3]}
        assert tuple(got) == (len(over), sum((v[0] for v in over.values()), Decimal(0)))
        return
    if obj in OWNER:
        t = "true" if team is None else f"team_id = {int(team)}"
        want = conn.execute(OWNER[obj].format(t=t)).fetchone()
        assert tuple(got) == tuple(want)
        everything = conn.execute(OWNER[obj].format(t="true")).fetchone()
    else:
        facts = expected_facts(conn, team)
        if obj in ("analytics.supplier_over_index()", "analytics.category_month()"):
            facts = {k: v for k, v in facts.items() if k[0] == month}
        want = sum((v[1] for v in facts.values()), Decimal(0))
        assert got[1] == want
        everything = (None, sum((v[1] for k, v in expected_facts(conn).items()
                                 if obj not in ("analytics.supplier_over_index()", "analytics.category_month()")
                                 or k[0] == month), Decimal(0)))
    assert got[1] > 0, "positive control: the role sees some figures"
    if scope == "team":
        assert got[1] < everything[1], "positive control: other teams' figures exist and are hidden"
    else:
        assert got[1] == everything[1]


def test_a_deactivated_analyst_login_reads_no_analytics(conn):
    conn.execute("insert into app.staff (email, full_name, role) values ('ana.test@example.com', 'Ana Test', 'finance')")
    conn.execute("select app_private.grant_personal_login('ana.test@example.com', 'test_ana_analytics')")
    refresh(conn)
    conn.execute("set local session authorization test_ana_analytics")
    assert conn.execute("select count(*) from analytics.spend").fetchone()[0] > 0
    conn.execute("set local session authorization default")
    conn.execute("update app.staff set active = false where email = 'ana.test@example.com'")
    conn.execute("set local session authorization test_ana_analytics")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select count(*) from analytics.spend")


def test_a_login_that_is_nobody_reads_no_figures(conn):
    """Membership of finance without a staff row (a DBA's mistake): the scope needs a person."""
    conn.execute("create role test_stray_analytics login")
    conn.execute("grant finance to test_stray_analytics")
    refresh(conn)
    conn.execute("set local session authorization test_stray_analytics")
    assert conn.execute("select count(*) from analytics.spend").fetchone()[0] == 0
    assert conn.execute("select count(*) from analytics.data_as_of").fetchone()[0] == 0
    conn.execute("set local session authorization default")
    assert conn.execute("select count(*) from analytics_private.spend_facts").fetchone()[0] > 0


def test_nobody_reads_the_materialised_views_directly(conn):
    for role in ROLES:
        assert as_role(conn, role, "select count(*) from analytics_private.spend_facts", fetch="one") == "42501"
    granted = conn.execute("""select count(*) from pg_namespace n, aclexplode(n.nspacl) a join pg_roles r on r.oid = a.grantee
                               where n.nspname = 'analytics_private' and r.rolname = any(%s)""", (ROLES,)).fetchone()[0]
    assert granted == 0


def test_a_callers_own_condition_cannot_see_rows_the_scope_drops(conn):
    """security_barrier: a non-leakproof condition of the buyer's runs after the scope."""
    refresh(conn)
    team = persona(conn, "buyer")["team_id"]
    got = as_role(conn, "buyer", "select count(*) from analytics.spend where spend_gbp::text <> 'x' "
                                 "and team_id <> %s", (team,), fetch="one")
    assert got == (0,)
    assert conn.execute("select count(*) from analytics_private.spend_facts where team_id <> %s", (team,)).fetchone()[0] > 0


# ---------------------------------------------------------------- budgets
def test_budgets_who_sets_them_audited_and_stamped(conn):
    sb = persona(conn, "senior_buyer")
    other = conn.execute("select min(id) from app.teams where id <> %s", (sb["team_id"],)).fetchone()[0]
    season = conn.execute("select max(id) from app.seasons").fetchone()[0]
    cat = conn.execute("select max(id) from app.categories").fetchone()[0]
    conn.execute("delete from app.budgets where season_id = %s and category_id = %s", (season, cat))
    ins = ("insert into app.budgets (team_id, season_id, category_id, amount_gbp) values (%s, %s, %s, %s) "
           "returning updated_by")
    assert as_role(conn, "senior_buyer", ins, (sb["team_id"], season, cat, 12345), fetch="one") == (sb["id"],)
    assert as_role(conn, "senior_buyer", ins, (other, season, cat, 1), fetch="one") == "42501"
    fin = persona(conn, "finance")
    assert as_role(conn, "finance", ins, (other, season, cat, 500), fetch="one") == (fin["id"],)
    for role in ROLES:
        if role not in ("senior_buyer", "finance"):
            assert as_role(conn, role, ins, (sb["team_id"], season, 1, 1), fetch="one") == "42501", role
    logged = conn.execute("""select staff_id, new_row ->> 'amount_gbp' from audit.log
                              where table_name = 'app.budgets' and op = 'INSERT' and staff_id is not null
                                and (new_row ->> 'season_id')::int = %s and (new_row ->> 'category_id')::int = %s
                              order by id""", (season, cat)).fetchall()
    assert logged == [(sb["id"], "12345.00"), (fin["id"], "500.00")]


def test_a_negative_budget_is_refused_with_our_sqlstate(conn):
    row = conn.execute("select b.id from app.budgets b join app.staff s on s.team_id = b.team_id "
                       "where s.email = 'senior_buyer@example.com' limit 1").fetchone()
    before = conn.execute("select amount_gbp from app.budgets where id = %s", row).fetchone()
    with conn.transaction():
        act_as(conn, persona(conn, "senior_buyer"))
        with pytest.raises(psycopg.Error) as exc:
            with conn.transaction():
                conn.execute("update app.budgets set amount_gbp = -5 where id = %s", row)
        assert exc.value.sqlstate == "TR042"
        assert "budget" in exc.value.diag.message_primary and exc.value.diag.message_hint
        act_as(conn, None)
    assert conn.execute("select amount_gbp from app.budgets where id = %s", row).fetchone() == before


# ---------------------------------------------------------------- refresh
@pytest.mark.parametrize("role", ROLES)
def test_only_directors_refresh_now(conn, role):
    before = conn.execute("select count(*) from analytics_private.refreshes").fetchone()[0]
    got = as_role(conn, role, "select app.refresh_analytics()", fetch="one")
    if role in ("ops_director", "md"):
        assert isinstance(got, tuple)
        row = conn.execute("select trigger, staff_id, seconds from analytics_private.refreshes "
                           "order by id desc limit 1").fetchone()
        assert row[:2] == ("manual", persona(conn, role)["id"])
        assert set(row[2]) == {"spend_facts", "spend_monthly", "spend_buyer_season", "supplier_scorecard",
                               "supplier_season", "spend_category_month", "spend_team_month", "spend_season",
                               "supplier_share_leaders", "state_days"}
        matviews = {r[0] for r in conn.execute(
            "select matviewname from pg_matviews where schemaname = 'analytics_private'").fetchall()}
        # and the tables the refresh keeps (V0022)
        assert set(row[2]) == matviews | {"spend_facts", "supplier_scorecard", "state_days"}, \
            "every figure is refreshed"
    else:
        assert got == "TR040"
        assert conn.execute("select count(*) from analytics_private.refreshes").fetchone()[0] == before


def test_refreshing_a_table_by_difference_needs_its_definition_and_key(conn):
    """Only a table of analytics_private with its definition (<table>_query) and a unique key
    (<table>_key, NOT NULL) is refreshed by difference: anything else is refused with TR043
    before anything is written."""
    for name in ("spend_monthly", "refreshes", "nothing_here", None):
        with pytest.raises(psycopg.Error) as exc:
            with conn.transaction():
                conn.execute("select app_private.refresh_table_by_difference(%s)", (name,))
        assert exc.value.sqlstate == "TR043", name
        assert exc.value.diag.message_detail and exc.value.diag.message_hint
    # positive control: a table with both, after a change, is written by exactly its difference
    refresh(conn)
    conn.execute("""update app.sample_costs set unit_cost = unit_cost + 1
                     where sample_id = (select min(k.sample_id) from app.sample_costs k
                                          join app.samples s on s.id = k.sample_id where s.state = 'received')""")
    assert conn.execute("select app_private.refresh_table_by_difference('spend_facts')").fetchone()[0] == 2
    assert conn.execute("select app_private.refresh_table_by_difference('spend_facts')").fetchone()[0] == 0


def test_refresh_now_while_one_runs_says_so(conn):
    with psycopg.connect(db_url(conn)) as other:
        other.execute("select pg_advisory_lock(hashtext('tracker.analytics.refresh'))")
        assert as_role(conn, "md", "select app.refresh_analytics()", fetch="one") == "TR041"
        other.execute("select pg_advisory_unlock(hashtext('tracker.analytics.refresh'))")
    assert isinstance(as_role(conn, "md", "select app.refresh_analytics()", fetch="one"), tuple)


def test_data_as_of_is_the_start_of_the_latest_refresh(conn):
    refresh(conn)
    started = conn.execute("select started_at from analytics_private.refreshes order by id desc limit 1").fetchone()[0]
    assert as_role(conn, "finance", "select as_of from analytics.data_as_of", fetch="one") == (started,)


READER_SQL = {
    # a roll-up (a materialised view, REFRESH ... CONCURRENTLY)
    "spend_monthly": "select count(*), sum(spend_gbp) from analytics_private.spend_monthly",
    # the tables the refresh writes by difference (V0022)
    "spend_facts": "select count(*), sum(spend_gbp) from analytics_private.spend_facts",
    "supplier_scorecard": "select count(*), sum(spend_gbp) from analytics_private.supplier_scorecard",
    "state_days": "select count(*), sum(stays) from analytics_private.state_days",
}


def test_refresh_concurrently_does_not_wait_for_a_reader(fresh_db):
    """A reader holds a query open (REPEATABLE READ, its snapshot taken) on a roll-up and on
    both tables the refresh writes by difference: the refresh commits without waiting (a
    lock timeout would fail it); the reader keeps its figures until it ends, then sees the
    new ones. Positive control: a plain REFRESH waits for the same reader (lock timeout)."""
    db = fresh_db
    db.execute("select app_private.refresh_analytics('manual')")
    db.commit()
    url = db_url(db)
    sample = ("select min(sample_id) from app.sample_costs k join app.samples s on s.id = k.sample_id "
              "where s.state = 'received' and s.supplier_id is not null")
    with psycopg.connect(url) as reader, psycopg.connect(url, autocommit=True) as writer:
        reader.execute("begin isolation level repeatable read")
        before = {k: reader.execute(q).fetchone() for k, q in READER_SQL.items()}
        sid = writer.execute(sample).fetchone()[0]
        writer.execute("update app.sample_costs set unit_cost = unit_cost + 100 where sample_id = %s", (sid,))
        # a move the stays count: the sample leaves 'received' for the factory (as the lifecycle
        # would: the event, the state)
        writer.execute("""insert into app.sample_events (sample_id, action, from_state, to_state, actor_role)
                          values (%s, 'send_to_factory', 'received', 'at-factory', 'logistics')""", (sid,))
        writer.execute("set session_replication_role = replica")  # the state, without the lifecycle's checks
        writer.execute("update app.samples set state = 'at-factory' where id = %s", (sid,))
        writer.execute("set session_replication_role = origin")
        writer.execute("set lock_timeout = '3s'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            writer.execute("refresh materialized view analytics_private.spend_monthly")
        writer.execute("select app_private.refresh_analytics('manual')")  # does not wait
        assert {k: reader.execute(q).fetchone() for k, q in READER_SQL.items()} == before
        reader.commit()
        after = {k: reader.execute(q).fetchone() for k, q in READER_SQL.items()}
        extra = Decimal(100) * writer.execute("select quantity * fx_rate_to_gbp from app.sample_costs "
                                              "where sample_id = %s", (sid,)).fetchone()[0]
        assert after["spend_monthly"][1] - before["spend_monthly"][1] == extra
        assert after["spend_facts"][1] - before["spend_facts"][1] == extra
        assert after["supplier_scorecard"][1] - before["supplier_scorecard"][1] == extra
        # the at-factory stay is new, counted twice (team x category and team x supplier)
        assert after["state_days"][1] - before["state_days"][1] == 2


# ---------------------------------------------------------------- pg_cron
def test_the_pg_cron_job_exists_and_succeeds_when_run():
    """pg_cron lives in one database (cron.database_name): migrate it, as `make migrate` does,
    find the nightly job, run its command as the job's user in the job's database, and see
    the refresh recorded."""
    from tracker.migrate import migrate
    admin = config.database_url()
    with psycopg.connect(config.with_dbname(admin, "postgres")) as c:
        cron_db = c.execute("select current_setting('cron.database_name')").fetchone()[0]
    url = config.with_dbname(admin, cron_db)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as c:
        jobs = {r[0]: r[1:] for r in c.execute(
            "select jobname, schedule, command, database, username, active from cron.job "
            "where jobname like 'tracker-analytics-%'").fetchall()}
        assert set(jobs) == {"tracker-analytics-refresh", "tracker-analytics-purge-history"}
        schedule, command, database, username, active = jobs["tracker-analytics-refresh"]
        assert (schedule, database, active) == ("30 2 * * *", cron_db, True)
        assert "app_private.refresh_analytics('cron')" in command
        before = c.execute("select coalesce(max(id), 0) from analytics_private.refreshes").fetchone()[0]
    with psycopg.connect(config.with_dbname(_url(cron_db, username), cron_db), autocommit=True) as job:
        job.execute(command)
        job.execute(jobs["tracker-analytics-purge-history"][1])
    with psycopg.connect(url) as c:
        row = c.execute("select trigger, finished_at is not null from analytics_private.refreshes where id > %s",
                        (before,)).fetchall()
        assert row == [("cron", True)]


def test_migrating_a_database_without_pg_cron_skips_the_schedule(conn):
    """Test clones are not the cron database: no pg_cron there, yet everything else works."""
    assert conn.execute("select current_database() <> current_setting('cron.database_name')").fetchone()[0]
    assert conn.execute("select count(*) from pg_extension where extname = 'pg_cron'").fetchone()[0] == 0
