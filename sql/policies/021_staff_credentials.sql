-- app_private.staff_credentials: password hashes and invite tokens.
set local role tracker_owner;
alter table app_private.staff_credentials enable row level security;
alter table app_private.staff_credentials force row level security;
-- NOTE: no policy and no grant: no staff role can read or write a hash. The web app
-- reads one through app_private.begin_sign_in() (authenticator only).

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger after_update_end_sessions after update of password_hash on app_private.staff_credentials
  for each row when (old.password_hash is distinct from new.password_hash)
  execute function app_private.tg_staff_credentials__end_sessions();
-- credentials are audited like business tables, with hashes replaced by markers
-- (audit.tg_any__record_change redacts this table)
create or replace trigger audit_change after insert or update or delete on app_private.staff_credentials
  for each row execute function audit.tg_any__record_change('staff_id');
