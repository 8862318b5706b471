-- app_private.login_failures: failed sign-ins, for throttling.
set local role tracker_owner;
alter table app_private.login_failures enable row level security;
alter table app_private.login_failures force row level security;
-- NOTE: no policy and no grant: only the sign-in functions (authenticator) touch it.
