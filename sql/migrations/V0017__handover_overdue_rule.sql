-- V0017 (issue 14): an overdue rule for handovers nobody confirmed: a sample handed to a designer, to
--    sales or sent to a factory stays "in transit" (samples.transit_from / transit_since,
--    V0013) until the receiver confirms; unconfirmed for longer than the rule's days it is
--    overdue for logistics. The rule is a row like the others (the ops director edits it).
set local lock_timeout = '5s';
set local statement_timeout = '30s';
set role tracker_owner;

-- a wider check in place of the old one, in one statement; NOT VALID: the rows there
-- passed the narrower check, and every new or changed row is checked
alter table app.overdue_rules
  -- squawk-ignore ban-drop-constraint
  drop constraint overdue_rules_condition_check,
  add constraint overdue_rules_condition_check
    check (condition in ('in_state', 'past_expected', 'past_return_due', 'unconfirmed_handover')) not valid;
comment on column app.overdue_rules.condition is 'in_state: more than days_allowed days in the state; past_expected: ordered and days_allowed days past expected_on; past_return_due: on loan and days_allowed days past return_due_on; unconfirmed_handover: handed over (transit_since) more than days_allowed days ago and not confirmed by the receiver.';

insert into app.overdue_rules (code, condition, states, days_allowed, responsible_role, description) values
  ('handover-unconfirmed', 'unconfirmed_handover', '{with-design,with-sales,at-factory}', 1, 'logistics',
   'handed over more than 1 day ago and the receiver has not confirmed it');

-- samples a stocktake missed stay listed until something happens to them (app.missing_samples):
-- each expected sample's version when the count started, so "changed since" is exact
alter table app.stocktakes add column expected_versions integer[];
comment on column app.stocktakes.expected_versions is 'The version of each expected sample (same order as expected) when the count started: a missing sample whose version moved on since has been accounted for. Null for counts started before V0017.';

reset role;
