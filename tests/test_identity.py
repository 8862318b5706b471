"""Identity and impersonation: personal logins (analysts) get the same policies as
the web app's persona of the same staff member, and cannot become anyone else."""
from datetime import date

import psycopg
import pytest

from conftest import _url, act_as
from helpers import STATES
from tracker.roles import ROLES


@pytest.fixture
def analyst(fresh_db):
    """A Menswear buyer with a personal login, committed in a fresh database."""
    db = fresh_db
    db.execute("insert into app.staff (email, full_name, role, team_id) "
               "values ('ana.lyst@example.com', 'Ana Lyst', 'buyer', (select id from app.teams where code = 'MW'))")
    login = f"analyst_{db.info.dbname[-8:].lower()}".replace("-", "_")
    db.execute("select app_private.grant_personal_login('ana.lyst@example.com', %s)", (login,))
    db.commit()
    yield db, login
    db.rollback()


def counts(conn):
    return conn.execute("select (select count(*) from app.samples), (select count(*) from app.sample_costs), "
                        "(select count(*) from app.sample_overview where total_gbp is not null)").fetchone()


def test_personal_login_sees_what_the_web_persona_sees(analyst):
    db, login = analyst
    staff_id = db.execute("select id from app.staff where login_role = %s", (login,)).fetchone()[0]
    with db.transaction(force_rollback=True):
        act_as(db, {"id": staff_id, "role": "buyer"})
        web = counts(db)
        act_as(db, None)
    with psycopg.connect(_url(db.info.dbname, login)) as direct:
        assert direct.execute("select app.current_staff_id()").fetchone()[0] == staff_id
        assert counts(direct) == web
        total_costs = db.execute("select count(*) from app.sample_costs").fetchone()[0]
        assert 0 < web[1] < total_costs  # positive control: own team's costs only


def test_personal_login_cannot_become_someone_else(analyst):
    db, login = analyst
    md = db.execute("select id from app.staff where email = 'md@example.com'").fetchone()[0]
    md_session = db.execute("select app_private.start_session(%s)", (md,)).fetchone()[0]
    db.commit()
    with psycopg.connect(_url(db.info.dbname, login)) as direct:
        mine = counts(direct)
        me = direct.execute("select app.current_staff_id()").fetchone()[0]
        # 1. writing the web app's setting, even with the MD's live session token, changes nothing
        direct.execute("select set_config('tracker.session', %s, false)", (md_session,))
        assert direct.execute("select app.current_staff_id()").fetchone()[0] == me
        assert counts(direct) == mine
        # 2. switching to a role it is not a member of is refused
        for role in ("md", "finance", "authenticator", "tracker_owner", "postgres"):
            with pytest.raises(psycopg.Error) as err:
                direct.execute(f"set role {role}")
            assert err.value.sqlstate == "42501", role
            direct.rollback()
        # 3. SET ROLE to its own group and RESET ROLE keep it the same person
        direct.execute("set role buyer")
        assert direct.execute("select app.current_staff_id()").fetchone()[0] == me
        assert counts(direct) == mine
        direct.execute("reset role")
        assert counts(direct) == mine
        # 4. and it cannot take the authenticator's session
        with pytest.raises(psycopg.Error) as err:
            direct.execute("set session authorization authenticator")
        assert err.value.sqlstate == "42501"
        direct.rollback()


def test_personal_login_cannot_act_on_another_teams_sample(analyst):
    db, login = analyst
    ww_request = db.execute("select s.id from app.samples s join app.teams t on t.id = s.team_id "
                            "where t.code = 'WW' and s.state = 'requested' limit 1").fetchone()[0]
    supplier = db.execute("select min(id) from app.suppliers").fetchone()[0]
    with psycopg.connect(_url(db.info.dbname, login)) as direct:
        with pytest.raises(psycopg.Error) as err:
            direct.execute("select app.order_sample(%s, %s, 10, 'GBP', current_date + 5)", (ww_request, supplier))
        assert err.value.sqlstate == "TR003"
        direct.rollback()
        # positive control: a request of its own team works
        season = db.execute("select max(id) from app.seasons").fetchone()[0]
        sid = direct.execute("select app.request_sample('Analyst test', 1, %s)", (season,)).fetchone()[0]
        direct.execute("select app.order_sample(%s, %s, 10, 'GBP', current_date + 5)", (sid, supplier))
        assert direct.execute("select state::text from app.samples where id = %s", (sid,)).fetchone()[0] == "ordered"
        direct.rollback()


@pytest.mark.parametrize("change", ["set role = 'finance', team_id = null", "set active = false"],
                         ids=["re-roled", "deactivated"])
def test_deactivated_or_re_roled_login_keeps_no_data(analyst, change):
    """Attack (issue 9, finding 2): after deactivation or a role change, the personal login
    still read costs through the group role's whole-role policies. Now the change revokes the
    group role in the same transaction, and every policy also asks for a resolved identity."""
    db, login = analyst
    with psycopg.connect(_url(db.info.dbname, login)) as direct:  # positive control: it reads before
        assert direct.execute("select count(*) from app.sample_costs").fetchone()[0] > 0
    db.execute(f"update app.staff {change} where login_role = %s", (login,))
    assert db.execute("select pg_has_role(%s, 'buyer', 'MEMBER')", (login,)).fetchone()[0] is False
    db.commit()
    with psycopg.connect(_url(db.info.dbname, login)) as direct:
        for sql in ("select count(*) from app.sample_costs", "select count(*) from app.samples",
                    "select app.current_staff_id()"):
            with pytest.raises(psycopg.Error) as err:
                direct.execute(sql)
            assert err.value.sqlstate == "42501", sql
            direct.rollback()


def test_whole_role_policies_need_an_identity(conn):
    """A login that is a member of finance but is nobody's personal login (or whose staff row
    was deactivated by a DBA behind the trigger's back) reads no cost: the restrictive
    all_staff_identified policy asks who is behind the session on every table."""
    conn.execute("create role test_stray_finance login")
    conn.execute("grant finance to test_stray_finance")
    total = conn.execute("select count(*) from app.sample_costs").fetchone()[0]
    assert total > 0
    conn.execute("set local session authorization test_stray_finance")
    assert conn.execute("select count(*) from app.sample_costs").fetchone()[0] == 0
    assert conn.execute("select count(*) from app.samples").fetchone()[0] == 0
    conn.execute("set local session authorization default")


def test_grant_personal_login_refuses_bad_input(conn):
    for login, code in [("Robert'); drop table x;--", "TR005"), ("md", "TR005"), ("authenticator", "TR005")]:
        with pytest.raises(psycopg.Error) as err:
            with conn.transaction():
                conn.execute("select app_private.grant_personal_login('buyer@example.com', %s)", (login,))
        assert err.value.sqlstate == code
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.grant_personal_login('nobody@example.com', 'nobody_x')")
    assert err.value.sqlstate == "TR006"


@pytest.mark.parametrize("role", ["buyer", "system_admin", "md"])
def test_staff_roles_cannot_grant_logins(conn, role):
    staff = conn.execute("select id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()[0]
    act_as(conn, {"id": staff, "role": role})
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.grant_personal_login('buyer@example.com', 'sneaky')")
    act_as(conn, None)
    assert err.value.sqlstate == "42501"


def _generated_samples(conn) -> list[int]:
    """Every combination the samples policies look at - state x own/other team x been to a
    factory or not x received or not - as rows, so the proof below is over the whole space
    and not just what the demo data happens to hold."""
    teams = [r[0] for r in conn.execute("select id from app.teams order by id limit 2")]
    ref = conn.execute("select (select min(id) from app.categories), (select max(id) from app.seasons), "
                       "(select min(id) from app.suppliers), (select min(id) from app.factories), "
                       "(select min(id) from app.staff where role = 'buyer')").fetchone()
    cat, season, supplier, factory, requester = ref
    ids = []
    for state in STATES:
        for team in teams:
            for at_factory in (False, True):
                for received in (False, True):
                    if state == "at-factory" and not at_factory:
                        continue
                    ids.append(conn.execute(
                        "insert into app.samples (title, category_id, season_id, team_id, requested_by, supplier_id, "
                        "state, factory_id, received_on) values ('generated', %s, %s, %s, %s, %s, %s, %s, %s) "
                        "returning id", (cat, season, team, requester, supplier, state,
                                         factory if at_factory else None,
                                         date(2026, 1, 5) if received else None)).fetchone()[0])
    return ids


def test_definer_visibility_predicate_equals_the_samples_policies(conn):
    """can_see_sample (used by the definer entry points, which bypass RLS) gives the same
    answer as RLS for every role, on every demo sample and on generated rows covering every
    combination of the columns the policies read."""
    generated = _generated_samples(conn)
    assert len(generated) == 60
    for role in ROLES:
        staff = conn.execute("select id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()[0]
        by_predicate = {r[0] for r in conn.execute(
            "select s.id from app.samples s, app.staff me where me.id = %s and app_private.can_see_sample(s, me)",
            (staff,))}
        act_as(conn, {"id": staff, "role": role})
        by_rls = {r[0] for r in conn.execute("select id from app.samples")}
        act_as(conn, None)
        assert by_predicate == by_rls, role
        assert by_rls & set(generated), role  # positive control: some generated rows are visible
