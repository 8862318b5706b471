-- The lifecycle as data: every allowed action, from which state, to which state,
-- by which roles, needing which fields. Upserted on every migrate; a row whose
-- values did not change is not rewritten (so migrating twice audits nothing).
set local role tracker_owner;

create or replace function app_private.lifecycle_rules()
returns table (action text, from_state app.sample_state, to_state app.sample_state, roles app.staff_role[],
               required text[], verb text, description text)
language sql immutable
as $$ values
  ('request', null::app.sample_state, 'requested'::app.sample_state, '{buyer,senior_buyer}'::app.staff_role[], '{title,category,season}'::text[],
   'request a sample', 'A buyer asks for a sample for their own team; supplier if known.'),
  ('order', 'requested', 'ordered', '{buyer,senior_buyer}', '{supplier,unit_cost,currency,expected_on}',
   'order it', 'The requesting buyer, or a senior buyer of the team, places the order and records its cost.'),
  ('withdraw', 'requested', 'returned', '{buyer,senior_buyer}', '{reason}',
   'withdraw the request', 'The requesting buyer, or a senior buyer of the team, withdraws a request that was never ordered.'),
  ('receive', 'ordered', 'received', '{logistics}', '{location}',
   'receive it', 'Logistics books the sample in at a location; an on-loan sample gets its return-due date.'),
  ('hand_to_design', 'received', 'with-design', '{logistics,designer}', '{holder}',
   'hand it to design', 'Logistics or a designer passes the sample to a designer.'),
  ('hand_to_sales', 'received', 'with-sales', '{logistics,sales_lead}', '{holder}',
   'hand it to sales', 'Logistics or a sales lead passes the sample to a sales lead or sales executive.'),
  ('hand_to_sales', 'with-design', 'with-sales', '{designer,sales_lead}', '{holder}',
   'hand it to sales', 'Design passes the sample on to sales.'),
  ('hand_to_design', 'with-sales', 'with-design', '{designer,sales_lead,sales_executive}', '{holder}',
   'hand it to design', 'Sales passes the sample back to design.'),
  ('hand_to_design', 'with-design', 'with-design', '{designer}', '{holder}',
   'pass it to another designer', 'A designer passes the sample to a colleague in design.'),
  ('hand_to_sales', 'with-sales', 'with-sales', '{sales_lead,sales_executive}', '{holder}',
   'pass it to another sales person', 'A sales lead or executive passes the sample to a colleague in sales.'),
  ('hand_back', 'with-design', 'received', '{designer,logistics}', '{location}',
   'put it back in the sample room', 'The designer holding it (or logistics) puts the sample back on a shelf.'),
  ('hand_back', 'with-sales', 'received', '{sales_lead,sales_executive,logistics}', '{location}',
   'put it back in the sample room', 'The sales person holding it (or logistics) puts the sample back on a shelf.'),
  ('send_to_factory', 'received', 'at-factory', '{logistics,factory_liaison}', '{factory}',
   'send it to a factory', 'The sample goes to a factory.'),
  ('send_to_factory', 'with-design', 'at-factory', '{logistics,factory_liaison}', '{factory}',
   'send it to a factory', 'The sample goes to a factory.'),
  ('send_to_factory', 'with-sales', 'at-factory', '{logistics,factory_liaison}', '{factory}',
   'send it to a factory', 'The sample goes to a factory.'),
  ('return_from_factory', 'at-factory', 'received', '{logistics,factory_liaison}', '{location}',
   'bring it back from the factory', 'The factory sends the sample back; it is booked in at a location.'),
  ('return_to_supplier', 'received', 'returned', '{logistics}', '{courier_ref}',
   'return it to the supplier', 'Logistics sends the sample back to its supplier.'),
  ('return_to_supplier', 'with-design', 'returned', '{logistics}', '{courier_ref}',
   'return it to the supplier', 'Logistics sends the sample back to its supplier.'),
  ('return_to_supplier', 'with-sales', 'returned', '{logistics}', '{courier_ref}',
   'return it to the supplier', 'Logistics sends the sample back to its supplier.'),
  ('return_to_supplier', 'at-factory', 'returned', '{logistics}', '{courier_ref}',
   'return it to the supplier', 'Logistics sends the sample back to its supplier (collected from the factory).'),
  ('approve_for_production', 'received', null, '{senior_buyer}', '{}',
   'approve it for production', 'A senior buyer of the team approves the sample for cutting; recorded before any cut.'),
  ('approve_for_production', 'with-design', null, '{senior_buyer}', '{}',
   'approve it for production', 'A senior buyer of the team approves the sample for cutting; recorded before any cut.'),
  ('approve_for_production', 'with-sales', null, '{senior_buyer}', '{}',
   'approve it for production', 'A senior buyer of the team approves the sample for cutting; recorded before any cut.'),
  ('approve_for_production', 'at-factory', null, '{senior_buyer}', '{}',
   'approve it for production', 'A senior buyer of the team approves the sample for cutting; recorded before any cut.'),
  ('buy_out', 'received', null, '{buyer,senior_buyer}', '{}',
   'buy it out', 'The requesting buyer, or a senior buyer of the team, records that an on-loan sample was bought from the supplier.'),
  ('buy_out', 'with-design', null, '{buyer,senior_buyer}', '{}',
   'buy it out', 'The requesting buyer, or a senior buyer of the team, records that an on-loan sample was bought from the supplier.'),
  ('buy_out', 'with-sales', null, '{buyer,senior_buyer}', '{}',
   'buy it out', 'The requesting buyer, or a senior buyer of the team, records that an on-loan sample was bought from the supplier.'),
  ('buy_out', 'at-factory', null, '{buyer,senior_buyer}', '{}',
   'buy it out', 'The requesting buyer, or a senior buyer of the team, records that an on-loan sample was bought from the supplier.'),
  ('cut_for_production', 'at-factory', 'cut-for-production', '{factory_liaison}', '{approval}',
   'cut it for production', 'The factory liaison confirms the sample was cut for own-label production (needs approval).'),
  ('inspect', 'received', null, '{qc}', '{result}',
   'inspect it', 'QC records pass or reject (a reject needs a reason and is permanent).'),
  ('inspect', 'with-design', null, '{qc}', '{result}',
   'inspect it', 'QC records pass or reject (a reject needs a reason and is permanent).'),
  ('inspect', 'with-sales', null, '{qc}', '{result}',
   'inspect it', 'QC records pass or reject (a reject needs a reason and is permanent).'),
  -- the director's override: from any state to any other, with a reason and what the target state needs
  ('override', 'requested', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'ordered', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'received', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'with-design', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'with-sales', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'at-factory', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'returned', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.'),
  ('override', 'cut-for-production', null, '{ops_director,md}', '{to_state,reason}', 'override the state',
   'A director moves the sample to any other state, with a reason; the target state''s facts are asked for and the rest cleared.')
$$;
comment on function app_private.lifecycle_rules() is 'The wanted content of app.transition_rules; synced into the table below on every migrate.';

delete from app.transition_rules t
 where not exists (select 1 from app_private.lifecycle_rules() w
                    where w.action = t.action and w.from_state is not distinct from t.from_state);

insert into app.transition_rules (action, from_state, to_state, roles, required, verb, description)
select action, from_state, to_state, roles, required, verb, description from app_private.lifecycle_rules()
on conflict (action, from_state) do update
   set to_state = excluded.to_state, roles = excluded.roles, required = excluded.required,
       verb = excluded.verb, description = excluded.description
 where (app.transition_rules.to_state, app.transition_rules.roles, app.transition_rules.required,
        app.transition_rules.verb, app.transition_rules.description)
       is distinct from
       (excluded.to_state, excluded.roles, excluded.required, excluded.verb, excluded.description);
