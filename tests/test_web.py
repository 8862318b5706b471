"""The web layer with Flask's test client against the real database: every route for
several roles; forbidden things refused, other people's samples 404, hidden fields
absent from pages and exports; CSRF, XSS, throttling, invitations."""
import csv
import html
import io
import re

import pytest

from conftest import _url, cloned_web_app
from tracker.demo import demo_password
from tracker.images import swatch
from tracker.roles import ROLES



@pytest.fixture(scope="module")
def app(template):
    """A private clone of the demo database, so these tests may commit."""
    with cloned_web_app(template, "tracker_test_web") as app:
        yield app


@pytest.fixture
def db(app):
    import psycopg
    with psycopg.connect(_url(app.dbname), autocommit=True) as c:
        yield c


def one(db, sql, *params):
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def token(client, path="/auth/login"):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def client_for(app, role_or_email, password=None):
    c = app.test_client()
    email = role_or_email if "@" in role_or_email else f"{role_or_email}@example.com"
    r = c.post("/auth/login", data={"email": email, "password": password or demo_password(), "csrf": token(c)})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    c.csrf = token(c, "/")
    return c


# ------------------------------------------------------------------ sign-in
def test_anonymous_is_sent_to_sign_in(app):
    c = app.test_client()
    for path in ["/", "/samples/1001", "/search?q=x", "/export.csv", "/admin/staff", "/samples/new"]:
        r = c.get(path)
        assert r.status_code == 302 and "/auth/login" in r.location, path


def test_wrong_password_and_inactive_account_are_refused_alike(app, db):
    c = app.test_client()
    r = c.post("/auth/login", data={"email": "md@example.com", "password": "nope", "csrf": token(c)})
    assert r.status_code == 401 and b"do not match an active account" in r.data
    inactive = one(db, "select email from app.staff where not active limit 1")
    r = c.post("/auth/login", data={"email": inactive, "password": demo_password(), "csrf": token(c)})
    assert r.status_code == 401


def test_failed_sign_ins_are_throttled(app, db):
    sid = one(db, "insert into app.staff (email, full_name, role) values ('guessed@example.com', 'Guessed', 'qc') "
                  "returning id")
    db.execute("insert into app_private.staff_credentials (staff_id, password_hash) select %s, password_hash "
               "from app_private.staff_credentials c join app.staff s on s.id = c.staff_id "
               "where s.email = 'qc@example.com'", (sid,))
    c = app.test_client()
    for _ in range(5):
        c.post("/auth/login", data={"email": "guessed@example.com", "password": "bad", "csrf": token(c)})
    r = c.post("/auth/login", data={"email": "guessed@example.com", "password": demo_password(), "csrf": token(c)})
    assert r.status_code == 429 and b"Too many failed sign-ins" in r.data
    # another account is unaffected (positive control)
    client_for(app, "logistics")


def test_post_without_csrf_is_refused(app):
    c = client_for(app, "logistics")
    sid = 1001
    r = c.post(f"/samples/{sid}/comments", data={"body": "hello"})
    assert r.status_code == 400


def test_session_cookie_flags(app):
    c = app.test_client()
    r = c.post("/auth/login", data={"email": "md@example.com", "password": demo_password(), "csrf": token(c)})
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ------------------------------------------------------------------ dashboards
@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_dashboard_and_every_tab_works(app, role):
    from tracker.web.dashboards import presets_for
    c = client_for(app, role)
    for t in presets_for(role):
        r = c.get(f"/?tab={t.key}")
        assert r.status_code == 200 and t.label in html.unescape(r.get_data(as_text=True))
    assert c.get("/?sort=supplier&dir=asc&page=2").status_code == 200
    assert c.get("/?sort=nonsense;drop&dir=sideways").status_code == 200  # ignored, not executed


def test_filters_narrow_the_list(app, db):
    c = client_for(app, "md")
    page = c.get("/?tab=all&state=at-factory").get_data(as_text=True)
    body = page.split("<tbody>", 1)[1]
    states = set(re.findall(r'class="state state-([a-z-]+)"', body))
    assert states == {"at-factory"}


@pytest.mark.parametrize("role,sees_costs", [("designer", "none"), ("logistics", "none"), ("buyer", "own"),
                                             ("finance", "all"), ("md", "all")])
def test_csv_export_never_contains_hidden_costs(app, db, role, sees_costs):
    c = client_for(app, role)
    r = c.get("/export.csv?tab=all")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert rows
    with_cost = {int(row["No."]) for row in rows if row["Cost (GBP)"]}
    team = one(db, "select team_id from app.staff where email = %s", f"{role}@example.com")
    if sees_costs == "none":
        assert with_cost == set()
    elif sees_costs == "own":
        teams = {r[0] for r in db.execute("select distinct team_id from app.samples where id = any(%s)",
                                          (list(with_cost),))}
        assert with_cost and teams == {team}
    else:
        assert len(with_cost) == one(db, "select count(*) from app.sample_costs")
    assert len(rows) == one(db, "select count(*) from app.samples") if role in ("md", "finance", "logistics") else True


def test_xlsx_export(app):
    c = client_for(app, "finance")
    r = c.get("/export.xlsx?tab=open_pos")
    assert r.status_code == 200 and r.data[:2] == b"PK"


# ------------------------------------------------------------------ sample page
def test_other_teams_returned_sample_is_404_for_a_buyer(app, db):
    hidden = one(db, "select id from app.samples where state = 'returned' and team_id <> "
                     "(select team_id from app.staff where email = 'buyer@example.com') limit 1")
    c = client_for(app, "buyer")
    for path in [f"/samples/{hidden}", f"/samples/{hidden}/label.pdf"]:
        r = c.get(path)
        assert r.status_code == 404 and str(hidden).encode() not in r.data.replace(b"404", b"")
    assert client_for(app, "md").get(f"/samples/{hidden}").status_code == 200  # positive control


def test_costs_show_only_where_visible(app, db):
    own = one(db, "select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id "
                  "where s.team_id = (select team_id from app.staff where email = 'buyer@example.com') limit 1")
    other = one(db, "select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id "
                    "where s.team_id <> (select team_id from app.staff where email = 'buyer@example.com') "
                    "and s.state in ('ordered', 'received', 'with-design') limit 1")
    buyer = client_for(app, "buyer")
    assert "Costing</h2>" in buyer.get(f"/samples/{own}").get_data(as_text=True)
    page = buyer.get(f"/samples/{other}").get_data(as_text=True)
    assert "Costing</h2>" not in page and "£" not in page
    assert "Costing</h2>" not in client_for(app, "designer").get(f"/samples/{own}").get_data(as_text=True)


def test_action_refused_by_the_database_shows_a_readable_message_and_keeps_the_form(app, db):
    sid = one(db, "select id from app.samples where state = 'ordered' limit 1")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/act/send_to_factory", data={"csrf": c.csrf, "factory": "1", "note": "keep me"})
    assert r.status_code == 303  # post/redirect/get: the refusal comes back on the sample page
    html = c.get(r.location).get_data(as_text=True)
    assert f"Sample {sid} is ordered; you can send it to a factory only when it is received" in html
    assert one(db, "select state::text from app.samples where id = %s", sid) == "ordered"


def test_action_allowed_moves_the_sample(app, db):
    sid = one(db, "select id from app.samples where state = 'ordered' order by id desc limit 1")
    loc = one(db, "select min(id) from app.locations")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/act/receive", data={"csrf": c.csrf, "location": str(loc)})
    assert r.status_code == 303
    assert one(db, "select state::text from app.samples where id = %s", sid) == "received"


def test_missing_field_message(app, db):
    sid = one(db, "select id from app.samples where state = 'received' order by id desc limit 1")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/act/return_to_supplier", data={"csrf": c.csrf, "courier_ref": " "},
               follow_redirects=True)
    assert b"needs a courier reference" in r.data


def test_comment_xss_is_inert_and_edit_rules(app, db):
    sid = one(db, "select id from app.samples where state = 'with-design' limit 1")
    a = client_for(app, "designer")
    a.post(f"/samples/{sid}/comments", data={"csrf": a.csrf, "body": '<img src=x onerror="alert(1)">'})
    html = a.get(f"/samples/{sid}").get_data(as_text=True)
    assert '<img src=x onerror="alert(1)">' not in html and "&lt;img src=x onerror=" in html
    cid = one(db, "select max(id) from app.sample_comments where sample_id = %s", sid)
    b = client_for(app, "sales_lead")
    b.post(f"/samples/{sid}/comments/{cid}", data={"csrf": b.csrf, "body": "hijacked"})
    assert one(db, "select body from app.sample_comments where id = %s", cid) != "hijacked"
    a.post(f"/samples/{sid}/comments/{cid}", data={"csrf": a.csrf, "body": "fixed typo"})
    assert one(db, "select body from app.sample_comments where id = %s", cid) == "fixed typo"


def test_photo_upload_validation_and_visibility(app, db):
    sid = one(db, "select id from app.samples where state = 'received' limit 1")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/photos", data={"csrf": c.csrf, "photo": (io.BytesIO(b"not an image"), "x.png")},
               content_type="multipart/form-data", follow_redirects=True)
    assert b"not a readable JPEG, PNG or WebP image" in r.data
    r = c.post(f"/samples/{sid}/photos", data={"csrf": c.csrf, "photo": (io.BytesIO(swatch((1, 2, 3))), "x.png"),
                                               "caption": "front"},
               content_type="multipart/form-data", follow_redirects=True)
    assert b"Photo added." in r.data
    pid = one(db, "select max(id) from app.sample_photos where sample_id = %s", sid)
    assert c.get(f"/samples/photos/{pid}").data[:4] == b"\x89PNG"
    assert c.get(f"/samples/photos/{pid}/thumb").data[:2] == b"\xff\xd8"
    # a photo of a sample someone cannot see is a 404 for them: put one on a request,
    # which a factory liaison never sees
    req = one(db, "select id from app.samples where state = 'requested' limit 1")
    b = client_for(app, one(db, "select s.email from app.staff s join app.samples x on x.requested_by = s.id "
                                "where x.id = %s", req))
    b.post(f"/samples/{req}/photos", data={"csrf": b.csrf, "photo": (io.BytesIO(swatch((9, 9, 9))), "r.png")},
           content_type="multipart/form-data")
    on_request = one(db, "select max(id) from app.sample_photos where sample_id = %s", req)
    fl = client_for(app, "factory_liaison")
    assert fl.get(f"/samples/{req}").status_code == 404
    assert fl.get(f"/samples/photos/{on_request}").status_code == 404
    assert fl.get(f"/samples/photos/{on_request}/thumb").status_code == 404
    assert client_for(app, "md").get(f"/samples/photos/{on_request}").status_code == 200  # positive control


# ------------------------------------------------------------------ search
def test_search_number_and_words(app, db):
    c = client_for(app, "md")
    sid = one(db, "select min(id) from app.samples")
    for q in [str(sid), f"#{sid}", f" # {sid} "]:
        r = c.get("/search", query_string={"q": q})
        assert r.status_code == 302 and r.location.endswith(f"/samples/{sid}")
    r = c.get("/search?q=dress")
    assert r.status_code == 200 and b"results" in r.data and r.data.split(b"<tbody>")[1].count(b"<tr>") > 1


def test_search_does_not_leak_what_rls_hides(app, db):
    title = one(db, "select title from app.samples where state = 'requested' order by id limit 1")
    word = title.split()[-1]
    designer_hits = client_for(app, "designer").get(f"/search?q={title}").get_data(as_text=True)
    md_hits = client_for(app, "md").get(f"/search?q={title}").get_data(as_text=True)
    requested_ids = {r[0] for r in db.execute("select id from app.samples where state = 'requested'")}
    shown = {int(x) for x in re.findall(r'/samples/(\d+)"', designer_hits)}
    assert not (shown & requested_ids)
    assert {int(x) for x in re.findall(r'/samples/(\d+)"', md_hits)} & requested_ids, word  # positive control


# ------------------------------------------------------------------ requests and admin
def test_only_buyers_can_request(app):
    d = client_for(app, "designer")
    r = d.post("/samples/new", data={"csrf": d.csrf, "title": "X", "category": "1", "season": "1"},
               follow_redirects=True)
    assert b"Only a buyer or a senior buyer can request a sample" in r.data
    b = client_for(app, "buyer")
    r = b.post("/samples/new", data={"csrf": b.csrf, "title": "Knitted tank", "category": "1", "season": "1"})
    assert r.status_code == 303 and "/samples/" in r.location


def test_admin_invites_and_the_invitee_signs_in(app, db):
    admin = client_for(app, "system_admin")
    assert b"Invite someone" in admin.get("/admin/staff").data
    r = admin.post("/admin/staff/new", data={"csrf": admin.csrf, "full_name": "Nia New", "email": "nia@example.com",
                                             "role": "designer", "team_id": ""})
    page = r.get_data(as_text=True)
    # issue 12: the link goes out in the welcome mail (queued by app.create_invite); nothing to copy
    assert "Welcome mail on its way to Nia New" in page and "/auth/invite/" not in page
    invite_token = one(db, "select payload->>'token' from app_private.mail_outbox where kind = 'welcome' "
                           "and to_email = 'nia@example.com'")
    path = f"/auth/invite/{invite_token}"
    newbie = app.test_client()
    t = token(newbie, path)
    assert newbie.post(path, data={"csrf": t, "password": "short", "confirm": "short"}).status_code == 422
    r = newbie.post(path, data={"csrf": t, "password": "correct horse battery", "confirm": "correct horse battery"})
    assert r.status_code == 302
    assert newbie.post(path, data={"csrf": t, "password": "again again again", "confirm": "again again again"}
                       ).status_code == 400  # used once only
    client_for(app, "nia@example.com", "correct horse battery")
    assert one(db, "select count(*) from audit.log where table_name = 'app.staff' and new_row->>'email' = "
                   "'nia@example.com'") == 1


def test_non_admin_cannot_invite_or_edit_staff(app, db):
    b = client_for(app, "buyer")
    r = b.post("/admin/staff/new", data={"csrf": b.csrf, "full_name": "Sneaky", "email": "sneaky@example.com",
                                         "role": "md", "team_id": ""})
    assert r.status_code == 403 and b"Only a system admin, the ops director or the MD manages staff." in r.data
    assert one(db, "select count(*) from app.staff where email = 'sneaky@example.com'") == 0
    md = one(db, "select id from app.staff where email = 'md@example.com'")
    version = one(db, "select xmin::text from app.staff where id = %s", md)
    r = b.post(f"/admin/staff/{md}", data={"csrf": b.csrf, "full_name": "X", "email": "md@example.com",
                                          "role": "buyer", "team_id": "", "active": "on", "row_version": version})
    assert r.status_code == 403
    assert one(db, "select role::text from app.staff where id = %s", md) == "md"


def test_deactivated_person_is_signed_out_on_next_request(app, db):
    c = client_for(app, "sales_executive")
    assert c.get("/").status_code == 200
    db.execute("update app.staff set active = false where email = 'sales_executive@example.com'")
    try:
        r = c.get("/")
        assert r.status_code == 302 and "/auth/login" in r.location
    finally:
        db.execute("update app.staff set active = true where email = 'sales_executive@example.com'")


def test_every_list_exports_csv(app):
    md = client_for(app, "md")
    r = md.get("/search.csv?q=dress")
    assert r.status_code == 200 and r.get_data(as_text=True).startswith("No.,Title,State")
    assert len(r.get_data(as_text=True).splitlines()) > 2
    admin = client_for(app, "system_admin")
    r = admin.get("/admin/staff.csv")
    assert r.status_code == 200 and "buyer@example.com" in r.get_data(as_text=True)


def test_two_admins_editing_the_same_person_do_not_lose_a_write(app, db):
    first, second = client_for(app, "system_admin"), client_for(app, "system_admin")
    qc = one(db, "select id from app.staff where email = 'qc@example.com'")
    form_a = first.get(f"/admin/staff/{qc}").get_data(as_text=True)
    form_b = second.get(f"/admin/staff/{qc}").get_data(as_text=True)
    version = re.search(r'name="row_version" value="([^"]*)"', form_a).group(1)
    assert version and version == re.search(r'name="row_version" value="([^"]*)"', form_b).group(1)
    name = one(db, "select full_name from app.staff where id = %s", qc)
    base = {"email": "qc@example.com", "role": "qc", "team_id": "", "active": "on", "row_version": version}
    r = first.post(f"/admin/staff/{qc}", data=dict(base, csrf=first.csrf, full_name=name + " (QC lead)"))
    assert r.status_code == 302
    r = second.post(f"/admin/staff/{qc}", data=dict(base, csrf=second.csrf, full_name=name + " typo"))
    assert r.status_code == 409 and b"Someone changed this person" in r.data
    assert one(db, "select full_name from app.staff where id = %s", qc) == name + " (QC lead)"
    db.execute("update app.staff set full_name = %s where id = %s", (name, qc))


def test_hand_to_design_offers_only_valid_holders(app, db):
    """Issue 10, item 6: logistics was offered "me" (refused: logistics cannot hold a
    sample); a designer saw both "me" and their own name. The database's holder_choices
    decides: designers only, the designer themselves once and first."""
    import re
    sid = db.execute("select min(id) from app.samples where state = 'received' and not qc_rejected").fetchone()[0]
    designers = {r[0] for r in db.execute("select full_name from app.staff where role = 'designer' and active")}
    for role in ("logistics", "designer"):
        page = client_for(app, role).get(f"/samples/{sid}").get_data(as_text=True)
        form = page[page.index('id="hand_to_design-holder"'):]
        form = form[:form.index("</select>")]
        names = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', form)
        assert ">me<" not in form
        assert names, role
        assert {n.rsplit(" (", 1)[0] for n in names} == designers, role
        if role == "designer":
            assert names[0].endswith("(you)") and sum(n.endswith("(you)") for n in names) == 1


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tcmd", "\r=cmd"])
def test_csv_cells_that_a_spreadsheet_reads_as_formulas_are_neutralised(cell):
    """Issue 9, finding 7: cells starting with tab or CR were not neutralised."""
    from tracker.web.dashboards import xlsx_value
    from tracker.web.lists import csv_lines
    out = "".join(csv_lines(["title"], [[cell]]))
    assert "'" + cell in out or "'" + cell.replace("\r", "\r") in out
    assert xlsx_value(cell) == "'" + cell
    # positive control: a plain number and plain text pass unchanged
    assert "".join(csv_lines(["n"], [["-5"]])).splitlines()[-1] == "-5"
    assert xlsx_value("Wrap dress") == "Wrap dress"
