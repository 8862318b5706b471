"""The correction pages (issue 10, items 14-16) through Flask's test client against a
private clone of the demo database: correct a sample and its order, cancel an order,
remove a photo, reference data by role, the colleague directory, staff admin."""
import re

import pytest

from conftest import signed_in_client, cloned_web_app


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_corrections") as app:
        yield app



def one(db, sql, *params):
    row = db.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


client_for = signed_in_client


def text(r):
    return r.get_data(as_text=True)


def ordered_by(db, email):
    return one(db, "select s.id from app.samples s join app.staff st on st.id = s.requested_by "
                   "join app.sample_costs c on c.sample_id = s.id "
                   "where s.state = 'ordered' and st.email = %s and s.expected_on >= current_date "
                   "order by s.id limit 1", email)


# ---------------------------------------------------------------- correcting and cancelling
def test_the_correction_form_starts_from_the_record_and_saves(app, db):
    sid = ordered_by(db, "buyer@example.com")
    c = client_for(app, "buyer")
    page = text(c.get(f"/samples/{sid}"))
    title = one(db, "select title from app.samples where id = %s", sid)
    assert "Correct the details" in page
    assert f'id="correct-title" name="title" value="{title}"' in page
    assert 'id="correct-unit_cost"' in page and 'id="correct-po_number"' in page
    style = one(db, "select coalesce(style_code, '') from app.samples where id = %s", sid)
    form = {"csrf": c.csrf, "title": "Corrected in the browser", "style_code": style, "po_number": "PO-WEB-1",
            "expected_on": "", "unit_cost": "", "currency": "", "quantity": "", "note": "typo"}
    r = c.post(f"/samples/{sid}/act/correct", data=form)
    assert r.status_code == 303
    page = text(c.get(r.location))
    assert f"Sample {sid} corrected." in page
    assert one(db, "select title from app.samples where id = %s", sid) == "Corrected in the browser"
    assert one(db, "select po_number from app.sample_costs where sample_id = %s", sid) == "PO-WEB-1"
    corrected = re.search(r"corrected ([^<]*)", page).group(1)  # the timeline says what changed
    assert "title" in corrected and "po number" in corrected


def test_a_refused_correction_keeps_what_was_typed(app, db):
    sid = ordered_by(db, "buyer@example.com")
    c = client_for(app, "buyer")
    r = c.post(f"/samples/{sid}/act/correct", data={"csrf": c.csrf, "title": "Kept title", "unit_cost": "-4"})
    page = text(c.get(r.location))
    assert "unit cost must be above zero" in page
    assert 'value="Kept title"' in page


def test_a_designer_is_not_offered_a_correction_and_cannot_post_one(app, db):
    sid = one(db, "select id from app.samples where state = 'ordered' order by id limit 1")
    c = client_for(app, "designer")
    assert "Correct the details" not in text(c.get(f"/samples/{sid}"))
    before = one(db, "select title from app.samples where id = %s", sid)
    r = c.post(f"/samples/{sid}/act/correct", data={"csrf": c.csrf, "title": "Not mine"})
    assert "only a buyer or a senior buyer can correct the details" in text(c.get(r.location))
    assert one(db, "select title from app.samples where id = %s", sid) == before


def test_cancel_an_order_from_the_sample_page(app, db):
    sid = ordered_by(db, "buyer@example.com")
    c = client_for(app, "buyer")
    assert "Cancel the order" in text(c.get(f"/samples/{sid}"))
    r = c.post(f"/samples/{sid}/act/cancel_order", data={"csrf": c.csrf, "reason": "duplicate of another order"})
    page = text(c.get(r.location))
    assert "cancelled: the order is withdrawn" in page
    assert 'class="state state-withdrawn">withdrawn<' in page
    assert one(db, "select display_state from app.sample_overview where id = %s", sid) == "withdrawn"


# ---------------------------------------------------------------- removing a photo
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")


def test_the_uploader_removes_a_photo_others_get_no_button(app, db):
    import io
    sid = one(db, "select id from app.samples where state = 'received' order by id limit 1")
    c = client_for(app, "logistics")
    r = c.post(f"/samples/{sid}/photos", data={"csrf": c.csrf, "caption": "oops",
                                               "photo": (io.BytesIO(PNG), "x.png")},
               content_type="multipart/form-data")
    assert r.status_code in (302, 303)
    pid = one(db, "select max(id) from app.sample_photos where sample_id = %s", sid)
    page = text(c.get(f"/samples/{sid}"))
    assert f"/photos/{pid}/remove" in page
    other = client_for(app, "qc")
    assert f"/photos/{pid}/remove" not in text(other.get(f"/samples/{sid}"))
    # posting anyway is refused by the database, and the photo stays
    r = other.post(f"/samples/{sid}/photos/{pid}/remove", data={"csrf": other.csrf, "reason": "not mine"})
    assert "only the person who added it" in text(other.get(r.location))
    assert one(db, "select removed_at is null from app.sample_photos where id = %s", pid)
    r = c.post(f"/samples/{sid}/photos/{pid}/remove", data={"csrf": c.csrf, "reason": "wrong sample"})
    page = text(c.get(r.location))
    assert "Photo removed" in page and f"/samples/photos/{pid}/thumb" not in page
    assert c.get(f"/samples/photos/{pid}").status_code == 404


# ---------------------------------------------------------------- reference data
# role -> (kind, may add, may change)
REFERENCE = [
    ("system_admin", "categories", True, True),
    ("logistics", "locations", True, True),
    ("logistics", "suppliers", False, False),
    ("factory_liaison", "factories", True, True),
    ("buyer", "suppliers", True, False),
    ("senior_buyer", "suppliers", True, True),
    ("designer", "seasons", False, False),
]


@pytest.mark.parametrize("role,kind,can_add,can_change", REFERENCE)
def test_reference_pages_show_the_forms_the_grants_allow(app, db, role, kind, can_add, can_change):
    c = client_for(app, role)
    page = text(c.get(f"/reference/{kind}"))
    assert (f'method="post" action="/reference/{kind}"' in page) == can_add
    assert bool(re.search(rf'action="/reference/{kind}/\d+"', page)) == can_change
    csv = c.get(f"/reference/{kind}.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"


def test_adding_and_changing_a_location_and_refusals(app, db):
    c = client_for(app, "logistics")
    r = c.post("/reference/locations", data={"csrf": c.csrf, "code": "R9-TEST", "name": "Rail nine", "kind": "shelf"})
    assert r.status_code == 303
    assert "Location R9-TEST added." in text(c.get(r.location))
    lid = one(db, "select id from app.locations where code = 'R9-TEST'")
    r = c.post(f"/reference/locations/{lid}", data={"csrf": c.csrf, "code": "R9-TEST", "name": "Rail 9", "kind": "studio"})
    assert "Location saved." in text(c.get(r.location))
    assert one(db, "select name || '/' || kind from app.locations where id = %s", lid) == "Rail 9/studio"
    # a duplicate code is a sentence, not an error page, and changes nothing
    r = c.post("/reference/locations", data={"csrf": c.csrf, "code": "R9-TEST", "name": "Again", "kind": "shelf"})
    assert "A location with that code exists already." in text(c.get(r.location))
    assert one(db, "select count(*) from app.locations where code = 'R9-TEST'") == 1
    # someone the grants do not allow is refused by the database
    d = client_for(app, "designer")
    r = d.post("/reference/locations", data={"csrf": d.csrf, "code": "HACK", "name": "x", "kind": "shelf"})
    assert "not allowed" in text(d.get(r.location))
    assert one(db, "select count(*) from app.locations where code = 'HACK'") == 0
    assert d.post(f"/reference/locations/{lid}", data={"csrf": d.csrf, "name": "x"}).status_code == 403


def test_a_bad_season_code_is_explained(app, db):
    c = client_for(app, "system_admin")
    r = c.post("/reference/seasons", data={"csrf": c.csrf, "code": "XX1", "name": "Bad", "starts_on": "2027-01-01",
                                           "ends_on": "2027-06-30"})
    assert "A season code is SS or AW and two digits" in text(c.get(r.location))


def test_reference_nav_only_for_those_who_edit_something(app, db):
    assert "Reference data</a>" in text(client_for(app, "logistics").get("/"))
    assert "Reference data</a>" not in text(client_for(app, "designer").get("/"))


# ---------------------------------------------------------------- people and staff admin
@pytest.mark.parametrize("role", ["buyer", "designer", "qc", "finance", "system_admin"])
def test_the_people_directory_has_names_roles_teams_and_no_addresses(app, db, role):
    c = client_for(app, role)
    page = text(c.get("/people/?role=designer"))
    some_designer = one(db, "select full_name from app.staff where role = 'designer' and active order by full_name limit 1")
    assert some_designer in page
    assert "@example.com" not in page and "Invite" not in page and "sign-up link" not in page
    csv = text(c.get("/people/people.csv"))
    assert csv.startswith("Name,Role,Team") and "@" not in csv
    assert c.get("/admin/staff").status_code == (200 if role == "system_admin" else 403)


def test_staff_admin_shows_last_sign_in_and_names_each_button(app, db):
    c = client_for(app, "system_admin")
    page = text(c.get("/admin/staff"))
    assert "Last sign-in" in page
    name = one(db, "select full_name from app.staff where email = 'qc@example.com'")
    assert f'aria-label="New sign-up link for {name}"' in page
    assert len(re.findall(r'aria-label="New sign-up link for ', page)) == len(set(
        re.findall(r'aria-label="(New sign-up link for [^"]+)"', page)))


def test_the_invite_form_has_no_default_role(app, db):
    page = text(client_for(app, "system_admin").get("/admin/staff/new"))
    select = re.search(r'<select id="role".*?</select>', page, re.S).group(0)
    assert '<option value="">choose a role…</option>' in select and "selected" not in select


def test_deactivation_asks_for_confirmation_first(app, db):
    c = client_for(app, "system_admin")
    sid = one(db, "select id from app.staff where email = 'sales_executive@example.com'")
    page = text(c.get(f"/admin/staff/{sid}"))
    version = re.search(r'name="row_version" value="([^"]*)"', page).group(1)
    form = {"csrf": c.csrf, "row_version": version, "was_active": "1", "full_name": "Sam Exec",
            "email": "sales_executive@example.com", "role": "sales_executive", "team_id": ""}
    first = c.post(f"/admin/staff/{sid}", data=form)
    assert first.status_code == 200 and "Yes, deactivate" in text(first)
    assert one(db, "select active from app.staff where id = %s", sid) is True  # nothing changed yet
    second = c.post(f"/admin/staff/{sid}", data={**form, "confirm": "deactivate"})
    assert second.status_code == 302
    assert one(db, "select active from app.staff where id = %s", sid) is False
