-- app_private.staff_credentials: password hashes and invite tokens.
set local role tracker_owner;
alter table app_private.staff_credentials enable row level security;
alter table app_private.staff_credentials force row level security;
-- NOTE: no policy and no grant: no staff role can read or write a hash. The web app
-- reads one through app_private.begin_sign_in() (authenticator only).
