-- app.overdue_rules: when a sample is overdue and which role chases it (issue 12).
-- Everyone reads them (the dashboards' highlight is computed from them under the
-- caller's role); the ops director edits them; every edit is audited (audit.log).
set local role tracker_owner;
alter table app.overdue_rules enable row level security;
alter table app.overdue_rules force row level security;

create policy all_staff_identified on app.overdue_rules as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.overdue_rules is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.overdue_rules for select
  to staff
  using (true);
comment on policy select_everyone on app.overdue_rules is 'Every staff member reads the overdue rules: they decide what the lists highlight and who is mailed.';

create policy update_ops_director on app.overdue_rules for update to ops_director
  using (true) with check (true);
comment on policy update_ops_director on app.overdue_rules is 'The ops director changes days allowed, the responsible role, the description and whether a rule is active.';
-- NOTE: insert and delete are not granted: the rules are defined by migrations (a new
--       condition needs code in app.overdue_hits); a rule is switched off, never deleted.
-- NOTE: code, condition and states are not granted for update: they are what the code
--       relies on. Bad values are refused by a trigger in our words (TR033).

grant select on app.overdue_rules to staff;
grant update (days_allowed, responsible_role, description, active) on app.overdue_rules to ops_director;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger before_update_check before update on app.overdue_rules
  for each row execute function app_private.tg_overdue_rules__check_update();
