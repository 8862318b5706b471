-- app.supplier_hold_events: every hold put on a supplier and every lifting of one.
set local role tracker_owner;
alter table app.supplier_hold_events enable row level security;
alter table app.supplier_hold_events force row level security;

create policy all_staff_identified on app.supplier_hold_events as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.supplier_hold_events is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';

create policy select_everyone on app.supplier_hold_events for select
  to staff
  using (true);
comment on policy select_everyone on app.supplier_hold_events is 'Everyone sees a supplier''s holds, why and by whom (it is why they cannot order from it).';
-- NOTE: insert is not granted: holds are written only by app.hold_supplier() and app.lift_supplier_hold()
--       (senior buyers and directors), which check the role.
-- NOTE: update and delete are not granted: the history of holds is kept.

grant select on app.supplier_hold_events to staff;
