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

-- confirmed handovers (issue 14): a sample handed to someone else, or sent to a factory, is
-- in transit from its sender until the receiver confirms (a flag, not a ninth state)
set role tracker_owner;
alter table app.samples
  add column transit_from bigint references app.staff,
  add column transit_since timestamptz,
  add constraint samples_transit_complete check ((transit_from is null) = (transit_since is null));
comment on column app.samples.transit_from is 'Who handed the sample over (to a designer, to sales, to a factory) while the receiver has not yet confirmed it; null once confirmed or moved on.';
comment on column app.samples.transit_since is 'When the unconfirmed handover happened.';
create index samples_in_transit_idx on app.samples (transit_since) where transit_from is not null;
reset role;
