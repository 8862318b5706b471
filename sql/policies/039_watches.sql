-- app.watches: what each person follows. Private to its owner.
set local role tracker_owner;
alter table app.watches enable row level security;
alter table app.watches force row level security;

create policy all_staff_identified on app.watches as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.watches is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';

create policy select_everyone_own_rows on app.watches for select
  to staff
  using (staff_id = (select app.current_staff_id()));
comment on policy select_everyone_own_rows on app.watches is 'Each person sees only what they watch.';
create policy insert_everyone_own_visible on app.watches for insert
  to staff
  with check (staff_id = (select app.current_staff_id())
              and (sample_id is null or exists (select 1 from app.samples s where s.id = sample_id)));
comment on policy insert_everyone_own_visible on app.watches is 'Anyone watches, as themselves, a sample they can see or any supplier.';
create policy delete_everyone_own_rows on app.watches for delete
  to staff
  using (staff_id = (select app.current_staff_id()));
comment on policy delete_everyone_own_rows on app.watches is 'Each person stops watching what they watch.';
-- NOTE: update is not granted: a watch is added or removed, never changed.

grant select, delete on app.watches to staff;
grant insert (staff_id, sample_id, supplier_id) on app.watches to staff;
