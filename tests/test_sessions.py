"""Web sessions, sign-in throttling, invitations and password resets in the database
(issue 9, parts A-C), against the real cluster. The web app's identity is a session
token whose hash the database looks up; the limits are applied before any password
is checked; credentials change only through their own flows and are audited without
secrets. Every "cannot" has its positive control."""
import threading

import psycopg
import pytest

from conftest import SESSIONS, act_as, db_url

ADMIN_ROLES = ("system_admin", "ops_director", "md")


def one(conn, sql, *params):
    return conn.execute(sql, params).fetchone()[0]


def person(conn, who: str) -> dict:
    email = who if "@" in who else f"{who}@example.com"
    row = conn.execute("select id, role::text from app.staff where email = %s", (email,)).fetchone()
    return {"id": row[0], "role": row[1], "email": email}


def as_authenticator(conn, role: str | None, token: str | None):
    """The web app's connection state: session user authenticator, a role, a token."""
    conn.execute("reset role")
    conn.execute("set local session authorization default")
    conn.execute("set local session authorization authenticator")
    if role:
        conn.execute("select set_config('role', %s, true)", (role,))
    conn.execute("select set_config('tracker.session', %s, true)", (token or "",))


def me(conn) -> int | None:
    return one(conn, "select app.current_staff_id()")


def back(conn):
    act_as(conn, None)


# ---------------------------------------------------------------------------- identity
def test_web_app_staff_id_setting_is_no_longer_trusted(conn):
    """The old identity (tracker.staff_id) gives nobody: the MD's id, the MD's role, no session."""
    md = person(conn, "md")
    as_authenticator(conn, "md", None)
    conn.execute("select set_config('tracker.staff_id', %s, true)", (str(md["id"]),))
    assert me(conn) is None
    back(conn)
    # positive control: the MD's session token is the MD
    token = one(conn, "select app_private.start_session(%s)", md["id"])
    as_authenticator(conn, "md", token)
    assert me(conn) == md["id"]
    back(conn)


def test_forged_ended_expired_and_mismatched_sessions_are_nobody(conn):
    md = person(conn, "md")
    live = one(conn, "select app_private.start_session(%s)", md["id"])
    ended = one(conn, "select app_private.start_session(%s)", md["id"])
    expired = one(conn, "select app_private.start_session(%s)", md["id"])
    conn.execute("update app_private.web_sessions set ended_at = now(), end_reason = 'signed_out' "
                 "where token_hash = sha256(convert_to(%s, 'UTF8'))", (ended,))
    conn.execute("update app_private.web_sessions set created_at = now() - interval '13 hours', "
                 "expires_at = now() - interval '1 hour' where token_hash = sha256(convert_to(%s, 'UTF8'))", (expired,))
    cases = {"forged": ("md", "0" * 64), "malformed": ("md", "x' or true --"), "ended": ("md", ended),
             "expired": ("md", expired), "another role than the session's": ("finance", live),
             "the token's hash instead of the token": ("md", one(conn, "select encode(sha256(convert_to(%s, 'UTF8')), 'hex')", live))}
    for case, (role, token) in cases.items():
        as_authenticator(conn, role, token)
        assert me(conn) is None, case
        back(conn)
    as_authenticator(conn, "md", live)  # positive control
    assert me(conn) == md["id"]
    back(conn)


def test_a_role_change_after_sign_in_leaves_the_session_without_identity(conn):
    """Even without the trigger (session role recorded at sign-in), a session whose
    person now has another role resolves to nobody."""
    qc = person(conn, "qc")
    token = one(conn, "select app_private.start_session(%s)", qc["id"])
    conn.execute("alter table app.staff disable trigger after_update_end_sessions")
    conn.execute("update app.staff set role = 'md' where id = %s", (qc["id"],))
    conn.execute("alter table app.staff enable trigger after_update_end_sessions")
    for role in ("qc", "md"):
        as_authenticator(conn, role, token)
        assert me(conn) is None, role
        back(conn)


def test_sign_out_ends_only_the_callers_session(conn):
    md = person(conn, "md")
    a, b = (one(conn, "select app_private.start_session(%s)", md["id"]) for _ in range(2))
    as_authenticator(conn, "md", a)
    assert one(conn, "select app.end_session()") is True
    assert me(conn) is None
    assert one(conn, "select app.end_session()") is False  # already ended
    back(conn)
    as_authenticator(conn, "md", b)
    assert me(conn) == md["id"]  # the other browser is still signed in
    back(conn)
    assert one(conn, "select end_reason from app_private.web_sessions where token_hash = sha256(convert_to(%s, "
                     "'UTF8'))", a) == "signed_out"


@pytest.mark.parametrize("change,reason", [("active = false", "deactivated"), ("role = 'designer'", "role_changed")])
def test_deactivation_and_role_change_end_every_session(conn, change, reason):
    qc = person(conn, "qc")
    tokens = [one(conn, "select app_private.start_session(%s)", qc["id"]) for _ in range(3)]
    other = person(conn, "logistics")
    conn.execute(f"update app.staff set {change} where id = %s", (qc["id"],))
    assert one(conn, "select count(*) from app_private.web_sessions where staff_id = %s and ended_at is null",
               qc["id"]) == 0
    assert conn.execute("select distinct end_reason from app_private.web_sessions where token_hash = any(select "
                        "sha256(convert_to(t, 'UTF8')) from unnest(%s::text[]) t)", (tokens,)).fetchall() == [(reason,)]
    # nobody else was signed out (positive control)
    act_as(conn, other)
    assert me(conn) == other["id"]
    back(conn)


def test_password_change_ends_every_session_and_forgets_the_persons_browsers(conn):
    qc = person(conn, "qc")
    token = one(conn, "select app_private.start_session(%s)", qc["id"])
    conn.execute("insert into app_private.known_devices (staff_id, device_hash) values (%s, sha256('x'))", (qc["id"],))
    conn.execute("update app_private.staff_credentials set password_hash = '$argon2id$v=19$new' where staff_id = %s",
                 (qc["id"],))
    assert one(conn, "select end_reason from app_private.web_sessions where token_hash = sha256(convert_to(%s, "
                     "'UTF8'))", token) == "password_changed"
    assert one(conn, "select count(*) from app_private.known_devices where staff_id = %s", qc["id"]) == 0


def test_staff_roles_cannot_reach_the_session_and_sign_in_internals(conn):
    calls = ["select app_private.start_session(1)", "select * from app_private.begin_sign_in('md@example.com', null, null)",
             "select * from app_private.finish_sign_in(1, true)", "select * from app_private.resume_session('x')",
             "select app_private.end_sessions(1, 'signed_out')", "select app_private.accept_invite('x', '$argon2id$')",
             "select count(*) from app_private.web_sessions", "select count(*) from app_private.login_attempts"]
    for role in ("buyer", "md", "system_admin"):
        for sql in calls:
            act_as(conn, person(conn, role))
            with pytest.raises(psycopg.Error) as err:
                with conn.transaction():
                    conn.execute(sql)
            assert err.value.sqlstate == "42501", (role, sql)
            back(conn)
    # the authenticator itself: the sign-in functions yes, start_session (a session without a password) no
    as_authenticator(conn, None, None)
    assert one(conn, "select status from app_private.resume_session('x')") == "unknown"
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.start_session(1)")
    assert err.value.sqlstate == "42501"
    back(conn)


# ---------------------------------------------------------------------------- throttling
def begin(conn, email, addr=None, device=None):
    return conn.execute("select * from app_private.begin_sign_in(%s, %s::inet, %s)", (email, addr, device)).fetchone()


def finish(conn, attempt, ok):
    return conn.execute("select * from app_private.finish_sign_in(%s, %s)", (attempt, ok)).fetchone()


def test_a_refused_attempt_cannot_be_turned_into_a_password_check(conn):
    as_authenticator(conn, None, None)
    for _ in range(5):
        attempt, allowed, *_ = begin(conn, "qc@example.com", "192.0.2.7")
        assert allowed
        finish(conn, attempt, False)
    attempt, allowed, retry_after, refusal, password_hash = begin(conn, "qc@example.com", "192.0.2.7")
    assert not allowed and password_hash is None and refusal == "too many failed sign-ins for this account"
    assert retry_after > one(conn, "select now() + interval '14 minutes'")
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            finish(conn, attempt, True)  # the app "verified" anyway
    assert err.value.sqlstate == "TR012"
    back(conn)


def test_thirty_parallel_guesses_yield_at_most_five_password_checks(fresh_db):
    """The old check-then-record let every one of 30 simultaneous guesses through."""
    url = db_url(fresh_db, "authenticator")
    barrier = threading.Barrier(30)
    verdicts = []

    def guess():
        with psycopg.connect(url) as c:
            barrier.wait(timeout=30)
            attempt, allowed, _, _, password_hash = begin(c, "md@example.com", "198.51.100.9")
            verdicts.append((allowed, password_hash is not None))
            c.commit()
            if allowed:
                finish(c, attempt, False)
                c.commit()

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(verdicts) == 30
    assert sum(allowed for allowed, _ in verdicts) == 5
    assert all(has_hash == allowed for allowed, has_hash in verdicts)  # no hash without a check
    assert one(fresh_db, "select count(*) from app_private.login_attempts where email = 'md@example.com' "
                         "and outcome = 'refused'") == 25


def test_unknown_accounts_are_throttled_like_real_ones(conn):
    as_authenticator(conn, None, None)
    verdicts = []
    for _ in range(6):
        attempt, allowed, *_ = begin(conn, "nobody.here@example.com", "192.0.2.8")
        verdicts.append(allowed)
        if allowed:
            assert finish(conn, attempt, True)[0] is None  # no such person: no session, whatever the app says
    assert verdicts == [True] * 5 + [False]
    back(conn)


def test_one_address_guessing_many_accounts_is_limited(conn):
    as_authenticator(conn, None, None)
    for n in range(20):
        attempt, allowed, *_ = begin(conn, f"spray{n}@example.com", "203.0.113.50")
        assert allowed
        finish(conn, attempt, False)
    _, allowed, _, refusal, _ = begin(conn, "spray-new@example.com", "203.0.113.50")
    assert not allowed and refusal == "too many failed sign-ins from your network"
    assert begin(conn, "spray-new@example.com", "203.0.113.51")[1]  # another address still may
    back(conn)


def test_strangers_guesses_do_not_lock_out_a_known_browser(conn):
    """Five strangers' failures lock the account for strangers; the owner's browser, which
    signed in before, still gets a check (the old code locked the owner out too)."""
    as_authenticator(conn, None, None)
    attempt, allowed, *_ = begin(conn, "finance@example.com", "192.0.2.20")
    _, device = finish(conn, attempt, True)  # the owner signs in once: a new device token
    assert device
    for _ in range(5):
        attempt, allowed, *_ = begin(conn, "finance@example.com", "198.51.100.66")
        finish(conn, attempt, False)
    assert not begin(conn, "finance@example.com", "198.51.100.66")[1]  # strangers: locked
    assert not begin(conn, "finance@example.com", "192.0.2.20")[1]  # the owner's address, without the cookie
    attempt, allowed, _, _, password_hash = begin(conn, "finance@example.com", "192.0.2.20", device)
    assert allowed and password_hash
    finish(conn, attempt, False)  # a typo
    # ... then a delay, not a lock-out: once every 10 seconds
    _, allowed, retry_after, refusal, _ = begin(conn, "finance@example.com", "192.0.2.20", device)
    assert not allowed and "once every 10 seconds" in refusal
    assert retry_after <= one(conn, "select now() + interval '10 seconds'")
    back(conn)
    conn.execute("update app_private.login_attempts set at = at - interval '11 seconds' where email = 'finance@example.com'")
    as_authenticator(conn, None, None)
    attempt, allowed, *_ = begin(conn, "finance@example.com", "192.0.2.20", device)
    assert allowed
    assert finish(conn, attempt, True)[0]  # signed in
    back(conn)


def test_a_known_browser_is_still_limited_by_its_own_failures(conn):
    as_authenticator(conn, None, None)
    attempt, *_ = begin(conn, "logistics@example.com")
    _, device = finish(conn, attempt, True)
    for _ in range(5):
        attempt, allowed, *_ = begin(conn, "logistics@example.com", None, device)
        assert allowed
        finish(conn, attempt, False)
    _, allowed, _, refusal, _ = begin(conn, "logistics@example.com", None, device)
    assert not allowed and refusal == "too many failed sign-ins for this account from this browser"
    back(conn)


def test_session_lifetime_is_the_configured_one_and_bounded(conn):
    as_authenticator(conn, None, None)
    attempt, *_ = begin(conn, "designer@example.com")
    token = conn.execute("select session_token from app_private.finish_sign_in(%s, true, interval '90 minutes')",
                         (attempt,)).fetchone()[0]
    back(conn)
    assert one(conn, "select expires_at - created_at from app_private.web_sessions where token_hash = "
                     "sha256(convert_to(%s, 'UTF8'))", token).total_seconds() == 90 * 60
    for bad in ("0 seconds", "31 days", None):
        with pytest.raises(psycopg.Error) as err:
            with conn.transaction():
                conn.execute("select app_private.start_session(1, %s::interval)", (bad,))
        assert err.value.sqlstate == "TR005"


# ---------------------------------------------------------------------------- invitations and resets
def call_as(conn, who, sql, *params):
    act_as(conn, person(conn, who))
    try:
        with conn.transaction():
            return one(conn, sql, *params)
    except psycopg.Error as exc:
        return exc.sqlstate
    finally:
        back(conn)


def test_reinviting_a_person_with_a_password_is_refused(conn):
    """Re-inviting an active MD used to hand out a link that replaced the MD's password."""
    md = person(conn, "md")
    before = one(conn, "select password_hash from app_private.staff_credentials where staff_id = %s", md["id"])
    act_as(conn, person(conn, "ops_director"))
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app.create_invite(%s)", (md["id"],))
    back(conn)
    assert err.value.sqlstate == "TR013"
    assert "already has a password" in err.value.diag.message_primary
    assert "Reset password" in err.value.diag.message_hint
    assert one(conn, "select password_hash from app_private.staff_credentials where staff_id = %s", md["id"]) == before
    # positive control: someone without a password gets a link
    new = one(conn, "insert into app.staff (email, full_name, role) values ('invitee@example.com', 'In Vitee', "
                    "'designer') returning id")
    assert len(call_as(conn, "system_admin", "select app.create_invite(%s)", new)) == 64


def test_an_old_invite_link_cannot_replace_a_password(conn):
    new = one(conn, "insert into app.staff (email, full_name, role) values ('twice@example.com', 'Twice', "
                    "'designer') returning id")
    link = call_as(conn, "system_admin", "select app.create_invite(%s)", new)
    conn.execute("update app_private.staff_credentials set password_hash = '$argon2id$v=19$first' where staff_id = %s",
                 (new,))
    as_authenticator(conn, None, None)
    with pytest.raises(psycopg.Error) as err:
        with conn.transaction():
            conn.execute("select app_private.accept_invite(%s, '$argon2id$v=19$second')", (link,))
    back(conn)
    assert err.value.sqlstate == "TR006"
    assert one(conn, "select password_hash from app_private.staff_credentials where staff_id = %s", new).endswith("first")


@pytest.mark.parametrize("admin,target,expected", [
    ("system_admin", "designer", "ok"), ("system_admin", "qc", "ok"), ("system_admin", "logistics", "ok"),
    ("system_admin", "finance", "TR002"), ("system_admin", "buyer", "TR002"), ("system_admin", "sales_lead", "TR002"),
    ("system_admin", "senior_buyer", "TR002"), ("system_admin", "md", "TR002"), ("system_admin", "ops_director", "TR002"),
    ("ops_director", "finance", "ok"), ("md", "ops_director", "ok"), ("ops_director", "system_admin", "ok"),
    ("md", "md", "TR002"),  # not oneself: change your own password instead
    ("buyer", "designer", "42501"), ("finance", "designer", "42501"), ("logistics", "qc", "42501"),
])
def test_who_may_reset_whose_password(conn, admin, target, expected):
    victim = person(conn, target)
    got = call_as(conn, admin, "select app.reset_password(%s)", victim["id"])
    assert (got if got in ("TR002", "42501") else "ok") == expected
    if expected == "ok":
        assert len(got) == 64


def test_reset_password_ends_every_session_and_is_audited_without_secrets(conn):
    designer = person(conn, "designer")
    token = one(conn, "select app_private.start_session(%s)", designer["id"])
    link = call_as(conn, "system_admin", "select app.reset_password(%s)", designer["id"])
    assert len(link) == 64
    row = conn.execute("select password_hash, token_purpose, invite_expires_at - now() from "
                       "app_private.staff_credentials where staff_id = %s", (designer["id"],)).fetchone()
    assert row[0] is None and row[1] == "reset" and row[2].total_seconds() <= 24 * 3600
    as_authenticator(conn, "designer", token)
    assert me(conn) is None
    back(conn)
    assert one(conn, "select end_reason from app_private.web_sessions where token_hash = sha256(convert_to(%s, "
                     "'UTF8'))", token) == "password_reset"
    # the person sets a new password with the link
    as_authenticator(conn, None, None)
    assert one(conn, "select app_private.accept_invite(%s, '$argon2id$v=19$m=1$new')", link) == designer["id"]
    back(conn)
    log = conn.execute("select op, old_row, new_row, staff_id from audit.log where table_name = "
                       "'app_private.staff_credentials' and row_id = %s order by id desc limit 2",
                       (str(designer["id"]),)).fetchall()
    accepted, reset = log
    admin_id = person(conn, "system_admin")["id"]
    assert reset[3] == admin_id  # who reset it
    assert reset[2]["password_hash"] == "cleared" and reset[2]["invite_token_hash"] == "set"
    assert accepted[2]["password_hash"] == "set" and accepted[2]["invite_token_hash"] == "cleared"
    # no hash of any kind anywhere in the credentials' audit trail
    text = one(conn, "select string_agg(coalesce(old_row::text, '') || coalesce(new_row::text, ''), ' ') "
                     "from audit.log where table_name = 'app_private.staff_credentials'")
    assert "$argon2" not in text
    hashes = [r[0] for r in conn.execute("select encode(sha256(convert_to(%s, 'UTF8')), 'hex')", (link,))]
    assert hashes[0] not in text


def test_credentials_changes_are_audited(conn):
    """Finding: staff_credentials was not audited at all. Now a password change leaves a row
    (with markers), and replacing one hash by another reads 'changed'."""
    qc = person(conn, "qc")
    before = one(conn, "select count(*) from audit.log where table_name = 'app_private.staff_credentials'")
    conn.execute("update app_private.staff_credentials set password_hash = '$argon2id$v=19$other' where staff_id = %s",
                 (qc["id"],))
    row = conn.execute("select old_row ->> 'password_hash', new_row ->> 'password_hash' from audit.log where "
                       "table_name = 'app_private.staff_credentials' order by id desc limit 1").fetchone()
    assert one(conn, "select count(*) from audit.log where table_name = 'app_private.staff_credentials'") == before + 1
    assert row == ("set", "changed")
    assert one(conn, "select ok from audit.verify_chain()")


def test_template_sessions_of_the_test_run_are_live(conn):
    """conftest's act_as uses sessions made once in the template; they must resolve."""
    assert SESSIONS
    qc = person(conn, "qc")
    as_authenticator(conn, "qc", SESSIONS[qc["id"]])
    assert me(conn) == qc["id"]
    back(conn)
