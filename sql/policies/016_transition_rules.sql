-- app.transition_rules: the lifecycle as data. Everyone reads; nobody edits (migrations own it).
set local role tracker_owner;
alter table app.transition_rules enable row level security;
alter table app.transition_rules force row level security;

create policy all_staff_identified on app.transition_rules as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.transition_rules is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.transition_rules for select
  to staff
  using (true);
comment on policy select_everyone on app.transition_rules is 'Every staff role can read who may do what in the lifecycle.';
-- NOTE: insert/update/delete are not granted: the rules change only through sql/functions/030_transition_rules.sql
--       (app_private.lifecycle_rules()), synced below on every migrate.

grant select on app.transition_rules to staff;

-- the rows: the wanted rules from app_private.lifecycle_rules(); a row whose values did
-- not change is not rewritten, so migrating twice audits nothing
delete from app.transition_rules t
 where not exists (select 1 from app_private.lifecycle_rules() w
                    where w.action = t.action and w.from_state is not distinct from t.from_state);

insert into app.transition_rules (action, from_state, to_state, roles, required, verb, description)
select action, from_state, to_state, roles, required, verb, description from app_private.lifecycle_rules()
on conflict (action, from_state) do update
   set to_state = excluded.to_state, roles = excluded.roles, required = excluded.required,
       verb = excluded.verb, description = excluded.description
 where (app.transition_rules.to_state, app.transition_rules.roles, app.transition_rules.required,
        app.transition_rules.verb, app.transition_rules.description)
       is distinct from
       (excluded.to_state, excluded.roles, excluded.required, excluded.verb, excluded.description);
