"""Near-duplicate warnings (issue 15, item 1) against the real database: a labelled
fixture of true near-duplicates and look-alikes (tests/fixtures/near_duplicates.yml)
measured for precision and recall; the warning shows only what the buyer may read;
acknowledgements are recorded; likely pairs and their dismissal."""
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import act_as
from helpers import Lifecycle

FIXTURE = yaml.safe_load((Path(__file__).parent / "fixtures" / "near_duplicates.yml").read_text())


@pytest.fixture
def lc(conn):
    return Lifecycle(conn)


@pytest.fixture
def world(conn, lc):
    """The fixture's existing samples, ordered by another team (MW) in a season of their own."""
    season = conn.execute("insert into app.seasons (code, name, starts_on, ends_on) "
                          "values ('SS39', 'Fixture season', '2039-01-01', '2039-06-30') returning id").fetchone()[0]
    other = lc.people.get(conn.execute("select email from app.staff where role = 'buyer' and active and team_id <> "
                                       "(select team_id from app.staff where email = 'buyer@example.com') "
                                       "order by id limit 1").fetchone()[0])
    cats = dict(conn.execute("select name, id from app.categories").fetchall())
    ids = {}
    for key, e in FIXTURE["existing"].items():
        sid = lc.call(other, "select app.request_sample(%s, %s, %s, %s, %s)",
                      (e["title"], cats[e["category"]], season, lc.supplier, e.get("style")))
        lc.call(other, "select app.order_sample(%s, %s, 50, 'GBP', current_date + 20)", (sid, lc.supplier))
        ids[key] = sid
    return {"season": season, "cats": cats, "ids": ids, "other": other}


def similar(conn, lc, who, title, category, season, style=None, supplier=None, limit=50):
    act_as(conn, lc.people.get(who) if isinstance(who, str) else who)
    rows = conn.execute("select * from app.similar_samples(%s, %s, %s, %s, %s, null, %s)",
                        (title, category, season, supplier, style, limit)).fetchall()
    act_as(conn, None)
    return rows


def measure(conn, lc, world, queries):
    by_id = {v: k for k, v in world["ids"].items()}
    tp = fp = fn = 0
    misses, false_alarms = [], []
    for q in queries:
        rows = similar(conn, lc, "buyer", q["title"], world["cats"][q["category"]], world["season"],
                       q.get("style"), lc.supplier)
        found = {by_id[r[0]] for r in rows if r[0] in by_id}
        want = set(q["match"])
        tp += len(found & want)
        fp += len(found - want)
        fn += len(want - found)
        misses += [(q["title"], m) for m in want - found]
        false_alarms += [(q["title"], f) for f in found - want]
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn, misses, false_alarms


@pytest.mark.parametrize("part,floor", [("queries", 0.9), ("heldout", 0.7)])
def test_precision_and_recall_on_the_labelled_fixture(conn, lc, world, part, floor):
    """`queries` tuned the weights; `heldout` was written afterwards and is the honest figure."""
    precision, recall, tp, fp, fn, misses, false_alarms = measure(conn, lc, world, FIXTURE[part])
    print(f"\nnear-duplicates, {part} ({len(FIXTURE[part])} queries): precision {precision:.2f} "
          f"({tp} of {tp + fp}), recall {recall:.2f} ({tp} of {tp + fn}); missed {misses}; "
          f"false alarms {false_alarms}")
    assert tp > 0  # the fixture is really matched against
    assert precision >= floor and recall >= floor, (precision, recall, misses, false_alarms)


def test_the_warning_shows_who_and_where_and_never_a_cost(conn, lc, world):
    rows = similar(conn, lc, "buyer", "Linen wrap dress ivory", world["cats"]["Dresses"], world["season"])
    top = rows[0]
    assert top[0] == world["ids"]["E1"]
    names = [c.name for c in conn.execute("select * from app.similar_samples('x') limit 0").description]
    assert names == ["id", "title", "style_code", "state", "team_code", "requested_by_name", "category", "season",
                     "supplier", "score", "reasons"]
    assert top[4] != lc.people.get("buyer")["team_id"] and top[5]  # another team, its buyer named
    assert "same category" in top[10]
    assert not any("cost" in n or "gbp" in n for n in names)


def test_only_samples_the_caller_can_see(conn, lc, world):
    # a designer cannot see requests: a requested look-alike never appears for them, but an ordered one does
    req = lc.call(world["other"], "select app.request_sample('Ivory linen wrap dress', %s, %s)",
                  (world["cats"]["Dresses"], world["season"]))
    designer = similar(conn, lc, "designer", "Ivory linen wrap dress", world["cats"]["Dresses"], world["season"])
    assert req not in [r[0] for r in designer]
    assert world["ids"]["E1"] in [r[0] for r in designer]  # positive control
    buyer = similar(conn, lc, "buyer", "Ivory linen wrap dress", world["cats"]["Dresses"], world["season"])
    assert req in [r[0] for r in buyer]
    # and nothing at all without a session
    assert conn.execute("select count(*) from app.similar_samples('Ivory linen wrap dress')").fetchone()[0] == 0


def test_going_ahead_despite_similar_is_recorded_on_the_sample(conn, lc, world):
    e1, e5 = world["ids"]["E1"], world["ids"]["E5"]
    sid = lc.call("buyer", "select app.request_sample('Linen wrap dress ivory', %s, %s, p_despite_similar => %s, "
                           "p_note => 'ours is for the resort drop')",
                  (world["cats"]["Dresses"], world["season"], [e1]))
    ev = conn.execute("select note, details -> 'despite_similar' from app.sample_events where sample_id = %s "
                      "and action = 'request'", (sid,)).fetchone()
    assert ev == (f"requested despite 1 similar: {e1} · ours is for the resort drop", [e1])
    lc.call("buyer", "select app.order_sample(%s, %s, 10, 'GBP', current_date + 9, p_despite_similar => %s)",
            (sid, lc.supplier, [e1, e5]))
    note = conn.execute("select note from app.sample_events where sample_id = %s and action = 'order'",
                        (sid,)).fetchone()[0]
    assert note == f"ordered despite 2 similar: {e1}, {e5}"


def test_likely_pairs_for_senior_buyers_and_a_dismissal_is_remembered(conn, lc, world):
    mine = lc.call("buyer", "select app.request_sample('Black biker jacket leather', %s, %s)",
                   (world["cats"]["Outerwear"], world["season"]))
    pairs = lambda who: [(r[0], r[4]) for r in (act_as(conn, lc.people.get(who)),  # noqa: E731
                                                 conn.execute("select * from app.duplicate_pairs(%s)",
                                                              (world["season"],)).fetchall(),
                                                 act_as(conn, None))[1]]
    pair = (min(mine, world["ids"]["E2"]), max(mine, world["ids"]["E2"]))
    assert pair in pairs("senior_buyer")
    assert pair in pairs("ops_director")
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call("buyer", "select * from app.duplicate_pairs(%s)", (world["season"],))
    assert err.value.sqlstate == "42501"  # not granted to buyers
    lc.call("senior_buyer", "select app.dismiss_duplicate(%s, %s, 'different silhouettes')", pair[::-1])
    assert pair not in pairs("senior_buyer") and pair not in pairs("ops_director")
    assert conn.execute("select dismissed_by, reason from app.duplicate_dismissals where sample_a = %s "
                        "and sample_b = %s", pair).fetchone() == (lc.people.get("senior_buyer")["id"],
                                                                   "different silhouettes")


def test_a_senior_buyer_of_neither_team_cannot_dismiss(conn, lc, world):
    third = conn.execute("select id from app.teams where id not in (select team_id from app.samples where id = %s) "
                         "and id <> %s order by id limit 1",
                         (world["ids"]["E2"], lc.people.get("buyer")["team_id"])).fetchone()
    if third is None:
        pytest.skip("the demo has only two teams")
    sb = conn.execute("select id, role::text, team_id, email from app.staff where role = 'senior_buyer' "
                      "and team_id = %s and active limit 1", third).fetchone()
    mine = lc.call("buyer", "select app.request_sample('Black biker jacket leather', %s, %s)",
                   (world["cats"]["Outerwear"], world["season"]))
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            lc.call(dict(zip(("id", "role", "team_id", "email"), sb)), "select app.dismiss_duplicate(%s, %s)",
                    (mine, world["ids"]["E2"]))
    assert err.value.sqlstate == "TR002"


BRUTE_FORCE = """
select s.id, sc.score from app.samples s
 cross join lateral app_private.similarity_score(s.title, %(title)s, s.style_code, %(style)s, s.category_id, %(cat)s,
                                                 s.season_id, %(season)s, s.supplier_id, %(supplier)s) sc
 where s.state not in ('returned', 'cut-for-production') and s.id = any(%(visible)s)
   and sc.score >= app_private.similar_threshold()
 order by sc.score desc, s.id desc limit %(limit)s"""


@pytest.mark.parametrize("who", ["buyer", "designer"])
def test_the_indexed_lookup_finds_exactly_what_scoring_everything_in_flight_finds(conn, lc, world, who):
    """The candidate bounds (app_private.similar_bounds) and the early stop lose nothing: for
    every query of the fixture, with and without a category or a style code, the lookup equals
    scoring every sample in flight the person can see (read through their own policies)."""
    person = lc.people.get(who)
    act_as(conn, person)  # what the person may see, read through their own policies
    visible = [r[0] for r in conn.execute("select id from app.samples").fetchall()]
    act_as(conn, None)
    compared = across = 0
    for q in FIXTURE["queries"] + FIXTURE["heldout"]:
        cat = world["cats"][q["category"]]
        other = world["cats"]["Outerwear" if q["category"] != "Outerwear" else "Dresses"]
        for title, style, category, supplier in ((q["title"], q.get("style"), cat, lc.supplier),
                                                 (q["title"], None, None, None),
                                                 (q["title"], None, other, lc.supplier),  # found across categories
                                                 (q["title"][:12], "WD-100", cat, None)):
            for limit in (50, 2):  # all of them, and the best two (where the early stop cuts in)
                got = [(r[0], r[9]) for r in similar(conn, lc, who, title, category, world["season"], style, supplier,
                                                     limit=limit)]
                want = [tuple(r) for r in conn.execute(BRUTE_FORCE, {"title": title, "style": style, "cat": category,
                                                                     "season": world["season"], "supplier": supplier,
                                                                     "visible": visible, "limit": limit}).fetchall()]
                assert got == want, (who, title, style, category, limit)
                compared += len(want)
                across += len(want) if category == other else 0
    assert compared > 20 and across > 0  # the comparison is over real matches, some across categories


def test_the_upper_bound_is_never_below_the_score(conn, world):
    """similar_upper_bound is what lets the lookup stop early: over every pair of the fixture's
    titles and the demo's samples in flight, in every category relation, it is >= the score
    (a score is clipped at 0; a bound may be negative)."""
    below = conn.execute("""
      with t as (select title, style_code, category_id, season_id, supplier_id from app.samples
                  where state not in ('returned', 'cut-for-production'))
      select count(*), count(*) filter (where greatest(0, app_private.similar_upper_bound(
               extensions.similarity(lower(a.title), lower(b.title)),
               case when btrim(coalesce(a.style_code, '')) <> '' and btrim(coalesce(b.style_code, '')) <> ''
                    then extensions.similarity(lower(a.style_code), lower(b.style_code)) else 0 end,
               a.category_id = b.category_id, a.season_id = b.season_id, a.supplier_id = b.supplier_id,
               cardinality(app_private.colour_words(b.title)) > 0)) + 0.0001
             < (app_private.similarity_score(a.title, b.title, a.style_code, b.style_code, a.category_id, b.category_id,
                                             a.season_id, b.season_id, a.supplier_id, b.supplier_id)).score)
        from (select * from t order by random() limit 120) a,
             (select * from t order by random() limit 120) b""").fetchone()
    assert below == (14400, 0) or (below[0] > 1000 and below[1] == 0), below
