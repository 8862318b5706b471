-- Attach the audit trigger to every business table in schema app, and the
-- append-only guard to the tables that are logs themselves.
-- The audit trigger's arguments are the table's primary-key columns, read from pg_index
-- here (one column: row_id is its value; several: a JSON array of the values in key
-- order), so a new table is keyed without anyone editing this file; a table without a
-- primary key cannot be audited by key and stops the migration (TR052).
set local role tracker_owner;

do $$
declare
  r record;
begin
  for r in select c.relname,
                  (select array_agg(a.attname::text order by k.n)
                     from pg_index i
                     cross join lateral unnest(i.indkey) with ordinality k(attnum, n)
                     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                    where i.indrelid = c.oid and i.indisprimary) as key_columns
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'app' and c.relkind = 'r'
              -- NOTE: sample_events is not audited: it is itself an append-only log
              -- (guarded in policies/032_sample_events.sql) written only by the lifecycle functions.
              -- NOTE: realtime_events is not audited: it is a derived outbox of signals
              -- about changes that are audited where they happen (080_realtime.sql).
              and c.relname not in ('sample_events', 'realtime_events')
  loop
    if r.key_columns is null then
      raise exception using errcode = 'TR052', message = format('app.%s has no primary key, so its audit rows could not name their row.', r.relname),
        hint = 'Give the table a primary key (or leave it out of the audit log here, with a NOTE saying why).';
    end if;
    execute format('create or replace trigger audit_change after insert or update or delete on app.%I
                      for each row execute function audit.tg_any__record_change(%s)',
                   r.relname, (select string_agg(quote_literal(k), ', ') from unnest(r.key_columns) k));
  end loop;
end
$$;

-- The append-only guards (audit.tg_any__forbid_change) of the tables that are logs themselves
-- (sample_events, qc_inspections, qc_inspection_notes) are attached beside those tables.
