"""Reading the old spreadsheet (CSV or XLSX) into rows for app.import_sample: headers
mapped to our fields (guessed from common names, or as remembered for that header layout),
dates in the formats people type normalised to ISO, blank rows dropped, formula cells read
as their cached value (or refused when the file has none), duplicate references flagged.
The database does every other check, in a dry run that is rolled back."""
import csv
import hashlib
import io
from datetime import date, datetime

FIELDS = {  # our field -> (label, header names people use)
    "external_ref": ("Reference (the spreadsheet's own number)", ["ref", "reference", "sample no", "sample number",
                                                                "sample #", "no", "id", "number"]),
    "title": ("Title", ["title", "description", "name", "item", "style name"]),
    "style_code": ("Style code", ["style", "style code", "style no", "sku"]),
    "category": ("Category", ["category", "type", "product type"]),
    "season": ("Season", ["season"]),
    "team": ("Buying team", ["team", "buying team", "department", "dept"]),
    "buyer": ("Buyer (e-mail or name)", ["buyer", "requested by", "owner"]),
    "supplier": ("Supplier", ["supplier", "vendor", "mill"]),
    "state": ("State", ["state", "status", "stage"]),
    "location": ("Location code", ["location", "shelf", "rail", "where"]),
    "holder": ("Holder (e-mail or name)", ["holder", "with", "held by"]),
    "factory": ("Factory", ["factory"]),
    "expected_on": ("Expected date", ["expected", "expected on", "due", "eta"]),
    "received_on": ("Received date", ["received", "received on", "arrived"]),
    "on_loan": ("On loan (yes/no)", ["on loan", "loan", "loaned"]),
    "courier_ref": ("Courier reference", ["courier", "courier ref", "tracking"]),
}
DATE_FIELDS = {"expected_on", "received_on"}
MAX_ROWS = 10_000
MAX_BYTES = 10 * 1024 * 1024


class BadFile(ValueError):
    """A file that cannot be read as a spreadsheet; the message is for the person."""


def read(filename: str, data: bytes) -> tuple[list[str], list[dict]]:
    """Headers and rows ({header: text}, with the spreadsheet row number under '_row')."""
    if len(data) > MAX_BYTES:
        raise BadFile("The file is larger than 10 MB; split it.")
    name = filename.lower()
    if name.endswith(".xlsx"):
        grid = _xlsx(data)
    elif name.endswith(".csv") or name.endswith(".txt"):
        grid = _csv(data)
    else:
        raise BadFile("Upload a .csv or .xlsx file.")
    grid = iter(grid)
    header_row = next(grid, None)
    if not header_row or not any(str(h or "").strip() for h in header_row):
        raise BadFile("The first row must name the columns.")
    headers = [str(h or "").strip() or f"column {i + 1}" for i, h in enumerate(header_row)]
    rows = []
    for n, cells in enumerate(grid, start=2):
        if not any(str(c).strip() for c in cells if c is not None):
            continue  # a blank row
        row = {"_row": n}
        for h, c in zip(headers, cells):
            row[h] = c
        rows.append(row)
        if len(rows) > MAX_ROWS:
            raise BadFile(f"At most {MAX_ROWS:,} rows at once.")
    return headers, rows


def _csv(data: bytes):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise BadFile("That is not a text file.")
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    return list(csv.reader(io.StringIO(text), dialect))


FORMULA = object()


def _xlsx(data: bytes):
    import openpyxl
    try:
        values = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the person's to fix
        raise BadFile("That file cannot be read as an Excel workbook (.xlsx).") from exc
    out = []
    for vrow, frow in zip(values.worksheets[0].iter_rows(values_only=True),
                          formulas.worksheets[0].iter_rows(values_only=True)):
        # a formula whose value was never saved (the file was written by a program) has no value to import
        out.append([FORMULA if (v is None and isinstance(f, str) and f.startswith("=")) else v
                    for v, f in zip(vrow, frow)])
    return out


def to_json(value):
    """A cell as it is kept between upload and import (a formula without a value is marked)."""
    if value is FORMULA:
        return {"formula": True}
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def layout_key(headers: list[str]) -> str:
    return hashlib.sha256("\x1f".join(h.strip().lower() for h in headers).encode()).hexdigest()


def guess_mapping(headers: list[str]) -> dict:
    """header -> field, from the names people use (first match wins)."""
    mapping, taken = {}, set()
    for h in headers:
        key = " ".join(h.lower().replace("_", " ").replace(".", " ").split())
        for field, (_, names) in FIELDS.items():
            if field not in taken and key in names:
                mapping[h] = field
                taken.add(field)
                break
    return mapping


def parse_date(value) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%d/%m/%y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a date (write 2026-03-14, 14/03/2026 or 14 Mar 2026)")


def prepare(rows: list[dict], mapping: dict) -> list[dict]:
    """Rows as app.import_sample takes them: {'_row', 'ref', 'values', 'error'}."""
    out, seen = [], {}
    for row in rows:
        values, error = {}, None
        for header, field in mapping.items():
            if not field or header not in row:
                continue
            v = row[header]
            if v is FORMULA or (isinstance(v, dict) and v.get("formula")):
                error = f"the {FIELDS[field][0].lower()} cell is a formula with no saved value"
                continue
            if v is None or str(v).strip() == "":
                continue
            if field in DATE_FIELDS:
                try:
                    v = parse_date(v)
                except ValueError as exc:
                    error = error or str(exc)
                    continue
            elif isinstance(v, float) and v.is_integer():
                v = str(int(v))
            values[field] = str(v).strip()
        ref = values.pop("external_ref", None)
        if ref and ref in seen:
            error = error or f"duplicate of row {seen[ref]} (same reference {ref})"
        elif ref:
            seen[ref] = row["_row"]
        out.append({"_row": row["_row"], "ref": ref, "values": values, "error": error})
    return out
