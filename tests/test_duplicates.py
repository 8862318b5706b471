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
