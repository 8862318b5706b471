-- app.currencies: accepted currencies and default rates. Everyone reads; finance maintains rates.
set local role tracker_owner;
alter table app.currencies enable row level security;
alter table app.currencies force row level security;

create policy all_staff_identified on app.currencies as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.currencies is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone on app.currencies for select
  to staff
  using (true);
comment on policy select_everyone on app.currencies is 'Every staff role sees the accepted currencies.';
create policy insert_finance on app.currencies for insert to finance with check (true);
comment on policy insert_finance on app.currencies is 'Finance adds currencies.';
create policy update_finance on app.currencies for update to finance using (true) with check (true);
comment on policy update_finance on app.currencies is 'Finance maintains the default rates to GBP.';
-- NOTE: delete is not granted because costs refer to their currency.

grant select on app.currencies to staff;
grant insert (code, name, gbp_rate), update (name, gbp_rate) on app.currencies to finance;
