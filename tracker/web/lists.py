"""Sample lists: filters, sorting, pagination and export over app.sample_overview.
Every query runs as the signed-in person, so RLS decides the rows and hidden cost
fields read as NULL. Column and sort names come from the whitelists below only."""
import csv
import io
from datetime import date, datetime
from decimal import Decimal

from psycopg import sql

from ..roles import STATES

TERMINAL = ["returned", "cut-for-production"]

# key -> (label, numeric?)
COLUMNS = {
    "id": ("No.", True),
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
    "days_in_state": ("Days in state", True),
    "expected_on": ("Expected", False),
    "return_due_on": ("Return due", False),
    "total_gbp": ("Cost (GBP)", True),
    "overdue_reason": ("Overdue", False),
}
LIST_COLUMNS = ["id", "title", "state", "team_code", "category", "season", "supplier", "requested_by_name",
                "holder_name", "location", "days_in_state", "expected_on", "return_due_on", "total_gbp"]
EXPORT_COLUMNS = list(COLUMNS)
SORTABLE = set(COLUMNS) | {"state_changed_at"}
PAGE_SIZE = 50


def parse_filters(args, user) -> dict:
    """Query-string filters, normalised. 'me'/'mine' are conveniences, not permissions."""
    f = {}
    states = [s for s in args.getlist("state") if s in STATES]
    if states:
        f["state"] = states
    for key in ("team", "buyer", "supplier", "category", "season", "holder"):
        v = args.get(key, "")
        if v == "me" and key in ("buyer", "holder"):
            f[key] = user["id"]
        elif v == "mine" and key == "team":
            if user["team_id"] is not None:
                f[key] = user["team_id"]
        elif v.isdigit():
            f[key] = int(v)
    for flag in ("overdue", "open", "on_loan", "uninspected", "rejected"):
        if args.get(flag) == "1":
            f[flag] = True
    return f


def where_clause(f: dict):
    parts, params = [], []
    column_filters = {"team": "team_id", "buyer": "requested_by", "supplier": "supplier_id",
                      "category": "category_id", "season": "season_id", "holder": "holder_id"}
    if "state" in f:
        parts.append(sql.SQL("state = any(%s::app.sample_state[])"))
        params.append(f["state"])
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


# never null: sorting them needs no NULLS clause, so the matching indexes can serve the order
NOT_NULL = {"id", "title", "state", "team_code", "category", "season", "requested_by_name", "days_in_state",
            "state_changed_at"}


def order_clause(sort: str | None, direction: str | None, default=("state_changed_at", "desc")):
    sort = sort if sort in SORTABLE else default[0]
    direction = direction if direction in ("asc", "desc") else default[1]
    nulls = sql.SQL("" if sort in NOT_NULL else "nulls last")
    return sql.SQL("{} {} {}, id desc").format(sql.Identifier(sort), sql.SQL(direction), nulls), sort, direction


def list_query(columns, f, sort, direction, default_sort, limit=None, offset=0):
    where, params = where_clause(f)
    order, sort, direction = order_clause(sort, direction, default_sort)
    q = sql.SQL("select {cols}, is_overdue, overdue_reason as _reason from app.sample_overview where {where} "
                "order by {order}").format(cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                                           where=where, order=order)
    if limit is not None:
        q = q + sql.SQL(" limit %s offset %s")
        params = params + [limit, offset]
    return q, params, sort, direction


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
        w.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") and not _is_number(c) else c
                    for c in (cell_text(v) for v in row)])
        yield buf.getvalue()


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
