-- app.import_batches and app.import_layouts: spreadsheets being imported, and the column
-- mapping remembered per header layout. Only the roles that import use them.
set local role tracker_owner;
alter table app.import_batches enable row level security;
alter table app.import_batches force row level security;
alter table app.import_layouts enable row level security;
alter table app.import_layouts force row level security;

create policy all_staff_identified on app.import_batches as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.import_batches is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';
create policy select_importers_own_rows on app.import_batches for select to logistics, senior_buyer, system_admin
  using (staff_id = (select app.current_staff_id()));
comment on policy select_importers_own_rows on app.import_batches is 'A person who imports sees the spreadsheets they uploaded.';
create policy insert_importers_own_rows on app.import_batches for insert to logistics, senior_buyer, system_admin
  with check (staff_id = (select app.current_staff_id()));
comment on policy insert_importers_own_rows on app.import_batches is 'Logistics, senior buyers and the system admin upload spreadsheets as themselves.';
create policy update_importers_own_rows on app.import_batches for update to logistics, senior_buyer, system_admin
  using (staff_id = (select app.current_staff_id()) and committed_at is null)
  with check (staff_id = (select app.current_staff_id()));
comment on policy update_importers_own_rows on app.import_batches is 'The uploader maps the columns and marks the batch committed, until it is committed.';
-- NOTE: delete is not granted: an import batch is the record of what was brought in.
-- NOTE: the other roles do not import and get no rows.

create policy all_staff_identified on app.import_layouts as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.import_layouts is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';
create policy select_importers on app.import_layouts for select to logistics, senior_buyer, system_admin using (true);
comment on policy select_importers on app.import_layouts is 'Everyone who imports reuses the mappings remembered for a header layout.';
create policy insert_importers on app.import_layouts for insert to logistics, senior_buyer, system_admin
  with check (true);
comment on policy insert_importers on app.import_layouts is 'Mapping a new header layout remembers it (who and when are stamped by trigger before_write_stamp).';
create policy update_importers on app.import_layouts for update to logistics, senior_buyer, system_admin
  using (true) with check (true);
comment on policy update_importers on app.import_layouts is 'Mapping a known layout differently replaces what is remembered.';
-- NOTE: delete is not granted: a layout is replaced, never removed.

grant select on app.import_batches, app.import_layouts to staff;
grant insert (staff_id, filename, headers, rows, mapping), update (mapping, committed_at) on app.import_batches
  to logistics, senior_buyer, system_admin;
grant insert (header_key, mapping), update (mapping) on app.import_layouts to logistics, senior_buyer, system_admin;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger before_write_stamp before insert or update on app.import_layouts
  for each row execute function app_private.tg_import_layouts__stamp();
