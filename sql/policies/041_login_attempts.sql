-- app_private.login_attempts: every sign-in attempt, for throttling.
set local role tracker_owner;
alter table app_private.login_attempts enable row level security;
alter table app_private.login_attempts force row level security;
-- NOTE: no policy and no grant: only the sign-in functions (begin_sign_in, finish_sign_in; authenticator) touch it.
