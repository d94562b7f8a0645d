-- API keys (SPEC §4; tables in schema/0019_api_keys.sql). genqctl keys
-- creates, lists and revokes them; every genq-api process keeps a copy of
-- the live keys and of the deleted accounts (api/access.c), filled by
-- genq_access_changes and told of revocations at once through Redis.

-- The key as operators and the export see it: never its hash.
create or replace function genq_api_key_json(k api_keys) returns jsonb
language sql immutable as $$
  select jsonb_build_object('id', k.id, 'user', k.user_id, 'name', k.name, 'prefix', k.prefix,
                            'admin', k.admin, 'created_at', k.created_at,
                            'last_used_at', k.last_used_at, 'revoked_at', k.revoked_at)
$$;

-- genq_api_key_create(user, name, admin, hash, prefix) → the new key (JSON).
-- The caller made the key and gives only its SHA-256 and first characters.
-- The account is created when missing; a deleted account gets no key
-- (GQ410), and a user has at most 100 live keys (54000).
create or replace function genq_api_key_create(p_user text, p_name text, p_admin boolean,
                                               p_hash bytea, p_prefix text) returns jsonb
language plpgsql as $$
declare
  k api_keys;
begin
  perform genq_account_ensure(p_user);
  perform 1 from accounts a where a.user_id = p_user and a.deleted_at is null for update;
  if not found then
    raise exception 'account % is deleted', p_user using errcode = 'GQ410';
  end if;
  if (select count(*) from api_keys x where x.user_id = p_user and x.revoked_at is null) >= 100 then
    raise exception 'user % has 100 live keys: revoke one first', p_user using errcode = '54000';
  end if;
  insert into api_keys (id, user_id, name, hash, prefix, admin)
  values (genq_uuid7(), p_user, coalesce(p_name, ''), p_hash, p_prefix, coalesce(p_admin, false))
  returning * into k;
  return genq_api_key_json(k);
end $$;

-- genq_api_keys_list(user) → the user's keys, newest first (JSON array).
create or replace function genq_api_keys_list(p_user text) returns jsonb
language sql stable as $$
  select coalesce(jsonb_agg(genq_api_key_json(k) order by k.created_at desc, k.id desc), '[]')
  from api_keys k where k.user_id = p_user
$$;

-- genq_api_key_revoke(id) → the key after revoking it (JSON; revoking
-- twice keeps the first time), or NULL when there is no such key.
create or replace function genq_api_key_revoke(p_id uuid) returns jsonb
language plpgsql as $$
declare
  k api_keys;
begin
  update api_keys set revoked_at = coalesce(revoked_at, now()) where id = p_id returning * into k;
  if not found then
    return null;
  end if;
  return genq_api_key_json(k);
end $$;

-- genq_api_key_auth(hash) → the live key with that hash of a live account
-- (id, user, admin), or no row; records its use (at most once a minute).
-- genq-api asks this for a key its copy does not hold yet (one made a
-- moment ago).
create or replace function genq_api_key_auth(p_hash bytea)
returns table (id uuid, user_id text, admin boolean)
language sql as $$
  update api_keys k set last_used_at = now()
  from accounts a
  where k.hash = p_hash and k.revoked_at is null and a.user_id = k.user_id
    and a.deleted_at is null
  returning k.id, k.user_id, k.admin
$$;

-- genq_api_key_touch(id): records a use of a live key that genq-api found
-- in its copy (each process at most once a minute per key).
create or replace function genq_api_key_touch(p_id uuid) returns void
language sql as $$
  update api_keys set last_used_at = now()
  where id = p_id and revoked_at is null
    and (last_used_at is null or last_used_at < now() - interval '1 minute')
$$;

-- genq_access_changes(since) → what genq-api's copy must learn: with since
-- NULL every live key and every deleted account, else what changed from a
-- minute before since on (keys made or revoked, accounts deleted; rows
-- committed late with an earlier time are still seen). The first row,
-- kind 'now', carries the database's time to pass as the next since.
-- kind 'key': id, user, hash, admin, live (false: revoked, or its account
-- deleted); kind 'user': a deleted account (id = user).
create or replace function genq_access_changes(p_since timestamptz)
returns table (kind text, id text, user_id text, hash bytea, admin boolean, live boolean)
language sql stable as $$
  select 'now', now()::text, null, null::bytea, null::boolean, null::boolean
  union all
  select 'key', k.id::text, k.user_id, k.hash, k.admin,
         k.revoked_at is null and a.deleted_at is null
  from api_keys k join accounts a on a.user_id = k.user_id
  where (p_since is null and k.revoked_at is null and a.deleted_at is null)
     or k.created_at > p_since - interval '1 minute'
     or k.revoked_at > p_since - interval '1 minute'
  union all
  select 'user', a.user_id, a.user_id, null, null, false
  from accounts a
  where a.deleted_at is not null
    and (p_since is null or a.deleted_at > p_since - interval '1 minute')
$$;
