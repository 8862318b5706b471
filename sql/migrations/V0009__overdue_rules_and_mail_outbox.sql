-- Issue 12: overdue rules as data, extensions and "chased today" marks, the mail
-- outbox the morning job fills and the Python mailer drains, the local capture of
-- "sent" mail, and the pg_cron schedule (named tracker-alerts-*).
set role tracker_owner;

create table app.overdue_rules (
  id integer generated always as identity primary key,
  code text not null unique check (code ~ '^[a-z][a-z0-9-]{1,40}$'),
  condition text not null check (condition in ('in_state', 'past_expected', 'past_return_due')),
  states app.sample_state[] not null check (cardinality(states) > 0
                                            and not states && array['returned', 'cut-for-production']::app.sample_state[]),
  days_allowed integer not null check (days_allowed between 0 and 365),
  responsible_role app.staff_role not null,
  description text not null check (btrim(description) <> ''),
  active boolean not null default true,
  updated_at timestamptz not null default now(),
  constraint overdue_rules_in_state_has_one_state check (condition <> 'in_state' or cardinality(states) = 1)
);
comment on table app.overdue_rules is 'When a sample is overdue and which role must chase it; one definition for the dashboards'' highlight (app.sample_overview) and the morning mail (app_private.overdue_for).';
comment on column app.overdue_rules.condition is 'in_state: more than days_allowed days in the state; past_expected: ordered and days_allowed days past expected_on; past_return_due: on loan and days_allowed days past return_due_on.';
comment on column app.overdue_rules.states is 'The states in which the rule applies (in_state: exactly one).';
comment on column app.overdue_rules.days_allowed is 'Days allowed before the sample is overdue: overdue from the day after the due day.';
comment on column app.overdue_rules.responsible_role is 'The role that must chase: the holder or requester if they hold it, else that role in the sample''s team, else the role''s staff without a team.';

insert into app.overdue_rules (code, condition, states, days_allowed, responsible_role, description) values
  ('requested-too-long', 'in_state', '{requested}', 7, 'buyer', 'requested for more than 7 days, not yet ordered'),
  ('ordered-past-expected', 'past_expected', '{ordered}', 0, 'buyer', 'ordered and past its expected date, not received'),
  ('received-not-routed', 'in_state', '{received}', 3, 'logistics', 'received more than 3 days ago and not routed'),
  ('with-design-too-long', 'in_state', '{with-design}', 10, 'designer', 'with design for more than 10 days'),
  ('with-sales-too-long', 'in_state', '{with-sales}', 10, 'sales_lead', 'with sales for more than 10 days'),
  ('at-factory-too-long', 'in_state', '{at-factory}', 14, 'factory_liaison', 'at a factory for more than 14 days'),
  ('on-loan-past-return-due', 'past_return_due', '{received,with-design,with-sales,at-factory}', 0, 'logistics',
   'on loan and past its return-due date (21 days after receipt unless set otherwise), not returned');

create table app.overdue_extensions (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  rule_id integer not null references app.overdue_rules,
  state_since timestamptz not null,
  due_before date not null,
  due_on date not null,
  reason text not null check (btrim(reason) <> '' and length(reason) <= 500),
  supplier_id integer references app.suppliers,
  responsible_id bigint not null references app.staff,
  extended_by bigint not null references app.staff,
  created_at timestamptz not null default now(),
  check (due_on > due_before)
);
create index overdue_extensions_sample_idx on app.overdue_extensions (sample_id, rule_id, state_since);
create index overdue_extensions_supplier_idx on app.overdue_extensions (supplier_id);
create index overdue_extensions_responsible_idx on app.overdue_extensions (responsible_id);
comment on table app.overdue_extensions is 'Due dates extended with a reason: the lateness history of a sample, its supplier and the person responsible. Applies while the sample stays in the state it was in (state_since).';

create table app.overdue_chases (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  rule_id integer not null references app.overdue_rules,
  chased_by bigint not null references app.staff,
  chased_on date not null,
  sample_version integer not null,
  note text check (length(note) <= 500),
  created_at timestamptz not null default now(),
  unique (sample_id, rule_id, chased_on)
);
comment on table app.overdue_chases is '"Chased today" marks: the sample leaves the next day''s mail unless it changed (its version) since.';

create table app_private.mail_outbox (
  id bigint generated always as identity primary key,
  kind text not null check (kind in ('overdue', 'welcome', 'digest', 'my_overdue')),
  staff_id bigint not null references app.staff,
  day date not null,
  dedupe_key text not null unique,
  to_email text not null,
  subject text not null,
  payload jsonb not null default '{}',
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  sending_since timestamptz,
  sent_at timestamptz,
  failed_at timestamptz,
  last_error text,
  message_id text
);
create index mail_outbox_pending_idx on app_private.mail_outbox (next_attempt_at, id)
  where sent_at is null and failed_at is null and sending_since is null;
comment on table app_private.mail_outbox is 'Mail the database decided to send, one row per person per day and kind (dedupe_key); drained by python -m alerts. sending_since without sent_at after a crash = in doubt, never resent automatically.';

create table app_private.mail_capture (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  mail_from text not null,
  rcpt_to text[] not null,
  subject text,
  message_id text,
  message bytea not null
);
comment on table app_private.mail_capture is 'Mail received by the local capture server (make run); read by system admins through app.captured_mail().';

-- the weekly digest's "spend this week vs last" reads orders by date
create index sample_events_action_at_idx on app.sample_events (action, at);

alter table app.overdue_rules enable row level security;
alter table app.overdue_rules force row level security;
alter table app.overdue_extensions enable row level security;
alter table app.overdue_extensions force row level security;
alter table app.overdue_chases enable row level security;
alter table app.overdue_chases force row level security;
alter table app_private.mail_outbox enable row level security;
alter table app_private.mail_outbox force row level security;
alter table app_private.mail_capture enable row level security;
alter table app_private.mail_capture force row level security;

reset role;

-- The schedule (pg_cron). pg_cron lives in one database per cluster
-- (cron.database_name; scripts/pg.sh sets it to the tracker database): the jobs are
-- created when that database is migrated, and skipped (with a notice) elsewhere, e.g.
-- the test clones. Times are GMT (cron.timezone). Change the time with
-- `python -m alerts schedule 06:30`.
do $do$
begin
  if current_database() is distinct from current_setting('cron.database_name', true) then
    raise notice 'pg_cron is not in this database (cron.database_name = %); overdue mail is not scheduled here',
      coalesce(current_setting('cron.database_name', true), 'unset');
    return;
  end if;
  create extension if not exists pg_cron;
  perform cron.schedule('tracker-alerts-morning', '0 6 * * *',
                        $$select app_private.queue_overdue_mail(current_date)$$);
  perform cron.schedule('tracker-alerts-weekly-digest', '5 6 * * 1',
                        $$select app_private.queue_digests(current_date)$$);
  perform cron.schedule('tracker-alerts-purge-run-details', '30 3 * * *',
                        $$delete from cron.job_run_details where end_time < now() - interval '30 days'$$);
end
$do$;
