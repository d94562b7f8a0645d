-- Fleet-wide provider limits (worker/provlimit.c, docs/providers.md).

-- genq_jobs_fair_share(jobs) → (id, user_id, weight) for each of those jobs
-- that exists: whose turn a job's provider slot counts toward, and the
-- weight of that user's plan (plans.provider_weight). A worker asks it for
-- every job of one stream read whose first step waits for a slot.
create or replace function genq_jobs_fair_share(p_jobs uuid[])
returns table (id uuid, user_id text, weight int)
language plpgsql stable as $$
begin
  return query
  select j.id, j.user_id, coalesce(p.provider_weight, 1)
  from jobs j
  join accounts a on a.user_id = j.user_id
  left join plans p on p.plan = a.plan
  where j.id = any(p_jobs);
end $$;

-- genq_job_fair_share(job) → (user_id, weight): genq_jobs_fair_share of one
-- job. No row when the job does not exist.
create or replace function genq_job_fair_share(p_job uuid)
returns table (user_id text, weight int)
language sql stable as $$
  select f.user_id, f.weight from genq_jobs_fair_share(array[p_job]) f
$$;
