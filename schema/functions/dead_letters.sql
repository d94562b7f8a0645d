-- The dead-letter set and operator retry (SPEC §5, §6, §8).
--
-- A job lands in the dead-letter set when it fails for good through no fault
-- of its input: its attempts ran out on retryable errors (genq_job_requeue),
-- or its runs kept dying with their workers (genq_claim_job: a lapsed lease
-- reclaimed too often, or with no attempt left). It is then failed, with
-- dead_at set, and holds nothing. A refusal (invalid input, content policy,
-- genq_job_fail with retryable false) is plain failed: retrying it would
-- fail the same way.

-- genq_job_retry(job, max_attempts) → the job JSON after: a failed job (dead
-- or not) is queued again, to run its unfinished steps with a fresh set of
-- attempts (max_attempts, 1..100, or NULL to keep the job's).
--
-- Credits: the job holds again what it has not captured — price − captured,
-- which for a failed job (it holds nothing) is exactly what was released —
-- as one 'hold' ledger row keyed job:<id>:hold:retry:<n> (n = jobs.retries
-- after this retry); the job's released goes down and its held up by that
-- amount, the account's held up by it. Not enough available credits: GQ402
-- and nothing changes.
--
-- The job: queued and due now, epoch + 1 (anything still holding the old
-- one is fenced out), attempt 0, reclaims 0, out of the dead-letter set,
-- not dispatched (the relay of any genq-api or genq-worker sends it within
-- its scan interval). Its error stays as the last error, as for any queued
-- job waiting for a retry, until it succeeds (cleared) or fails again
-- (replaced). started_at stays the first start.
--
-- Steps: succeeded ones stay, with their captures, outputs and assets. The
-- others go back to pending with attempt 0 and no error. A step that had
-- failed, or whose generation was already deleted at the provider
-- (ref_released), drops its provider_ref so a fresh generation is made; a
-- Hedra step also gets retry_key r<n>, which makes its next submit's
-- idempotency key new (see worker/step_lipsync.c). A canceled step keeps a
-- live generation's ref, which the next run resumes instead of paying again.
--
-- Refused: no such job (GQ404); a job that is not failed — queued, running,
-- succeeded, canceled (GQ409); an uploaded input it needs is no longer
-- stored, or the account was deleted (GQ410). The uploads are locked
-- FOR SHARE, so the sweeper cannot delete one between this check and the
-- commit. Lock order: the job, its uploads, then its account.
create or replace function genq_job_retry(p_job uuid, p_max_attempts int default null)
returns jsonb
language plpgsql as $$
declare
  j jobs;
  a accounts;
  v_need int;
  v_n int;
begin
  if p_max_attempts is not null and (p_max_attempts < 1 or p_max_attempts > 100) then
    raise exception 'max_attempts must be 1..100' using errcode = '22023';
  end if;
  select * into j from jobs where id = p_job for update;
  if not found then
    raise exception 'no job %', p_job using errcode = 'GQ404';
  end if;
  if j.status <> 'failed' then
    raise exception 'job % is %: only a failed job can be retried', p_job, j.status
      using errcode = 'GQ409';
  end if;
  perform 1 from uploads u
  where u.id in (select ju.upload_id from job_uploads ju where ju.job_id = p_job)
  order by u.id
  for share;
  if exists (select 1 from job_uploads ju join uploads u on u.id = ju.upload_id
             where ju.job_id = p_job and u.deleted_at is not null) then
    raise exception 'job %: an uploaded input it needs is no longer stored', p_job
      using errcode = 'GQ410';
  end if;
  select * into a from accounts where user_id = j.user_id for update;
  if a.deleted_at is not null then
    raise exception 'job %: the account % was deleted', p_job, j.user_id using errcode = 'GQ410';
  end if;
  -- held + captured + released = price: what is not captured and not held
  -- (a failed job holds nothing) is what was released, and is held again.
  v_need := j.released;
  if a.balance - a.held < v_need then
    raise exception 'insufficient credits: % available, % needed', a.balance - a.held, v_need
      using errcode = 'GQ402';
  end if;
  v_n := j.retries + 1;
  if v_need > 0 then
    insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key, note)
    values (j.user_id, j.id, 'hold', 0, v_need, 'job:' || j.id || ':hold:retry:' || v_n,
            'operator retry ' || v_n);
    update accounts set held = held + v_need where user_id = j.user_id;
  end if;

  update job_steps s
  set status = 'pending', attempt = 0, error = null, progress = null, started_at = null,
      finished_at = null, ref_released = false,
      provider_ref = case when s.status = 'failed' or s.ref_released then null
                          else s.provider_ref end,
      retry_key = case when (s.status = 'failed' or s.ref_released) and s.provider = 'hedra'
                       then 'r' || v_n else s.retry_key end
  where s.job_id = p_job and s.status <> 'succeeded';

  perform set_config('genq.retry_job', p_job::text, true);
  update jobs
  set status = 'queued', epoch = epoch + 1, attempt = 0, reclaims = 0, retries = v_n,
      max_attempts = coalesce(p_max_attempts, max_attempts), dead_at = null,
      held = held + v_need, released = released - v_need, dispatched = false,
      dispatch_gen = dispatch_gen + 1,
      next_attempt_at = now(), finished_at = null, lease_until = null, worker_id = null
  where id = p_job;
  perform set_config('genq.retry_job', '', true);
  return genq_job_json(p_job);
end $$;

-- genq_dead_list(kind, since, limit) → the dead-letter set, newest first:
-- jobs of that kind (NULL = any) that died at or after since (NULL = ever),
-- at most limit rows (NULL = all; else at least 1).
create or replace function genq_dead_list(p_kind text, p_since timestamptz, p_limit int)
returns table (id uuid, user_id text, kind text, attempt int, max_attempts int, reclaims int,
               retries int, error_code text, error_message text, dead_at timestamptz)
language sql stable as $$
  select j.id, j.user_id, j.kind, j.attempt, j.max_attempts, j.reclaims, j.retries,
         j.error ->> 'code', j.error ->> 'message', j.dead_at
  from jobs j
  where j.dead_at is not null
    and (p_kind is null or j.kind = p_kind)
    and (p_since is null or j.dead_at >= p_since)
  order by j.dead_at desc, j.id desc
  limit case when p_limit is null then null else greatest(p_limit, 1) end
$$;
