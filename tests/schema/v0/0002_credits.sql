-- 0002_credits: accounts, grants and the ledger audit (SPEC §6).
--
-- Lock order, everywhere in genq's SQL: a job row before its account row.
-- Functions that touch only an account lock just that row. Nothing locks two
-- accounts, so these functions cannot deadlock with each other.

-- genq_account_ensure(user): creates the account when missing. A newly created
-- account receives settings.signup_grant credits (when > 0) as a 'grant'
-- ledger row keyed signup:<user>, so the grant happens once per user ever.
create or replace function genq_account_ensure(p_user text) returns void
language plpgsql as $$
declare
  v_grant bigint;
begin
  if p_user is null or p_user = '' then
    raise exception 'user id is empty' using errcode = '22023';
  end if;
  insert into accounts (user_id) values (p_user) on conflict (user_id) do nothing;
  if not found then
    return;
  end if;
  select coalesce(s.value::bigint, 0) into v_grant from settings s where s.key = 'signup_grant';
  if coalesce(v_grant, 0) > 0 then
    insert into ledger (user_id, movement, balance_delta, held_delta, idem_key, note)
    values (p_user, 'grant', v_grant, 0, 'signup:' || p_user, 'signup grant')
    on conflict (idem_key) do nothing;
    if found then
      update accounts set balance = balance + v_grant where user_id = p_user;
    end if;
  end if;
end $$;

-- genq_credits(user) → {"balance": n, "held": n, "available": n}, creating
-- the account when missing (an authenticated user genq has not seen yet).
create or replace function genq_credits(p_user text) returns jsonb
language plpgsql as $$
declare
  r accounts;
begin
  perform genq_account_ensure(p_user);
  select * into r from accounts a where a.user_id = p_user;
  return jsonb_build_object('balance', r.balance, 'held', r.held,
                            'available', r.balance - r.held);
end $$;

-- genq_grant(user, amount, idem_key, note) → genq_credits(user).
-- Adds amount (> 0, else 22023) to the balance once per idem_key: a second
-- call with the same key changes nothing and returns the current credits
-- (Stripe redeliveries, a retried genqctl call).
create or replace function genq_grant(p_user text, p_amount bigint, p_idem_key text,
                                      p_note text) returns jsonb
language plpgsql as $$
begin
  if p_amount is null or p_amount <= 0 then
    raise exception 'grant amount must be positive' using errcode = '22023';
  end if;
  if p_idem_key is null or p_idem_key = '' then
    raise exception 'grant needs an idempotency key' using errcode = '22023';
  end if;
  perform genq_account_ensure(p_user);
  perform 1 from accounts a where a.user_id = p_user for update;
  insert into ledger (user_id, movement, balance_delta, held_delta, idem_key, note)
  values (p_user, 'grant', p_amount, 0, p_idem_key, p_note)
  on conflict (idem_key) do nothing;
  if found then
    update accounts set balance = balance + p_amount where user_id = p_user;
  end if;
  return genq_credits(p_user);
end $$;

-- genq_audit() → one row per violation of the SPEC §6 invariants; no rows
-- means the books are clean. One query, so one snapshot: the checks agree
-- with each other even while jobs are running.
create or replace function genq_audit()
returns table (check_name text, subject text, detail text)
language plpgsql stable as $$
begin
  return query
  with l as (
    select g.user_id, sum(g.balance_delta) as balance, sum(g.held_delta) as held
    from ledger g group by g.user_id
  ), jh as (
    select j.user_id, sum(j.held) as held from jobs j group by j.user_id
  ), sc as (
    select s.job_id, sum(s.captured) as captured from job_steps s group by s.job_id
  )
  select 'balance_vs_ledger'::text, a.user_id,
         format('balance %s, ledger sum %s', a.balance, coalesce(l.balance, 0))
  from accounts a left join l on l.user_id = a.user_id
  where a.balance <> coalesce(l.balance, 0)
  union all
  select 'held_vs_ledger', a.user_id,
         format('held %s, ledger sum %s', a.held, coalesce(l.held, 0))
  from accounts a left join l on l.user_id = a.user_id
  where a.held <> coalesce(l.held, 0)
  union all
  select 'held_vs_jobs', a.user_id,
         format('held %s, jobs hold %s', a.held, coalesce(jh.held, 0))
  from accounts a left join jh on jh.user_id = a.user_id
  where a.held <> coalesce(jh.held, 0)
  union all
  select 'negative_balance', a.user_id,
         format('balance %s, held %s, available %s', a.balance, a.held, a.balance - a.held)
  from accounts a
  where a.balance < 0 or a.balance - a.held < 0
  union all
  select 'job_cost', j.id::text,
         format('held %s + captured %s + released %s <> price %s',
                j.held, j.captured, j.released, j.price)
  from jobs j
  where j.held + j.captured + j.released <> j.price
  union all
  select 'terminal_job_holds', j.id::text, format('%s job still holds %s', j.status, j.held)
  from jobs j
  where j.status in ('succeeded', 'failed', 'canceled') and j.held <> 0
  union all
  select 'succeeded_not_captured', j.id::text,
         format('captured %s of price %s', j.captured, j.price)
  from jobs j
  where j.status = 'succeeded' and j.captured <> j.price
  union all
  select 'job_vs_steps_captured', j.id::text,
         format('job captured %s, steps captured %s', j.captured, coalesce(sc.captured, 0))
  from jobs j left join sc on sc.job_id = j.id
  where j.captured <> coalesce(sc.captured, 0);
end $$;
