-- V0013: stocktakes (issue 14): logistics counts a location against the records.
-- the sample room (issue 14): stocktakes
set role tracker_owner;
create table app.stocktakes (
  id bigint generated always as identity primary key,
  location_id integer not null references app.locations,
  started_by bigint not null references app.staff,
  started_at timestamptz not null default now(),
  expected bigint[] not null default '{}',
  found bigint[] not null default '{}',
  closed_by bigint references app.staff,
  closed_at timestamptz,
  constraint stocktakes_closed_complete check ((closed_at is null) = (closed_by is null))
);
create index stocktakes_location_idx on app.stocktakes (location_id, started_at desc);
comment on table app.stocktakes is 'Counts of a location: what the records said was there when the count started (expected) and what was scanned (found); kept after closing.';
reset role;
