-- Fleet-wide provider limits (worker/provlimit.c, docs/providers.md).

-- genq_job_fair_share(job) → (user_id, weight): whose turn a job's provider
-- slot counts toward, and the weight of that user's plan
-- (plans.provider_weight). No row when the job does not exist.
create or replace function genq_job_fair_share(p_job uuid)
returns table (user_id text, weight int)
language plpgsql stable as $$
begin
  return query
  select j.user_id, coalesce(p.provider_weight, 1)
  from jobs j
  join accounts a on a.user_id = j.user_id
  left join plans p on p.plan = a.plan
  where j.id = p_job;
end $$;
