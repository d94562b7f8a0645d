-- Claims and leases (SPEC §5): who owns a running job, for how long, and the
-- epoch that fences every worker write.
--
-- A claim makes a job running at epoch + 1 with a lease; the worker renews
-- the lease while it works (genq_jobs_renew). Every worker-facing function
-- goes through genq_job_fenced: it changes nothing unless the job is still
-- running at the caller's epoch, so a worker that lost its lease can never
-- finish, charge or overwrite a job someone else now owns.
--
-- The fenced functions (here and in steps.sql) share one result shape: the
-- job's status after the call ('running', 'queued', 'succeeded', 'failed'),
-- or NULL when the caller is fenced out and nothing changed.
--
-- Lock order, everywhere in genq's SQL: a job row (FOR UPDATE) before its
-- uploads, then its account row.

-- genq_job_fenced(job, epoch, need_lease) → the job row locked FOR UPDATE when
-- it is running at that epoch (and, with need_lease, its lease has not
-- lapsed); NULL otherwise. The one fencing rule for worker writes.
create or replace function genq_job_fenced(p_job uuid, p_epoch bigint, p_need_lease boolean)
returns jobs
language plpgsql as $$
declare
  j jobs;
begin
  select * into j from jobs where id = p_job for update;
  if not found or j.status <> 'running' or j.epoch <> p_epoch
     or (p_need_lease and (j.lease_until is null or j.lease_until < now())) then
    return null;
  end if;
  return j;
end $$;

-- genq_claim_jobs(jobs, worker, lease_s, max_reclaims = 3) → one row per job
-- of the batch that this call claimed (its id, the new epoch, and what the
-- worker needs: kind, input, attempt, max_attempts, the steps with their
-- stages, checkpoints and prices, and the uploads the job uses: role → id,
-- content type, bytes, storage key; and reclaimed, true when the claim was
-- a reclaim, for the worker's metrics); a job not claimable has no row. A worker claims
-- everything one stream read gave it with one call. Claimable: queued and
-- due, or running with a lapsed lease (a reclaim, which bumps the epoch and
-- fences the old owner out, and counts in jobs.reclaims). A job being
-- claimed by someone else right now is waited for (a row lock, not SKIP
-- LOCKED: a short UPDATE such as genq_mark_dispatched must not make a claim
-- miss a claimable job), and then is no longer claimable: two workers never
-- both win. A lapsed job is not reclaimed but buried in the dead-letter set
-- when it has no attempt left (code lease_expired) or when this reclaim
-- would be its max_reclaims + 1-th (code worker_lost: a job whose runs keep
-- killing their workers must stop taking the fleet down); it has no row
-- either. A job named twice is claimed once.
--
-- Every job row of the batch is locked first, in id order, and then the
-- accounts of the jobs to bury, in user order, before anything is written:
-- two batches (or a batch and a single job's call) never wait on each other
-- in a circle, whatever order their workers read the messages in. The jobs
-- to bury (rare) go one by one; every claimable job of the batch is then
-- claimed by one UPDATE, which answers the rows.
create or replace function genq_claim_jobs(p_jobs uuid[], p_worker text, p_lease_s int,
                                           p_max_reclaims int default 3)
returns table (id uuid, epoch bigint, kind text, input jsonb, attempt int, max_attempts int,
               steps jsonb, uploads jsonb, reclaimed boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  j jobs;
  v_max_reclaims int := coalesce(p_max_reclaims, 3);
begin
  if p_max_reclaims is not null and p_max_reclaims < 0 then
    raise exception 'max_reclaims must be 0 or more' using errcode = '22023';
  end if;
  perform 1 from jobs jb where jb.id = any(p_jobs) order by jb.id for update;
  perform 1 from accounts a
  where a.user_id in (select jb.user_id from jobs jb
                      where jb.id = any(p_jobs) and jb.status = 'running'
                        and jb.lease_until < now()
                        and (jb.attempt >= jb.max_attempts or jb.reclaims >= v_max_reclaims))
  order by a.user_id for no key update;
  -- the lapsed jobs that must not be reclaimed are buried, one by one (rare)
  for j in select * from jobs jb
           where jb.id = any(p_jobs) and jb.status = 'running' and jb.lease_until < now()
             and (jb.attempt >= jb.max_attempts or jb.reclaims >= v_max_reclaims)
           order by jb.id loop
    if j.attempt >= j.max_attempts then
      perform genq_job_bury(j.id, 'lease_expired', 'the worker running this job stopped answering');
    else
      perform genq_job_bury(j.id, 'worker_lost',
                            format('its runs kept dying with their worker (%s reclaims of a lapsed lease)',
                                   j.reclaims + 1));
    end if;
  end loop;
  -- every claimable job of the batch, with one UPDATE
  -- (every CTE reads the rows as they were before the UPDATE: lapsed names
  -- the jobs another worker was running)
  return query
  with lapsed as (
    select jb.id from jobs jb
    where jb.id = any(p_jobs) and jb.status = 'running' and jb.lease_until < now()
  ), claimed as (
    update jobs jb
    set status = 'running', epoch = jb.epoch + 1, attempt = jb.attempt + 1,
        reclaims = jb.reclaims + case when jb.status = 'running' then 1 else 0 end,
        lease_until = now() + make_interval(secs => p_lease_s), worker_id = p_worker,
        started_at = coalesce(jb.started_at, now()), next_attempt_at = null, dispatched = false,
        dispatch_gen = jb.dispatch_gen + 1
    where jb.id = any(p_jobs)
      and ((jb.status = 'queued' and (jb.next_attempt_at is null or jb.next_attempt_at <= now()))
           or (jb.status = 'running' and jb.lease_until < now()))
    returning jb.id, jb.epoch, jb.kind, jb.input, jb.attempt, jb.max_attempts
  )
  select c.id, c.epoch, c.kind, c.input, c.attempt, c.max_attempts,
         coalesce((select jsonb_agg(jsonb_build_object(
                            'name', s.name, 'step_kind', s.step_kind, 'provider', s.provider,
                            'stage', s.stage, 'status', s.status, 'attempt', s.attempt,
                            'provider_ref', s.provider_ref, 'retry_key', s.retry_key,
                            'index', s.idx, 'output', s.output, 'price', s.price)
                          order by s.idx)
                   from job_steps s where s.job_id = c.id), '[]'::jsonb),
         coalesce((select jsonb_object_agg(ju.role, jsonb_build_object(
                            'id', u.id, 'content_type', u.content_type, 'bytes', u.bytes,
                            'storage_key', u.storage_key, 'deleted', u.deleted_at is not null))
                   from job_uploads ju join uploads u on u.id = ju.upload_id
                   where ju.job_id = c.id), '{}'::jsonb),
         exists (select 1 from lapsed l where l.id = c.id)
  from claimed c
  order by c.id;
end $$;

-- genq_claim_job(job, worker, lease_s, max_reclaims = 3) → genq_claim_jobs
-- of a batch of one, without the id: one row, or none when the job is not
-- claimable (or was buried).
create or replace function genq_claim_job(p_job uuid, p_worker text, p_lease_s int,
                                          p_max_reclaims int default 3)
returns table (epoch bigint, kind text, input jsonb, attempt int, max_attempts int,
               steps jsonb, uploads jsonb)
language sql as $$
  select c.epoch, c.kind, c.input, c.attempt, c.max_attempts, c.steps, c.uploads
  from genq_claim_jobs(array[p_job], p_worker, p_lease_s, p_max_reclaims) c
$$;

-- genq_job_bury(job, code, message): internal to genq_claim_jobs, which has
-- the job row locked and found it running with a lapsed lease that must not
-- be reclaimed. The job fails (retryable: nothing was wrong with its input)
-- into the dead-letter set, its epoch bumped to fence out the lost worker,
-- its unfinished steps canceled and its hold released.
create or replace function genq_job_bury(p_job uuid, p_code text, p_message text) returns void
language plpgsql as $$
begin
  update job_steps set status = 'canceled', finished_at = now()
  where job_id = p_job and status in ('pending', 'running');
  update jobs
  set status = 'failed', finished_at = now(), lease_until = null, epoch = epoch + 1,
      next_attempt_at = null, dead_at = now(),
      error = jsonb_build_object('code', p_code, 'message', p_message, 'retryable', true)
  where id = p_job;
  perform genq_job_release_held(p_job);
end $$;

-- genq_jobs_renew(jobs, epochs, lease_s) → the jobs of the batch still
-- running at the given epochs, whose leases now run lease_s from now. A
-- worker renews everything it holds with one call, every third of the lease;
-- a job missing from the answer was reclaimed or canceled meanwhile. Rows
-- are locked in id order, as every batch statement on jobs does, so two
-- batches never wait on each other in a circle. A
-- renewal clears the dispatch mark: a message the relay sent while the lease
-- had lapsed is dropped by whoever reads it now, so when this lease lapses
-- the relay must send the job again.
create or replace function genq_jobs_renew(p_jobs uuid[], p_epochs bigint[], p_lease_s int)
returns table (id uuid)
language sql as $$
  with held as (
    select j.id from jobs j join unnest(p_jobs, p_epochs) as h (id, epoch)
      on j.id = h.id and j.epoch = h.epoch
    where j.status = 'running'
    order by j.id
    for update of j
  )
  update jobs j set lease_until = now() + make_interval(secs => p_lease_s), dispatched = false,
                    dispatch_gen = j.dispatch_gen + 1
  from held
  where j.id = held.id
  returning j.id
$$;

-- genq_job_heartbeat(job, epoch, lease_s) → 'running' when the job is still
-- running at that epoch and its lease now runs lease_s from now; NULL when
-- fenced out. A worker confirms its lease this way before a paid create.
create or replace function genq_job_heartbeat(p_job uuid, p_epoch bigint, p_lease_s int)
returns text
language sql as $$
  select 'running'::text from genq_jobs_renew(array[p_job], array[p_epoch], p_lease_s)
$$;

-- genq_job_queue_again(job, delay_ms, give_back_attempt, error) → 'queued'.
-- Internal to the fenced functions that give a running job back to the
-- queue (genq_job_requeue, genq_job_handback), which hold its row: no owner,
-- no lease, due after delay_ms, to be dispatched again (a new dispatch
-- generation); the attempt given back when asked, the error replaced when
-- one is given.
create or replace function genq_job_queue_again(p_job uuid, p_delay_ms int,
                                                p_give_back_attempt boolean, p_error jsonb)
returns text
language sql as $$
  update jobs
  set status = 'queued', lease_until = null, worker_id = null, dispatched = false,
      dispatch_gen = dispatch_gen + 1, error = coalesce(p_error, error),
      attempt = case when p_give_back_attempt then greatest(attempt - 1, 0) else attempt end,
      next_attempt_at = case when coalesce(p_delay_ms, 0) > 0
                             then now() + make_interval(secs => p_delay_ms / 1000.0) end
  where id = p_job
  returning 'queued'::text
$$;

-- genq_job_handback(job, epoch) → 'queued' when the job is queued again at
-- once: a worker shutting down hands back what it could not finish within
-- its grace period. The attempt is given back too (the job did not fail),
-- its steps keep their checkpoints, and the relay dispatches it to another
-- worker, which resumes them. NULL when fenced out (nothing changed).
create or replace function genq_job_handback(p_job uuid, p_epoch bigint) returns text
language sql as $$
  select genq_job_queue_again(j.id, 0, true, null)
  from genq_job_fenced(p_job, p_epoch, false) j
  where j.id is not null
$$;
