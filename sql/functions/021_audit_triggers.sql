-- Attach the audit trigger to every business table in schema app, and the
-- append-only guard to the tables that are logs themselves.
set local role tracker_owner;

do $$
declare
  r record;
begin
  for r in select c.relname
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'app' and c.relkind = 'r'
              -- NOTE: sample_events is not audited: it is itself an append-only log
              -- (guarded below) written only by the lifecycle functions.
              -- NOTE: realtime_events is not audited: it is a derived outbox of signals
              -- about changes that are audited where they happen (080_realtime.sql).
              and c.relname not in ('sample_events', 'realtime_events')
  loop
    execute format('create or replace trigger audit_change after insert or update or delete on app.%I
                      for each row execute function audit.record_change(%L)',
                   r.relname, case r.relname when 'sample_costs' then 'sample_id' when 'qc_inspection_notes' then 'inspection_id' else 'id' end);
  end loop;
end
$$;

create or replace trigger before_change_forbid before update or delete on app.sample_events
  for each row execute function audit.forbid_change();
create or replace trigger before_truncate_forbid before truncate on app.sample_events
  for each statement execute function audit.forbid_change();
do $$
declare
  t text;
begin
  foreach t in array array['qc_inspections', 'qc_inspection_notes'] loop
    execute format('create or replace trigger before_change_forbid before update or delete on app.%I
                      for each row execute function audit.forbid_change()', t);
    execute format('create or replace trigger before_truncate_forbid before truncate on app.%I
                      for each statement execute function audit.forbid_change()', t);
  end loop;
end
$$;
