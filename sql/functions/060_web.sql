-- What the web UI needs from the database: comments, sign-in with throttling,
-- invitations and password resets. (Search is in 055_search.sql; web sessions in
-- 061_web_sessions.sql.)
set local role tracker_owner;

------------------------------------------------------------------------------
-- Comments
------------------------------------------------------------------------------
create or replace function app.comment_edit_window() returns interval
language sql immutable parallel safe
as $$ select interval '15 minutes' $$;
comment on function app.comment_edit_window() is 'How long after posting authors may correct their own comment (the update policy on app.sample_comments reads it; so does the web page).';

create or replace function app_private.tg_sample_comments__check_update() returns trigger
language plpgsql volatile
as $$
begin
  if new.sample_id <> old.sample_id or new.author_id <> old.author_id or new.is_qc_rejection <> old.is_qc_rejection
     or new.created_at <> old.created_at then
    raise exception using errcode = 'TR005', message = 'only the text of a comment can be edited';
  end if;
  new.edited_at := now();
  return new;
end
$$;
comment on function app_private.tg_sample_comments__check_update() is 'BEFORE UPDATE on comments: only the body changes; stamps edited_at.';

------------------------------------------------------------------------------
-- Random tokens (sessions, devices, sign-up and reset links): 244 random bits
------------------------------------------------------------------------------
create or replace function app_private.new_token() returns text
language sql volatile parallel safe
as $$ select encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex') $$;
comment on function app_private.new_token() is 'A fresh random token: 64 hex characters from two random UUIDs (244 random bits). Only its sha256 is ever stored.';

------------------------------------------------------------------------------
-- Sign-in (authenticator only): record the attempt, then check the limits, both
-- before the app verifies the password; then finish it, which starts a session.
--
-- Limits, over the last 15 minutes, counting attempts that were not refused and
-- did not succeed (failed, or still being checked):
--   * 5 per account (also for unknown emails, so the answer does not reveal them);
--   * 20 per client address, across all accounts;
--   * a browser that signed in to this account before (its device cookie is in
--     known_devices) is not held by strangers' failures: only by its own 5, and
--     while strangers have locked the account it may try once every 10 seconds.
------------------------------------------------------------------------------
create or replace function app_private.begin_sign_in(
  p_email text, p_client_addr inet, p_device_token text,
  out attempt_id bigint, out allowed boolean, out retry_after timestamptz, out refusal text,
  out password_hash text)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  c_window constant interval := interval '15 minutes';
  c_account_limit constant integer := 5;
  c_address_limit constant integer := 20;
  c_device_limit constant integer := 5;
  c_known_delay constant interval := interval '10 seconds';
  v_email text := left(lower(btrim(coalesce(p_email, ''))), 320);
  v_device bytea;
  v_staff app.staff;
  v_known boolean := false;
  v_at timestamptz;
begin
  if p_device_token ~ '^[0-9a-f]{64}$' then
    v_device := sha256(convert_to(p_device_token, 'UTF8'));
  end if;
  -- one attempt at a time per account, then per address (always in this order):
  -- 30 parallel guesses are counted one after another, so at most 5 get a check
  perform pg_advisory_xact_lock(hashtext('tracker.sign_in.account'), hashtext(v_email));
  if p_client_addr is not null then
    perform pg_advisory_xact_lock(hashtext('tracker.sign_in.address'), hashtext(host(p_client_addr)));
  end if;
  delete from login_attempts a where a.at < now() - interval '1 day';
  select * into v_staff from app.staff s where lower(s.email) = v_email;
  v_known := v_device is not null and v_staff.id is not null
             and exists (select 1 from known_devices d where d.staff_id = v_staff.id and d.device_hash = v_device);

  -- record first ...
  insert into login_attempts (email, staff_id, client_addr, device_hash)
  values (v_email, v_staff.id, p_client_addr, v_device)
  returning id into attempt_id;

  -- ... then check, against the attempts recorded before this one
  if v_known then
    select a.at into v_at from login_attempts a
     where a.email = v_email and a.device_hash = v_device and a.outcome in ('pending', 'failed')
       and a.at > now() - c_window and a.id <> attempt_id
     order by a.at desc offset c_device_limit - 1 limit 1;
    if found then
      refusal := 'too many failed sign-ins for this account from this browser';
      retry_after := v_at + c_window;
    elsif exists (select 1 from login_attempts a
                   where a.email = v_email and a.outcome in ('pending', 'failed')
                     and a.at > now() - c_window and a.id <> attempt_id
                  offset c_account_limit - 1) then
      -- strangers have locked the account: this browser is delayed, not locked out
      select max(a.at) into v_at from login_attempts a
       where a.email = v_email and a.device_hash = v_device and a.outcome <> 'refused' and a.id <> attempt_id;
      if v_at > now() - c_known_delay then
        refusal := 'someone has been guessing this account''s password, so this browser (which signed in here before) may try once every 10 seconds';
        retry_after := v_at + c_known_delay;
      end if;
    end if;
  else
    select a.at into v_at from login_attempts a
     where a.email = v_email and a.outcome in ('pending', 'failed')
       and a.at > now() - c_window and a.id <> attempt_id
     order by a.at desc offset c_account_limit - 1 limit 1;
    if found then
      refusal := 'too many failed sign-ins for this account';
      retry_after := v_at + c_window;
    elsif p_client_addr is not null then
      select a.at into v_at from login_attempts a
       where a.client_addr = p_client_addr and a.outcome in ('pending', 'failed')
         and a.at > now() - c_window and a.id <> attempt_id
       order by a.at desc offset c_address_limit - 1 limit 1;
      if found then
        refusal := 'too many failed sign-ins from your network';
        retry_after := v_at + c_window;
      end if;
    end if;
  end if;

  allowed := refusal is null;
  if not allowed then
    update login_attempts a set outcome = 'refused' where a.id = attempt_id;
    return;
  end if;
  -- the hash only for an active person, and only for an attempt that may be checked
  select c.password_hash into password_hash
    from staff_credentials c
   where c.staff_id = v_staff.id and v_staff.active;
end
$$;
comment on function app_private.begin_sign_in(text, inet, text) is 'Sign-in, step 1 (authenticator only): records the attempt, then checks the per-account, per-address and per-device limits; only an allowed attempt of an active person returns the password hash to verify. A refused one says why and when to try again.';

create or replace function app_private.require_session_lifetime(p_lifetime interval) returns void
language plpgsql immutable
as $$
begin
  if p_lifetime is null or p_lifetime < interval '1 minute' or p_lifetime > interval '30 days' then
    raise exception using errcode = 'TR005',
      message = format('a session lifetime of %s is not allowed', coalesce(p_lifetime::text, 'nothing')),
      hint = 'Use between 1 minute and 30 days (SESSION_LIFETIME_HOURS).';
  end if;
end
$$;
comment on function app_private.require_session_lifetime(interval) is 'Raises TR005 unless the session lifetime is between 1 minute and 30 days.';

create or replace function app_private.finish_sign_in(
  p_attempt_id bigint, p_password_ok boolean, p_lifetime interval default interval '12 hours',
  p_user_agent text default null, p_new_password_hash text default null,
  out session_token text, out device_token text)
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_attempt login_attempts;
  v_staff app.staff;
  v_device bytea;
begin
  perform require_session_lifetime(p_lifetime);
  if p_new_password_hash is not null and p_new_password_hash !~ '^\$argon2id\$' then
    raise exception using errcode = 'TR005', message = 'the password must be stored as an argon2id hash';
  end if;
  select * into v_attempt from login_attempts a where a.id = p_attempt_id for update;
  if not found or v_attempt.at < now() - interval '5 minutes' then
    raise exception using errcode = 'TR006', message = 'this sign-in attempt is unknown or too old',
      hint = 'Sign in again.';
  end if;
  if v_attempt.outcome = 'refused' then
    raise exception using errcode = 'TR012',
      message = 'this sign-in attempt was refused (too many failed sign-ins), so no password may be checked for it',
      hint = 'Wait, then sign in again.';
  end if;
  if v_attempt.outcome <> 'pending' then
    raise exception using errcode = 'TR006', message = 'this sign-in attempt was already finished',
      hint = 'Sign in again.';
  end if;

  select * into v_staff from app.staff s
   where s.id = v_attempt.staff_id and s.active
     and exists (select 1 from staff_credentials c where c.staff_id = s.id and c.password_hash is not null);
  if not coalesce(p_password_ok, false) or v_staff.id is null then
    update login_attempts a set outcome = 'failed' where a.id = p_attempt_id;
    return;
  end if;
  update login_attempts a set outcome = 'succeeded' where a.id = p_attempt_id;
  if p_new_password_hash is not null then
    -- the trigger on staff_credentials ends every session and forgets every device
    update staff_credentials c set password_hash = p_new_password_hash, password_set_at = now()
     where c.staff_id = v_staff.id;
  end if;
  v_device := v_attempt.device_hash;
  if v_device is null then
    device_token := new_token();
    v_device := sha256(convert_to(device_token, 'UTF8'));
  end if;
  insert into known_devices (staff_id, device_hash) values (v_staff.id, v_device)
  on conflict (staff_id, device_hash) do update set last_seen_at = now();
  session_token := start_session(v_staff.id, p_lifetime, v_attempt.client_addr, p_user_agent);
end
$$;
comment on function app_private.finish_sign_in(bigint, boolean, interval, text, text) is 'Sign-in, step 2 (authenticator only): the app says whether the password matched. On a match, for an active person, starts a session (returns its token), remembers the browser (returns a new device token when it had none) and, given a new hash, changes the password (which ends every other session). A refused attempt raises TR012.';

------------------------------------------------------------------------------
-- Invitations and password resets: a one-time link (only its hash is stored).
-- Who may: the system admin for people whose role does not read costs; the MD and
-- the ops director for anyone (the same rule as for changing roles, see app.staff).
------------------------------------------------------------------------------
create or replace function app_private.may_manage_credentials(p_admin app.staff_role, p_target app.staff_role)
returns boolean
language sql immutable parallel safe
as $$
  select case
    when p_admin in ('ops_director', 'md') then true
    when p_admin = 'system_admin'
      then p_target not in ('buyer', 'senior_buyer', 'sales_lead', 'finance', 'ops_director', 'md')
    else false end
$$;
comment on function app_private.may_manage_credentials(app.staff_role, app.staff_role) is 'Whether a person of role p_admin may invite or reset the password of a person of role p_target: directors anyone, the system admin only roles that do not read costs.';

create or replace function app_private.require_credentials_admin(p_staff_id bigint, p_what text) returns app.staff
language plpgsql stable security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me_id bigint := app.current_staff_id();
  v_me_role app.staff_role;
  v_target app.staff;
begin
  select s.role into v_me_role from app.staff s where s.id = v_me_id;
  if v_me_role is null then
    raise exception using errcode = 'TR010', message = 'no active staff member is signed in to this session',
      hint = 'Sign in again.';
  end if;
  if v_me_role not in ('system_admin', 'ops_director', 'md') then
    raise exception using errcode = 'TR002', message = format('only a system admin or a director can %s', p_what);
  end if;
  select * into v_target from app.staff s where s.id = p_staff_id and s.active;
  if not found then
    raise exception using errcode = 'TR006', message = format('no active staff member %s', p_staff_id);
  end if;
  if v_target.id = v_me_id then
    raise exception using errcode = 'TR002', message = format('you cannot %s for yourself', p_what),
      hint = 'Change your own password under "Password".';
  end if;
  if not may_manage_credentials(v_me_role, v_target.role) then
    raise exception using errcode = 'TR002',
      message = format('only the MD or the ops director can %s for a %s', p_what, replace(v_target.role::text, '_', ' ')),
      hint = 'People who read costs are administered by a director.';
  end if;
  return v_target;
end
$$;
comment on function app_private.require_credentials_admin(bigint, text) is 'The active staff row p_staff_id, after checking that the person signed in may invite or reset them (TR010, TR002, TR006 otherwise).';

create or replace function app.link_validity(p_purpose text) returns interval
language sql immutable parallel safe
as $$ select case p_purpose when 'invite' then interval '7 days' when 'reset' then interval '24 hours' end $$;
comment on function app.link_validity(text) is 'How long a one-time link works: a sign-up link (invite) 7 days, a password reset link 24 hours. The functions that make links, the welcome mail and the admin page all read it.';

create or replace function app.create_invite(p_staff_id bigint) returns text
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_target app.staff := app_private.require_credentials_admin(p_staff_id, 'send a sign-up link');
  v_token text := app_private.new_token();
begin
  if exists (select 1 from staff_credentials c where c.staff_id = v_target.id and c.password_hash is not null) then
    raise exception using errcode = 'TR013',
      message = format('%s already has a password; a sign-up link would replace it', v_target.full_name),
      hint = 'If they cannot sign in, use "Reset password" instead.';
  end if;
  insert into staff_credentials (staff_id, invite_token_hash, invite_expires_at, token_purpose)
  values (v_target.id, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), now() + app.link_validity('invite'), 'invite')
  on conflict (staff_id) do update
     set invite_token_hash = excluded.invite_token_hash, invite_expires_at = excluded.invite_expires_at,
         token_purpose = excluded.token_purpose;
  -- the role-aware welcome mail carries the link (issue 12, sql/functions/090_overdue.sql)
  perform app_private.queue_welcome_mail(v_target, v_token);
  return v_token;
end
$$;
comment on function app.create_invite(bigint) is 'A one-time sign-up link (token; only its hash is stored) for an active person who has no password yet, valid for app.link_validity(''invite''). System admin for roles that do not read costs, directors for anyone. Refuses (TR013) to replace an existing password.';

create or replace function app.reset_password(p_staff_id bigint) returns text
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_target app.staff := app_private.require_credentials_admin(p_staff_id, 'reset the password');
  v_token text := app_private.new_token();
begin
  perform app_private.end_sessions(v_target.id, 'password_reset');
  insert into staff_credentials (staff_id, invite_token_hash, invite_expires_at, token_purpose)
  values (v_target.id, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), now() + app.link_validity('reset'), 'reset')
  on conflict (staff_id) do update
     set password_hash = null, password_set_at = null, invite_token_hash = excluded.invite_token_hash,
         invite_expires_at = excluded.invite_expires_at, token_purpose = excluded.token_purpose;
  return v_token;
end
$$;
comment on function app.reset_password(bigint) is 'Clears a person''s password, ends every session of theirs and returns a one-time link token (valid for app.link_validity(''reset'')) to set a new one. Same rule as invitations; the change is audited with the secrets redacted.';

create or replace function app_private.accept_invite(p_token text, p_password_hash text) returns bigint
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_staff bigint;
begin
  if p_password_hash is null or p_password_hash !~ '^\$argon2id\$' then
    raise exception using errcode = 'TR005', message = 'the password must be stored as an argon2id hash';
  end if;
  update app_private.staff_credentials c
     set password_hash = p_password_hash, password_set_at = now(), invite_token_hash = null,
         invite_expires_at = null, token_purpose = null
   where c.invite_token_hash = encode(sha256(convert_to(coalesce(p_token, ''), 'UTF8')), 'hex')
     and c.invite_expires_at > now()
     and c.password_hash is null
     and exists (select 1 from app.staff s where s.id = c.staff_id and s.active)
  returning c.staff_id into v_staff;
  if v_staff is null then
    raise exception using errcode = 'TR006', message = 'this link is invalid, used or has expired',
      hint = 'Ask an administrator for a new one.';
  end if;
  return v_staff;
end
$$;
comment on function app_private.accept_invite(text, text) is 'Sign-up or reset link (authenticator only): sets the password hash for a valid, unexpired token of a person without a password, once.';
