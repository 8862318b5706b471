-- pgTAP: the audit log is append-only for every path a role has, and the chain holds.
\set ON_ERROR_STOP 1
begin;
create extension if not exists pgtap;
select id as md_id from app.staff where email = 'md@example.com' \gset
select id as admin_id from app.staff where email = 'system_admin@example.com' \gset
select app_private.start_session(:md_id) as md_session, app_private.start_session(:admin_id) as admin_session \gset
select plan(7);

select ok((select ok from audit.verify_chain()), 'the chain verifies after the demo load');
select throws_ok('delete from audit.log', 'TR011', null, 'even the superuser''s DELETE is refused');
select throws_ok('truncate audit.log', 'TR011', null, 'and TRUNCATE');

-- acting as the MD
set local session authorization authenticator;
select set_config('role', 'md', true), set_config('tracker.session', :'md_session', true);
select ok((select count(*) from audit.log where table_name = 'app.sample_costs') > 0, 'the MD reads cost changes');
select throws_ok('update audit.log set op = ''DELETE''', '42501', null, 'the MD cannot edit the log');

-- acting as the system admin
select set_config('role', 'system_admin', true), set_config('tracker.session', :'admin_session', true);
select is((select count(*) from audit.log where table_name = 'app.sample_costs'), 0::bigint,
          'the system admin never sees cost changes in the log');
select ok((select count(*) from audit.log where table_name = 'app.samples') > 0,
          'but sees sample changes');

select * from finish();
rollback;
