-- The books' audit (SPEC §6): genqctl audit and the tests after every chaos
-- run call it.

-- genq_audit() → one row per violation of the SPEC §6 invariants; no rows
-- means the books are clean. One query, so one snapshot: the checks agree
-- with each other even while jobs are running.
--
-- Accounts: balance and held equal the sums of the account's ledger rows,
-- held equals what its jobs hold, and neither balance nor available is
-- negative.
-- Ledger rows, each: its movement has its shape (grant: +balance; hold:
-- +held; release: −held; capture: −c from both; adjust: any, but never on a
-- job), and a row that names a job names one that exists, of the same user.
-- Jobs: held + captured + released = price; the job's held, captured and
-- balance movement equal the sums of its own rows (holds, retry holds,
-- captures, releases: a row that moved a balance it should not have shows
-- here even when its account was moved to match); a terminal job holds
-- nothing (a job in the dead-letter set is failed: the jobs_dead_is_failed
-- constraint); a succeeded job captured its price; its captured equals its
-- steps'.
-- Debt and Stripe purchases: genq_audit_stripe (stripe.sql).
-- Retention (privacy.sql): ledger rows over 2 years old are folded into
-- their account's carry row; a job with no ledger rows left that ended
-- before its account's fold horizon is not compared with its rows
-- (genq_audit_folded), nor are the jobs of a purged account missing.
-- Steps, each: captured equals its own capture row (job:<id>:capture:<step>),
-- and every capture row of a job names one of its steps.
-- genq_audit_folded(user, t) → whether t (a job's end, a purchase's last
-- change) is before the horizon of the user's last ledger fold: its rows
-- may have been folded into the carry row (genq_ledger_fold, privacy.sql).
create or replace function genq_audit_folded(p_user text, p_t timestamptz) returns boolean
language sql stable as $$
  select coalesce((select p_t < a.ledger_carried_before from accounts a
                   where a.user_id = p_user), false)
$$;

create or replace function genq_audit()
returns table (check_name text, subject text, detail text)
language plpgsql stable as $$
begin
  return query
  with l as (
    select g.user_id, sum(g.balance_delta) as balance, sum(g.held_delta) as held
    from ledger g group by g.user_id
  ), jl as (
    select g.job_id, sum(g.held_delta) as held, sum(g.balance_delta) as balance,
           -sum(g.balance_delta) filter (where g.movement = 'capture') as captured
    from ledger g where g.job_id is not null group by g.job_id
  ), jh as (
    select j.user_id, sum(j.held) as held from jobs j group by j.user_id
  ), sc as (
    select s.job_id, sum(s.captured) as captured from job_steps s group by s.job_id
  ), caps as (
    select g.job_id, g.user_id, g.idem_key, -g.balance_delta as captured
    from ledger g where g.movement = 'capture' and g.job_id is not null
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
  select 'ledger_row_shape', coalesce(g.job_id::text, g.user_id),
         format('%s row %s (%s): balance %s, held %s', g.movement, g.id, g.idem_key,
                g.balance_delta, g.held_delta)
  from ledger g
  where not case g.movement
              when 'grant' then g.balance_delta > 0 and g.held_delta = 0
              when 'hold' then g.balance_delta = 0 and g.held_delta >= 0
              when 'release' then g.balance_delta = 0 and g.held_delta <= 0
              when 'capture' then g.balance_delta = g.held_delta and g.balance_delta <= 0
              -- Stripe's (stripe.sql): a refund takes balance and adds debt; a repay
              -- takes both by the same amount; only these and adjust move debt
              when 'reversal' then g.job_id is null and g.held_delta = 0 and g.balance_delta <= 0
                                   and g.debt_delta >= 0 and g.debt_delta - g.balance_delta > 0
              when 'repay' then g.job_id is null and g.held_delta = 0 and g.balance_delta < 0
                                and g.debt_delta = g.balance_delta
              else g.job_id is null
            end
     or (g.movement not in ('reversal', 'repay', 'adjust', 'carry') and g.debt_delta <> 0)
     -- the sums of rows folded after 2 years (privacy.sql): any deltas, no job, one per account
     or (g.movement = 'carry' and g.idem_key <> 'carry:' || g.user_id)
  union all
  select 'ledger_job_missing', g.user_id,
         format('%s row %s (%s) names job %s, which does not exist', g.movement, g.id,
                g.idem_key, g.job_id)
  from ledger g
  where g.job_id is not null and not exists (select 1 from jobs j where j.id = g.job_id)
    -- a purged account's jobs are gone; its ledger rows stay 2 years (privacy.sql)
    and not exists (select 1 from accounts a where a.user_id = g.user_id
                                               and a.purged_at is not null)
  union all
  select 'ledger_user_vs_job', j.id::text,
         format('%s row %s (%s) is user %s''s, the job user %s''s', g.movement, g.id,
                g.idem_key, g.user_id, j.user_id)
  from ledger g join jobs j on j.id = g.job_id
  where g.user_id <> j.user_id
  union all
  select 'job_cost', j.id::text,
         format('held %s + captured %s + released %s <> price %s',
                j.held, j.captured, j.released, j.price)
  from jobs j
  where j.held + j.captured + j.released <> j.price
  union all
  select 'job_vs_ledger', j.id::text,
         format('job holds %s and captured %s, its ledger rows hold %s, captured %s and moved '
                'the balance by %s', j.held, j.captured, coalesce(jl.held, 0),
                coalesce(jl.captured, 0), coalesce(jl.balance, 0))
  from jobs j left join jl on jl.job_id = j.id
  where (j.held <> coalesce(jl.held, 0) or j.captured <> coalesce(jl.captured, 0)
         or coalesce(jl.balance, 0) <> -j.captured)
    and not (jl.job_id is null and genq_audit_folded(j.user_id, j.finished_at))
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
  where j.captured <> coalesce(sc.captured, 0)
  union all
  select 'step_vs_ledger', s.job_id::text,
         format('step %s captured %s, its capture row %s', s.name, s.captured,
                coalesce(c.captured::text, 'none'))
  from job_steps s
  left join caps c
    on c.job_id = s.job_id and c.idem_key = 'job:' || s.job_id || ':capture:' || s.name
  where s.captured <> coalesce(c.captured, 0)
    and not (not exists (select 1 from jl where jl.job_id = s.job_id)
             and genq_audit_folded((select j.user_id from jobs j where j.id = s.job_id),
                                   (select j.finished_at from jobs j where j.id = s.job_id)))
  union all
  select 'capture_without_step', c.job_id::text,
         format('capture row %s (%s) names no step of the job', c.idem_key, c.captured)
  from caps c
  where not exists (select 1 from job_steps s
                    where s.job_id = c.job_id
                      and c.idem_key = 'job:' || s.job_id || ':capture:' || s.name)
    -- a purged account's jobs and steps are gone (privacy.sql)
    and not exists (select 1 from accounts a where a.user_id = c.user_id
                                               and a.purged_at is not null)
  union all
  -- debt, Stripe purchases and their reversals (stripe.sql)
  select * from genq_audit_stripe();
end $$;
