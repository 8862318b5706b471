-- app_private.demo_clock: back-dating switch for the demo loader.
set local role tracker_owner;
alter table app_private.demo_clock enable row level security;
alter table app_private.demo_clock force row level security;
-- NOTE: no policy and no grant: only a superuser (the demo loader) fills or empties it;
-- app.clock() reads it as its definer.
