-- V0019: one group role for "every member of staff".
-- The twelve staff roles become members of `staff` (NOLOGIN), so a grant or policy meant
-- for everyone says `to staff` instead of listing twelve names (the PostgREST/Supabase
-- `authenticated` pattern). Rules about particular roles keep naming them. A personal
-- login is a member of its role, hence of staff; authenticator is NOINHERIT and gains
-- nothing from it until it SETs ROLE.
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
