-- pgTAP, basejump style: acting as a Womenswear buyer through the web app's identity.
-- Run by tests/test_pgtap.py with psql against a clone of the demo database.
\set ON_ERROR_STOP 1
begin;
create extension if not exists pgtap;
select id as buyer_id, team_id as buyer_team from app.staff where email = 'buyer@example.com' \gset
select app_private.start_session(:buyer_id) as buyer_session \gset
select count(*) as other_costs from app.sample_costs where team_id <> :buyer_team \gset
select count(*) as other_closed from app.samples where team_id <> :buyer_team
   and state in ('returned', 'cut-for-production') \gset
select min(id) as other_request from app.samples where team_id <> :buyer_team and state = 'requested' \gset
select plan(9);

-- positive controls, as the owner: the rows the buyer must not see exist
select ok(:other_costs > 0, 'other teams have costs');
select ok(:other_closed > 0, 'other teams have closed samples');

-- acting as the buyer
set local session authorization authenticator;
select set_config('role', 'buyer', true), set_config('tracker.session', :'buyer_session', true);

select is(app.current_staff_id(), :buyer_id::bigint, 'the session is the buyer');
select is((select count(*) from app.sample_costs where team_id <> :buyer_team), 0::bigint,
          'a buyer sees no other team''s costs');
select ok((select count(*) from app.sample_costs) > 0, 'a buyer sees their own team''s costs');
select is_empty(format('select 1 from app.samples where team_id <> %s and state in (''returned'', ''cut-for-production'')',
                       :buyer_team), 'a buyer sees no closed samples of other teams');
select ok(exists (select 1 from app.samples where id = :other_request), 'but sees other teams'' requests in flight');
select throws_ok('update app.samples set state = ''returned''', '42501', null, 'nobody updates state directly');
select throws_ok(format('select app.order_sample(%s, 1, 10, ''GBP'', current_date + 5)', :other_request), 'TR003',
                 null, 'a buyer cannot order another team''s request');

select * from finish();
rollback;
