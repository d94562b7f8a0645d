-- genq_audit() → one row per violation of the SPEC §6 invariants; no rows
-- means the books are clean. One query, so one snapshot: the checks agree
-- with each other even while jobs are running. Per account: balance and
-- held against the ledger and the jobs, never negative. Per job: held +
-- captured + released = price; what it holds is the sum of its rows' held
-- deltas (holds, retry holds, captures, releases) and what it captured the
-- sum of its capture rows; a terminal job holds nothing (a job in the
-- dead-letter set is failed: the jobs_dead_is_failed constraint); a
-- succeeded job captured its price; the job's captured equals its steps'.
create or replace function genq_audit()
returns table (check_name text, subject text, detail text)
language plpgsql stable as $$
begin
  return query
  with l as (
    select g.user_id, sum(g.balance_delta) as balance, sum(g.held_delta) as held
    from ledger g group by g.user_id
  ), jl as (
    select g.job_id, sum(g.held_delta) as held,
           -sum(g.balance_delta) filter (where g.movement = 'capture') as captured
    from ledger g where g.job_id is not null group by g.job_id
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
  select 'job_vs_ledger', j.id::text,
         format('job holds %s and captured %s, its ledger rows hold %s and captured %s',
                j.held, j.captured, coalesce(jl.held, 0), coalesce(jl.captured, 0))
  from jobs j left join jl on jl.job_id = j.id
  where j.held <> coalesce(jl.held, 0) or j.captured <> coalesce(jl.captured, 0)
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
