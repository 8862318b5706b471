-- app.categories: product categories. Everyone reads; the system admin maintains.
set local role tracker_owner;
alter table app.categories enable row level security;
alter table app.categories force row level security;

create policy all_staff_identified on app.categories as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.categories is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.categories for select
  to staff
  using (true);
comment on policy select_everyone on app.categories is 'Every staff role sees every category.';
create policy insert_system_admin on app.categories for insert to system_admin with check (true);
comment on policy insert_system_admin on app.categories is 'The system admin adds categories.';
create policy update_system_admin on app.categories for update to system_admin using (true) with check (true);
comment on policy update_system_admin on app.categories is 'The system admin renames categories.';
-- NOTE: delete is not granted because spend analysis refers to categories forever.

grant select on app.categories to staff;
grant insert (name, department), update (name, department) on app.categories to system_admin;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger after_rename_refresh_search after update of name on app.categories
  for each row when (old.name is distinct from new.name)
  execute function app_private.tg_any__refresh_search();
