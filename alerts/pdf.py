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

HITS = """
  from app.sample_overview v
  cross join lateral app.overdue_hits(v.id, v.state, v.state_changed_at, v.expected_on, v.return_due_on,
                                      v.on_loan, %(day)s) h
 where v.state not in ('returned', 'cut-for-production')"""


def pdf_bytes(html: str) -> bytes:
    from weasyprint import HTML  # imported late: slow to import, not needed by the mailer's text path
    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def whoami(conn) -> dict:
    return conn.execute("select id, full_name, role::text as role, email from app.staff "
                        "where id = app.current_staff_id()").fetchone()


def my_overdue_html(conn, day: date) -> str:
    rows = conn.execute(MY_OVERDUE, {"day": day}).fetchall()
    return ENV.get_template("alerts/my_overdue_pdf.html").render(
        me=whoami(conn), day=day, rows=rows, show_cost=any(r["total_gbp"] is not None for r in rows))


def my_overdue_pdf(conn, day: date) -> bytes:
    return pdf_bytes(my_overdue_html(conn, day))


def digest_data(conn, day: date) -> dict:
    p = {"day": day, "week_start": day - timedelta(days=6), "last_start": day - timedelta(days=13)}
    by_role = conn.execute(f"select replace(h.responsible_role::text, '_', ' ') as role, count(*) as n {HITS} "
                           "group by 1 order by 2 desc, 1", p).fetchall()
    by_team = conn.execute(f"select v.team_code as team, count(*) as n {HITS} group by 1 order by 2 desc, 1",
                           p).fetchall()
    at_risk = conn.execute(f"""
        select v.id, v.title, v.display_state, v.supplier, v.on_loan, v.return_due_on,
               coalesce(v.holder_name, case when v.state = 'at-factory' then v.factory end, v.location, '-') as held_by,
               max(h.days_overdue) as days_overdue, string_agg(h.reason, '; ' order by h.days_overdue desc) as reason
          {HITS} and (v.on_loan or v.state in ('at-factory', 'with-design', 'with-sales'))
         group by v.id, v.title, v.display_state, v.supplier, v.on_loan, v.return_due_on, v.holder_name, v.factory,
                  v.location
         order by v.on_loan desc, max(h.days_overdue) desc, v.id limit 10""", p).fetchall()
    spend = conn.execute("""
        select coalesce(sum(v.total_gbp) filter (where e.at::date >= %(week_start)s), 0) as this_week,
               coalesce(sum(v.total_gbp) filter (where e.at::date < %(week_start)s), 0) as last_week,
               count(v.total_gbp) as priced, count(*) as orders
          from app.sample_events e join app.sample_overview v on v.id = e.sample_id
         where e.action = 'order' and e.at::date between %(last_start)s and %(day)s""", p).fetchone()
    rejects = conn.execute("""
        select su.name as supplier, count(*) filter (where i.inspected_at::date >= %(week_start)s) as this_week,
               count(*) as all_time
          from app.qc_inspections i join app.samples s on s.id = i.sample_id join app.suppliers su on su.id = s.supplier_id
         where i.result = 'reject' and i.inspected_at::date <= %(day)s
         group by su.name order by 2 desc, 3 desc, 1 limit 10""", p).fetchall()
    return {"by_role": by_role, "by_team": by_team, "at_risk": at_risk, "spend": spend, "rejects": rejects, **p}


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
