"""Importing the old spreadsheet (issue 14): a 10,000-row CSV read and mapped, then the web
app's own path as logistics (tracker/web/imports.run_rows): the dry run (every row checked,
nothing written) and the import (checks, then the writes), each rolled back; against
inserting the same rows as the owner with no checks, and against the path before this
session (a savepoint per written row) on the first 1,000 rows."""
import time

import psycopg
from psycopg.types.json import Jsonb

from psycopg.rows import dict_row

from tracker import imports
from tracker.web.imports import run_rows

from .common import Result


def run(ctx):
    n = 1_000 if ctx.quick else 10_000
    _, role, _ = ctx.persona("logistics@example.com")
    token = ctx.session("logistics@example.com")
    with psycopg.connect(ctx.url) as owner:
        category = owner.execute("select name from app.categories order by id limit 1").fetchone()[0]
        season = owner.execute("select code from app.seasons order by starts_on desc limit 1").fetchone()[0]
        supplier = owner.execute("select name from app.suppliers where on_hold_at is null order by id limit 1"
                                 ).fetchone()[0]
        team = owner.execute("select code from app.teams order by id limit 1").fetchone()[0]
        shelf = owner.execute("select code from app.locations order by id limit 1").fetchone()[0]
    lines = ["Ref,Description,Category,Season,Team,Supplier,Status,Shelf,Received"]
    lines += [f"BENCH-{i},Imported sample {i},{category},{season},{team},{supplier},received,{shelf},14/03/2026"
              for i in range(n)]
    data = "\n".join(lines).encode()

    t = time.perf_counter()
    headers, rows = imports.read("bench.csv", data)
    prepared = imports.prepare([{k: imports.to_json(v) for k, v in r.items()} for r in rows],
                               imports.guess_mapping(headers))
    parse_s = time.perf_counter() - t

    batch = {"rows": [{k: imports.to_json(v) for k, v in r.items()} for r in rows],
             "mapping": imports.guess_mapping(headers)}
    with psycopg.connect(ctx.app_url, row_factory=dict_row) as app:
        # what the web app does (tracker/web/imports.py): the dry run, then the import itself
        t = time.perf_counter()
        with app.transaction(force_rollback=True):
            app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))
            dry = run_rows(app, batch, write=False)
        dry_s = time.perf_counter() - t
        t = time.perf_counter()
        with app.transaction(force_rollback=True):
            app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))
            done = run_rows(app, batch, write=True)
        import_s = time.perf_counter() - t
        assert all(r["outcome"] == "created" for r in dry) and all(r["sample_id"] for r in done)
        # before (issue 14, last session): every row written in its own savepoint; the first rows only,
        # it gets slower with every row
        k = min(n, 1_000)
        t = time.perf_counter()
        with app.transaction(force_rollback=True):
            app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))
            for row in prepared[:k]:
                with app.transaction():
                    app.execute("select * from app.import_sample(%s, %s)", (row["ref"], Jsonb(row["values"])))
        before_s = time.perf_counter() - t
    with psycopg.connect(ctx.url) as owner:
        t = time.perf_counter()
        with owner.transaction(force_rollback=True):
            ids = owner.execute("select (select id from app.categories where name = %s), "
                                "(select id from app.seasons where code = %s), (select id from app.teams where code = %s), "
                                "(select min(id) from app.staff where role = 'senior_buyer'), (select id from app.suppliers where name = %s)",
                                (category, season, team, supplier)).fetchone()
            for row in prepared:
                owner.execute("insert into app.samples (title, category_id, season_id, team_id, requested_by, supplier_id, "
                              "state, received_on, external_ref) values (%s, %s, %s, %s, %s, %s, 'received', "
                              "current_date, %s)",
                              (row["values"]["title"], *ids, row["ref"]))
        owner_s = time.perf_counter() - t
    return [Result(f"spreadsheet import, {n:,} rows (read + map), rows/s", round(n / parse_s), "rows/s", None, "",
                   higher_is_better=True),
            Result(f"spreadsheet dry run, {n:,} rows (checked, nothing written), seconds", round(dry_s + parse_s, 2),
                   "s", None, ""),
            Result(f"spreadsheet import, {n:,} rows (checks, then writes), rows/s", round(n / import_s), "rows/s",
                   round(n / owner_s), "owner inserts, no checks", higher_is_better=True,
                   extra={"import_s": round(import_s, 2), "owner_s": round(owner_s, 2)}),
            Result(f"spreadsheet import, first {k:,} rows, a savepoint per written row (before), rows/s",
                   round(k / before_s), "rows/s", round(n / import_s), f"{n:,} rows, checks then writes",
                   higher_is_better=True)]
