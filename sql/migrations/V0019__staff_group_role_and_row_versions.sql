-- V0019: one group role for "every member of staff".
-- The twelve staff roles become members of `staff` (NOLOGIN), so a grant or policy meant
-- for everyone says `to staff` instead of listing twelve names (the PostgREST/Supabase
-- `authenticated` pattern). Rules about particular roles keep naming them. A personal
-- login is a member of its role, hence of staff; authenticator is NOINHERIT and gains
-- nothing from it until it SETs ROLE.
set lock_timeout = '5s';
set statement_timeout = '60s';

do $$
declare
  r text;
begin
  if not exists (select 1 from pg_roles where rolname = 'staff') then
    create role staff nologin;
  end if;
  foreach r in array enum_range(null::app.staff_role)::text[] loop
    execute format('grant staff to %I', r);
  end loop;
  execute format('grant connect on database %I to staff', current_database());
end
$$;
comment on role staff is 'Every staff role is a member (NOLOGIN group): grants and policies for all staff name it. Holds no privilege of its own beyond what sql/policies/ grants it.';

-- One optimistic-concurrency mechanism (issue 17): a version column bumped by a BEFORE UPDATE
-- trigger on every change. Samples had it already (then bumped only by the lifecycle
-- functions); the staff admin form compared xmin instead. Both now compare `version`.
alter table app.staff add column if not exists version integer not null default 1;
comment on column app.staff.version is 'Bumped by every update (trigger before_update_bump_version); the admin form sends the version it was loaded from, and a stale form is refused.';
comment on column app.samples.version is 'Bumped by every update (trigger before_update_bump_version); a sample form sends the version it showed (app.expect_sample_version), so a stale form is refused instead of acting on a sample that changed.';
