"""The sample page and everything done from it: lifecycle actions, comments, photos,
the printable tag. The database decides what is visible and allowed; a refusal
comes back as its own message and is shown with the form kept."""
import os
from datetime import date, timedelta
from io import BytesIO

import psycopg
from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file,
                   session, url_for)

from .. import images
from ..roles import STATES
from . import alerts, db, realtime
from .auth import login_required
from .errors import friendly
from .formats import duration

bp = Blueprint("samples", __name__, url_prefix="/samples")

# action -> (SQL with named arguments, form fields: (name, label, kind, required))
ACTIONS = {
    "order": ("select app.order_sample(p_sample_id => %(sid)s, p_supplier_id => %(supplier)s, "
              "p_unit_cost => %(unit_cost)s, p_currency => %(currency)s, p_expected_on => %(expected_on)s, "
              "p_quantity => %(quantity)s, p_po_number => %(po_number)s, p_on_loan => %(on_loan)s, "
              "p_note => %(note)s, p_despite_similar => %(despite_similar)s, "
              "p_accept_supplier_risk => %(accept_supplier_risk)s)",
              [("supplier", "Supplier", "supplier"), ("unit_cost", "Unit cost", "money"),
               ("currency", "Currency", "currency"), ("expected_on", "Expected on", "date"),
               ("quantity", "Quantity", "int"), ("po_number", "PO number", "text"),
               ("on_loan", "On loan from the supplier", "bool"), ("note", "Note", "text"),
               ("accept_supplier_risk", "I have read this supplier's recent QC rejects and order anyway", "bool")]),
    "withdraw": ("select app.withdraw_request(p_sample_id => %(sid)s, p_reason => %(reason)s)",
                 [("reason", "Reason", "text")]),
    "receive": ("select app.receive_sample(p_sample_id => %(sid)s, p_location_id => %(location)s, "
                "p_return_due_on => %(return_due_on)s, p_note => %(note)s)",
                [("location", "Location", "location"), ("return_due_on", "Return due (on loan)", "date"),
                 ("note", "Note", "text")]),
    "hand_to_design": ("select app.hand_to_design(p_sample_id => %(sid)s, p_holder_id => %(holder)s, "
                       "p_note => %(note)s)",
                       [("holder", "Designer", "designer"), ("note", "Note", "text")]),
    "hand_to_sales": ("select app.hand_to_sales(p_sample_id => %(sid)s, p_holder_id => %(holder)s, "
                      "p_note => %(note)s)",
                      [("holder", "Sales person", "sales"), ("note", "Note", "text")]),
    "send_to_factory": ("select app.send_to_factory(p_sample_id => %(sid)s, p_factory_id => %(factory)s, "
                        "p_note => %(note)s)",
                        [("factory", "Factory", "factory"), ("note", "Note", "text")]),
    "return_from_factory": ("select app.return_from_factory(p_sample_id => %(sid)s, p_location_id => %(location)s, "
                            "p_note => %(note)s)",
                            [("location", "Location", "location"), ("note", "Note", "text")]),
    "return_to_supplier": ("select app.return_to_supplier(p_sample_id => %(sid)s, p_courier_ref => %(courier_ref)s, "
                           "p_note => %(note)s)",
                           [("courier_ref", "Courier reference", "text"), ("note", "Note", "text")]),
    "approve_for_production": ("select app.approve_for_production(p_sample_id => %(sid)s, p_note => %(note)s)",
                               [("note", "Note", "text")]),
    "cut_for_production": ("select app.cut_for_production(p_sample_id => %(sid)s, p_note => %(note)s)",
                           [("note", "Note", "text")]),
    "inspect": ("select app.record_inspection(p_sample_id => %(sid)s, p_result => %(result)s::app.qc_result, "
                "p_reason => %(reason)s, p_notes => %(notes)s)",
                [("result", "Result", "qc_result"), ("reason", "Reason (for a reject)", "text"),
                 ("notes", "Inspector's notes", "textarea")]),
    "hand_back": ("select app.hand_back(p_sample_id => %(sid)s, p_location_id => %(location)s, p_note => %(note)s)",
                  [("location", "Location", "location"), ("note", "Note", "text")]),
    "confirm_handover": ("select app.confirm_handover(p_sample_id => %(sid)s, p_note => %(note)s)",
                         [("note", "Note", "text")]),
    "buy_out": ("select app.buy_out(p_sample_id => %(sid)s, p_note => %(note)s)",
                [("note", "Note (price agreed, invoice)", "text")]),
    "correct": ("select app.correct_sample(p_sample_id => %(sid)s, p_title => %(title)s, "
                "p_style_code => %(style_code)s, p_category_id => %(category)s, p_season_id => %(season)s, "
                "p_expected_on => %(expected_on)s, p_unit_cost => %(unit_cost)s, p_currency => %(currency)s, "
                "p_quantity => %(quantity)s, p_po_number => %(po_number)s, p_note => %(note)s)",
                [("title", "Title", "text"), ("style_code", "Style code", "text"),
                 ("category", "Category", "category"), ("season", "Season", "season"),
                 ("expected_on", "Expected on", "date"), ("unit_cost", "Unit cost", "money"),
                 ("currency", "Currency", "currency"), ("quantity", "Quantity", "int"),
                 ("po_number", "PO number", "text"), ("note", "What was wrong (for the timeline)", "text")]),
    "cancel_order": ("select app.cancel_order(p_sample_id => %(sid)s, p_reason => %(reason)s)",
                     [("reason", "Reason", "text")]),
    "override": ("select app.override_state(p_sample_id => %(sid)s, p_to_state => %(to_state)s::app.sample_state, "
                 "p_reason => %(reason)s, p_location_id => %(location)s, p_holder_id => %(holder)s, "
                 "p_factory_id => %(factory)s, p_courier_ref => %(courier_ref)s, p_expected_on => %(expected_on)s)",
                 [("to_state", "New state", "state"), ("reason", "Reason", "text"),
                  ("location", "Location (to received)", "location"),
                  ("holder", "Holder (to with-design / with-sales)", "holder"),
                  ("factory", "Factory (to at-factory)", "factory"),
                  ("courier_ref", "Courier reference (to returned)", "text"),
                  ("expected_on", "Expected on (to ordered)", "date")]),
}


# fields whose blank means "clear it" when correcting (elsewhere a blank is "not given")
CLEARABLE = {("correct", "style_code"), ("correct", "po_number")}


def prefill(s) -> dict:
    """What the correction form starts from: the sample as recorded. The order's fields
    only for an ordered sample whose cost this person can read (the database decides both)."""
    values = {"title": s["title"], "style_code": s["style_code"] or "", "category": s["category_id"],
              "season": s["season_id"]}
    if s["state"] == "ordered":
        values["expected_on"] = s["expected_on"].isoformat() if s["expected_on"] else ""
        if s["unit_cost"] is not None:
            values.update(unit_cost=s["unit_cost"], currency=s["currency"], quantity=s["quantity"],
                          po_number=s["po_number"] or "")
    values["note"] = ""
    return {"correct": values}


def form_value(kind, raw):
    raw = (raw or "").strip()
    if kind == "bool":
        return raw == "on"
    if raw == "":
        return None
    return raw


def load(conn, sample_id):
    s = conn.execute("select * from app.sample_overview where id = %s", (sample_id,)).fetchone()
    if s is None:
        abort(404)
    return s


def page_data(conn, sample_id):
    s = load(conn, sample_id)
    q = lambda sql, p=(sample_id,): conn.execute(sql, p).fetchall()  # noqa: E731
    return {
        "s": s,
        # the page's lists, as app.sample_* views say them (sql/views/020_sample_page.sql)
        "events": q("select * from app.sample_timeline where sample_id = %s order by at desc, id desc"),
        "actions": q("select action, verb, required from app.available_actions(%s)"),
        "comments": q("select * from app.sample_comment_thread where sample_id = %s order by created_at, id"),
        "photos": q("select * from app.sample_photo_list where sample_id = %s order by created_at, id"),
        "inspections": q("select * from app.sample_inspection_list where sample_id = %s order by inspected_at desc"),
        "supplier_record": conn.execute("select * from app.supplier_record(%s)",
                                        (s["supplier_id"],)).fetchone() if s["supplier_id"] else None,
        "supplier_rejects": conn.execute("select * from app.supplier_recent_rejects(%s, 10)",
                                         (s["supplier_id"],)).fetchall() if s["supplier_id"] else [],
        "watching": conn.execute("select exists (select 1 from app.watches where sample_id = %s "
                                 "and staff_id = app.current_staff_id()) as w", (sample_id,)).fetchone()["w"],
        "contacts": q("select name, email, phone, position from app.supplier_contacts where supplier_id = %s "
                      "order by name", (s["supplier_id"],)) if s["supplier_id"] else [],
        "overdue": alerts.sample_overdue(conn, sample_id),  # issue 12: extend / chased / lateness history
        # what the grants and rules say, for the page to offer (the database enforces both)
        "rules": conn.execute("select has_any_column_privilege('app.sample_photos', 'INSERT') as uploads_photos, "
                              "app.loan_days() as loan_days").fetchone(),
    }


def similar_to(conn, s, supplier=None):
    """Possible duplicates of a sample in flight in every team (app.similar_samples)."""
    return conn.execute("select * from app.similar_samples(%s, %s, %s, %s, %s, %s, 5)",
                        (s["title"], s["category_id"], s["season_id"], supplier or s["supplier_id"], s["style_code"],
                         s["id"])).fetchall()


def acknowledged(shown) -> bool:
    """The person ticked "not a duplicate" having seen (at least) these samples."""
    seen = set(request.form.getlist("despite_similar"))
    return request.form.get("ack_similar") == "1" and {str(r["id"]) for r in shown} <= seen


def with_choices(conn, data):
    """Option lists for the forms of the actions this person may take now, and no others."""
    kinds = {kind for a in data["actions"] for _, _, kind in ACTIONS.get(a["action"], ("", []))[1]}
    data["choices"] = choices(conn, kinds - set(HOLDER_ACTIONS))
    if any(a["action"] == "order" for a in data["actions"]):
        data["similar"] = similar_to(conn, data["s"])
    # whom this person may hand the sample to: the database says (the person first when they can hold it)
    data["holder_default"] = {}
    for kind, action in HOLDER_ACTIONS.items():
        if kind in kinds:
            data["choices"][kind] = conn.execute(
                "select id, full_name || case when id = app.current_staff_id() then ' (you)' "
                "else ' (' || replace(role::text, '_', ' ') || ')' end as name "
                "from app.holder_choices(%s, %s)", (data["s"]["id"], action)).fetchall()
            mine = [r["id"] for r in data["choices"][kind] if r["name"].endswith(" (you)")]
            if mine:  # a designer or sales person acting takes it themselves unless they pick someone
                data["holder_default"][kind] = mine[0]
    return data


HOLDER_ACTIONS = {"designer": "hand_to_design", "sales": "hand_to_sales"}


CHOICE_SQL = {
    "supplier": "select id, name from app.suppliers where active order by name",
    "currency": "select code as id, code || ' - ' || name as name from app.currencies order by code",
    "location": "select id, code || ' - ' || name as name from app.locations order by code",
    "factory": "select id, name from app.factories where active order by name",
    "category": "select id, name from app.categories order by name",
    "season": "select id, code || ' - ' || name as name from app.seasons order by starts_on desc",
    "holder": ("select id, full_name || ' (' || replace(role::text, '_', ' ') || ')' as name from app.staff "
               "where role = any (app.holder_roles('with-design') || app.holder_roles('with-sales')) and active "
               "order by 2"),
}
FIXED_CHOICES = {
    "state": [{"id": s, "name": s} for s in STATES],
    "qc_result": [{"id": "pass", "name": "Pass"}, {"id": "reject", "name": "Reject"}],
}


def choices(conn, kinds):
    out = {k: v for k, v in FIXED_CHOICES.items() if k in kinds}
    for kind in kinds & set(CHOICE_SQL):
        out[kind] = conn.execute(CHOICE_SQL[kind]).fetchall()
    return out


# what a person reads after an action went through
DONE = {"order": "ordered", "withdraw": "withdrawn (request cancelled)", "receive": "received",
        "hand_to_design": "handed to design", "hand_to_sales": "handed to sales",
        "send_to_factory": "sent to the factory", "return_from_factory": "back from the factory",
        "return_to_supplier": "returned to the supplier", "approve_for_production": "approved for production",
        "cut_for_production": "cut for production", "inspect": "inspected: result recorded",
        "override": "moved by override", "hand_back": "back in the sample room", "buy_out": "bought out",
        "correct": "corrected", "cancel_order": "cancelled: the order is withdrawn",
        "confirm_handover": "confirmed: it is with you"}
RETRY_KEY = "retry"
MAX_KEPT = 2000  # characters of form values kept through the redirect (the session is a cookie)


def keep_form(kind: str, key, form) -> None:
    """Remember a refused form's values for the next page (post/redirect/get)."""
    values, room = {}, MAX_KEPT
    for name, value in form.items():
        if name == "csrf":
            continue
        values[name] = value[:room]
        room -= len(values[name])
    session[RETRY_KEY] = {"kind": kind, "key": key, "values": values}


def kept_form(kind: str, key):
    """The refused form's values, once, if they belong to this page."""
    kept = session.pop(RETRY_KEY, None)
    if kept and kept.get("kind") == kind and kept.get("key") == key:
        return kept["values"]
    return None


@bp.route("/<int:sample_id>")
@login_required
def detail(sample_id):
    kept = kept_form("action", sample_id)
    g.live_since = realtime.page_cursor()  # before the content: the page's socket resumes from here
    with db.as_user() as conn:
        data = with_choices(conn, page_data(conn, sample_id))
    failed = kept.pop("_action", None) if kept else None
    return render_template("samples/detail.html", forms=ACTIONS, failed=failed, values=kept or {},
                           prefill=prefill(data["s"]), today=date.today(), **data)


@bp.route("/<int:sample_id>/act/<action>", methods=("GET", "POST"))
@login_required
def act(sample_id, action):
    """Every outcome ends in a redirect to the sample page (post/redirect/get): a reload
    never resubmits, and a refusal comes back as a message with the form as it was."""
    back = redirect(url_for("samples.detail", sample_id=sample_id), code=303)
    if request.method == "GET":  # an action URL typed or reloaded: show the sample instead
        return back
    if action not in ACTIONS:
        abort(404)
    sql_text, fields = ACTIONS[action]
    params = {"sid": sample_id, "despite_similar": None}
    for name, _, kind in fields:
        raw = request.form.get(name)
        params[name] = raw.strip() if (action, name) in CLEARABLE and raw is not None else form_value(kind, raw)
    version = request.form.get("version", "")
    try:
        with db.as_user() as conn:
            if version.isdigit() and len(version) <= 9:  # the form says which version it showed
                conn.execute("select app.expect_sample_version(%s, %s)", (sample_id, int(version)))
            if action == "order":
                s = load(conn, sample_id)
                shown = similar_to(conn, s, params["supplier"])
                if shown and not acknowledged(shown):
                    flash(f"{len(shown)} similar {'sample is' if len(shown) == 1 else 'samples are'} in flight; "
                          "check them and tick that this is not a duplicate.", "error")
                    keep_form("action", sample_id, {**request.form, "_action": action})
                    return back
                params["despite_similar"] = [r["id"] for r in shown] or None
            conn.execute(sql_text, params)
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
        keep_form("action", sample_id, {**request.form, "_action": action})
        return back
    flash(f"Sample {sample_id} {DONE.get(action, action.replace('_', ' ') + ': done')}.", "ok")
    return back


@bp.route("/<int:sample_id>/comments", methods=("POST",))
@login_required
def comment(sample_id):
    body = request.form.get("body", "").strip()
    try:
        with db.as_user() as conn:
            load(conn, sample_id)
            conn.execute("insert into app.sample_comments (sample_id, author_id, body) "
                         "values (%s, app.current_staff_id(), %s)", (sample_id, body))
    except psycopg.errors.CheckViolation:
        flash("A comment needs some text (at most 4,000 characters).", "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#comments")


@bp.route("/<int:sample_id>/comments/<int:comment_id>", methods=("POST",))
@login_required
def edit_comment(sample_id, comment_id):
    body = request.form.get("body", "").strip()
    try:
        with db.as_user() as conn:
            n = conn.execute("update app.sample_comments set body = %s where id = %s and sample_id = %s",
                             (body, comment_id, sample_id)).rowcount
            window = conn.execute("select app.comment_edit_window() as w").fetchone()["w"]
        if n == 0:
            flash(f"That comment can no longer be edited (only your own, within {duration(window)}).", "error")
    except psycopg.errors.CheckViolation:
        flash("A comment needs some text (at most 4,000 characters).", "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#comments")


@bp.route("/<int:sample_id>/photos", methods=("POST",))
@login_required
def upload_photo(sample_id):
    upload = request.files.get("photo")
    try:
        photo = images.process(upload.read() if upload else b"")
        with db.as_user() as conn:
            load(conn, sample_id)
            conn.execute("insert into app.sample_photos (sample_id, uploaded_by, content_type, width, height, image, "
                         "thumbnail, caption) values (%s, app.current_staff_id(), %s, %s, %s, %s, %s, %s)",
                         (sample_id, photo["content_type"], photo["width"], photo["height"], photo["image"],
                          photo["thumbnail"], request.form.get("caption", "").strip()[:200] or None))
        flash("Photo added.", "ok")
    except images.BadImage as exc:
        flash(str(exc), "error")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#photos")


@bp.route("/<int:sample_id>/photos/<int:photo_id>/remove", methods=("POST",))
@login_required
def remove_photo(sample_id, photo_id):
    """A photo added by mistake: hidden with a reason (the database decides who may)."""
    try:
        with db.as_user() as conn:
            conn.execute("select app.remove_photo(%s, %s)", (photo_id, request.form.get("reason", "")))
        flash("Photo removed. It stays in the audit log.", "ok")
    except psycopg.Error as exc:
        flash(friendly(exc), "error")
    return redirect(url_for("samples.detail", sample_id=sample_id) + "#photos", code=303)


@bp.route("/photos/<int:photo_id>")
@bp.route("/photos/<int:photo_id>/<any(thumb):size>")
@login_required
def photo(photo_id, size=None):
    column = "thumbnail" if size == "thumb" else "image"
    with db.as_user() as conn:
        row = conn.execute("select content_type, image, thumbnail from app.sample_photos where id = %s",
                           (photo_id,)).fetchone()
    if row is None:
        abort(404)
    mimetype = "image/jpeg" if column == "thumbnail" else row["content_type"]
    resp = send_file(BytesIO(row[column]), mimetype=mimetype, max_age=3600)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


def public_url() -> str:
    """The base URL a phone reaches the tracker on: PUBLIC_URL (config or environment),
    else the URL this request came in on."""
    base = current_app.config.get("PUBLIC_URL") or os.environ.get("PUBLIC_URL") or request.host_url
    return base.rstrip("/")


def sample_link(sample_id: int) -> str:
    return public_url() + url_for("samples.detail", sample_id=sample_id)


MAX_LABELS = 200
LAYOUTS = {"sheet": "an A4 sheet of tags", "single": "one tag per page"}


def labels_pdf(samples, layout: str) -> bytes:
    import segno
    from weasyprint import HTML
    tags = []
    for s in samples:
        link = sample_link(s["id"])
        tags.append({"s": s, "link": link, "qr": segno.make(link, error="m").svg_data_uri(scale=4, border=1)})
    html = render_template("samples/label.html", tags=tags, layout=layout)
    return HTML(string=html, base_url=request.host_url).write_pdf()


@bp.route("/<int:sample_id>/label.pdf")
@login_required
def label(sample_id):
    with db.as_user() as conn:
        s = load(conn, sample_id)
    return send_file(BytesIO(labels_pdf([s], "single")), mimetype="application/pdf",
                     download_name=f"sample-{sample_id}-tag.pdf")


@bp.route("/labels.pdf")
@login_required
def labels():
    """Tags for many samples at once (the rows ticked on a list): an A4 sheet or one per page.
    RLS decides which of them this person can print; the others are simply not there."""
    raw = request.args.getlist("id")
    if not raw:
        abort(400, "Tick at least one sample in the list, then print its tag.")
    if len(raw) > MAX_LABELS:
        abort(400, f"At most {MAX_LABELS} tags at once.")
    if not all(x.isascii() and x.isdigit() and len(x) <= 18 for x in raw):
        abort(400, "Sample numbers are whole numbers.")
    layout = request.args.get("layout", "sheet")
    if layout not in LAYOUTS:
        abort(400, "Choose an A4 sheet or one tag per page.")
    ids = sorted({int(x) for x in raw})
    with db.as_user() as conn:
        rows = conn.execute("select * from app.sample_overview where id = any(%s) order by id", (ids,)).fetchall()
    if not rows:
        abort(404)
    return send_file(BytesIO(labels_pdf(rows, layout)), mimetype="application/pdf",
                     download_name=f"sample-tags-{len(rows)}.pdf")


def typed_similar(conn, values):
    """Possible duplicates of what is typed into the request form."""
    if "\x00" in (values.get("title") or "") + (values.get("style_code") or ""):
        abort(400, "Text cannot contain a NUL character.")
    return conn.execute("select * from app.similar_samples(%s, %s, %s, %s, %s, null, 5)",
                        ((values.get("title") or "")[:200], form_int(values.get("category")),
                         form_int(values.get("season")), form_int(values.get("supplier")),
                         (values.get("style_code") or "")[:40] or None)).fetchall()


def form_int(raw):
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


@bp.route("/new", methods=("GET", "POST"))
@login_required
def new():
    """The request form. While the buyer types, static/similar.js shows possible duplicates
    in flight in every team; submitting with some shown needs the "not a duplicate" tick,
    and the request records which ones were seen."""
    with db.as_user() as conn:
        ref = {
            "categories": conn.execute("select id, name from app.categories order by name").fetchall(),
            "seasons": conn.execute("select id, code || ' - ' || name as name from app.seasons "
                                    "order by starts_on desc").fetchall(),
            "suppliers": conn.execute("select id, name || case when on_hold_at is not null then ' (on hold)' else '' end "
                                      "as name from app.suppliers where active order by name").fetchall(),
        }
    if request.method == "POST":
        values = request.form
        try:
            with db.as_user() as conn:
                shown = typed_similar(conn, values)
                if shown and not acknowledged(shown):
                    flash(f"{len(shown)} similar {'sample is' if len(shown) == 1 else 'samples are'} already in "
                          "flight; check them and tick that yours is not a duplicate.", "error")
                    keep_form("new", None, values)
                    return redirect(url_for("samples.new"), code=303)
                sid = conn.execute(
                    "select app.request_sample(p_title => %s, p_category_id => %s, p_season_id => %s, "
                    "p_supplier_id => %s, p_style_code => %s, p_on_loan => %s, p_note => %s, "
                    "p_despite_similar => %s)",
                    (values.get("title", ""), form_value("int", values.get("category")),
                     form_value("int", values.get("season")), form_value("int", values.get("supplier")),
                     form_value("text", values.get("style_code")), values.get("on_loan") == "on",
                     form_value("text", values.get("note")), [r["id"] for r in shown] or None)
                ).fetchone()["request_sample"]
            flash(f"Sample {sid} requested.", "ok")
            return redirect(url_for("samples.detail", sample_id=sid), code=303)
        except psycopg.Error as exc:
            flash(friendly(exc), "error")
            keep_form("new", None, values)
            return redirect(url_for("samples.new"), code=303)
    kept = kept_form("new", None) or {}
    similar = []
    if kept.get("title"):
        with db.as_user() as conn:
            similar = typed_similar(conn, kept)
    return render_template("samples/new.html", values=kept, ref=ref, similar=similar)


@bp.app_template_filter("since")
def since(ts):
    if ts is None:
        return ""
    days = (date.today() - ts.date()).days
    return "today" if days <= 0 else ("yesterday" if days == 1 else f"{days} days ago")


@bp.app_template_global()
def default_expected():
    return (date.today() + timedelta(days=14)).isoformat()
