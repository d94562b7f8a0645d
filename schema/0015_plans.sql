-- 0015_plans: what a user's plan allows (SPEC §4's per-user limits) and the
-- Stripe prices that sell plans and credits (SPEC §6). Both are operator
-- tables: edited with genqctl (limits set) or SQL, read at request time, so a
-- change needs no rebuild or restart.
--
-- plans: one row per plan. Every account has one (accounts.plan, 'free'
-- until a subscription moves it). A limit of 0 means none.
--   max_unfinished_jobs  jobs queued or running at once
--   submit_per_minute    the submission token bucket's refill per minute
--   submit_burst         the bucket's size
--   upload_bytes_per_day, uploads_per_day  per UTC day
create table plans (
  plan                 text primary key check (plan ~ '^[a-z0-9_-]{1,32}$'),
  max_unfinished_jobs  int not null check (max_unfinished_jobs >= 0),
  submit_per_minute    int not null check (submit_per_minute >= 0),
  submit_burst         int not null check (submit_burst >= 0),
  upload_bytes_per_day bigint not null check (upload_bytes_per_day >= 0),
  uploads_per_day      int not null check (uploads_per_day >= 0),
  updated_at           timestamptz not null default now()
);
insert into plans (plan, max_unfinished_jobs, submit_per_minute, submit_burst,
                   upload_bytes_per_day, uploads_per_day) values
  ('free', 50, 120, 60, 2147483648, 500),
  ('pro', 500, 1200, 300, 53687091200, 5000);

alter table accounts add column plan text not null default 'free' references plans;

-- stripe_prices: a Stripe price id and what buying it gives. A subscription
-- price (plan not null) moves its subscriber to plan and grants credits on
-- every paid invoice; a one-off price (plan null) is informational (a
-- Checkout Session names its credits in metadata.credits).
create table stripe_prices (
  price_id   text primary key check (price_id <> ''),
  plan       text references plans,
  credits    bigint not null check (credits >= 0),
  updated_at timestamptz not null default now()
);

-- What a ledger row is about beyond a job: the Stripe Checkout Session or
-- invoice id of a purchase, a subscription grant or a reversal (shown by
-- GET /v1/credits/ledger). job_id stays the reference of job movements.
alter table ledger add column ref text;
