-- 0016_stripe: Stripe purchases, refunds and debt, subscriptions (SPEC §6).
-- The functions that move these rows are schema/functions/stripe.sql
-- (genq_stripe_event, one call per webhook event).
--
-- Debt: what a refund took back beyond what was available (the user had
-- spent it). It never makes a balance negative; while it is above 0 the
-- user cannot submit jobs, and the next grant pays it first. Per account,
-- debt = sum(ledger.debt_delta), as balance = sum(balance_delta).
alter table accounts add column debt bigint not null default 0 check (debt >= 0);
alter table ledger add column debt_delta bigint not null default 0;

-- New movements: reversal (a refund or a failed payment: −balance taken
-- from what is available, +debt for the rest) and repay (a grant paying a
-- debt: −balance, −debt by the same amount).
alter table ledger drop constraint ledger_movement_check;
alter table ledger add constraint ledger_movement_check
  check (movement in ('grant', 'hold', 'capture', 'release', 'adjust', 'reversal', 'repay'));

-- A purchase: a Checkout Session in payment mode (ref = its id, credits from
-- metadata.credits) or a paid subscription invoice (ref = the invoice id,
-- credits from stripe_prices). Granted once: the grant's ledger key is
-- stripe:<ref>:grant, whatever the events that bring it. user_id is NULL
-- while an invoice's subscriber is not known yet (its grant waits for the
-- Checkout Session or subscription event that names the user).
--   status    pending (not paid yet), paid (granted, or waiting for its
--             user), failed (an asynchronous payment that failed)
--   amount    what the charge was, in the currency's smallest unit
--   refunded  the largest amount_refunded seen; reversed the credits taken
--             back for it: floor(credits * refunded / amount)
create table stripe_purchases (
  ref            text primary key check (ref <> ''),
  kind           text not null check (kind in ('checkout', 'invoice')),
  user_id        text references accounts,
  credits        bigint not null check (credits >= 0),
  status         text not null check (status in ('pending', 'paid', 'failed')),
  payment_intent text unique,
  subscription   text,
  amount         bigint not null default 0 check (amount >= 0),
  refunded       bigint not null default 0 check (refunded >= 0),
  granted        bigint not null default 0 check (granted >= 0),
  reversed       bigint not null default 0 check (reversed >= 0),
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  check (reversed <= granted)
);
create index stripe_purchases_waiting on stripe_purchases (subscription)
  where user_id is null;

-- Refunds whose charge names a payment_intent no purchase has yet (the
-- charge.refunded came before its Checkout Session): applied when it comes.
create table stripe_refunds_waiting (
  payment_intent text primary key check (payment_intent <> ''),
  amount         bigint not null check (amount >= 0),
  refunded       bigint not null check (refunded >= 0),
  received_at    timestamptz not null default now()
);

-- Who a Stripe customer is: recorded by a subscription-mode Checkout
-- Session (client_reference_id) or a subscription's metadata.user_id.
create table stripe_customers (
  customer_id text primary key check (customer_id <> ''),
  user_id     text not null references accounts,
  created_at  timestamptz not null default now()
);

-- A subscription as its latest event left it. event_at is that event's
-- created (Stripe's Unix time): an older event delivered late changes
-- nothing. ended_at is set once, when it is deleted or reaches canceled,
-- unpaid or incomplete_expired: it grants nothing more and gives no plan.
create table stripe_subscriptions (
  subscription_id text primary key check (subscription_id <> ''),
  customer_id     text,
  user_id         text references accounts,
  status          text not null,
  price_id        text,
  plan            text references plans,
  event_at        bigint not null default 0,
  ended_at        bigint,
  updated_at      timestamptz not null default now()
);
create index stripe_subscriptions_user on stripe_subscriptions (user_id);

-- Every event delivered: how many times and what genq did with it the
-- last time. A record, not what makes a grant happen once.
create table stripe_events (
  event_id    text primary key,
  type        text not null,
  deliveries  int not null default 1,
  outcome     text not null,
  received_at timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
