"""Importing the old spreadsheet (issue 14, item 5) with a realistic messy workbook: typos,
blank rows, dates in three formats, a duplicate row and a formula cell. The dry run
reports per row and writes nothing; the import writes the good rows through
app.import_sample; importing the same file again creates nothing twice."""
import io
import re
from datetime import date

import openpyxl
import pytest

from conftest import signed_in_client, cloned_web_app
from tracker import imports


@pytest.fixture(scope="module")
def app(template):
    with cloned_web_app(template, "tracker_test_import") as app:
        yield app



client_for = signed_in_client


def messy_workbook(db) -> bytes:
    season = db.execute("select code from app.seasons order by starts_on desc limit 1").fetchone()[0]
    supplier = db.execute("select name from app.suppliers where active and on_hold_at is null order by id limit 1"
                          ).fetchone()[0]
    shelf = db.execute("select code from app.locations order by id limit 1").fetchone()[0]
    designer = db.execute("select email from app.staff where email = 'designer@example.com'").fetchone()[0]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Sample No", "Description", "Category", "Season", "Team", "Supplier", "Status", "Shelf", "With",
               "Expected", "Received", "On loan"])
    rows = [
        ["OLD-1", "Ivory linen wrap dress", "Dresses", season, "WW", supplier, "received", shelf, None,
         "2026-03-01", "14/03/2026", "yes"],                                                    # row 2: good
        ["OLD-2", "Navy cable jumper", "knitwear", season, "ww", supplier, "with design", None, designer,
         date(2026, 3, 2), "15 Mar 2026", "no"],                                                 # row 3: good
        [None] * 12,                                                                            # row 4: blank
        ["OLD-3", "Camel overcoat", "Outerwear", "SS 2099", "WW", supplier, "ordered", None, None,
         "2099-01-01", None, None],                                                              # row 5: season typo
        ["OLD-4", "Black loafer", "Footware", season, "WW", supplier, "requested", None, None, None, None, None],  # typo
        ["OLD-1", "Ivory linen wrap dress", "Dresses", season, "WW", supplier, "received", shelf, None,
         "2026-03-01", "14/03/2026", "yes"],                                                    # row 7: duplicate
        ["OLD-5", "=A2&\" copy\"", "Dresses", season, "WW", supplier, "requested", None, None, None, None, None],  # formula
        ["OLD-6", "Tote bag", "Bags", season, "WW", supplier, "received", shelf, None, "31/02/2026", None, None],  # bad date
    ]
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_read_and_prepare_the_messy_workbook(db):
    headers, rows = imports.read("old.xlsx", messy_workbook(db))
    assert [r["_row"] for r in rows] == [2, 3, 5, 6, 7, 8, 9]  # the blank row is gone
    mapping = imports.guess_mapping(headers)
    assert mapping["Sample No"] == "external_ref" and mapping["Description"] == "title"
    assert mapping["Shelf"] == "location" and mapping["With"] == "holder" and mapping["Status"] == "state"
    prepared = {p["_row"]: p for p in imports.prepare([{k: imports.to_json(v) for k, v in r.items()} for r in rows],
                                                      mapping)}
    assert prepared[2]["values"]["expected_on"] == "2026-03-01" and prepared[2]["values"]["received_on"] == "2026-03-14"
    assert prepared[3]["values"]["received_on"] == "2026-03-15" and prepared[3]["values"]["expected_on"] == "2026-03-02"
    assert "duplicate of row 2" in prepared[7]["error"]
    assert "formula with no saved value" in prepared[8]["error"]
    assert "is not a date" in prepared[9]["error"]


def test_dry_run_then_import_then_reimport(app, db):
    data = messy_workbook(db)
    before = db.execute("select count(*) from app.samples").fetchone()[0]
    c = client_for(app, "logistics")
    r = c.post("/import/", data={"csrf": c.csrf, "file": (io.BytesIO(data), "old.xlsx")},
               content_type="multipart/form-data")
    batch = int(r.location.rstrip("/").rsplit("/", 1)[1])
    page = c.get(r.location).get_data(as_text=True)
    assert "7 rows read from old.xlsx" in page
    # the guessed mapping is offered; confirm it
    form = {"csrf": c.csrf}
    for i, sel in re.findall(r'<select id="map-(\d+)" name="map-\d+">(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([a-z_]+)" selected>', sel)
        form[f"map-{i}"] = chosen.group(1) if chosen else ""
    r = c.post(f"/import/{batch}", data=form)
    dry = c.get(r.location).get_data(as_text=True)
    assert "Dry run: nothing written yet" in dry
    assert "2 would be created" in dry and "6 with errors" not in dry
    assert "Season &#39;SS 2099&#39; does not exist" in dry
    assert "Category &#39;Footware&#39; does not exist; did you mean &#39;Footwear&#39;?<" in dry
    assert "duplicate of row 2" in dry and "formula with no saved value" in dry and "is not a date" in dry
    assert db.execute("select count(*) from app.samples").fetchone()[0] == before  # nothing written
    done = c.post(f"/import/{batch}/commit", data={"csrf": c.csrf}).get_data(as_text=True)
    assert "2 samples imported" in done
    rows = db.execute("select s.external_ref, s.state::text, s.received_on, s.on_loan, l.code, h.email "
                      "from app.samples s left join app.locations l on l.id = s.location_id "
                      "left join app.staff h on h.id = s.holder_id where s.external_ref like 'OLD-%' "
                      "order by 1").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("OLD-1", "received"), ("OLD-2", "with-design")]
    assert rows[0][2] == date(2026, 3, 14) and rows[0][3] is True and rows[0][4]
    assert rows[1][5] == "designer@example.com"
    ev = db.execute("select action, actor_role, details -> 'row' ->> 'title' from app.sample_events e "
                    "join app.samples s on s.id = e.sample_id where s.external_ref = 'OLD-2'").fetchone()
    assert ev == ("import", "logistics", "Navy cable jumper")
    # the same file again: the mapping is remembered and nothing is created twice
    r = c.post("/import/", data={"csrf": c.csrf, "file": (io.BytesIO(data), "old.xlsx")},
               content_type="multipart/form-data")
    assert "mapping remembered" in c.get(r.location).get_data(as_text=True)
    batch2 = int(r.location.rstrip("/").rsplit("/", 1)[1])
    again = c.post(f"/import/{batch2}/commit", data={"csrf": c.csrf}).get_data(as_text=True)
    assert "0 samples imported; 2 were imported before" in again
    assert db.execute("select count(*) from app.samples where external_ref like 'OLD-%'").fetchone()[0] == 2


@pytest.mark.parametrize("who,status", [("designer", 403), ("buyer", 403), ("finance", 403)])
def test_only_importers_import(app, db, who, status):
    c = client_for(app, who)
    r = c.post("/import/", data={"csrf": c.csrf, "file": (io.BytesIO(b"ref,title\n1,x\n"), "x.csv")},
               content_type="multipart/form-data")
    assert r.status_code == status


def test_a_file_that_is_not_a_spreadsheet_is_refused_with_a_sentence(app):
    c = client_for(app, "logistics")
    for name, data, words in (("x.pdf", b"%PDF", "Upload a .csv or .xlsx file"),
                              ("x.xlsx", b"not a zip", "cannot be read as an Excel workbook")):
        r = c.post("/import/", data={"csrf": c.csrf, "file": (io.BytesIO(data), name)},
                   content_type="multipart/form-data")
        assert words in c.get(r.location).get_data(as_text=True)
