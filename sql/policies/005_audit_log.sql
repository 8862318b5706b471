-- audit.log and audit.chain_head: the append-only change log.
set local role audit_owner;
alter table audit.log enable row level security;
alter table audit.log force row level security;
alter table audit.chain_head enable row level security;
alter table audit.chain_head force row level security;

create policy all_staff_identified on audit.log as restrictive for select to ops_director, md, system_admin
  using ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on audit.log is 'Restrictive: only an active staff member resolved from the session reads the log (a deactivated director''s login reads nothing).';

create policy select_directors on audit.log for select to ops_director, md using (true);
comment on policy select_directors on audit.log is 'Directors read the whole audit log.';

create policy select_system_admin_not_sensitive on audit.log for select to system_admin
  -- the tables whose rows the system admin may not read (or only its own): permission_matrix.yml,
  -- scope none / denied / own_rows; tests/test_permission_matrix.py derives the list from there
  using (table_name not in ('app.sample_costs', 'app.supplier_contacts', 'app.qc_inspection_notes', 'app.budgets',
                            'app.duplicate_dismissals', 'app.stocktakes', 'app.import_batches', 'app.watches'));
comment on policy select_system_admin_not_sensitive on audit.log is 'The system admin reads the audit log except changes to the tables whose rows it may not read: costs, budgets, supplier contacts, QC notes, duplicate dismissals, stocktakes, other people''s import batches and watches.';

create policy select_writer on audit.log for select to audit_owner using (true);
comment on policy select_writer on audit.log is 'The audit writer (trigger and verifier) reads the chain.';
create policy insert_writer on audit.log for insert to audit_owner with check (true);
comment on policy insert_writer on audit.log is 'Only the audit trigger, running as audit_owner, appends rows.';

create policy select_writer on audit.chain_head for select to audit_owner using (true);
comment on policy select_writer on audit.chain_head is 'The sealer and the verifier read the chain head.';
create policy update_writer on audit.chain_head for update to audit_owner using (true) with check (true);
comment on policy update_writer on audit.chain_head is 'The sealer moves the chain head forward.';
-- NOTE: update/delete/truncate on audit.log are granted to nobody and refused by
-- trigger even for its owner, the sealer included (since V0025 a seal is a row of
-- audit.seals, policies/006_audit_seals.sql); the hash chain (audit.verify_chain) exposes a
-- superuser's edit of a sealed row. Writers never touch audit.chain_head: only the sealer.

grant select on audit.log to ops_director, md, system_admin;

-- the web processes seal the chain every few seconds while they serve (tracker/web/realtime.py):
-- sealing links only what has committed, in commit order, and changes no content
grant usage on schema audit to authenticator;
grant execute on function audit.seal(integer) to authenticator;
