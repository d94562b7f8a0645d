-- 0001_core: genq's tables (SPEC §5, §6), the legal job state moves and the
-- trigger that enforces them, and genq_uuid7().
--
-- Every money or job-state change happens inside one plpgsql function call
-- (0002_credits.sql, 0003_jobs.sql), so each is one transaction. The checks
-- below are the last line of defence behind those functions: a bug there
-- fails loudly instead of corrupting balances.

-- genq_uuid7(): a UUIDv7 (RFC 9562): 48-bit Unix millisecond timestamp, the
-- sub-millisecond fraction in the next 12 bits (the RFC's "increased clock
-- precision" method, as PostgreSQL 18's uuidv7() does), then random bits,
-- version 7 and variant 10. Ids sort by creation time to the microsecond,
-- which queue positions and cursor pagination (id desc) rely on.
create or replace function genq_uuid7() returns uuid
language plpgsql volatile parallel safe as $$
declare
  b bytea := uuid_send(gen_random_uuid());
  us bigint := floor(extract(epoch from clock_timestamp()) * 1000000)::bigint;
  ms bigint := us / 1000;
  frac int := ((us % 1000) * 4096 / 1000)::int;  -- 0..4095
begin
  b := overlay(b placing substring(int8send(ms) from 3) from 1 for 6);
  b := set_byte(b, 6, 112 | (frac >> 8));  -- version 7, high 4 bits of frac
  b := set_byte(b, 7, frac & 255);
  b := set_byte(b, 8, (get_byte(b, 8) & 63) | 128);  -- variant 10
  return encode(b, 'hex')::uuid;
end $$;

-- Operator knobs. signup_grant: credits a new account receives (0 = none).
create table settings (
  key   text primary key,
  value text not null
);
insert into settings (key, value) values ('signup_grant', '0');

-- Price per step kind. Operators edit rows without a rebuild; a job's price
-- is copied into jobs/job_steps at submit, so later edits never reprice it.
create table prices (
  step_kind text primary key,
  credits   int not null check (credits >= 0)
);
insert into prices (step_kind, credits) values
  ('storyboard', 1), ('image', 2), ('video', 10), ('lipsync', 8);

-- One row per user (the Clerk user id). available = balance - held.
create table accounts (
  user_id    text primary key check (user_id <> ''),
  balance    bigint not null default 0 check (balance >= 0),
  held       bigint not null default 0 check (held >= 0),
  created_at timestamptz not null default now(),
  deleted_at timestamptz,
  check (held <= balance)
);

-- Every credit movement. Per account, balance = sum(balance_delta) and
-- held = sum(held_delta), always (genq_audit checks it). Deltas per movement:
-- grant (+n, 0), hold (0, +p), capture (-c, -c), release (0, -r), adjust (any).
-- idem_key makes each movement happen at most once (job + step + movement,
-- Stripe session id, signup:<user>, ...).
create table ledger (
  id            bigserial primary key,
  user_id       text not null references accounts,
  job_id        uuid,
  movement      text not null
                check (movement in ('grant', 'hold', 'capture', 'release', 'adjust')),
  balance_delta bigint not null default 0,
  held_delta    bigint not null default 0,
  idem_key      text not null unique,
  note          text,
  created_at    timestamptz not null default now()
);
create index ledger_user_id on ledger (user_id, id desc);
create index ledger_job on ledger (job_id) where job_id is not null;

-- Jobs. epoch fences workers: every claim bumps it and every worker write is
-- conditional on it (SPEC §5). Cost columns: held is what is still held now;
-- held + captured + released = price at every moment.
create table jobs (
  id              uuid primary key default genq_uuid7(),
  user_id         text not null references accounts,
  kind            text not null
                  check (kind in ('storyboard', 'image', 'video', 'lipsync', 'campaign')),
  status          text not null default 'queued'
                  check (status in ('queued', 'running', 'succeeded', 'failed', 'canceled')),
  input           jsonb not null,
  webhook_url     text,
  idempotency_key text,
  request_hash    text,
  output          jsonb,
  error           jsonb,
  attempt         int not null default 0 check (attempt >= 0),
  max_attempts    int not null check (max_attempts >= 1),
  epoch           bigint not null default 0,
  lease_until     timestamptz,
  worker_id       text,
  next_attempt_at timestamptz,
  dispatched      boolean not null default false,
  price           int not null check (price >= 0),
  held            int not null check (held >= 0),
  captured        int not null default 0 check (captured >= 0),
  released        int not null default 0 check (released >= 0),
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  updated_at      timestamptz not null default now(),
  check (held + captured + released = price),
  unique (user_id, idempotency_key)
);
create index jobs_user_id on jobs (user_id, id desc);
create index jobs_queued_kind on jobs (kind, id) where status = 'queued';
create index jobs_undispatched on jobs (created_at) where status = 'queued' and not dispatched;
create index jobs_running_lease on jobs (lease_until) where status = 'running';

-- The steps of a job, planned at submit (genq_plan_steps). provider_ref is
-- the provider's generation id, written before the worker waits on it so a
-- reclaimed job resumes polling instead of paying again.
create table job_steps (
  job_id       uuid not null references jobs on delete cascade,
  idx          int not null,
  name         text not null,
  step_kind    text not null,
  provider     text not null,
  status       text not null default 'pending'
               check (status in ('pending', 'running', 'succeeded', 'failed', 'canceled')),
  attempt      int not null default 0,
  provider_ref text,
  price        int not null check (price >= 0),
  captured     int not null default 0 check (captured >= 0 and captured <= price),
  output       jsonb,
  error        jsonb,
  started_at   timestamptz,
  finished_at  timestamptz,
  primary key (job_id, name)
);

-- The legal job state moves; common/job.h (job_status_can_move) mirrors it.
-- Terminal states (succeeded, failed, canceled) never move.
create table job_transitions (
  from_status text not null,
  to_status   text not null,
  primary key (from_status, to_status)
);
insert into job_transitions (from_status, to_status) values
  ('queued', 'running'), ('queued', 'canceled'), ('queued', 'failed'),
  ('running', 'queued'), ('running', 'succeeded'), ('running', 'failed'),
  ('running', 'canceled');

-- The single place job state moves are checked: any UPDATE of jobs.status
-- along a pair not in job_transitions raises SQLSTATE GQ500 (and the whole
-- calling function's transaction rolls back). Also keeps updated_at.
create or replace function genq_jobs_before_update() returns trigger
language plpgsql as $$
begin
  if new.status is distinct from old.status
     and not exists (select 1 from job_transitions t
                     where t.from_status = old.status and t.to_status = new.status) then
    raise exception 'illegal job transition % -> % (job %)', old.status, new.status, old.id
      using errcode = 'GQ500';
  end if;
  new.updated_at := now();
  return new;
end $$;

create trigger jobs_before_update before update on jobs
  for each row execute function genq_jobs_before_update();
