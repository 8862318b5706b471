-- V0001: roles, schemas, the core tables, the audit log.
-- Policies, grants, functions and views are re-applied after every migrate
-- (see sql/CONVENTIONS.md); this file holds only what must exist once.

------------------------------------------------------------------------------
-- Roles (cluster-wide, so created only when missing)
------------------------------------------------------------------------------
do $$
declare
  r text;
begin
  foreach r in array array['buyer', 'senior_buyer', 'designer', 'sales_lead',
      'sales_executive', 'qc', 'factory_liaison', 'logistics', 'finance',
      'ops_director', 'md', 'system_admin']
  loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
  end loop;
  if not exists (select 1 from pg_roles where rolname = 'tracker_owner') then
    create role tracker_owner nologin bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'audit_owner') then
    create role audit_owner nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  foreach r in array array['buyer', 'senior_buyer', 'designer', 'sales_lead',
      'sales_executive', 'qc', 'factory_liaison', 'logistics', 'finance',
      'ops_director', 'md', 'system_admin']
  loop
    execute format('grant %I to authenticator', r);
  end loop;
  execute format('grant create, connect on database %I to tracker_owner, audit_owner',
                 current_database());
  execute format('revoke all on database %I from public', current_database());
  execute format('grant connect on database %I to authenticator, buyer, senior_buyer, designer,
      sales_lead, sales_executive, qc, factory_liaison, logistics, finance, ops_director, md,
      system_admin', current_database());
end
$$;

revoke create on schema public from public;
alter default privileges for role tracker_owner revoke execute on functions from public;
alter default privileges for role audit_owner revoke execute on functions from public;

------------------------------------------------------------------------------
-- Schemas
------------------------------------------------------------------------------
create schema app authorization tracker_owner;
comment on schema app is 'Business tables and the lifecycle API, used by every staff role through RLS.';
create schema app_private authorization tracker_owner;
comment on schema app_private is 'Internals no role reads directly: credentials, SECURITY DEFINER lifecycle internals, the demo clock.';
create schema audit authorization audit_owner;
comment on schema audit is 'Append-only change log with a hash chain.';

set role tracker_owner;

------------------------------------------------------------------------------
-- Types
------------------------------------------------------------------------------
create type app.sample_state as enum ('requested', 'ordered', 'received', 'with-design',
  'with-sales', 'at-factory', 'returned', 'cut-for-production');
comment on type app.sample_state is 'The eight lifecycle states; returned and cut-for-production are terminal.';

create type app.staff_role as enum ('buyer', 'senior_buyer', 'designer', 'sales_lead',
  'sales_executive', 'qc', 'factory_liaison', 'logistics', 'finance', 'ops_director', 'md',
  'system_admin');
comment on type app.staff_role is 'The twelve staff roles; each label is also a NOLOGIN group role of the same name.';

create type app.qc_result as enum ('pass', 'reject');
comment on type app.qc_result is 'Outcome of a QC inspection.';

------------------------------------------------------------------------------
-- Reference data
------------------------------------------------------------------------------
create table app.teams (
  id integer generated always as identity primary key,
  code text not null unique check (code ~ '^[A-Z]{2,8}$'),
  name text not null unique check (btrim(name) <> ''),
  created_at timestamptz not null default now()
);
comment on table app.teams is 'Buying teams (womenswear, menswear, ...); samples and buyers belong to one.';
comment on column app.teams.code is 'Short upper-case code shown on tags and lists.';

create table app.staff (
  id bigint generated always as identity primary key,
  email text not null check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  full_name text not null check (btrim(full_name) <> ''),
  role app.staff_role not null,
  team_id integer references app.teams,
  active boolean not null default true,
  login_role name unique,
  created_at timestamptz not null default now(),
  constraint staff_buyers_have_team check (team_id is not null or role not in ('buyer', 'senior_buyer'))
);
create unique index staff_email_key on app.staff (lower(email));
create index staff_team_idx on app.staff (team_id);
create index staff_role_idx on app.staff (role);
comment on table app.staff is 'People who use the tracker: one role each, a buying team for buyers.';
comment on column app.staff.role is 'The database group role the web app switches to for this person.';
comment on column app.staff.login_role is 'Optional personal LOGIN role (analysts, DBAs); a member of the group role named by role.';
comment on column app.staff.active is 'Inactive staff cannot sign in and are resolved to no identity.';

create table app_private.staff_credentials (
  staff_id bigint primary key references app.staff on delete cascade,
  password_hash text,
  password_set_at timestamptz,
  invite_token_hash text,
  invite_expires_at timestamptz
);
comment on table app_private.staff_credentials is 'Argon2 password hashes and invite tokens; read only through app_private.lookup_login().';

create table app.currencies (
  code char(3) primary key check (code ~ '^[A-Z]{3}$'),
  name text not null,
  gbp_rate numeric(14, 6) not null check (gbp_rate > 0)
);
comment on table app.currencies is 'ISO currencies accepted for costs with the default rate to GBP.';
comment on column app.currencies.gbp_rate is 'GBP per one unit of this currency, used when an order gives no rate.';

create table app.suppliers (
  id integer generated always as identity primary key,
  name text not null unique check (btrim(name) <> ''),
  country char(2),
  active boolean not null default true,
  created_at timestamptz not null default now()
);
comment on table app.suppliers is 'Companies samples are bought from.';

create table app.supplier_contacts (
  id integer generated always as identity primary key,
  supplier_id integer not null references app.suppliers,
  name text not null,
  email text,
  phone text,
  position text,
  created_at timestamptz not null default now()
);
create index supplier_contacts_supplier_idx on app.supplier_contacts (supplier_id);
comment on table app.supplier_contacts is 'People at a supplier (sensitive: commercial contacts).';

create table app.factories (
  id integer generated always as identity primary key,
  name text not null unique check (btrim(name) <> ''),
  country char(2),
  city text,
  active boolean not null default true
);
comment on table app.factories is 'Factories samples are sent to for fitting, copying and production.';

create table app.categories (
  id integer generated always as identity primary key,
  name text not null unique check (btrim(name) <> ''),
  department text not null
);
comment on table app.categories is 'Product categories (dresses, knitwear, ...) used for spend analysis.';

create table app.seasons (
  id integer generated always as identity primary key,
  code text not null unique check (code ~ '^(SS|AW)[0-9]{2}$'),
  name text not null,
  starts_on date not null,
  ends_on date not null,
  check (ends_on > starts_on)
);
comment on table app.seasons is 'Trading seasons (SS26 = spring/summer 2026).';

create table app.locations (
  id integer generated always as identity primary key,
  code text not null unique check (btrim(code) <> ''),
  name text not null,
  kind text not null check (kind in ('shelf', 'studio', 'showroom', 'dispatch'))
);
comment on table app.locations is 'Places in the building a sample can be: sample-room shelves, studio, showroom, dispatch.';

------------------------------------------------------------------------------
-- Samples and their sensitive side tables
------------------------------------------------------------------------------
create table app.samples (
  id bigint generated always as identity (start with 1001) primary key,
  title text not null check (btrim(title) <> '' and length(title) <= 200),
  style_code text check (length(style_code) <= 40),
  category_id integer not null references app.categories,
  season_id integer not null references app.seasons,
  team_id integer not null references app.teams,
  requested_by bigint not null references app.staff,
  supplier_id integer references app.suppliers,
  state app.sample_state not null default 'requested',
  holder_id bigint references app.staff,
  location_id integer references app.locations,
  factory_id integer references app.factories,
  on_loan boolean not null default false,
  expected_on date,
  received_on date,
  return_due_on date,
  qc_rejected boolean not null default false,
  production_approved_by bigint references app.staff,
  production_approved_at timestamptz,
  courier_ref text,
  withdrawn_at timestamptz,
  state_changed_at timestamptz not null default now(),
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint samples_ordered_has_supplier check (state = 'requested' or withdrawn_at is not null or supplier_id is not null),
  constraint samples_at_factory_has_factory check (state <> 'at-factory' or factory_id is not null),
  constraint samples_id_team_key unique (id, team_id)
);
create index samples_team_state_idx on app.samples (team_id, state);
create index samples_state_idx on app.samples (state, state_changed_at);
create index samples_requested_by_idx on app.samples (requested_by);
-- dashboards list open samples newest first: by requester and by team
create index samples_open_by_requester_idx on app.samples (requested_by, state_changed_at desc)
  where state not in ('returned', 'cut-for-production');
create index samples_open_by_team_idx on app.samples (team_id, state_changed_at desc)
  where state not in ('returned', 'cut-for-production');
create index samples_holder_idx on app.samples (holder_id) where holder_id is not null;
create index samples_supplier_idx on app.samples (supplier_id);
create index samples_category_idx on app.samples (category_id);
create index samples_season_idx on app.samples (season_id);
create index samples_factory_idx on app.samples (factory_id) where factory_id is not null;
create index samples_expected_idx on app.samples (expected_on) where state = 'ordered';
create index samples_return_due_idx on app.samples (return_due_on) where on_loan;
comment on table app.samples is 'One row per physical sample; the id is the number printed on its tag (e.g. 4421).';
comment on column app.samples.id is 'The sample number printed on the tag and typed into search.';
comment on column app.samples.state is 'Current lifecycle state; changed only by the lifecycle functions, never by UPDATE.';
comment on column app.samples.holder_id is 'The designer or sales person holding the sample while with-design / with-sales.';
comment on column app.samples.on_loan is 'True when the supplier lent the sample and expects it back by return_due_on.';
comment on column app.samples.return_due_on is 'Date an on-loan sample must be back with its supplier; set on receipt.';
comment on column app.samples.qc_rejected is 'Set forever by a QC rejection; such a sample can only be returned.';
comment on column app.samples.version is 'Incremented by every transition; lets a form detect it is stale.';
comment on column app.samples.withdrawn_at is 'Set when a request was withdrawn before ordering; the sample is then returned (terminal).';

create table app.sample_costs (
  sample_id bigint primary key references app.samples,
  team_id integer not null,
  unit_cost numeric(12, 2) not null check (unit_cost > 0),
  quantity integer not null default 1 check (quantity > 0),
  currency char(3) not null references app.currencies,
  fx_rate_to_gbp numeric(14, 6) not null check (fx_rate_to_gbp > 0),
  total_gbp numeric(14, 2) generated always as (round(unit_cost * quantity * fx_rate_to_gbp, 2)) stored,
  po_number text check (length(po_number) <= 40),
  payment_terms text,
  updated_at timestamptz not null default now(),
  constraint sample_costs_sample_team_fkey foreign key (sample_id, team_id) references app.samples (id, team_id)
);
create index sample_costs_team_idx on app.sample_costs (team_id);
comment on table app.sample_costs is 'Costing and commercial terms of a sample (sensitive: own-team buyers, finance, sales lead, directors).';
comment on column app.sample_costs.team_id is 'The sample''s team, copied so the cost policy needs no join; the composite foreign key keeps it equal to samples.team_id.';
comment on column app.sample_costs.fx_rate_to_gbp is 'GBP per unit of currency at order time.';
comment on column app.sample_costs.total_gbp is 'unit_cost x quantity x fx_rate_to_gbp, rounded to pence.';

create table app.sample_events (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  action text not null,
  from_state app.sample_state,
  to_state app.sample_state,
  actor_id bigint references app.staff,
  actor_role text not null,
  at timestamptz not null default now(),
  note text,
  details jsonb not null default '{}',
  is_override boolean not null default false
);
create index sample_events_sample_idx on app.sample_events (sample_id, at, id);
create index sample_events_actor_idx on app.sample_events (actor_id);
comment on table app.sample_events is 'One row per lifecycle action; the sample timeline. Append-only.';
comment on column app.sample_events.from_state is 'State before the action (null when the sample was created).';
comment on column app.sample_events.to_state is 'State after the action (equal to from_state for actions that record without moving).';
comment on column app.sample_events.details is 'Action-specific values (location, holder, factory, courier reference, ...); never costs.';

create table app.qc_inspections (
  id bigint generated always as identity primary key,
  sample_id bigint not null references app.samples,
  inspector_id bigint not null references app.staff,
  result app.qc_result not null,
  reason text,
  inspected_at timestamptz not null default now(),
  constraint qc_reject_has_reason check (result = 'pass' or btrim(coalesce(reason, '')) <> '')
);
create index qc_inspections_sample_idx on app.qc_inspections (sample_id);
comment on table app.qc_inspections is 'QC inspections of received samples; a rejection is permanent and counts on the supplier''s quality record. Append-only.';
comment on column app.qc_inspections.reason is 'Why the sample was rejected (mandatory for a reject); visible with the inspection.';

create table app.qc_inspection_notes (
  inspection_id bigint primary key references app.qc_inspections,
  notes text not null
);
comment on table app.qc_inspection_notes is 'The inspector''s notes on an inspection (sensitive: QC, buyers of the team, directors). Append-only.';

------------------------------------------------------------------------------
-- The lifecycle rules, as data
------------------------------------------------------------------------------
create table app.transition_rules (
  id integer generated always as identity primary key,
  action text not null,
  from_state app.sample_state,
  to_state app.sample_state,
  roles app.staff_role[] not null,
  required text[] not null default '{}',
  verb text not null,
  description text not null,
  constraint transition_rules_unique unique nulls not distinct (action, from_state)
);
comment on table app.transition_rules is 'Allowed lifecycle actions: from which state, to which state, by which roles, needing which fields. The functions, the docs and the UI read this.';
comment on column app.transition_rules.from_state is 'Null only for the request that creates a sample.';
comment on column app.transition_rules.to_state is 'Null for actions that record something without changing state (approval, inspection).';
comment on column app.transition_rules.verb is 'Phrase completing "only <roles> can ..." in error messages.';

------------------------------------------------------------------------------
-- Demo clock: lets the demo loader back-date events. Empty outside demo loads.
------------------------------------------------------------------------------
create table app_private.demo_clock (
  singleton boolean primary key default true check (singleton)
);
comment on table app_private.demo_clock is 'While it holds a row, app.clock() honours tracker.demo_now; only the demo loader (superuser) fills and empties it.';

reset role;

------------------------------------------------------------------------------
-- Audit log (owned by audit_owner)
------------------------------------------------------------------------------
set role audit_owner;

create table audit.log (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  txid bigint not null default txid_current(),
  staff_id bigint,
  db_role text not null,
  session_role text not null default session_user,
  table_name text not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  row_id text,
  old_row jsonb,
  new_row jsonb,
  prev_hash bytea not null,
  hash bytea not null
);
create index audit_log_table_row_idx on audit.log (table_name, row_id);
create index audit_log_staff_idx on audit.log (staff_id);
comment on table audit.log is 'Every insert/update/delete on business tables. Append-only; hash = sha256(prev_hash || canonical row).';
comment on column audit.log.db_role is 'The database role the change was made as (the staff role, or the personal login).';
comment on column audit.log.session_role is 'The login that opened the session (authenticator for the web app).';
comment on column audit.log.prev_hash is 'Hash of the previous row (32 zero bytes for the first row).';

create table audit.chain_head (
  singleton boolean primary key default true check (singleton),
  last_id bigint,
  last_hash bytea not null
);
insert into audit.chain_head (last_id, last_hash) values (null, '\x0000000000000000000000000000000000000000000000000000000000000000');
comment on table audit.chain_head is 'The newest link of the hash chain; writers lock it, so the chain is serial and tail deletion is detectable.';

reset role;
