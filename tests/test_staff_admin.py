"""Staff administration cannot raise its own rights (issue 9, finding 4) and never leaves
the building without a system admin or an MD (issue 10, item 5). Acting as each persona."""
import psycopg
import pytest

from conftest import Staff, act_as


def attempt(conn, who: dict, sql: str, params=()):
    """Run as a persona; returns the SQLSTATE of the refusal, or the row count."""
    try:
        with conn.transaction():
            act_as(conn, who)
            cur = conn.execute(sql, params)
            act_as(conn, None)
            return cur.rowcount
    except psycopg.Error as exc:
        return exc.sqlstate


@pytest.fixture
def people(conn):
    return Staff(conn)


@pytest.mark.parametrize("who", ["system_admin", "ops_director", "md"])
@pytest.mark.parametrize("change", ["role = 'qc'", "active = false", "team_id = 1"])
def test_nobody_changes_their_own_role_team_or_flag(conn, people, who, change):
    me = people.get(who)
    assert attempt(conn, me, f"update app.staff set {change} where id = %s", (me["id"],)) == "TR002"
    # positive control: the same person may correct their own name
    assert attempt(conn, me, "update app.staff set full_name = 'Renamed' where id = %s", (me["id"],)) == 1


@pytest.mark.parametrize("new_role", ["buyer", "senior_buyer", "sales_lead", "finance", "ops_director", "md"])
def test_system_admin_cannot_give_a_role_that_reads_costs(conn, people, new_role):
    admin, designer = people.get("system_admin"), people.get("designer")
    assert attempt(conn, admin, "update app.staff set role = %s, team_id = 1 where id = %s",
                   (new_role, designer["id"])) == "TR002"
    assert attempt(conn, admin, "insert into app.staff (email, full_name, role, team_id) values "
                   "('n@example.com', 'N', %s, 1)", (new_role,)) == "TR002"
    # a director may
    assert attempt(conn, people.get("md"), "update app.staff set role = %s, team_id = 1 where id = %s",
                   (new_role, designer["id"])) == 1


def test_system_admin_cannot_touch_a_director_or_a_cost_reader(conn, people):
    admin = people.get("system_admin")
    for target in ("md", "finance", "buyer"):
        t = people.get(target)
        assert attempt(conn, admin, "update app.staff set email = 'me@evil.example' where id = %s", (t["id"],)) == "TR002"
        assert attempt(conn, admin, "update app.staff set role = 'designer' where id = %s", (t["id"],)) == "TR002"
    # positive control: it administers the roles that never read costs
    qc = people.get("qc")
    assert attempt(conn, admin, "update app.staff set role = 'logistics' where id = %s", (qc["id"],)) == 1


def test_the_last_system_admin_and_the_last_md_stay(conn, people):
    md, admin = people.get("md"), people.get("system_admin")
    conn.execute("update app.staff set active = false where role in ('system_admin', 'md') "
                 "and email not in ('md@example.com', 'system_admin@example.com')")
    assert attempt(conn, md, "update app.staff set role = 'qc' where id = %s", (admin["id"],)) == "TR005"
    assert attempt(conn, md, "update app.staff set active = false where id = %s", (admin["id"],)) == "TR005"
    assert attempt(conn, people.get("ops_director"), "update app.staff set active = false where id = %s",
                   (md["id"],)) == "TR005"
    # positive control: with a second system admin, the first may go
    conn.execute("insert into app.staff (email, full_name, role) values ('admin2@example.com', 'Second Admin', 'system_admin')")
    assert attempt(conn, md, "update app.staff set active = false where id = %s", (admin["id"],)) == 1
