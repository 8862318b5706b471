"""Realistic, deterministic data at scale: `make data SAMPLES=1000000`.

Builds a separate database (default tracker_bench) on the same server, migrated like
production, then fills it with set-based SQL (generate_series, seeded random()):
20 teams, ~200 staff over all twelve roles, 2,000 suppliers with a long-tail (Pareto)
share of samples, four years of seasons with seasonal peaks, samples in every state
with plausible dwell times, ~8 events per sample, QC rejects concentrated on a few
suppliers, costs in several currencies.

The bulk load runs with session_replication_role = replica: audit, NOTIFY and
foreign-key triggers do not fire (the audit log records real changes only, and the
generator is consistent by construction; a check at the end proves no orphans). What the
triggers would have derived is written by the load itself: each sample's search document
(checked against app_private.search_document at the end) and its near-duplicate match row.
Secondary indexes are dropped for the load and rebuilt after it."""
import argparse
import sys
import time

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tracker import config
from tracker.migrate import migrate

console = Console(stderr=True)
CHUNK = 50_000
SEED = 0.4421

REFERENCE_SQL = """
insert into app.teams (code, name)
select 'T' || chr(65 + i), 'Team ' || chr(65 + i) from generate_series(0, 19) i;

insert into app.currencies (code, name, gbp_rate) values
  ('GBP', 'Pound sterling', 1), ('EUR', 'Euro', 0.85), ('USD', 'US dollar', 0.79),
  ('CNY', 'Renminbi', 0.11), ('TRY', 'Turkish lira', 0.024), ('INR', 'Indian rupee', 0.0095);

insert into app.categories (name, department)
select 'Category ' || lpad(i::text, 2, '0'), (array['Womenswear', 'Menswear', 'Accessories', 'Materials'])[1 + i % 4]
  from generate_series(1, 30) i;

insert into app.seasons (code, name, starts_on, ends_on)
select k || lpad((y % 100)::text, 2, '0'), k || ' ' || y,
       case k when 'SS' then make_date(y - 1, 7, 1) else make_date(y, 1, 1) end,
       case k when 'SS' then make_date(y, 6, 30) else make_date(y, 12, 31) end
  from generate_series(extract(year from current_date)::int - 3, extract(year from current_date)::int) y,
       unnest(array['SS', 'AW']) k;

insert into app.locations (code, name, kind)
select 'LOC-' || lpad(i::text, 3, '0'), 'Location ' || i,
       (array['shelf', 'shelf', 'shelf', 'studio', 'showroom', 'dispatch'])[1 + i % 6]
  from generate_series(1, 60) i;

insert into app.factories (name, country, city)
select 'Factory ' || lpad(i::text, 2, '0'), (array['PT', 'TR', 'IT', 'CN', 'GB', 'IN'])[1 + i % 6], 'City ' || i
  from generate_series(1, 40) i;

insert into app.suppliers (name, country)
select 'Supplier ' || lpad(i::text, 4, '0'), (array['PT', 'TR', 'IT', 'CN', 'GB', 'IN', 'US'])[1 + i % 7]
  from generate_series(1, 2000) i;
insert into app.supplier_contacts (supplier_id, name, email, phone, position)
select id, 'Contact ' || id, 'sales' || id || '@supplier.example.com', '+44 20 7946 ' || lpad(id::text, 4, '0'),
       'Sales manager'
  from app.suppliers;

-- one login per role first (<role>@example.com, the personas of tests and benchmarks),
-- then the rest: 4 buyers + 1 senior buyer per team, and the shared functions
insert into app.staff (email, full_name, role, team_id)
select r || '@example.com', initcap(replace(r, '_', ' ')) || ' One', r::app.staff_role,
       case when r in ('buyer', 'senior_buyer') then (select min(id) from app.teams) end
  from unnest(enum_range(null::app.staff_role)::text[]) r;
insert into app.staff (email, full_name, role, team_id)
select format('%s.%s.%s@example.com', r, t.code, n), format('%s %s %s', initcap(replace(r, '_', ' ')), t.code, n),
       r::app.staff_role, t.id
  from app.teams t, unnest(array['buyer', 'buyer', 'buyer', 'buyer', 'senior_buyer']) with ordinality as x(r, n);
insert into app.staff (email, full_name, role)
select format('%s.%s@example.com', r, n), format('%s %s', initcap(replace(r, '_', ' ')), n), r::app.staff_role
  from (values ('designer', 20), ('sales_lead', 8), ('sales_executive', 20), ('qc', 10), ('factory_liaison', 10),
               ('logistics', 20), ('finance', 6), ('ops_director', 2), ('md', 1), ('system_admin', 3)) v(r, k),
       generate_series(1, k) n;
"""

# a small lookup the chunk SQL uses: staff ids by role (and by team for buyers)
LOOKUP_SQL = """
create temporary table gen_staff as
select role::text as role, team_id, array_agg(id order by id) as ids from app.staff group by 1, 2;
create temporary table gen_paths (state text, pos int, action text, from_state text, to_state text, actor text);
insert into gen_paths select s, p, a, f, t, r from (values
  ('requested', 1, 'request', null, 'requested', 'buyer'),
  ('ordered', 1, 'request', null, 'requested', 'buyer'), ('ordered', 2, 'order', 'requested', 'ordered', 'buyer'),
  ('x', 1, 'request', null, 'requested', 'buyer'), ('x', 2, 'order', 'requested', 'ordered', 'buyer'),
  ('x', 3, 'receive', 'ordered', 'received', 'logistics'), ('x', 4, 'inspect', 'received', 'received', 'qc'),
  ('x', 5, 'hand_to_design', 'received', 'with-design', 'designer'),
  ('x', 6, 'hand_to_sales', 'with-design', 'with-sales', 'sales_lead'),
  ('x', 7, 'send_to_factory', 'with-sales', 'at-factory', 'factory_liaison'),
  ('x', 8, 'return_from_factory', 'at-factory', 'received', 'factory_liaison'),
  ('x', 9, 'return_to_supplier', 'received', 'returned', 'logistics')) v(s, p, a, f, t, r);
-- the long path 'x' is cut to the length that ends in each state
insert into gen_paths select 'received', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 4;
insert into gen_paths select 'with-design', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 5;
insert into gen_paths select 'with-sales', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 6;
insert into gen_paths select 'at-factory', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 7;
insert into gen_paths select 'returned', pos, action, from_state, to_state, actor from gen_paths where state = 'x';
insert into gen_paths select 'cut-for-production', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 7;
insert into gen_paths values ('cut-for-production', 8, 'approve_for_production', 'at-factory', 'at-factory', 'senior_buyer'),
                             ('cut-for-production', 9, 'cut_for_production', 'at-factory', 'cut-for-production', 'factory_liaison');
insert into gen_paths select 'rejected', pos, action, from_state, to_state, actor from gen_paths where state = 'x' and pos <= 4;
insert into gen_paths values ('rejected', 5, 'return_to_supplier', 'received', 'returned', 'logistics'),
                             ('withdrawn', 1, 'request', null, 'requested', 'buyer'),
                             ('withdrawn', 2, 'withdraw', 'requested', 'returned', 'buyer');
delete from gen_paths where state = 'x';
create index on gen_paths (state);
"""

SAMPLES_SQL = """
with base as (
  select i, 1000 + i as id,
         1 + floor(random() * 20)::int as team_no,
         -- long tail: a few suppliers get most samples
         1 + floor(2000 * power(random(), 3))::int as supplier_no,
         1 + floor(random() * 30)::int as category_no,
         random() as r_state, random() as r_loan, random() as r_misc, random() as r_qc, random() as r_holder,
         -- four years back, denser recently, with peaks around the two buying seasons
         greatest(0, 1460 * power(random(), 1.15) - 25 * sin(2 * pi() * random())) as age_days
    from generate_series(%(lo)s::int, %(hi)s::int) i
), shaped as (
  select b.*, t.id as team_id,
         (select min(id) from app.suppliers) - 1 + supplier_no as supplier_id,
         (select min(id) from app.categories) - 1 + category_no as category_id,
         now() - make_interval(secs => age_days * 86400) as created_at,
         case
           when age_days < 3 then 'requested'
           when age_days < 14 then case when r_state < 0.75 then 'ordered' else 'requested' end
           when age_days < 60 then case when r_state < 0.15 then 'received' when r_state < 0.40 then 'with-design'
                                        when r_state < 0.60 then 'with-sales' when r_state < 0.70 then 'at-factory'
                                        when r_state < 0.95 then 'returned' else 'cut-for-production' end
           else case when r_state < 0.75 then 'returned' when r_state < 0.95 then 'cut-for-production'
                     when r_state < 0.97 then 'with-design' when r_state < 0.98 then 'with-sales'
                     when r_state < 0.99 then 'received' else 'at-factory' end
         end as state,
         (supplier_no %% 97 = 1) as bad_supplier
    from base b join app.teams t on t.code = 'T' || chr(64 + b.team_no)
), final as (
  select s.*,
         s.state = 'requested' and r_misc < 0.4 as no_supplier,
         s.state = 'returned' and r_misc < 0.03 as withdrawn,
         s.state not in ('requested', 'ordered') and r_qc < case when bad_supplier then 0.45 else 0.02 end as rejected,
         (array['Slip dress', 'Cable jumper', 'Oxford shirt', 'Trench coat', 'Tote bag', 'Loafer', 'Straight jean',
                'Linen swatch', 'Wrap dress', 'Blazer'])[1 + s.id %% 10] || ' ' || s.id as title,
         'ST-' || s.id as style_code
    from shaped s
)
insert into app.samples (id, title, style_code, category_id, season_id, team_id, requested_by, supplier_id, state,
                         holder_id, location_id, factory_id, on_loan, expected_on, received_on, return_due_on,
                         qc_rejected, production_approved_by, production_approved_at, courier_ref, withdrawn_at,
                         state_changed_at, version, created_at, updated_at, search)
overriding system value
select f.id,
       f.title,
       f.style_code,
       f.category_id,
       (select id from app.seasons se where se.starts_on <= f.created_at::date + 60 order by se.starts_on desc limit 1),
       f.team_id,
       (select ids[1 + f.id %% cardinality(ids)] from gen_staff g where g.role = 'buyer' and g.team_id = f.team_id),
       case when f.no_supplier then null else f.supplier_id end,
       (case when f.withdrawn then 'returned' when f.rejected and f.state not in ('returned') then 'returned'
             else f.state end)::app.sample_state,
       case f.state when 'with-design' then (select ids[1 + f.id %% cardinality(ids)] from gen_staff where role = 'designer')
                    when 'with-sales' then (select ids[1 + f.id %% cardinality(ids)] from gen_staff where role = 'sales_executive') end,
       case when f.state in ('received', 'with-design', 'with-sales') and not f.rejected
            then (select min(id) from app.locations) + f.id %% 60 end,
       case when f.state in ('at-factory', 'cut-for-production') or (f.state = 'returned' and f.r_misc > 0.7)
            then (select min(id) from app.factories) + f.id %% 40 end,
       f.r_loan < 0.3,
       case when f.state <> 'requested' then (f.created_at + interval '12 days')::date end,
       case when f.state not in ('requested', 'ordered') and not f.withdrawn then (f.created_at + interval '14 days')::date end,
       case when f.r_loan < 0.3 and f.state not in ('requested', 'ordered') and not f.withdrawn
            then (f.created_at + interval '35 days')::date end,
       f.rejected and not f.withdrawn,
       case when f.state = 'cut-for-production' or (f.state = 'at-factory' and f.r_misc < 0.5)
            then (select ids[1 + f.id %% cardinality(ids)] from gen_staff g where g.role = 'buyer' and g.team_id = f.team_id) end,
       case when f.state = 'cut-for-production' or (f.state = 'at-factory' and f.r_misc < 0.5)
            then f.created_at + interval '40 days' end,
       case when f.state = 'returned' and not f.withdrawn then 'DHL' || f.id end,
       case when f.withdrawn then f.created_at + interval '2 days' end,
       f.created_at + make_interval(secs => f.age_days * 86400 * (0.3 + 0.6 * f.r_misc)),
       1, f.created_at, f.created_at + make_interval(secs => f.age_days * 86400 * (0.3 + 0.6 * f.r_misc)),
       -- the search document the insert trigger would have written (app_private.search_document), set-based:
       -- calling the function per row would take 16 s per million samples, this 3.5 s; checked at the end
       setweight(to_tsvector('english', f.title), 'A') || setweight(to_tsvector('simple', f.style_code), 'A')
       || setweight(to_tsvector('english', coalesce((select c.name from app.categories c where c.id = f.category_id), '')), 'B')
       || setweight(to_tsvector('english', coalesce(case when not f.no_supplier
                                                        then (select p.name from app.suppliers p where p.id = f.supplier_id) end, '')), 'B')
  from final f
"""

# fix the approver to a senior buyer of the team (buyer ids were a placeholder above)
APPROVER_SQL = """
update app.samples s set production_approved_by = (select ids[1] from gen_staff g where g.role = 'senior_buyer'
                                                                                   and g.team_id = s.team_id)
 where s.id between 1000 + %(lo)s and 1000 + %(hi)s and s.production_approved_by is not null
"""

COSTS_SQL = """
insert into app.sample_costs (sample_id, team_id, unit_cost, quantity, currency, fx_rate_to_gbp, po_number, updated_at)
select s.id, s.team_id, round((40 + 400 * random())::numeric / c.gbp_rate * 0.9, 2), 1 + (s.id %% 7 = 0)::int * 2,
       c.code, c.gbp_rate, 'PO-' || s.id, s.created_at
  from app.samples s
  join app.currencies c on c.code = (array['GBP', 'EUR', 'EUR', 'USD', 'CNY', 'TRY', 'INR'])[1 + s.id %% 7]
 where s.id between 1000 + %(lo)s and 1000 + %(hi)s and s.state <> 'requested' and s.withdrawn_at is null
"""

EVENTS_SQL = """
insert into app.sample_events (sample_id, action, from_state, to_state, actor_id, actor_role, at, note, details)
select s.id, p.action, p.from_state::app.sample_state, p.to_state::app.sample_state,
       g.ids[1 + (s.id + p.pos) %% cardinality(g.ids)], p.actor,
       s.created_at + (s.state_changed_at - s.created_at) * (p.pos - 1) / greatest(n.len - 1, 1),
       null, '{}'::jsonb
  from app.samples s
  join lateral (select case when s.withdrawn_at is not null then 'withdrawn'
                            when s.qc_rejected then 'rejected' else s.state::text end as path) k on true
  join gen_paths p on p.state = k.path
  join (select state, count(*) as len from gen_paths group by state) n on n.state = k.path
  join gen_staff g on g.role = p.actor and (g.team_id is not distinct from case when p.actor in ('buyer', 'senior_buyer')
                                                                              then s.team_id end)
 where s.id between 1000 + %(lo)s and 1000 + %(hi)s
"""

QC_SQL = """
insert into app.qc_inspections (sample_id, inspector_id, result, reason, inspected_at)
select s.id, (select ids[1 + s.id %% cardinality(ids)] from gen_staff where role = 'qc'),
       case when s.qc_rejected then 'reject' else 'pass' end::app.qc_result,
       case when s.qc_rejected then (array['Seams open', 'Colour off standard', 'Wrong label', 'Pilling'])[1 + s.id %% 4] end,
       s.created_at + interval '15 days'
  from app.samples s
 where s.id between 1000 + %(lo)s and 1000 + %(hi)s and s.received_on is not null and (s.qc_rejected or s.id %% 10 < 7)
"""

# what the near-duplicate check matches on (V0023), as the samples' insert trigger would have
# written it (the triggers are off for the load)
MATCH_SQL = """
insert into app_private.sample_match (sample_id, category_id, title, style_code, in_flight)
select s.id, s.category_id, s.title, s.style_code, s.state not in ('returned', 'cut-for-production')
  from app.samples s
 where s.id between 1000 + %(lo)s and 1000 + %(hi)s
"""

TABLES = ["app.samples", "app.sample_costs", "app.sample_events", "app.qc_inspections", "app_private.sample_match"]


def bench_url(dbname: str) -> str:
    return config.with_dbname(config.database_url(), dbname)


def recreate_database(dbname: str) -> str:
    admin = config.with_dbname(config.database_url(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    url = bench_url(dbname)
    migrate(url)
    return url


def generate(url: str, samples: int) -> dict:
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("set max_parallel_workers_per_gather = 0")
        conn.execute("select setseed(%s)", (SEED,))
        conn.execute(REFERENCE_SQL)
        conn.execute(LOOKUP_SQL)
        indexes = conn.execute(
            "select i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) from pg_index i "
            "where i.indrelid = any(%s::regclass[]) and not i.indisprimary and not i.indisunique",
            (TABLES,)).fetchall()
        for name, _ in indexes:
            conn.execute(f"drop index {name}")
        conn.commit()
        counts = {"events": 0}
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("samples", total=samples, rate="")
            done = 0
            for lo in range(1, samples + 1, CHUNK):
                hi = min(lo + CHUNK - 1, samples)
                p = {"lo": lo, "hi": hi}
                conn.execute(SAMPLES_SQL, p)
                conn.execute(APPROVER_SQL, p)
                conn.execute(MATCH_SQL, p)
                conn.execute(COSTS_SQL, p)
                counts["events"] += conn.execute(EVENTS_SQL, p).rowcount
                conn.execute(QC_SQL, p)
                conn.commit()
                done = hi
                rate = done / (time.perf_counter() - t0)
                bar.update(task, completed=done, rate=f"{rate:,.0f} samples/s")
            itask = bar.add_task("indexes", total=len(indexes), rate="")
            for _, ddl in indexes:
                conn.execute(ddl)
                conn.commit()
                bar.advance(itask)
        conn.execute("select setval(pg_get_serial_sequence('app.samples', 'id'), (select max(id) from app.samples))")
        for t in ("app.sample_events", "app.qc_inspections"):
            conn.execute(f"select setval(pg_get_serial_sequence('{t}', 'id'), (select max(id) from {t}))")
        conn.execute("""update app.samples s set last_qc_result = i.result
                          from (select distinct on (sample_id) sample_id, result from app.qc_inspections
                                 order by sample_id, inspected_at desc, id desc) i where i.sample_id = s.id""")
        conn.execute("""insert into app.supplier_quality (supplier_id, inspections, rejects)
                        select s.supplier_id, count(*), count(*) filter (where i.result = 'reject')
                          from app.qc_inspections i join app.samples s on s.id = i.sample_id
                         where s.supplier_id is not null group by s.supplier_id""")
        # the triggers were off: queue every sample for the analytics refresh's state_days (V0022)
        conn.execute("insert into analytics_private.stays_queue (sample_id) select id from app.samples")
        conn.execute("set session_replication_role = origin")
        orphans = conn.execute("select count(*) from app.sample_events e where not exists "
                               "(select 1 from app.samples s where s.id = e.sample_id)").fetchone()[0]
        if orphans:
            raise RuntimeError(f"generator bug: {orphans} events without a sample")
        # the search documents are what the trigger writes (one sample in a hundred compared)
        stale = conn.execute("select count(*) from app.samples s where s.id % 100 = 0 and s.search is distinct from "
                             "app_private.search_document(s.title, s.style_code, s.category_id, s.supplier_id)"
                             ).fetchone()[0]
        if stale:
            raise RuntimeError(f"generator bug: {stale} samples whose search document differs from the trigger's")
        conn.commit()
        conn.autocommit = True
        conn.execute("vacuum analyze")
        stats = conn.execute("select (select count(*) from app.samples), (select count(*) from app.sample_events), "
                             "(select count(*) from app.qc_inspections), pg_database_size(current_database())"
                             ).fetchone()
    elapsed = time.perf_counter() - t0
    return {"samples": stats[0], "events": stats[1], "inspections": stats[2], "bytes": stats[3], "seconds": elapsed}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--db", default="tracker_bench")
    args = ap.parse_args(argv)
    if args.samples < 1000:
        print("generate: --samples must be at least 1000", file=sys.stderr)
        sys.exit(2)
    try:
        url = recreate_database(args.db)
        s = generate(url, args.samples)
    except (psycopg.Error, RuntimeError) as exc:
        print(f"generate: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)
    print(f"{s['samples']:,} samples, {s['events']:,} events, {s['inspections']:,} inspections in "
          f"{s['seconds']:.0f} s ({s['samples'] / s['seconds']:,.0f} samples/s); "
          f"database {args.db} is {s['bytes'] / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
