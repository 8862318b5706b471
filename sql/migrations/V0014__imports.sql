-- V0014: bringing the old spreadsheet in (issue 14, item 5): an external reference per
-- imported sample (re-importing the same file creates nothing twice), the uploaded batches
-- while they are mapped and dry-run, and the column mapping remembered per header layout.
set role tracker_owner;

alter table app.samples add column external_ref text check (length(external_ref) <= 100);
create unique index samples_external_ref_key on app.samples (external_ref) where external_ref is not null;
comment on column app.samples.external_ref is 'The reference a sample had in the spreadsheet it was imported from (unique: an import is idempotent).';

create table app.import_batches (
  id bigint generated always as identity primary key,
  staff_id bigint not null references app.staff,
  filename text not null check (length(filename) <= 200),
  headers text[] not null,
  rows jsonb not null,
  mapping jsonb not null default '{}',
  created_at timestamptz not null default now(),
  committed_at timestamptz
);
create index import_batches_staff_idx on app.import_batches (staff_id, created_at desc);
comment on table app.import_batches is 'A spreadsheet being imported: its rows as uploaded, the column mapping chosen, and when it was committed.';

create table app.import_layouts (
  header_key text primary key,
  mapping jsonb not null,
  updated_by bigint not null references app.staff,
  updated_at timestamptz not null default now()
);
comment on table app.import_layouts is 'The column mapping last used for a spreadsheet with these headers, offered again next time.';
reset role;
