-- V0006: server-side web sessions, sign-in attempts (throttling) and known devices.
-- The web app's identity is a random session token whose hash is looked up here by
-- app.current_staff_id(); logout, a password change or reset, deactivation and a
-- role change end sessions server-side (sql/functions/061_web_sessions.sql).
set role tracker_owner;

create table app_private.web_sessions (
  id bigint generated always as identity primary key,
  token_hash bytea not null unique,
  staff_id bigint not null references app.staff on delete cascade,
  role app.staff_role not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  last_seen_at timestamptz not null default now(),
  ended_at timestamptz,
  end_reason text,
  client_addr inet,
  user_agent text check (length(user_agent) <= 512),
  constraint web_sessions_ended_with_reason check ((ended_at is null) = (end_reason is null)),
  constraint web_sessions_end_reason_known check (end_reason in ('signed_out', 'password_changed', 'password_reset',
                                                                 'deactivated', 'role_changed')),
  constraint web_sessions_expire_after_start check (expires_at > created_at)
);
create index web_sessions_open_idx on app_private.web_sessions (staff_id) where ended_at is null;
comment on table app_private.web_sessions is 'Signed-in browsers: the sha256 of each random session token (never the token), whose it is, the role at sign-in, an absolute expiry, and when and why it ended.';
comment on column app_private.web_sessions.token_hash is 'sha256 of the token the browser holds in its session cookie; the token itself is stored nowhere.';
comment on column app_private.web_sessions.role is 'The staff role at sign-in; the session gives no identity once the person''s role differs.';
comment on column app_private.web_sessions.expires_at is 'Absolute end of the session (default 12 hours after sign-in), however active it is.';
comment on column app_private.web_sessions.end_reason is 'Why it ended: signed_out, password_changed, password_reset, deactivated or role_changed.';

create type app_private.sign_in_outcome as enum ('pending', 'failed', 'succeeded', 'refused');
comment on type app_private.sign_in_outcome is 'A sign-in attempt: pending while the app verifies the password, then failed or succeeded; refused when throttled (no password was checked).';

create table app_private.login_attempts (
  id bigint generated always as identity primary key,
  email text not null check (length(email) <= 320),
  staff_id bigint references app.staff on delete cascade,
  client_addr inet,
  device_hash bytea,
  at timestamptz not null default now(),
  outcome app_private.sign_in_outcome not null default 'pending'
);
create index login_attempts_email_idx on app_private.login_attempts (email, at);
create index login_attempts_addr_idx on app_private.login_attempts (client_addr, at);
create index login_attempts_at_idx on app_private.login_attempts (at);
comment on table app_private.login_attempts is 'Every sign-in attempt, recorded before the password is checked; counted per account, per client address and per device to throttle guessing. Kept one day.';
comment on column app_private.login_attempts.email is 'The email as typed, trimmed and lower-cased (also for unknown accounts, which are throttled alike).';
comment on column app_private.login_attempts.device_hash is 'sha256 of the browser''s device cookie, when it sent one.';

create table app_private.known_devices (
  id bigint generated always as identity primary key,
  staff_id bigint not null references app.staff on delete cascade,
  device_hash bytea not null,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  unique (staff_id, device_hash)
);
comment on table app_private.known_devices is 'Browsers that signed in to an account before (sha256 of a long-lived random device cookie): strangers'' failed guesses do not lock them out. Forgotten when the password changes.';

alter table app_private.staff_credentials add column token_purpose text
  check (token_purpose in ('invite', 'reset'));
update app_private.staff_credentials set token_purpose = 'invite' where invite_token_hash is not null;
alter table app_private.staff_credentials add constraint staff_credentials_token_has_purpose
  check ((invite_token_hash is null) = (token_purpose is null));
comment on column app_private.staff_credentials.token_purpose is 'What the one-time link in invite_token_hash is for: a first sign-up (invite) or a password reset (reset).';
comment on table app_private.staff_credentials is 'Argon2 password hashes and one-time sign-up/reset tokens (hashes only); read only by the sign-in functions. Changes are audited with the secrets redacted.';

-- replaced by login_attempts (recorded before the check, per account, address and device)
drop table app_private.login_failures;

reset role;
