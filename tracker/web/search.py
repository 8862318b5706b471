"""One search box on every page. A sample number jumps to the sample (or says there is
no such sample); anything else is looked for where people expect it: PO number, the
requester's or holder's name, a location code, a supplier, and ranked full text
(app.search_samples) over titles, style codes, categories, suppliers and comments.
Every source is read as the signed-in person, so RLS filters each one: a PO number
only finds samples whose costs that person may see."""
import re

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from . import db
from .auth import login_required
from .lists import csv_lines, page_arg

bp = Blueprint("search", __name__)
NUMBER = re.compile(r"^\s*#?\s*(\d{1,18})\s*$")
PAGE_SIZE = 50
PER_SOURCE = 500

# each source's hits, the newest 500 of each, ranked: exact number > PO > people and
# places > supplier > words. Patterns are NULL when a source does not apply (no rows).
SEARCH_SQL = """
with people as (select id from app.staff where full_name ilike %(contains)s),
places as (select id from app.locations where code ilike %(prefix)s or name ilike %(contains)s),
makers as (select id from app.suppliers where name ilike %(contains)s),
hits as (
  (select s.id, 'sample number'::text as matched_in, 5::real as rank from app.samples s where s.id = %(number)s)
  union all
  (select k.sample_id, 'PO number', 4 from app.sample_costs k where k.po_number ilike %(contains)s
    order by k.sample_id desc limit %(per)s)
  union all
  (select s.id, 'requested by', 3 from app.samples s where s.requested_by in (select id from people)
    order by s.id desc limit %(per)s)
  union all
  (select s.id, 'holder', 3 from app.samples s where s.holder_id in (select id from people)
    order by s.id desc limit %(per)s)
  union all
  (select s.id, 'location', 3 from app.samples s where s.location_id in (select id from places)
    order by s.id desc limit %(per)s)
  union all
  (select s.id, 'supplier', 2 from app.samples s where s.supplier_id in (select id from makers)
    order by s.id desc limit %(per)s)
  union all
  (select w.id, case w.matched_in when 'comment' then 'a comment' else 'words' end, w.rank
     from app.search_samples(%(words)s, %(per)s, 0) w where %(words)s is not null)
),
best as (select distinct on (h.id) h.id, h.matched_in, h.rank from hits h order by h.id, h.rank desc)
select o.id, o.title, o.display_state, o.requested_by_name, o.holder_name, o.location, o.supplier,
       o.po_number, b.matched_in, count(*) over () as total
  from best b join app.sample_overview o on o.id = b.id
 order by b.rank desc, o.id desc
 limit %(limit)s offset %(offset)s
"""


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def has_positive_term(q: str) -> bool:
    """websearch syntax: '-word' excludes. A query of exclusions only would match everything."""
    return any(re.search(r"\w", t) for t in q.replace('"', " ").split() if not t.startswith("-") and t.lower() != "or")


def search_params(q: str, number: int | None, limit: int, offset: int) -> dict:
    positive = has_positive_term(q)
    usable = positive and len(q) >= 2
    return {"number": number, "words": q if positive else None,
            "contains": f"%{like_escape(q)}%" if usable else None,
            "prefix": f"{like_escape(q)}%" if usable else None,
            "per": PER_SOURCE, "limit": limit, "offset": offset}


def read_query() -> str:
    q = request.args.get("q", "")
    if "\x00" in q:
        abort(400, "Search text cannot contain a NUL character (%00).")
    return q.strip()[:200]


@bp.route("/search")
@login_required
def search():
    q = read_query()
    page = page_arg(request.args)
    m = NUMBER.match(q)
    number = int(m.group(1)) if m else None
    missing, rows, total = None, [], 0
    if q:
        with db.as_user() as conn:
            if number is not None:
                if conn.execute("select 1 from app.samples where id = %s", (number,)).fetchone():
                    return redirect(url_for("samples.detail", sample_id=number))
                missing = number  # not a sample (or not one this person can see): say so, then look elsewhere
            rows = conn.execute(SEARCH_SQL, search_params(q, None, PAGE_SIZE, (page - 1) * PAGE_SIZE)).fetchall()
            total = rows[0]["total"] if rows else 0
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("search/results.html", q=q, rows=rows, page=page, pages=pages, total=total,
                           missing=missing, only_exclusions=bool(q) and not has_positive_term(q),
                           has_next=page < pages)


@bp.route("/search.csv")
@login_required
def search_csv():
    q = read_query()
    rows = []
    if q:
        with db.as_user() as conn:
            rows = conn.execute(SEARCH_SQL, search_params(q, None, PER_SOURCE, 0)).fetchall()
    body = "".join(csv_lines(["No.", "Title", "State", "Buyer", "Holder", "Location", "Supplier", "PO number",
                              "Matched in"],
                             [[r["id"], r["title"], r["display_state"], r["requested_by_name"], r["holder_name"],
                               r["location"], r["supplier"], r["po_number"], r["matched_in"]] for r in rows]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="search.csv"'})
