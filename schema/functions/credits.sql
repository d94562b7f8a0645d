-- Credits and the ledger (SPEC §6): accounts, grants, and releasing what a
-- job holds. Holds are taken by genq_submit_jobs (jobs.sql) and
-- genq_job_retry (dead_letters.sql), captures by genq_step_succeed
-- (steps.sql); genq_audit (audit.sql) checks the books.
--
-- Every change of a balance is a ledger row whose idem_key is unique, so
-- nothing is applied twice. Lock order, everywhere in genq's SQL: a job row
-- before its account row. Functions that touch only an account lock just
-- that row. Only a batch of submissions (genq_submit_jobs) locks several
-- accounts, all at once in user_id order and before anything else, so two
-- batches cannot deadlock on them.

-- genq_account_ensure(user): creates the account when missing. A newly created
-- account receives settings.signup_grant credits (when > 0) as a 'grant'
-- ledger row keyed signup:<user>, so the grant happens once per user ever.
create or replace function genq_account_ensure(p_user text) returns void
language plpgsql as $$
begin
  if p_user is null or p_user = '' then
    raise exception 'user id is empty' using errcode = '22023';
  end if;
  insert into accounts (user_id) values (p_user) on conflict (user_id) do nothing;
  if found then
    perform genq_account_signup(p_user);
  end if;
end $$;

-- genq_account_signup(user): internal to creating an account (above, and
-- genq_submit_jobs in jobs.sql, which creates a batch's accounts at once):
-- the sign-up grant of an account this transaction just inserted.
create or replace function genq_account_signup(p_user text) returns void
language plpgsql as $$
declare
  v_grant bigint;
begin
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

-- genq_credits(user) → {"balance": n, "held": n, "available": n, "debt": n},
-- creating the account when missing (an authenticated user genq has not
-- seen yet). debt: what a Stripe refund took back beyond what was available
-- (stripe.sql); while above 0 the user cannot submit.
create or replace function genq_credits(p_user text) returns jsonb
language plpgsql as $$
declare
  r accounts;
begin
  perform genq_account_ensure(p_user);
  select * into r from accounts a where a.user_id = p_user;
  return jsonb_build_object('balance', r.balance, 'held', r.held,
                            'available', r.balance - r.held, 'debt', r.debt);
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
    perform genq_account_repay(p_user, p_idem_key); -- a debt is paid first (stripe.sql)
  end if;
  return genq_credits(p_user);
end $$;

-- genq_job_release(job) → credits released, the account left to the caller.
-- Internal: the caller has the job row locked and is moving it to a
-- terminal state. Whatever the job still holds is released, once: the
-- ledger row (the first run releases under job:<id>:release, the run after
-- the n-th operator retry under job:<id>:release:retry:<n>) and the job's
-- columns; the caller takes the amount off its account's held
-- (genq_job_release_held). genq_steps_succeed releases the remainder of the
-- jobs its batch ends itself, under the same keys, with its other
-- movements.
create or replace function genq_job_release(p_job uuid) returns int
language plpgsql as $$
declare
  j jobs;
begin
  select * into j from jobs where id = p_job;
  if j.held = 0 then
    return 0;
  end if;
  insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
  values (j.user_id, j.id, 'release', 0, -j.held,
          'job:' || j.id || ':release' || case when j.retries > 0 then ':retry:' || j.retries
                                               else '' end)
  on conflict (idem_key) do nothing;
  if not found then
    -- Terminal states never move, so a second release means a bug: refuse
    -- rather than leave held and the ledger disagreeing.
    raise exception 'job % released twice', j.id using errcode = 'GQ500';
  end if;
  update jobs set released = released + j.held, held = 0 where id = j.id;
  return j.held;
end $$;

-- genq_job_release_held(job) → credits released. Internal: genq_job_release
-- and the account's held in one go, for a caller that has the job row
-- locked and is moving it to a terminal state.
create or replace function genq_job_release_held(p_job uuid) returns int
language plpgsql as $$
declare
  v_released int := genq_job_release(p_job);
begin
  if v_released > 0 then
    update accounts set held = held - v_released
    where user_id = (select j.user_id from jobs j where j.id = p_job);
  end if;
  return v_released;
end $$;
