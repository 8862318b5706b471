-- audit.seals: the hash chain over audit.log (V0025), one row per sealed audit row.
set local role audit_owner;
alter table audit.seals enable row level security;
alter table audit.seals force row level security;

create policy select_writer on audit.seals for select to audit_owner using (true);
comment on policy select_writer on audit.seals is 'The sealer and the verifier (definers running as audit_owner) read the chain.';
create policy insert_sealer on audit.seals for insert to audit_owner with check (true);
comment on policy insert_sealer on audit.seals is 'Only the sealer (audit.seal, running as audit_owner) appends seals.';
-- NOTE: no staff role reads the seals directly: whether the chain is intact, and how many rows wait
--       to be sealed, is what audit.verify_chain() tells the directors and the system admin.
-- NOTE: update/delete/truncate are granted to nobody and refused by these triggers even for the
--       owner; a superuser's edit breaks the chain that verify_chain recomputes.
create or replace trigger before_update_forbid before update on audit.seals
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_delete_forbid before delete on audit.seals
  for each row execute function audit.tg_any__forbid_change();
create or replace trigger before_truncate_forbid before truncate on audit.seals
  for each statement execute function audit.tg_any__forbid_change();
