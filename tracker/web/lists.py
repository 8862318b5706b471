"""Sample lists: filters, sorting, pagination and export over app.sample_overview.
Every query runs as the signed-in person, so RLS decides the rows and hidden cost
fields read as NULL. Column and sort names come from the whitelists below only.

A list is a tab's own condition AND the person's filters: both are parsed by
parse_filters() and turned into SQL by where_clause(), and list_query() joins the
two with AND, so a filter can only narrow a tab, never replace it."""
import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal

from flask import abort
from psycopg import sql

from ..roles import STATES

TERMINAL = ["returned", "cut-for-production"]
# what people read: the eight lifecycle states, with a withdrawn request told apart
# from a return (app.sample_overview.display_state)
DISPLAY_STATES = ["requested", "ordered", "received", "with-design", "with-sales", "at-factory", "returned",
                  "withdrawn", "cut-for-production"]

# key -> (label, numeric?)
COLUMNS = {
    "id": ("No.", False),
    "title": ("Title", False),
    "state": ("State", False),
    "team_code": ("Team", False),
    "category": ("Category", False),
    "season": ("Season", False),
    "supplier": ("Supplier", False),
    "requested_by_name": ("Buyer", False),
    "holder_name": ("Holder", False),
    "location": ("Location", False),
    "factory": ("Factory", False),
    "state_changed_at": ("In state since", False),
    "days_in_state": ("Days", True),
    "expected_on": ("Expected", False),
    "return_due_on": ("Return due", False),
    "total_gbp": ("Cost (GBP)", True),
    "overdue_reason": ("Overdue", False),
}
DATE_COLUMNS = {"expected_on", "return_due_on", "state_changed_at"}
LIST_COLUMNS = ["id", "title", "state", "team_code", "category", "season", "supplier", "requested_by_name",
                "holder_name", "location", "days_in_state", "expected_on", "return_due_on", "total_gbp"]
# exports carry every column; "State" is the display state (withdrawn, not returned)
EXPORT_COLUMNS = ["id", "title", "display_state", "team_code", "category", "season", "supplier",
                  "requested_by_name", "holder_name", "location", "factory", "state_changed_at", "days_in_state", "expected_on",
                  "return_due_on", "total_gbp", "overdue_reason"]
EXPORT_LABELS = {**{c: COLUMNS[c][0] for c in COLUMNS}, "display_state": "State"}
SORTABLE = set(COLUMNS)
PAGE_SIZE = 50
MAX_PAGE = 100_000
COUNT_CAP = 10_000  # counting stops here, so a huge list costs no more than a bounded scan
PAGE_RE = re.compile(r"^[0-9]{1,6}$")


def page_arg(args) -> int:
    """?page=N as a positive number, or a clear 400 (never a database error)."""
    raw = args.get("page", "1").strip()
    if not PAGE_RE.match(raw) or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, f"Page must be a whole number from 1 to {MAX_PAGE:,}.")
    return int(raw)


def parse_filters(args, user) -> dict:
    """Query-string filters, normalised. 'me'/'mine' are conveniences, not permissions."""
    f = {}
    states = [s for s in args.getlist("state") if s in DISPLAY_STATES]
    if states:
        f["state"] = states
    for key in ("team", "buyer", "supplier", "category", "season", "holder"):
        v = args.get(key, "")
        if v == "me" and key in ("buyer", "holder"):
            f[key] = user["id"]
        elif v == "mine" and key == "team":
            if user["team_id"] is not None:
                f[key] = user["team_id"]
        elif v.isascii() and v.isdigit() and len(v) < 10:
            f[key] = int(v)
    for flag in ("overdue", "open", "on_loan", "uninspected", "rejected"):
        if args.get(flag) == "1":
            f[flag] = True
    return f


def state_condition(states):
    """Display states as SQL on the real columns, so the state indexes still serve it."""
    parts, params = [], []
    plain = [s for s in states if s in STATES and s != "returned"]
    if plain:
        parts.append(sql.SQL("state = any(%s::app.sample_state[])"))
        params.append(plain)
    if "returned" in states:
        parts.append(sql.SQL("(state = 'returned' and withdrawn_at is null)"))
    if "withdrawn" in states:
        parts.append(sql.SQL("(state = 'returned' and withdrawn_at is not null)"))
    return sql.SQL("({})").format(sql.SQL(" or ").join(parts)), params


def where_clause(f: dict):
    parts, params = [], []
    column_filters = {"team": "team_id", "buyer": "requested_by", "supplier": "supplier_id",
                      "category": "category_id", "season": "season_id", "holder": "holder_id"}
    if f.get("state"):
        cond, p = state_condition(f["state"])
        parts.append(cond)
        params += p
    for key, column in column_filters.items():
        if key in f:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(f[key])
    if f.get("overdue"):
        parts.append(sql.SQL("is_overdue"))
    if f.get("open"):
        parts.append(sql.SQL("state <> all(%s::app.sample_state[])"))
        params.append(TERMINAL)
    if f.get("on_loan"):
        parts.append(sql.SQL("on_loan"))
    if f.get("uninspected"):
        parts.append(sql.SQL("last_qc_result is null"))
    if f.get("rejected"):
        parts.append(sql.SQL("qc_rejected"))
    return (sql.SQL(" and ").join(parts) if parts else sql.SQL("true")), params


def combined_where(*filter_sets):
    """Each set's conditions, all of them: a tab's own condition and the person's filters."""
    parts, params = [], []
    for f in filter_sets:
        w, p = where_clause(f)
        parts.append(w)
        params += p
    return sql.SQL(" and ").join(parts), params


# never null: sorting them needs no NULLS clause, so the matching indexes can serve the order
NOT_NULL = {"id", "title", "state", "team_code", "category", "season", "requested_by_name", "days_in_state",
            "state_changed_at"}


def order_clause(sort: str | None, direction: str | None, default=("state_changed_at", "desc")):
    sort = sort if sort in SORTABLE else default[0]
    direction = direction if direction in ("asc", "desc") else default[1]
    nulls = sql.SQL("" if sort in NOT_NULL else "nulls last")
    return sql.SQL("{} {} {}, id desc").format(sql.Identifier(sort), sql.SQL(direction), nulls), sort, direction


def list_query(columns, filter_sets, sort, direction, default_sort, limit=None, offset=0):
    """The rows of a list: `filter_sets` is a list of filter dicts, all of which apply."""
    where, params = combined_where(*filter_sets)
    order, sort, direction = order_clause(sort, direction, default_sort)
    q = sql.SQL("select {cols}, display_state as _display_state, is_overdue, overdue_reason as _reason "
                "from app.sample_overview where {where} order by {order}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)), where=where, order=order)
    if limit is not None:
        q = q + sql.SQL(" limit %s offset %s")
        params = params + [limit, offset]
    return q, params, sort, direction


def count_query(filter_sets, cap=COUNT_CAP):
    """How many rows the list has, counted up to cap + 1 (more reads as 'cap+')."""
    where, params = combined_where(*filter_sets)
    q = sql.SQL("select count(*) as n from (select 1 from app.sample_overview where {where} limit %s) x"
                ).format(where=where)
    return q, params + [cap + 1]


def cell_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, Decimal):
        return f"{v:.2f}"
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return str(v)


def csv_lines(header, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    yield buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        # neutralise spreadsheet formulas in text cells (CSV injection)
        w.writerow(["'" + c if c[:1] in FORMULA_STARTS and not _is_number(c) else c
                    for c in (cell_text(v) for v in row)])
        yield buf.getvalue()


# what a spreadsheet may read as the start of a formula (OWASP's CSV injection list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
