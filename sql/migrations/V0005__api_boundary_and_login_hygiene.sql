-- V0005: what the API boundary and login hygiene need once (issue 9).

-- 1. Full-text match is no longer LEAKPROOF. V0004 marked tsvector @@ tsquery
--    leakproof so the GIN index could serve a search under RLS; that let a login
--    run `explain analyze ... where search @@ to_tsquery('word')` and read from
--    "Rows Removed by Filter" whether a row it cannot see contains a word. Search
--    now runs in app.search_samples(), a definer that applies the visibility
--    predicate itself and can use the index. Enum equality stays leakproof: it
--    compares two OIDs, and what it can reveal through EXPLAIN (how many hidden
--    rows are in a state) is listed as a residual channel in SECURITY.md.
do $$
begin
  if (select rolsuper from pg_roles where rolname = current_user) then
    alter function pg_catalog.ts_match_vq(tsvector, tsquery) not leakproof;
  else
    raise notice 'not a superuser: ts_match_vq keeps its leakproof flag; run this as a superuser';
  end if;
end
$$;

-- 2. The owner may take a personal login out of its group role (and put it back),
--    so deactivating or re-roling a person revokes their database login's rights in
--    the same transaction (app_private.sync_personal_login(), a trigger on app.staff).
do $$
declare
  r text;
begin
  foreach r in array array['buyer', 'senior_buyer', 'designer', 'sales_lead',
      'sales_executive', 'qc', 'factory_liaison', 'logistics', 'finance',
      'ops_director', 'md', 'system_admin']
  loop
    execute format('grant %I to tracker_owner with admin option', r);
  end loop;
end
$$;

-- 3. Nobody can stall the building: every login that is not a DBA gets timeouts.
--    Personal logins get theirs from app_private.grant_personal_login(); existing
--    ones are brought in line here.
alter role authenticator set statement_timeout = '30s';
alter role authenticator set lock_timeout = '5s';
alter role authenticator set idle_in_transaction_session_timeout = '60s';
do $$
declare
  r record;
begin
  for r in select s.login_role from app.staff s join pg_roles p on p.rolname = s.login_role loop
    execute format('alter role %I set statement_timeout = %L', r.login_role, '120s');
    execute format('alter role %I set lock_timeout = %L', r.login_role, '5s');
    execute format('alter role %I set idle_in_transaction_session_timeout = %L', r.login_role, '60s');
  end loop;
end
$$;

comment on column app.transition_rules.to_state is 'Null for actions that record something without changing state (approval, inspection, buy-out) and for the override, whose target the director chooses.';
