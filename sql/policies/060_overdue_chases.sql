-- app.overdue_chases: "chased today" marks. Written only by app.mark_chased.
set local role tracker_owner;
alter table app.overdue_chases enable row level security;
alter table app.overdue_chases force row level security;

create policy all_staff_identified on app.overdue_chases as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.overdue_chases is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.overdue_chases for select
  to staff
  using (exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.overdue_chases is 'Anyone who can see a sample sees who marked it chased and when.';
-- NOTE: insert/update/delete are not granted: the definer entry point checks that the
--       caller must chase the sample (or is a director) and writes the row.

grant select on app.overdue_chases to staff;
