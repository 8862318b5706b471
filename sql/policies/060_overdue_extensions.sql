-- app.overdue_extensions: due dates moved with a reason - the lateness history of a
-- sample, its supplier and the person responsible. Written only by app.extend_due_date.
set local role tracker_owner;
alter table app.overdue_extensions enable row level security;
alter table app.overdue_extensions force row level security;

create policy all_staff_identified on app.overdue_extensions as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.overdue_extensions is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row (a deactivated or re-roled login gets nothing, whatever role it holds).';

create policy select_everyone_visible_sample on app.overdue_extensions for select
  to staff
  using (exists (select 1 from app.samples s where s.id = sample_id));
comment on policy select_everyone_visible_sample on app.overdue_extensions is 'Anyone who can see a sample sees its due-date extensions (the lateness history).';
-- NOTE: insert/update/delete are not granted: the definer entry point checks that the
--       caller must chase the sample (or is a director) and writes the row.

grant select on app.overdue_extensions to staff;
