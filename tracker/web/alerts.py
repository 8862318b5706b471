"""Overdue monitoring in the UI (issue 12): the rules (the ops director edits them),
extend / mark chased from the sample page, "my overdue list" as a PDF, and the
system admin's view of the mail the local capture server received. Every decision
is the database's: the rules' UPDATE grant and trigger, app.extend_due_date,
app.mark_chased, app.my_overdue and app.captured_mail."""
from datetime import date
from email import message_from_string, policy
from io import BytesIO

import psycopg
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, send_file, url_for

from alerts import pdf
from . import db
from .auth import login_required
from .lists import csv_lines, page_arg
from .errors import friendly

bp = Blueprint("alerts", __name__, url_prefix="/alerts")
MAIL_PAGE = 25
RULES_SQL = ("select id, code, condition, array_to_string(states, ', ') as states, days_allowed, "
             "responsible_role::text as responsible_role, description, active, updated_at "
             "from app.overdue_rules order by id")
LATENESS_SQL = {
    "supplier": ("select coalesce(su.name, '(no supplier)') as name, count(*) as extensions, "
                 "count(distinct e.sample_id) as samples, sum(e.due_on - e.due_before) as days_added "
                 "from app.overdue_extensions e left join app.suppliers su on su.id = e.supplier_id "
                 "group by 1 order by 2 desc, 1"),
    "person": ("select st.full_name as name, count(*) as extensions, count(distinct e.sample_id) as samples, "
               "sum(e.due_on - e.due_before) as days_added from app.overdue_extensions e "
               "join app.staff st on st.id = e.responsible_id group by 1 order by 2 desc, 1"),
}


def sample_overdue(conn, sample_id: int) -> dict:
    """For the sample page: the rules it breaks today, which of them the person must
    chase, and its lateness history (extensions, chases)."""
    hits = conn.execute(
        "select h.rule_code, h.reason, h.days_overdue, h.due_on, h.extended, h.responsible_role::text as role "
        "from app.samples s, app.overdue_hits(s.id, s.state, s.state_changed_at, s.expected_on, s.return_due_on, "
        "s.on_loan, current_date, s.transit_since) h where s.id = %s order by h.days_overdue desc", (sample_id,)).fetchall()
    mine = {r["rule_code"] for r in conn.execute(
        "select rule_code from app.my_overdue(current_date, %s)", (sample_id,)).fetchall()} if hits else set()
    history = conn.execute(
        "select e.created_at as at, 'extended' as what, r.description as rule, e.due_before, e.due_on, e.reason as note, "
        "st.full_name as who from app.overdue_extensions e join app.overdue_rules r on r.id = e.rule_id "
        "join app.staff st on st.id = e.extended_by where e.sample_id = %(s)s "
        "union all select c.created_at, 'chased', r.description, null, null, c.note, st.full_name "
        "from app.overdue_chases c join app.overdue_rules r on r.id = c.rule_id "
        "join app.staff st on st.id = c.chased_by where c.sample_id = %(s)s order by 1 desc", {"s": sample_id}).fetchall()
    # directors may extend or mark chased any of them (the database checks it again)
    return {"hits": hits, "mine": {h["rule_code"] for h in hits} if g.user["is_director"] else mine,
            "history": history}


@bp.route("/samples/<int:sample_id>/extend", methods=("POST",))
@login_required
def extend(sample_id):
    try:
        with db.as_user() as conn:
            due = conn.execute("select app.extend_due_date(%s, %s, %s, %s) as due",
                               (sample_id, request.form.get("rule", ""), request.form.get("due_on") or None,
                                request.form.get("reason", ""))).fetchone()["due"]
        flash(f"Sample {sample_id}: due date extended to {due:%d %b %Y}.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#overdue", code=303)


@bp.route("/samples/<int:sample_id>/chased", methods=("POST",))
@login_required
def chased(sample_id):
    try:
        with db.as_user() as conn:
            conn.execute("select app.mark_chased(%s, %s, %s)",
                         (sample_id, request.form.get("rule", ""), request.form.get("note", "")))
        flash(f"Sample {sample_id} marked chased today: it leaves tomorrow's mail unless it changes.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#overdue", code=303)


@bp.route("/my-overdue.pdf")
@login_required
def my_overdue_pdf():
    """Rendered inside the person's own transaction: holds only what they may see."""
    with db.as_user() as conn:
        body = pdf.my_overdue_pdf(conn, date.today())
    return send_file(BytesIO(body), mimetype="application/pdf", download_name=f"overdue-{date.today()}.pdf")


@bp.route("/my-overdue/mail", methods=("POST",))
@login_required
def mail_my_overdue():
    """Queue the PDF through the outbox: the mailer renders it as this person and attaches it."""
    try:
        with db.as_user() as conn:
            queued = conn.execute("select app.queue_my_overdue_pdf() as id").fetchone()["id"]
        flash("Your overdue list is on its way by mail (PDF attached)." if queued else
              "Your overdue list was already queued a moment ago.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("index"), code=303)


@bp.route("/rules")
@login_required
def rules():
    with db.as_user() as conn:
        rows = conn.execute(RULES_SQL).fetchall()
        lateness = {k: conn.execute(sql).fetchall() for k, sql in LATENESS_SQL.items()}
        editable, roles = conn.execute("select has_any_column_privilege('app.overdue_rules', 'UPDATE') as ok, "
                                       "app.overdue_responsible_roles()::text[] as roles").fetchone().values()
    return render_template("alerts/rules.html", rows=rows, roles=roles, lateness=lateness, editable=editable)


@bp.route("/rules.csv")
@login_required
def rules_csv():
    with db.as_user() as conn:
        rows = conn.execute(RULES_SQL).fetchall()
    body = "".join(csv_lines(["Id", "Code", "Condition", "States", "Days allowed", "Responsible role", "Description",
                              "Active", "Updated"], [list(r.values()) for r in rows]))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="overdue-rules.csv"'})


@bp.route("/lateness-<any(supplier, person):by>.csv")
@login_required
def lateness_csv(by):
    with db.as_user() as conn:
        rows = conn.execute(LATENESS_SQL[by]).fetchall()
    body = "".join(csv_lines([by.title(), "Extensions", "Samples", "Days added"], [list(r.values()) for r in rows]))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="lateness-by-{by}.csv"'})


@bp.route("/rules/<int:rule_id>", methods=("POST",))
@login_required
def edit_rule(rule_id):
    """UPDATE as the signed-in person: the column grant (ops director only) and the
    rule trigger (TR033) decide; the audit trigger records the change."""
    f = request.form
    try:
        with db.as_user() as conn:
            n = conn.execute("update app.overdue_rules set days_allowed = %s, responsible_role = %s, description = %s, "
                             "active = %s where id = %s",
                             (f.get("days_allowed") or None, f.get("responsible_role"), f.get("description", ""),
                              f.get("active") == "on", rule_id)).rowcount
        if n == 0:
            abort(404)
        flash("Rule saved; the lists and tomorrow's mail follow it.", "ok")
    except psycopg.errors.InvalidTextRepresentation:
        flash("Days allowed must be a whole number and the role one of the list.", "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("alerts.rules"), code=303)


def captured(conn, page: int):
    try:
        return conn.execute("select * from app.captured_mail(%s, %s)", (MAIL_PAGE, (page - 1) * MAIL_PAGE)).fetchall()
    except psycopg.Error as exc:
        if exc.sqlstate in ("TR002", "42501"):
            abort(403, "Only the system admin reads the captured mail.")
        raise


def parts(raw: str) -> dict:
    msg = message_from_string(raw, policy=policy.default)
    body = msg.get_body(("plain",))
    return {"text": body.get_content() if body else "", "date": msg.get("Date"), "message_id": msg.get("Message-ID"),
            "attachments": [p.get_filename() for p in msg.iter_attachments()]}


@bp.route("/mail")
@login_required
def mail():
    page = page_arg(request.args)
    with db.as_user() as conn:
        rows = captured(conn, page)
    total = rows[0]["total"] if rows else 0
    if request.args.get("format") == "csv":
        with db.as_user() as conn:
            every = conn.execute("select * from app.captured_mail(500, 0)").fetchall()
        body = "".join(csv_lines(["Id", "Received", "From", "To", "Subject"],
                                 [[r["id"], r["received_at"], r["mail_from"], ", ".join(r["rcpt_to"]), r["subject"]]
                                  for r in every]))
        return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="mail.csv"'})
    pages = max(1, -(-total // MAIL_PAGE))
    return render_template("alerts/mail.html", rows=[{**r, **parts(r["message"])} for r in rows], page=page,
                           pages=pages, total=total)


@bp.route("/mail/<int:mail_id>")
@login_required
def mail_one(mail_id):
    with db.as_user() as conn:
        captured(conn, 1)  # the role check
        row = conn.execute("select * from app.captured_mail(500, 0) where id = %s", (mail_id,)).fetchone()
    if row is None:
        abort(404)
    return render_template("alerts/mail_one.html", r={**row, **parts(row["message"])})
