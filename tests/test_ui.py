"""The sample page, search and labels with Flask's test client against the real
database: post/redirect/get after every action, clear 400s for silly input, search
that finds what people type (through RLS), tags whose QR code a phone can open,
and the small wording and formatting fixes."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import signed_in_client, cloned_web_app


@pytest.fixture(scope="module")
def app(template):
    """A private clone of the demo database, so these tests may commit."""
    with cloned_web_app(template, "tracker_test_ui") as app:
        yield app



def one(db, sql, *params):
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


client_for = signed_in_client


def text_of(r):
    return r.get_data(as_text=True)


# ---------------------------------------------------------------- post/redirect/get
def test_refused_action_redirects_and_keeps_message_and_form_values(app, db):
    sid = one(db, "select id from app.samples where state = 'received' order by id limit 1")
    c = client_for(app, "logistics")
    events = one(db, "select count(*) from app.sample_events where sample_id = %s", sid)
    r = c.post(f"/samples/{sid}/act/return_to_supplier",
               data={"csrf": c.csrf, "courier_ref": " ", "note": "kept through the redirect"})
    assert r.status_code == 303 and r.location.endswith(f"/samples/{sid}")
    page = text_of(c.get(r.location))
    assert "needs a courier reference" in page
    assert 'value="kept through the redirect"' in page  # the form as it was
    assert re.search(r'<details open class="action[^"]*">\s*<summary>Return it to the supplier', page, re.I)
    # a reload is a GET of the sample page: no resubmission, and the message is shown once
    again = text_of(c.get(r.location))
    assert "needs a courier reference" not in again and "kept through the redirect" not in again
    assert one(db, "select count(*) from app.sample_events where sample_id = %s", sid) == events


def test_successful_action_redirects_and_a_reload_does_not_resubmit(app, db):
    sid = one(db, "select id from app.samples where state = 'ordered' order by id desc limit 1")
    loc = one(db, "select min(id) from app.locations")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/act/receive", data={"csrf": c.csrf, "location": str(loc)})
    assert r.status_code == 303 and r.location.endswith(f"/samples/{sid}")
    events = one(db, "select count(*) from app.sample_events where sample_id = %s", sid)
    page = text_of(c.get(r.location))
    assert f"Sample {sid} received." in page and "Done:" not in page
    c.get(r.location)
    assert one(db, "select count(*) from app.sample_events where sample_id = %s", sid) == events


def test_action_url_typed_in_the_address_bar_shows_the_sample(app, db):
    sid = one(db, "select id from app.samples where state = 'ordered' order by id limit 1")
    c = client_for(app, "logistics")
    r = c.get(f"/samples/{sid}/act/receive")
    assert r.status_code == 303 and r.location.endswith(f"/samples/{sid}")


def test_refused_request_redirects_and_keeps_the_form(app):
    d = client_for(app, "designer")
    r = d.post("/samples/new", data={"csrf": d.csrf, "title": "Kept title", "category": "1", "season": "1"})
    assert r.status_code == 303 and r.location.endswith("/samples/new")
    page = text_of(d.get(r.location))
    assert "Only a buyer or a senior buyer can request a sample" in page and 'value="Kept title"' in page


def test_silly_input_is_a_clear_400(app):
    c = client_for(app, "md")
    for path in ["/?page=" + "9" * 20, "/search?q=dress&page=" + "1" * 20, "/search?q=a%00b", "/search.csv?q=%00"]:
        r = c.get(path)
        assert r.status_code == 400, path
        assert b"Page must be a whole number" in r.data or b"NUL" in r.data
    assert c.get("/search?q=dress&page=1").status_code == 200  # positive control


# ---------------------------------------------------------------- search
def result_ids(page):
    if "<tbody>" not in page:
        return []
    return [int(x) for x in re.findall(r'class="rowlink" href="/samples/(\d+)"', page.split("<tbody>", 1)[1])]


def test_search_by_po_number_only_for_those_who_see_costs(app, db):
    sid, po = db.execute("select k.sample_id, k.po_number from app.sample_costs k join app.samples s "
                         "on s.id = k.sample_id where k.po_number is not null and s.state = 'received' "
                         "order by k.sample_id limit 1").fetchone()
    for role in ("finance", "md"):
        page = text_of(client_for(app, role).get("/search", query_string={"q": po}))
        assert sid in result_ids(page) and "PO number" in page, role
    # a designer and logistics see the sample but not its costs: the PO finds nothing for them
    for role in ("designer", "logistics"):
        c = client_for(app, role)
        assert c.get(f"/samples/{sid}").status_code == 200  # they can see the sample itself
        page = text_of(c.get("/search", query_string={"q": po}))
        assert sid not in result_ids(page) and f">{po}<" not in page, role
        assert po not in text_of(c.get("/search.csv", query_string={"q": po})), role


def test_search_by_a_persons_name(app, db):
    name, holder = db.execute("select st.full_name, st.id from app.staff st join app.samples s on "
                              "s.holder_id = st.id group by 1, 2 order by count(*) desc limit 1").fetchone()
    expected = {r[0] for r in db.execute("select id from app.samples where holder_id = %s", (holder,))}
    page = text_of(client_for(app, "md").get("/search", query_string={"q": name}))
    assert expected <= set(result_ids(page)) and "holder" in page
    buyer, requester = db.execute("select st.full_name, st.id from app.staff st join app.samples s on "
                                  "s.requested_by = st.id group by 1, 2 order by count(*) limit 1").fetchone()
    mine = {r[0] for r in db.execute("select id from app.samples where requested_by = %s", (requester,))}
    page = text_of(client_for(app, "md").get("/search", query_string={"q": buyer.lower()}))
    assert mine <= set(result_ids(page)) and "requested by" in page


def test_search_by_location_code_and_supplier(app, db):
    code, loc = db.execute("select l.code, l.id from app.locations l join app.samples s on s.location_id = l.id "
                           "where s.state = 'received' group by 1, 2 order by count(*) desc limit 1").fetchone()
    at = {r[0] for r in db.execute("select id from app.samples where location_id = %s", (loc,))}
    page = text_of(client_for(app, "logistics").get("/search", query_string={"q": code}))
    assert at <= set(result_ids(page))
    supplier, sup = db.execute("select su.name, su.id from app.suppliers su join app.samples s on "
                               "s.supplier_id = su.id where su.name like '% % %%' group by 1, 2 limit 1").fetchone()
    part = supplier.lower()
    of = {r[0] for r in db.execute("select id from app.samples where supplier_id = %s", (sup,))}
    page = text_of(client_for(app, "md").get("/search", query_string={"q": part}))
    assert of <= set(result_ids(page)) or len(result_ids(page)) == 50


def test_a_number_that_is_not_a_sample_says_so(app, db):
    missing = one(db, "select max(id) + 1000 from app.samples")
    r = client_for(app, "md").get("/search", query_string={"q": str(missing)})
    assert r.status_code == 200 and f"No sample {missing}" in text_of(r)
    # a sample someone cannot see reads the same as one that does not exist
    hidden = one(db, "select id from app.samples where state = 'requested' limit 1")
    r = client_for(app, "factory_liaison").get("/search", query_string={"q": f"#{hidden}"})
    assert r.status_code == 200 and f"No sample {hidden}" in text_of(r)
    r = client_for(app, "md").get("/search", query_string={"q": f"#{hidden}"})  # positive control
    assert r.status_code == 302 and r.location.endswith(f"/samples/{hidden}")


def test_exclusions_only_do_not_return_everything(app, db):
    c = client_for(app, "md")
    for q in ["-5", "-dress", "- -x"]:
        page = text_of(c.get("/search", query_string={"q": q}))
        assert result_ids(page) == [] and "<strong>0</strong> results" in page, q
        assert "only excludes words" in page
    assert result_ids(text_of(c.get("/search", query_string={"q": "dress -wrap"})))  # positive control


def test_search_shows_the_result_count(app, db):
    c = client_for(app, "md")
    page = text_of(c.get("/search", query_string={"q": "trench coat"}))
    ids = result_ids(page)
    total = int(re.search(r"<strong>([\d,]+)</strong> results?", page).group(1).replace(",", ""))
    assert ids and total >= len(ids)
    csv_rows = text_of(c.get("/search.csv", query_string={"q": "trench coat"})).strip().splitlines()[1:]
    assert len(csv_rows) == total


def test_search_shows_withdrawn(app, db):
    sid, title = db.execute("select id, title from app.samples where withdrawn_at is not null limit 1").fetchone()
    page = text_of(client_for(app, "md").get("/search", query_string={"q": title}))
    row = page.split(f'href="/samples/{sid}"', 1)[1].split("</tr>", 1)[0]
    assert "state-withdrawn" in row


# ---------------------------------------------------------------- labels
def qr_texts(pdf: bytes) -> list[str]:
    """Every QR code on every page of a PDF, decoded (poppler renders, zxing-cpp reads)."""
    import zxingcpp  # requirements.txt: reads the QR codes back
    from PIL import Image
    assert shutil.which("pdftoppm"), "poppler-utils missing: make deps"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "200", "-png", "in.pdf", "page"], cwd=tmp, check=True)
        out = []
        for png in sorted(Path(tmp).glob("page*.png")):
            out += [b.text for b in zxingcpp.read_barcodes(Image.open(png))]
        return out


def pdf_pages(pdf: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        info = subprocess.run(["pdfinfo", f.name], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def test_label_qr_encodes_the_public_url(app, db):
    sid = one(db, "select min(id) from app.samples")
    c = client_for(app, "logistics")
    assert qr_texts(c.get(f"/samples/{sid}/label.pdf").data) == [f"http://localhost/samples/{sid}"]
    app.config["PUBLIC_URL"] = "https://samples.example.com/"
    try:
        pdf = c.get(f"/samples/{sid}/label.pdf").data
        assert qr_texts(pdf) == [f"https://samples.example.com/samples/{sid}"]
    finally:
        app.config.pop("PUBLIC_URL")


def test_many_labels_at_once(app, db):
    ids = [r[0] for r in db.execute("select id from app.samples where state = 'received' order by id limit 3")]
    c = client_for(app, "logistics")
    q = "&".join(f"id={i}" for i in ids)
    single = c.get(f"/samples/labels.pdf?{q}&layout=single")
    assert single.status_code == 200 and single.data[:5] == b"%PDF-"
    assert pdf_pages(single.data) == 3
    assert sorted(qr_texts(single.data)) == sorted(f"http://localhost/samples/{i}" for i in ids)
    sheet = c.get(f"/samples/labels.pdf?{q}&layout=sheet")
    assert pdf_pages(sheet.data) == 1 and len(qr_texts(sheet.data)) == 3
    twelve = [r[0] for r in db.execute("select id from app.samples order by id limit 12")]
    assert pdf_pages(c.get("/samples/labels.pdf?" + "&".join(f"id={i}" for i in twelve)).data) == 2
    # the list offers it: a checkbox per row belonging to the tags form
    page = text_of(c.get("/?tab=to_route"))
    assert 'form id="labels"' in page and 'name="id"' in page and 'form="labels"' in page
    for bad in ["", "?id=x", "?id=1&layout=poster", "?" + "&".join(f"id={i}" for i in range(1, 300))]:
        assert c.get(f"/samples/labels.pdf{bad}").status_code == 400, bad


def test_labels_print_only_what_the_person_can_see(app, db):
    hidden = one(db, "select id from app.samples where state = 'requested' order by id limit 1")
    seen = one(db, "select id from app.samples where state = 'at-factory' order by id limit 1")
    fl = client_for(app, "factory_liaison")
    pdf = fl.get(f"/samples/labels.pdf?id={hidden}&id={seen}&layout=single").data
    assert qr_texts(pdf) == [f"http://localhost/samples/{seen}"]
    assert fl.get(f"/samples/labels.pdf?id={hidden}").status_code == 404
    assert client_for(app, "md").get(f"/samples/labels.pdf?id={hidden}").status_code == 200  # positive control


# ---------------------------------------------------------------- small things
def test_demo_emails_match_names(db):
    rows = db.execute("select email, full_name, role::text from app.staff").fetchall()
    assert len(rows) > 12
    for email, name, role in rows:
        if email == f"{role}@example.com":
            continue
        first, last = name.lower().split(" ", 1)
        assert email == f"{first}.{last.replace(' ', '')}@example.com", (email, name)


def test_rate_and_days_wording(app, db):
    sid = one(db, "select s.id from app.samples s join app.sample_costs k on k.sample_id = s.id "
                  "where k.currency = 'EUR' and s.state = 'received' limit 1")
    page = text_of(client_for(app, "md").get(f"/samples/{sid}"))
    assert "1 EUR = 0.85 GBP" in page and "0.850000" not in page
    today = one(db, "select id from app.samples where state_changed_at::date = current_date order by id limit 1")
    page = text_of(client_for(app, "md").get(f"/samples/{today}"))
    assert "for 0 days" not in page and "(today)" in page


def test_times_are_shown_in_the_configured_time_zone(app, db):
    sid = one(db, "select min(id) from app.samples")
    c = client_for(app, "md")
    assert re.search(r"\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} (GMT|BST)", text_of(c.get(f"/samples/{sid}")))
    app.config["TZ"] = "America/New_York"
    try:
        assert re.search(r"\d{2}:\d{2} (EST|EDT)", text_of(c.get(f"/samples/{sid}")))
    finally:
        app.config.pop("TZ")
