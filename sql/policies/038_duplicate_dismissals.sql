-- app.duplicate_dismissals: pairs of samples someone said are not duplicates.
set local role tracker_owner;
alter table app.duplicate_dismissals enable row level security;
alter table app.duplicate_dismissals force row level security;

create policy all_staff_identified on app.duplicate_dismissals as restrictive for all
  to staff
  using ((select app.current_staff_id()) is not null)
  with check ((select app.current_staff_id()) is not null);
comment on policy all_staff_identified on app.duplicate_dismissals is 'Restrictive, for every command: only an active staff member resolved from the session reads or writes any row.';

create policy select_reviewers_visible_pair on app.duplicate_dismissals for select
  to senior_buyer, ops_director, md
  using (exists (select 1 from app.samples s where s.id = sample_a)
         and exists (select 1 from app.samples s where s.id = sample_b));
comment on policy select_reviewers_visible_pair on app.duplicate_dismissals is 'Senior buyers and directors see the dismissed pairs whose two samples they can both see.';
-- NOTE: insert is not granted: app.dismiss_duplicate() writes a dismissal after checking who may.
-- NOTE: update and delete are not granted: a dismissal is remembered (a pair that turns out to be
--       a duplicate after all is handled on the samples, not by forgetting the decision).
-- NOTE: other roles do not review duplicates and get no rows.

grant select on app.duplicate_dismissals to staff;
