"""PDFs rendered with WeasyPrint from templates/alerts/*.html, always from a
connection acting as the recipient (alerts/recipient.py or the web request's own),
so a PDF holds only what that person may see: a hidden cost reads as NULL and its
column is left out."""
from datetime import date, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from . import charts

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
ENV.filters["d"] = lambda v: v.strftime("%d %b %Y") if v else ""
ENV.filters["gbp"] = lambda v: "" if v is None else f"£{v:,.2f}"

MY_OVERDUE = """
select v.id, v.title, v.display_state, v.team_code, v.supplier, v.total_gbp,
       coalesce(v.holder_name, case when v.state = 'at-factory' then v.factory end, v.location, '-') as held_by,
       m.days_overdue, m.due_on, m.reason
  from app.my_overdue(%(day)s, null) m
  join app.sample_overview v on v.id = m.sample_id
 order by m.days_overdue desc, v.id"""

# every overdue (sample, rule) the recipient can see, once: app.samples under their RLS
DIGEST = """
with h as materialized (
  select s.id, s.team_id, s.on_loan, s.state, h.responsible_role, h.days_overdue, h.reason
    from app.samples s
    cross join lateral app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on,
                                        s.on_loan, %(day)s, s.transit_since) h
   where s.state not in ('returned', 'cut-for-production'))
select (select coalesce(json_agg(json_build_object('role', role, 'n', n) order by n desc, role), '[]')
          from (select replace(responsible_role::text, '_', ' ') as role, count(*) as n from h group by 1) x) as by_role,
       (select coalesce(json_agg(json_build_object('team', team, 'n', n) order by n desc, team), '[]')
          from (select t.code as team, count(*) as n from h join app.teams t on t.id = h.team_id group by 1) x) as by_team,
       (select coalesce(json_agg(json_build_object('id', id, 'days_overdue', d, 'reason', reason) order by l desc, d desc, id),
                        '[]')
          from (select id, bool_or(on_loan) as l, max(days_overdue) as d,
                       string_agg(reason, '; ' order by days_overdue desc) as reason
                  from h where on_loan or state in ('at-factory', 'with-design', 'with-sales')
                 group by id order by bool_or(on_loan) desc, max(days_overdue) desc, id limit 10) x) as at_risk"""

AT_RISK = """
select v.id, v.title, v.display_state, v.supplier, v.on_loan, v.return_due_on,
       coalesce(v.holder_name, case when v.state = 'at-factory' then v.factory end, v.location, '-') as held_by
  from app.sample_overview v where v.id = any(%(ids)s)"""


def pdf_bytes(html: str) -> bytes:
    from weasyprint import HTML  # imported late: slow to import, not needed by the mailer's text path
    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def whoami(conn) -> dict:
    return conn.execute("select id, full_name, role::text as role, app.current_staff_email() as email from app.staff "
                        "where id = app.current_staff_id()").fetchone()


def my_overdue_html(conn, day: date) -> str:
    rows = conn.execute(MY_OVERDUE, {"day": day}).fetchall()
    return ENV.get_template("alerts/my_overdue_pdf.html").render(
        me=whoami(conn), day=day, rows=rows, show_cost=any(r["total_gbp"] is not None for r in rows))


def my_overdue_pdf(conn, day: date) -> bytes:
    return pdf_bytes(my_overdue_html(conn, day))


def digest_data(conn, day: date) -> dict:
    p = {"day": day, "week_start": day - timedelta(days=6), "last_start": day - timedelta(days=13)}
    d = conn.execute(DIGEST, p).fetchone()
    details = {r["id"]: r for r in conn.execute(AT_RISK, {"ids": [r["id"] for r in d["at_risk"]]}).fetchall()}
    at_risk = [{**details[r["id"]], **r} for r in d["at_risk"] if r["id"] in details]
    spend = conn.execute("""
        select coalesce(sum(k.total_gbp) filter (where e.at::date >= %(week_start)s), 0) as this_week,
               coalesce(sum(k.total_gbp) filter (where e.at::date < %(week_start)s), 0) as last_week,
               count(k.total_gbp) as priced, count(*) as orders
          from app.sample_events e left join app.sample_costs k on k.sample_id = e.sample_id
         where e.action = 'order' and e.at >= %(last_start)s::date::timestamptz
           and e.at < (%(day)s::date + 1)::timestamptz""", p).fetchone()  # timestamptz vs timestamptz: leakproof, so indexable under RLS
    rejects = conn.execute("""
        select su.name as supplier, count(*) filter (where i.inspected_at::date >= %(week_start)s) as this_week,
               count(*) as all_time
          from app.qc_inspections i join app.samples s on s.id = i.sample_id join app.suppliers su on su.id = s.supplier_id
         where i.result = 'reject' and i.inspected_at < %(day)s::date + 1
         group by su.name order by 2 desc, 3 desc, 1 limit 10""", p).fetchall()
    return {"by_role": d["by_role"], "by_team": d["by_team"], "at_risk": at_risk, "spend": spend, "rejects": rejects,
            **p}


def digest_html(conn, day: date) -> str:
    d = digest_data(conn, day)
    spend_chart = charts.bars([("last week", float(d["spend"]["last_week"])),
                               ("this week", float(d["spend"]["this_week"]))], "Spend on orders (GBP)", unit="£",
                              colour="#1f5f8b")
    return ENV.get_template("alerts/digest_pdf.html").render(
        me=whoami(conn), data=d,
        role_chart=Markup(charts.bars([(r["role"], r["n"]) for r in d["by_role"]], "Overdue by responsible role")),
        team_chart=Markup(charts.bars([(r["team"], r["n"]) for r in d["by_team"]], "Overdue by team")),
        spend_chart=Markup(spend_chart), show_spend=d["spend"]["priced"] > 0 or d["spend"]["orders"] == 0)


def digest_pdf(conn, day: date) -> bytes:
    return pdf_bytes(digest_html(conn, day))
