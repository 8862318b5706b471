-- What the web UI needs from the database: comments, sign-in throttling,
-- invitations. (Search is in 055_search.sql.)
set local role tracker_owner;

------------------------------------------------------------------------------
-- Comments
------------------------------------------------------------------------------
create or replace function app_private.before_comment_update() returns trigger
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
comment on function app_private.before_comment_update() is 'BEFORE UPDATE on comments: only the body changes; stamps edited_at.';

create or replace trigger before_update_comment before update on app.sample_comments
  for each row execute function app_private.before_comment_update();
create or replace trigger before_delete_forbid before delete on app.sample_comments
  for each row execute function audit.forbid_change();

------------------------------------------------------------------------------
-- Sign-in throttling (authenticator only)
------------------------------------------------------------------------------
create or replace function app_private.login_allowed(p_email text) returns boolean
language sql stable security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
  select count(*) < 5 from app_private.login_failures
   where lower(email) = lower(btrim(p_email)) and at > now() - interval '15 minutes'
$$;
comment on function app_private.login_allowed(text) is 'False after 5 failed sign-ins for an email within 15 minutes.';

create or replace function app_private.record_login_failure(p_email text) returns void
language sql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$
  delete from app_private.login_failures where at < now() - interval '1 day';
  insert into app_private.login_failures (email) values (left(lower(btrim(p_email)), 320));
$$;
comment on function app_private.record_login_failure(text) is 'Records a failed sign-in (and forgets those older than a day).';

create or replace function app_private.clear_login_failures(p_email text) returns void
language sql volatile security definer
set search_path = pg_catalog, app_private, pg_temp
as $$ delete from app_private.login_failures where lower(email) = lower(btrim(p_email)) $$;
comment on function app_private.clear_login_failures(text) is 'Forgets failed sign-ins after a successful one.';

------------------------------------------------------------------------------
-- Invitations: the system admin issues a one-time link; the person sets a password
------------------------------------------------------------------------------
create or replace function app_private.create_invite(p_staff_id bigint) returns text
language plpgsql volatile security definer
set search_path = pg_catalog, app, app_private, pg_temp
as $$
declare
  v_me app.staff := app_private.require_staff();
  v_token text := encode(sha256(convert_to(gen_random_uuid()::text || clock_timestamp()::text || random()::text, 'UTF8')), 'hex');
begin
  if v_me.role <> 'system_admin' then
    raise exception using errcode = 'TR002', message = 'only a system admin can invite staff';
  end if;
  if not exists (select 1 from app.staff where id = p_staff_id and active) then
    raise exception using errcode = 'TR006', message = format('no active staff member %s', p_staff_id);
  end if;
  insert into app_private.staff_credentials (staff_id, invite_token_hash, invite_expires_at)
  values (p_staff_id, encode(sha256(convert_to(v_token, 'UTF8')), 'hex'), now() + interval '7 days')
  on conflict (staff_id) do update
     set invite_token_hash = excluded.invite_token_hash, invite_expires_at = excluded.invite_expires_at;
  return v_token;
end
$$;
comment on function app_private.create_invite(bigint) is 'System admin: a one-time sign-up token for a staff member, valid 7 days (only its hash is stored).';

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
     set password_hash = p_password_hash, password_set_at = now(), invite_token_hash = null, invite_expires_at = null
   where c.invite_token_hash = encode(sha256(convert_to(coalesce(p_token, ''), 'UTF8')), 'hex')
     and c.invite_expires_at > now()
     and exists (select 1 from app.staff s where s.id = c.staff_id and s.active)
  returning c.staff_id into v_staff;
  if v_staff is null then
    raise exception using errcode = 'TR006', message = 'this invitation link is invalid or has expired',
      hint = 'Ask a system admin for a new one.';
  end if;
  return v_staff;
end
$$;
comment on function app_private.accept_invite(text, text) is 'Sign-up (authenticator only): sets the password hash for a valid, unexpired invite token, once.';
