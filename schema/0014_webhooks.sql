-- 0014_webhooks: completion webhooks (SPEC §4; docs/webhooks.md).
--
-- webhook_deliveries is the outbox: the trigger jobs_webhook
-- (schema/functions/webhooks.sql) writes one row in the transaction that
-- moves a job with a webhook_url to a terminal status, and workers deliver
-- it at least once (genq_webhooks_claim, genq_webhook_record). The row's id
-- is the delivery's webhook-id ("msg_" and the id's hex), the same on every
-- attempt and replay. payload is the exact body sent, kept as text: its
-- bytes are what is signed.
--
-- state: pending (due at next_attempt_at) → delivering (claimed by a worker
-- until next_attempt_at, its lease) → delivered | pending (a retry) |
-- failed (its deadline passed, or the receiver answered 410) | refused (the
-- URL or its address is not allowed); a replay makes any but delivering
-- pending again.
create table webhook_deliveries (
  id              uuid primary key,
  job_id          uuid not null references jobs on delete cascade,
  user_id         text not null,
  event           text not null
                  check (event in ('job.succeeded', 'job.failed', 'job.canceled')),
  url             text not null,
  payload         text not null,
  state           text not null default 'pending'
                  check (state in ('pending', 'delivering', 'delivered', 'failed', 'refused')),
  attempts        int not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  deadline        timestamptz not null,
  created_at      timestamptz not null default now(),
  last_attempt_at timestamptz,
  last_status     int,
  last_error      text,
  delivered_at    timestamptz,
  worker_id       text
);
-- what is due: the one index the workers' poll reads
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at)
  where state in ('pending', 'delivering');
create index webhook_deliveries_job on webhook_deliveries (job_id, created_at);

-- Per-user signing secrets (Standard Webhooks "whsec_" keys), sealed with
-- AES-256-GCM under GENQ_SECRETS_KEY (common/secret_box.h): key_id names the
-- key that sealed it, sealed is base64(nonce || ciphertext || tag), bound to
-- the user id and key id. The current secret has expires_at null (at most
-- one per user); a rotated-away one signs beside it until expires_at.
create table webhook_secrets (
  id         bigserial primary key,
  user_id    text not null references accounts on delete cascade,
  key_id     text not null,
  sealed     text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz
);
create unique index webhook_secrets_current on webhook_secrets (user_id)
  where expires_at is null;
create index webhook_secrets_user on webhook_secrets (user_id, created_at desc);
