"""Identity and impersonation: personal logins (analysts) get the same policies as
the web app's persona of the same staff member, and cannot become anyone else."""
import psycopg
import pytest

from conftest import _url, act_as


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


def test_login_of_an_inactive_or_moved_person_resolves_to_nobody(analyst):
    db, login = analyst
    db.execute("update app.staff set role = 'finance', team_id = null where login_role = %s", (login,))
    db.commit()
    with psycopg.connect(_url(db.info.dbname, login)) as direct:
        # still a member of buyer, but the staff row says finance: no identity, no own-team rows
        assert direct.execute("select app.current_staff_id()").fetchone()[0] is None
        assert direct.execute("select count(*) from app.sample_costs").fetchone()[0] == 0


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


# every SECURITY DEFINER function, reviewed: none of them returns rows a caller's policies hide
REVIEWED_DEFINERS = {
    "app.current_staff_id()", "app.current_staff_role()", "app.current_team_id()", "app.clock()",
    "app_private.require_staff()", "app_private.lock_sample(bigint,app.staff)",
    "app_private.check_rule(app.samples,text,app.staff)",
    "app_private.apply_change(app.samples,text,app.sample_state,jsonb,app.staff,text,jsonb,boolean)",
    "app_private.request_sample(text,integer,integer,integer,text,boolean,text)",
    "app_private.order_sample(bigint,integer,numeric,text,date,integer,numeric,text,boolean,text)",
    "app_private.withdraw_request(bigint,text)", "app_private.receive_sample(bigint,integer,date,text)",
    "app_private.hand_over(bigint,text,bigint,text)", "app_private.send_to_factory(bigint,integer,text)",
    "app_private.return_from_factory(bigint,integer,text)", "app_private.return_to_supplier(bigint,text,text)",
    "app_private.approve_for_production(bigint,text)", "app_private.cut_for_production(bigint,text)",
    "app_private.record_inspection(bigint,app.qc_result,text,text)",
    "app_private.override_state(bigint,app.sample_state,text)",
    "audit.record_change()", "audit.verify_chain()",
    "app_private.set_sample_search()", "app_private.accept_invite(text,text)",
    # sign-in, sessions, invitations, resets (sql/functions/060_web.sql, 061_web_sessions.sql)
    "app_private.begin_sign_in(text,inet,text)", "app_private.finish_sign_in(bigint,boolean,interval,text,text)",
    "app_private.start_session(bigint,interval,inet,text)", "app_private.resume_session(text)",
    "app_private.end_sessions(bigint,text)", "app.end_session()", "app_private.end_sessions_on_staff_change()",
    "app_private.end_sessions_on_password_change()", "app_private.require_credentials_admin(bigint,text)",
    "app.create_invite(bigint)", "app.reset_password(bigint)",
}


def test_every_security_definer_function_was_reviewed(conn):
    rows = {r[0].replace(" ", "") for r in conn.execute(
        "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname in ('app', 'app_private', 'audit') and p.prosecdef").fetchall()}
    assert rows == {r.replace(" ", "") for r in REVIEWED_DEFINERS}


def test_definers_returning_rows_are_not_executable_by_staff(conn):
    """Definers returning row sets: the sign-in lookup (authenticator alone) and the audit
    verifier (one verdict row: ok, a count, a row id; for the audit log's readers)."""
    rows = conn.execute("""
        select p.oid::regprocedure::text,
               array(select r.rolname from aclexplode(p.proacl) a join pg_roles r on r.oid = a.grantee
                      where a.privilege_type = 'EXECUTE' order by 1)
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in ('app', 'app_private', 'audit') and p.prosecdef and p.proretset""").fetchall()
    assert [(name, [r for r in who if r not in ("tracker_owner", "audit_owner")]) for name, who in rows] == \
        [("audit.verify_chain()", ["md", "ops_director", "system_admin"])]


def test_definer_visibility_predicate_equals_the_samples_policies(conn):
    """can_see_sample (used by the definer functions, which bypass RLS) gives the same
    answer as RLS for every role on every demo sample."""
    for role in ["buyer", "senior_buyer", "designer", "sales_lead", "sales_executive", "qc", "factory_liaison",
                 "logistics", "finance", "ops_director", "md", "system_admin"]:
        staff = conn.execute("select id from app.staff where email = %s", (f"{role}@example.com",)).fetchone()[0]
        by_predicate = {r[0] for r in conn.execute(
            "select s.id from app.samples s, app.staff me where me.id = %s and app_private.can_see_sample(s, me)",
            (staff,))}
        act_as(conn, {"id": staff, "role": role})
        by_rls = {r[0] for r in conn.execute("select id from app.samples")}
        act_as(conn, None)
        assert by_predicate == by_rls, role
        assert by_rls, role


def test_calling_an_internal_directly_on_a_hidden_sample_reveals_nothing(conn):
    """A factory liaison never sees requests; calling the definer internal directly
    (skipping the app wrapper) must say "not found", not the sample's state."""
    hidden = conn.execute("select min(id) from app.samples where state = 'ordered'").fetchone()[0]
    staff = conn.execute("select id from app.staff where email = 'factory_liaison@example.com'").fetchone()[0]
    act_as(conn, {"id": staff, "role": "factory_liaison"})
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.send_to_factory(%s, 1, null)", (hidden,))
    act_as(conn, None)
    assert err.value.sqlstate == "TR006"
    assert err.value.diag.message_primary == f"sample {hidden} not found"
