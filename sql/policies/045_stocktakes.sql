-- app.stocktakes: counts of a location by logistics.
set local role tracker_owner;
alter table app.stocktakes enable row level security;
alter table app.stocktakes force row level security;

create policy all_staff_identified on app.stocktakes as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.stocktakes is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';

create policy select_counters on app.stocktakes for select to logistics, ops_director, md
  using (true);
comment on policy select_counters on app.stocktakes is 'Logistics and directors see every count (the sample numbers in it are resolved through app.stocktake_report(), which shows only visible samples).';
-- NOTE: insert and update are not granted: counts are started, added to and closed only by
--       app.start_stocktake(), app.count_sample() and app.close_stocktake(), which check the role.
-- NOTE: delete is not granted: closed counts are kept.
-- NOTE: the other roles do not count stock and get no rows.

grant select on app.stocktakes to staff;
