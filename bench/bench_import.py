"""Importing the old spreadsheet (issue 14): a 10,000-row CSV read and mapped, then every
row through app.import_sample as logistics (the dry run; rolled back, so the figures also
give the import's own rate), against inserting the same rows as the owner with no checks."""
import time

import psycopg
from psycopg.types.json import Jsonb

from tracker import imports

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

    with psycopg.connect(ctx.app_url) as app:
        t = time.perf_counter()
        with app.transaction(force_rollback=True):
            app.execute("select set_config('role', %s, true), set_config('tracker.session', %s, true)", (role, token))
            for row in prepared:
                with app.transaction():
                    app.execute("select * from app.import_sample(%s, %s)", (row["ref"], Jsonb(row["values"])))
        import_s = time.perf_counter() - t
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
            Result(f"spreadsheet import, {n:,} rows through app.import_sample (dry run), rows/s",
                   round(n / import_s), "rows/s", round(n / owner_s), "owner inserts, no checks",
                   higher_is_better=True, extra={"import_s": round(import_s, 2), "owner_s": round(owner_s, 2)}),
            Result(f"spreadsheet dry run, {n:,} rows, seconds", round(import_s + parse_s, 2), "s", None, "")]
