-- Applied first on every migrate, in the same transaction as functions/, policies/
-- and views/: drop every policy, view and function and revoke every privilege in our
-- schemas, so the files that follow are the complete truth (a policy or function
-- deleted from a file - or an old overload of one - is gone after the next migrate;
-- triggers dropped with their functions are re-created by sql/functions/).
do $$
declare
  r record;
  grantees text;
begin
  -- public, authenticator, the staff group and every member of it (the twelve roles)
  select string_agg(quote_ident(rolname), ', ') into grantees
    from (select 'public' as rolname
          union all
          select rolname from pg_roles where rolname in ('authenticator', 'staff')
          union all
          select m.member::regrole::text from pg_auth_members m where m.roleid = 'staff'::regrole) g;
  for r in select schemaname, tablename, policyname from pg_policies
            where schemaname in ('app', 'app_private', 'audit', 'analytics')
  loop
    execute format('drop policy %I on %I.%I', r.policyname, r.schemaname, r.tablename);
  end loop;
  for r in select schemaname, viewname from pg_views
            where schemaname in ('app', 'app_private', 'audit', 'analytics')
  loop
    execute format('drop view if exists %I.%I cascade', r.schemaname, r.viewname);
  end loop;
  for r in select p.oid::regprocedure as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname in ('app', 'app_private', 'audit', 'analytics') and p.prokind in ('f', 'p')
  loop
    execute format('drop routine if exists %s cascade', r.fn);  -- functions and procedures
  end loop;
  for r in select nspname from pg_namespace where nspname in ('app', 'app_private', 'audit', 'analytics')
  loop
    execute format('revoke all on all tables in schema %I from %s', r.nspname, grantees);
    execute format('revoke all on all sequences in schema %I from %s', r.nspname, grantees);
    execute format('revoke all on all functions in schema %I from %s', r.nspname, grantees);
    execute format('revoke all on schema %I from %s', r.nspname, grantees);
  end loop;
  -- column-level grants are not covered by "all tables"
  for r in select distinct table_schema, table_name, column_name, grantee
             from information_schema.column_privileges
            where table_schema in ('app', 'app_private', 'audit', 'analytics')
              and grantee not in ('tracker_owner', 'audit_owner', 'postgres')
  loop
    execute format('revoke all (%I) on %I.%I from %I', r.column_name, r.table_schema, r.table_name, r.grantee);
  end loop;
end
$$;
