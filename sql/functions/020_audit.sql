-- Audit: the generic change trigger, the append-only guard and the hash-chain verifier.
set local role audit_owner;

create or replace function audit.link_hash(
  p_prev bytea, p_id bigint, p_at timestamptz, p_txid bigint, p_staff_id bigint,
  p_db_role text, p_session_role text, p_table text, p_op text, p_row_id text,
  p_old jsonb, p_new jsonb)
returns bytea
language sql immutable parallel safe
as $$
  select sha256(p_prev || convert_to(concat_ws(chr(31),
           p_id, (extract(epoch from p_at) * 1000000)::bigint, p_txid, coalesce(p_staff_id::text, ''),
           p_db_role, p_session_role, p_table, p_op, coalesce(p_row_id, ''),
           coalesce(p_old::text, ''), coalesce(p_new::text, '')), 'UTF8'))
$$;
comment on function audit.link_hash(bytea, bigint, timestamptz, bigint, bigint, text, text, text, text, text, jsonb, jsonb)
  is 'sha256(previous hash || canonical text of one audit row): one link of the chain.';

create or replace function audit.redact_secrets(p_row jsonb, p_before jsonb) returns jsonb
language sql immutable parallel safe
as $$
  -- each secret column becomes a marker: 'set', 'changed' (set, to another value than
  -- before) or 'cleared' (was set, now null); null stays null
  select p_row || coalesce(jsonb_object_agg(k, case
           when p_row ->> k is null then case when p_before ->> k is not null then to_jsonb('cleared'::text) else 'null'::jsonb end
           when p_before ->> k is not null and p_before ->> k <> p_row ->> k then to_jsonb('changed'::text)
           else to_jsonb('set'::text) end), '{}'::jsonb)
    from unnest(array['password_hash', 'invite_token_hash']) k
   where p_row ? k
$$;
comment on function audit.redact_secrets(jsonb, jsonb) is 'A staff_credentials row for the audit log: password and token hashes replaced by set/changed/cleared markers, so the log proves that a secret changed without holding it.';

create or replace function audit.record_change() returns trigger
language plpgsql volatile security definer
set search_path = pg_catalog, audit, pg_temp
as $$
declare
  v_old jsonb;
  v_new jsonb;
  v_prev bytea;
  v_id bigint;
  v_at timestamptz := clock_timestamp();
  v_txid bigint := txid_current();
  v_staff bigint := app.current_staff_id();
  -- the role the change was made as: the staff role the app switched to, else the login
  v_role text := case when current_setting('role') <> 'none' then current_setting('role')
                      else session_user::text end;
  v_table text := tg_table_schema || '.' || tg_table_name;
  v_row_id text;
  v_hash bytea;
begin
  -- derived search documents are not business data: left out of the log
  if tg_op in ('UPDATE', 'DELETE') then v_old := to_jsonb(old) - 'search'; end if;
  if tg_op in ('INSERT', 'UPDATE') then v_new := to_jsonb(new) - 'search'; end if;
  -- photo bytes are replaced by their digest (the log proves which image, without copying it)
  if v_new ? 'image' then
    v_new := v_new - 'image' - 'thumbnail'
             || jsonb_build_object('image_sha256', encode(sha256(decode(substr(v_new ->> 'image', 3), 'hex')), 'hex'));
  end if;
  -- credentials: the log says a hash was set, changed or cleared, never what it is
  if v_table = 'app_private.staff_credentials' then
    v_new := audit.redact_secrets(v_new, v_old);
    v_old := audit.redact_secrets(v_old, null);
  end if;
  if tg_op = 'UPDATE' and v_old = v_new then
    return null;  -- an update that changed nothing leaves no trace
  end if;
  v_row_id := coalesce(v_new, v_old) ->> coalesce(tg_argv[0], 'id');
  -- the chain head's row lock serialises writers (and raises a serialisation
  -- failure in a repeatable-read transaction that would fork the chain)
  select last_hash into v_prev from audit.chain_head for update;
  v_id := nextval(pg_get_serial_sequence('audit.log', 'id'));
  v_hash := audit.link_hash(v_prev, v_id, v_at, v_txid, v_staff, v_role, session_user::text,
                            v_table, tg_op, v_row_id, v_old, v_new);
  insert into audit.log (id, at, txid, staff_id, db_role, session_role, table_name, op, row_id,
                         old_row, new_row, prev_hash, hash)
  overriding system value
  values (v_id, v_at, v_txid, v_staff, v_role, session_user::text, v_table, tg_op, v_row_id,
          v_old, v_new, v_prev, v_hash);
  update audit.chain_head set last_id = v_id, last_hash = v_hash;
  return null;
end
$$;
comment on function audit.record_change() is 'AFTER row trigger on every business table: appends who/when/old/new to audit.log and extends the hash chain.';

create or replace function audit.forbid_change() returns trigger
language plpgsql volatile
as $$
begin
  raise exception using
    errcode = 'TR011',
    message = format('%s.%s is append-only; %s is not allowed', tg_table_schema, tg_table_name, lower(tg_op)),
    hint = 'Record a correcting entry instead.';
end
$$;
comment on function audit.forbid_change() is 'BEFORE UPDATE/DELETE/TRUNCATE guard for append-only tables; raises TR011 for every role, the owner included.';

create or replace trigger before_change_forbid before update or delete on audit.log
  for each row execute function audit.forbid_change();
create or replace trigger before_truncate_forbid before truncate on audit.log
  for each statement execute function audit.forbid_change();

create or replace function audit.verify_chain()
returns table (ok boolean, rows_checked bigint, first_broken_id bigint, problem text)
language plpgsql stable security definer
set search_path = pg_catalog, audit, pg_temp
as $$
declare
  v_zero bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
  v_bad record;
  v_count bigint;
  v_head record;
  v_last record;
begin
  select count(*) into v_count from audit.log;
  with links as (
    select l.id,
           l.prev_hash is distinct from coalesce(lag(l.hash) over (order by l.id), v_zero) as prev_mismatch,
           l.hash <> audit.link_hash(l.prev_hash, l.id, l.at, l.txid, l.staff_id, l.db_role, l.session_role,
                                     l.table_name, l.op, l.row_id, l.old_row, l.new_row) as hash_mismatch
      from audit.log l)
  select id, prev_mismatch, hash_mismatch into v_bad
    from links
   where prev_mismatch or hash_mismatch
   order by id
   limit 1;
  if found and v_bad.hash_mismatch then
    return query select false, v_count, v_bad.id, format('audit row %s was altered: its content no longer matches its hash', v_bad.id);
    return;
  elsif found and v_bad.prev_mismatch then
    return query select false, v_count, v_bad.id, format('the chain breaks before audit row %s: a row was removed or re-linked', v_bad.id);
    return;
  end if;
  select last_id, last_hash into v_head from audit.chain_head;
  select id, hash into v_last from audit.log order by id desc limit 1;
  if v_head.last_id is distinct from v_last.id or v_head.last_hash is distinct from coalesce(v_last.hash, v_zero) then
    return query select false, v_count, v_head.last_id,
      format('the chain head names row %s but the log ends at row %s: rows at the end were removed', v_head.last_id, v_last.id);
    return;
  end if;
  return query select true, v_count, null::bigint, null::text;
end
$$;
comment on function audit.verify_chain() is 'Recomputes every link of the audit hash chain; reports the first row that was altered, removed or re-linked.';

-- the table owner attaches these triggers to its tables (sql/functions/021_audit_triggers.sql)
grant usage on schema audit to tracker_owner;
grant execute on function audit.record_change(), audit.forbid_change() to tracker_owner;
