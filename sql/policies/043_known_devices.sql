-- app_private.known_devices: browsers that signed in to an account before.
set local role tracker_owner;
alter table app_private.known_devices enable row level security;
alter table app_private.known_devices force row level security;
-- NOTE: no policy and no grant: finish_sign_in writes it, begin_sign_in reads it, a password change empties it.
