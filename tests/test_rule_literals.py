"""One source per rule (issue 17): a rule the database holds is not restated in Python, a
template or a script. Python and templates ask the database instead: the grants
(has_*_privilege), the lifecycle rules (app.transition_rules, app.available_actions with its
required fields) and the functions that hold a value (app.comment_edit_window(),
app.loan_days(), app.link_validity(kind), app.holder_roles(state)).

A grep, deliberately simple: it catches a role compared by name and a rule's value written
out in words. Each check has a positive control, so it cannot pass by matching nothing."""
import re
from pathlib import Path

import pytest

from tracker.roles import ROLES
from tracker.web.formats import duration

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "templates").rglob("*.html"), *(ROOT / "tracker" / "web").glob("*.py"),
                  *(ROOT / "static").glob("*.js")])
# `role == 'md'`, `role in ('buyer', ...)`, SQL `role = 'designer'`, `role not in (...)`
ROLE_BY_NAME = re.compile(r"role['\"\]]*\s*(?:==|!=|=|\bnot in\b|\bin\b)\s*\(?\s*['\"](?:%s)['\"]" % "|".join(ROLES))
# known places still to move (none left)
PENDING: set[str] = set()


def offending(pattern, sources=SOURCES):
    return sorted({str(p.relative_to(ROOT)) for p in sources if pattern.search(p.read_text())} - PENDING)


def test_the_role_pattern_catches_a_role_compared_by_name():
    for text in ("{% if g.user.role in ('buyer', 'senior_buyer') %}", "g.user['role'] == 'md'",
                 "where role in ('designer', 'sales_lead')", "where active and role = 'designer'"):
        assert ROLE_BY_NAME.search(text), text
    assert not ROLE_BY_NAME.search("role = any (app.holder_roles('with-design'))")


def test_no_role_is_compared_by_name_outside_the_database():
    assert len(SOURCES) > 50
    assert offending(ROLE_BY_NAME) == [], "ask the database (grants, transition_rules, holder_roles) instead"


@pytest.mark.parametrize("sql", [
    "select app.comment_edit_window()",
    "select make_interval(days => app.loan_days())",
    "select app.link_validity('invite')",
    "select app.link_validity('reset')",
    "select app_private.photo_window()",
])
def test_no_rule_value_is_written_out_where_the_database_holds_it(conn, sql):
    words = duration(conn.execute(sql).fetchone()[0])  # "15 minutes", "21 days", "24 hours", ...
    pattern = re.compile(r"\b%s\b" % re.escape(words))
    assert pattern.search(f"works once, for {words}.")  # positive control
    assert offending(pattern) == [], f"{words!r} is a rule the database holds: read it from {sql}"
