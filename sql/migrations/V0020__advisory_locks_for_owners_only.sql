-- V0020: the advisory-lock functions for the owners only (attack review, session 4).
-- The realtime signal and the audit sealer serialise on transaction advisory locks taken
-- inside their SECURITY DEFINER functions. PostgreSQL lets every login call
-- pg_advisory_lock by default, so any login (an analyst, a deactivated person's login, the
-- web login) could take the same key in an idle session and freeze every audited write and
-- the sealer. Only the owners that run our definer functions may take advisory locks now;
-- superusers (migrate, pg_cron's jobs, the tests) are not affected.
set lock_timeout = '5s';
set statement_timeout = '60s';

do $$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p
            where p.pronamespace = 'pg_catalog'::regnamespace and p.proname like 'pg\_%advisory%'
  loop
    execute format('revoke execute on function %s from public', f);
    execute format('grant execute on function %s to tracker_owner, audit_owner', f);
  end loop;
end
$$;
