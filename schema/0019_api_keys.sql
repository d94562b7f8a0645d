-- 0019_api_keys: API keys for server-to-server callers (SPEC §4). A key
-- is "gq_" and 43 base64url characters (32 random bytes); genq keeps only
-- its SHA-256 (hash) and its first characters (prefix, to tell keys apart
-- in a listing). revoked_at set: refused by every API process (at once by
-- the one that revoked it, within a second by the others: api/auth_keys.c).
-- admin: the key may call the admin endpoints. last_used_at: written at
-- most once a minute per key and process. Functions:
-- schema/functions/api_keys.sql.
create table api_keys (
  id           uuid primary key,
  user_id      text not null references accounts,
  name         text not null default '' check (length(name) <= 100),
  hash         bytea not null unique check (length(hash) = 32),
  prefix       text not null,
  admin        boolean not null default false,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
create index api_keys_user on api_keys (user_id, created_at desc);
create index api_keys_revoked on api_keys (revoked_at) where revoked_at is not null;
create index api_keys_created on api_keys (created_at);

-- accounts.deleted_at (0001_core) is set by DELETE /v1/me: from then on the
-- user is refused on every API process (found by this index within a
-- second, and told at once through Redis).
create index accounts_deleted on accounts (deleted_at) where deleted_at is not null;
