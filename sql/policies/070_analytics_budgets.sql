-- app.budgets: spend budgets per team x season x category (issue 13). Read by whoever
-- reads that team's costs; set by finance (every team) and senior buyers (their own
-- team). Audited by the generic trigger; who and when stamped by before_change_stamp.
set local role tracker_owner;
alter table app.budgets enable row level security;
alter table app.budgets force row level security;

create policy all_staff_identified on app.budgets as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.budgets is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_buyer_own_team on app.budgets for select to buyer, senior_buyer
  using (team_id = (select app.current_team_id()));
comment on policy select_buyer_own_team on app.budgets is 'Buyers and senior buyers see their own team''s budgets (as they see its costs).';

create policy select_finance_sales_lead_directors on app.budgets for select
  to finance, sales_lead, ops_director, md
  using (true);
comment on policy select_finance_sales_lead_directors on app.budgets is 'Finance, the sales lead and directors see every budget (as they see every cost).';

create policy insert_senior_buyer_own_team on app.budgets for insert to senior_buyer
  with check (team_id = (select app.current_team_id()));
comment on policy insert_senior_buyer_own_team on app.budgets is 'Senior buyers set budgets for their own team.';
create policy update_senior_buyer_own_team on app.budgets for update to senior_buyer
  using (team_id = (select app.current_team_id())) with check (team_id = (select app.current_team_id()));
comment on policy update_senior_buyer_own_team on app.budgets is 'Senior buyers change their own team''s budgets.';
create policy delete_senior_buyer_own_team on app.budgets for delete to senior_buyer
  using (team_id = (select app.current_team_id()));
comment on policy delete_senior_buyer_own_team on app.budgets is 'Senior buyers remove their own team''s budgets.';

create policy insert_finance on app.budgets for insert to finance with check (true);
comment on policy insert_finance on app.budgets is 'Finance sets budgets for every team.';
create policy update_finance on app.budgets for update to finance using (true) with check (true);
comment on policy update_finance on app.budgets is 'Finance changes every team''s budgets.';
create policy delete_finance on app.budgets for delete to finance using (true);
comment on policy delete_finance on app.budgets is 'Finance removes budgets.';
-- NOTE: buyers read their team's budgets but do not set them; directors read every
--       budget and set none (finance and senior buyers own the numbers).
-- NOTE: designers, sales executives, QC, factory liaisons, logistics and the system
--       admin read no costs, so they are granted nothing on budgets.

grant select on app.budgets to buyer, senior_buyer, sales_lead, finance, ops_director, md;
grant insert (team_id, season_id, category_id, amount_gbp) on app.budgets to senior_buyer, finance;
grant update (amount_gbp) on app.budgets to senior_buyer, finance;
grant delete on app.budgets to senior_buyer, finance;

-- triggers (their functions live in sql/functions/; the audit trigger is attached to
-- every app table from the catalogue, sql/functions/021_audit_triggers.sql)
create or replace trigger before_change_stamp before insert or update on app.budgets
  for each row execute function app_private.tg_budgets__check_change();
