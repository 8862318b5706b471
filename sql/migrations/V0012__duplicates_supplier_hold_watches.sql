-- V0012: stopping repeat mistakes (issue 15): trigram matching for near-duplicate
-- requests across teams, remembered "not a duplicate" dismissals, supplier holds,
-- and people watching a sample or a supplier.
create schema if not exists extensions;
comment on schema extensions is 'Extensions (pg_trgm), kept out of our schemas so the migrate reset never touches their objects; only the owner uses them, inside definer functions.';
create extension if not exists pg_trgm with schema extensions;
revoke all on schema extensions from public;
grant usage on schema extensions to tracker_owner;

set role tracker_owner;

-- near-duplicates: trigram GiST indexes over what is still in flight (the only samples a
-- warning is about); GiST answers "the nearest titles first" (<->) without scoring every
-- sample that shares a word, so a common title costs what a rare one does
create index samples_title_trgm_idx on app.samples using gist (lower(title) extensions.gist_trgm_ops)
  where state not in ('returned', 'cut-for-production');
create index samples_style_trgm_idx on app.samples using gist (lower(style_code) extensions.gist_trgm_ops)
  where style_code is not null and state not in ('returned', 'cut-for-production');

create table app.duplicate_dismissals (
  sample_a bigint not null references app.samples,
  sample_b bigint not null references app.samples,
  dismissed_by bigint not null references app.staff,
  dismissed_at timestamptz not null default now(),
  reason text check (length(reason) <= 500),
  primary key (sample_a, sample_b),
  constraint duplicate_dismissals_ordered check (sample_a < sample_b)
);
create index duplicate_dismissals_b_idx on app.duplicate_dismissals (sample_b);
comment on table app.duplicate_dismissals is 'Pairs of samples a senior buyer or director said are not duplicates; the pair is never suggested again (a < b).';

alter table app.suppliers
  add column on_hold_at timestamptz,
  add column on_hold_by bigint references app.staff,
  add column hold_reason text check (length(hold_reason) <= 500),
  add constraint suppliers_hold_complete
    check ((on_hold_at is null) = (on_hold_by is null) and (on_hold_at is null) = (hold_reason is null));
comment on column app.suppliers.on_hold_at is 'Set while the supplier is on hold (app.hold_supplier): nobody may request or order from it until the hold is lifted.';
comment on column app.suppliers.on_hold_by is 'Who put the supplier on hold.';
comment on column app.suppliers.hold_reason is 'Why the supplier is on hold.';

create table app.watches (
  id bigint generated always as identity primary key,
  staff_id bigint not null references app.staff,
  sample_id bigint references app.samples,
  supplier_id integer references app.suppliers,
  created_at timestamptz not null default now(),
  constraint watches_one_target check ((sample_id is null) <> (supplier_id is null))
);
create unique index watches_sample_key on app.watches (staff_id, sample_id) where sample_id is not null;
create unique index watches_supplier_key on app.watches (staff_id, supplier_id) where supplier_id is not null;
create index watches_sample_idx on app.watches (sample_id) where sample_id is not null;
create index watches_supplier_idx on app.watches (supplier_id) where supplier_id is not null;
comment on table app.watches is 'A person following a sample or a supplier: its changes appear in their Watching list (only what they may see).';

reset role;

set role tracker_owner;
create table app.supplier_hold_events (
  id bigint generated always as identity primary key,
  supplier_id integer not null references app.suppliers,
  action text not null check (action in ('hold', 'lift')),
  reason text not null check (btrim(reason) <> '' and length(reason) <= 500),
  actor_id bigint not null references app.staff,
  at timestamptz not null default now()
);
create index supplier_hold_events_supplier_idx on app.supplier_hold_events (supplier_id, at);
comment on table app.supplier_hold_events is 'Every hold put on a supplier and every lifting of one, with the reason and who did it (append-only).';
reset role;
