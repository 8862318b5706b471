"""Overdue monitoring in the web UI (issue 12): the system admin's captured-mail page
(closed to every other role by the database), the rules page (only the ops director
changes a rule), extend / chased from the sample page, and "my overdue list" as a PDF
holding only what the person may see."""
import subprocess
from datetime import date, timedelta

import pytest

from conftest import cloned_web_app
from test_web import client_for, one  # noqa: F401  (the same sign-in helpers)
from tracker.roles import ROLES


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_overdue_web") as app:
        yield app


@pytest.fixture
def db(app):
    import psycopg

    from conftest import _url
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def captured(app):
    import psycopg

    from conftest import _url
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        c.execute("insert into app_private.mail_capture (mail_from, rcpt_to, subject, message_id, message) values "
                  "('t@example.com', '{logistics@example.com}', '3 overdue samples to chase', '<m1@x>', "
                  "convert_to(E'Subject: 3 overdue samples to chase\\r\\nMessage-ID: <m1@x>\\r\\n"
                  "Content-Type: text/plain\\r\\n\\r\\n#1021 Ecru oxford shirt\\r\\n', 'UTF8'))")


@pytest.mark.parametrize("role", ROLES)
def test_only_the_system_admin_reads_the_captured_mail(app, captured, role):
    c = client_for(app, role)
    r = c.get("/alerts/mail")
    if role == "system_admin":
        page = r.get_data(as_text=True)
        assert r.status_code == 200 and "3 overdue samples to chase" in page and "logistics@example.com" in page
        mail_id = int(page.split("/alerts/mail/")[1].split('"')[0])
        one_mail = c.get(f"/alerts/mail/{mail_id}").get_data(as_text=True)
        assert "#1021 Ecru oxford shirt" in one_mail
        csv = c.get("/alerts/mail?format=csv")
        assert csv.mimetype == "text/csv" and "3 overdue samples to chase" in csv.get_data(as_text=True)
    else:
        assert r.status_code == 403
        assert c.get("/alerts/mail/1").status_code == 403
        assert "Mail</a>" not in c.get("/").get_data(as_text=True)


def test_every_role_reads_the_rules_only_the_ops_director_changes_them(app, db):
    buyer = client_for(app, "buyer")
    page = buyer.get("/alerts/rules").get_data(as_text=True)
    assert "at a factory for more than 14 days" in page and "Save rule" not in page
    rid = one(db, "select id from app.overdue_rules where code = 'at-factory-too-long'")
    form = {"days_allowed": "21", "responsible_role": "factory_liaison", "description": "at a factory too long",
            "active": "on"}
    r = buyer.post(f"/alerts/rules/{rid}", data={**form, "csrf": buyer.csrf}, follow_redirects=True)
    assert "You are not allowed to do that." in r.get_data(as_text=True)
    assert one(db, "select days_allowed from app.overdue_rules where id = %s", rid) == 14
    director = client_for(app, "ops_director")
    assert "Save rule" in director.get("/alerts/rules").get_data(as_text=True)
    r = director.post(f"/alerts/rules/{rid}", data={**form, "days_allowed": "400", "csrf": director.csrf},
                      follow_redirects=True)
    assert "days allowed must be between 0 and 365" in r.get_data(as_text=True)
    r = director.post(f"/alerts/rules/{rid}", data={**form, "csrf": director.csrf}, follow_redirects=True)
    assert "Rule saved" in r.get_data(as_text=True)
    assert one(db, "select days_allowed from app.overdue_rules where id = %s", rid) == 21
    assert one(db, "select count(*) from audit.log where table_name = 'app.overdue_rules' and op = 'UPDATE'") >= 1
    db.execute("update app.overdue_rules set days_allowed = 14, description = 'at a factory for more than 14 days' "
               "where id = %s", (rid,))
    csv = buyer.get("/alerts/rules.csv")
    assert csv.mimetype == "text/csv" and "at-factory-too-long" in csv.get_data(as_text=True)


def test_extend_and_chased_from_the_sample_page(app, db):
    sid = one(db, "select sample_id from app_private.overdue_for(current_date) where rule_code = 'received-not-routed' "
                  "order by sample_id desc limit 1")
    logistics = client_for(app, "logistics")
    page = logistics.get(f"/samples/{sid}").get_data(as_text=True)
    assert "Extend the due date" in page and "Chased today" in page
    designer = client_for(app, "designer")
    assert "Extend the due date" not in designer.get(f"/samples/{sid}").get_data(as_text=True)
    # the form is not the check: the database refuses a designer who posts anyway
    r = designer.post(f"/alerts/samples/{sid}/extend", data={"csrf": designer.csrf, "rule": "received-not-routed",
                                                             "due_on": str(date.today() + timedelta(days=3)),
                                                             "reason": "x"}, follow_redirects=True)
    assert "only the person who must chase" in r.get_data(as_text=True).lower()
    r = logistics.post(f"/alerts/samples/{sid}/extend", data={"csrf": logistics.csrf, "rule": "received-not-routed",
                                                              "due_on": str(date.today() + timedelta(days=3)),
                                                              "reason": "Rail is full until Friday"})
    assert r.status_code == 303 and r.location.endswith(f"/samples/{sid}#overdue")
    page = logistics.get(f"/samples/{sid}").get_data(as_text=True)
    assert "Rail is full until Friday" in page and "extended" in page
    assert one(db, "select count(*) from app.overdue_extensions where sample_id = %s", sid) >= 1
    other = one(db, "select sample_id from app_private.overdue_for(current_date) where rule_code = 'received-not-routed' "
                    "and sample_id <> %s order by sample_id limit 1", sid)
    r = logistics.post(f"/alerts/samples/{other}/chased", data={"csrf": logistics.csrf, "rule": "received-not-routed"},
                       follow_redirects=True)
    assert "marked chased today" in r.get_data(as_text=True)
    assert one(db, "select count(*) from app.overdue_chases where sample_id = %s and chased_on = current_date", other) == 1


def test_my_overdue_pdf_holds_only_what_the_person_may_see(app, db, tmp_path):
    c = client_for(app, "factory_liaison")
    assert "My overdue list (PDF)" in c.get("/").get_data(as_text=True)
    r = c.get("/alerts/my-overdue.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    (tmp_path / "m.pdf").write_bytes(r.data)
    text = subprocess.run(["pdftotext", str(tmp_path / "m.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    sample = one(db, "select sample_id from app_private.overdue_for(current_date) o join app.staff s on s.id = o.staff_id "
                     "where s.email = 'factory_liaison@example.com' limit 1")
    assert str(sample) in text and "£" not in text


def test_mail_me_my_overdue_list_queues_a_pdf_rendered_as_me(app, db, tmp_path):
    from alerts import render
    c = client_for(app, "factory_liaison")
    r = c.post("/alerts/my-overdue/mail", data={"csrf": c.csrf}, follow_redirects=True)
    assert "on its way by mail" in r.get_data(as_text=True)
    r = c.post("/alerts/my-overdue/mail", data={"csrf": c.csrf}, follow_redirects=True)
    assert "already queued" in r.get_data(as_text=True) or "on its way" in r.get_data(as_text=True)
    keys = ["id", "kind", "staff_id", "day", "dedupe_key", "to_email", "subject", "payload"]
    row = dict(zip(keys, db.execute(f"select {', '.join(keys)} from app_private.mail_outbox where kind = 'my_overdue' "
                                    "and to_email = 'factory_liaison@example.com' order by id limit 1").fetchone()))
    from conftest import _url
    msg = render.build(row, "t@example.com", _url(app.dbname))
    (att,) = list(msg.iter_attachments())
    (tmp_path / "a.pdf").write_bytes(att.get_content())
    text = subprocess.run(["pdftotext", str(tmp_path / "a.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "My overdue samples" in text and "factory liaison" in text and "£" not in text
