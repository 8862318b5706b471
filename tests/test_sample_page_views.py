"""The sample page's views (sql/views/020_sample_page.sql) show each role exactly what the
tables' policies do: same rows as the base table, and QC notes only where
app.qc_inspection_notes shows them. Acting as every role; positive controls on both sides."""
import pytest

from conftest import act_as
from tracker.roles import ROLES

PAIRS = [("app.sample_timeline", "app.sample_events"), ("app.sample_comment_thread", "app.sample_comments"),
         ("app.sample_photo_list", "app.sample_photos"), ("app.sample_inspection_list", "app.qc_inspections")]


def as_role(conn, role, sql):
    person = conn.execute("select id, role::text as role from app.staff where email = %s",
                          (f"{role}@example.com",)).fetchone()
    act_as(conn, {"id": person[0], "role": person[1]})
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        act_as(conn, None)


@pytest.mark.parametrize("role", ROLES)
def test_each_view_shows_the_rows_its_table_shows(conn, role):
    for view, table in PAIRS:
        assert as_role(conn, role, f"select count(*) from {view}") == as_role(conn, role, f"select count(*) from {table}")


@pytest.mark.parametrize("role", ROLES)
def test_qc_notes_read_as_null_where_the_notes_policy_hides_them(conn, role):
    through_view = as_role(conn, role, "select count(notes) from app.sample_inspection_list")
    readable = as_role(conn, role, "select count(n.notes) from app.qc_inspection_notes n "
                                   "join app.qc_inspections i on i.id = n.inspection_id")
    assert through_view == readable


def test_notes_positive_and_negative_controls(conn):
    assert as_role(conn, "qc", "select count(notes) from app.sample_inspection_list") > 0
    assert as_role(conn, "designer", "select count(notes) from app.sample_inspection_list") == 0
    assert as_role(conn, "designer", "select count(*) from app.sample_inspection_list") > 0
