-- 0006_dead_letters: the dead-letter set and operator retry (SPEC §5, §6, §8).
--
-- A job lands in the dead-letter set when it fails for good through no fault
-- of its input: its attempts ran out on retryable errors (genq_job_requeue),
-- or its runs kept dying with their workers (genq_claim_job: a lapsed lease
-- reclaimed too often, or with no attempt left). It is then failed, with
-- dead_at set, and holds nothing. A refusal (invalid input, content policy,
-- genq_job_fail with retryable false) is plain failed: retrying it would
-- fail the same way.
--
-- genq_job_retry puts any failed job, dead or not, back in the queue: it
-- holds again what the job has not captured (price − captured), as a new
-- ledger row, so held + captured + released = price still holds with
-- released going down by what is held again. Steps that succeeded keep their
-- captures and outputs; the others run again.

-- dead_at: non-null = the job is in the dead-letter set (only a failed job
-- can be; a retry clears it). reclaims: times a lapsed lease of this run was
-- reclaimed (the poison counter). retries: operator retries so far; the n-th
-- holds under job:<id>:hold:retry:<n> and releases under
-- job:<id>:release:retry:<n>, so each run's movements happen once.
alter table jobs add column dead_at timestamptz;
alter table jobs add column reclaims int not null default 0 check (reclaims >= 0);
alter table jobs add column retries int not null default 0 check (retries >= 0);
alter table jobs add constraint jobs_dead_is_failed check (dead_at is null or status = 'failed');
create index jobs_dead on jobs (dead_at desc) where dead_at is not null;

-- The transition trigger, as in 0001, with one exception: failed → queued
-- is legal for the one job genq_job_retry names in its own transaction
-- (genq.retry_job, a transaction-local setting; NULL in a session that
-- never set it, hence the coalesce). Every other writer still finds
-- terminal states final, as common/job.c says.
create or replace function genq_jobs_before_update() returns trigger
language plpgsql as $$
begin
  if new.status is distinct from old.status
     and not exists (select 1 from job_transitions t
                     where t.from_status = old.status and t.to_status = new.status)
     and not (old.status = 'failed' and new.status = 'queued'
              and coalesce(current_setting('genq.retry_job', true), '') = old.id::text) then
    raise exception 'illegal job transition % -> % (job %)', old.status, new.status, old.id
      using errcode = 'GQ500';
  end if;
  new.updated_at := now();
  return new;
end $$;

-- genq_job_release_held: as in 0003; the release of the n-th operator retry's
-- run is keyed job:<id>:release:retry:<n> (the first run keeps
-- job:<id>:release), so each run releases once.
create or replace function genq_job_release_held(p_job uuid) returns int
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
  update accounts set held = held - j.held where user_id = j.user_id;
  return j.held;
end $$;

-- genq_job_bury(job, code, message): internal to genq_claim_job, which has
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

-- genq_claim_job(job, worker, lease_s, max_reclaims = 3): as in 0004, and a
-- reclaim (running, lease lapsed) counts in jobs.reclaims. A job is not
-- reclaimed but buried in the dead-letter set when it has no attempt left
-- (code lease_expired) or when this reclaim would be its max_reclaims + 1-th
-- (code worker_lost: a job whose runs keep killing their workers must stop
-- taking the fleet down). Either way no row comes back.
drop function genq_claim_job(uuid, text, int);
create function genq_claim_job(p_job uuid, p_worker text, p_lease_s int,
                               p_max_reclaims int default 3)
returns table (epoch bigint, kind text, input jsonb, attempt int, max_attempts int,
               steps jsonb, uploads jsonb)
language plpgsql as $$
#variable_conflict use_column
declare
  j jobs;
  v_reclaim boolean;
begin
  if p_max_reclaims is not null and p_max_reclaims < 0 then
    raise exception 'max_reclaims must be 0 or more' using errcode = '22023';
  end if;
  select * into j from jobs where jobs.id = p_job for update;
  if not found then
    return;
  end if;
  v_reclaim := j.status = 'running' and j.lease_until < now();
  if v_reclaim and j.attempt >= j.max_attempts then
    perform genq_job_bury(j.id, 'lease_expired', 'the worker running this job stopped answering');
    return;
  end if;
  if v_reclaim and j.reclaims >= coalesce(p_max_reclaims, 3) then
    perform genq_job_bury(j.id, 'worker_lost',
                          format('its runs kept dying with their worker (%s reclaims of a lapsed lease)',
                                 j.reclaims + 1));
    return;
  end if;
  if not ((j.status = 'queued' and (j.next_attempt_at is null or j.next_attempt_at <= now()))
          or v_reclaim) then
    return;
  end if;
  update jobs
  set status = 'running', epoch = j.epoch + 1, attempt = j.attempt + 1,
      reclaims = j.reclaims + case when v_reclaim then 1 else 0 end,
      lease_until = now() + make_interval(secs => p_lease_s), worker_id = p_worker,
      started_at = coalesce(j.started_at, now()), next_attempt_at = null, dispatched = false
  where jobs.id = j.id;
  return query
  select j.epoch + 1, j.kind, j.input, j.attempt + 1, j.max_attempts,
         coalesce((select jsonb_agg(jsonb_build_object(
                            'name', s.name, 'step_kind', s.step_kind, 'provider', s.provider,
                            'stage', s.stage, 'status', s.status, 'attempt', s.attempt,
                            'provider_ref', s.provider_ref, 'output', s.output)
                          order by s.idx)
                   from job_steps s where s.job_id = j.id), '[]'::jsonb),
         coalesce((select jsonb_object_agg(ju.role, jsonb_build_object(
                            'id', u.id, 'content_type', u.content_type, 'bytes', u.bytes,
                            'storage_key', u.storage_key, 'deleted', u.deleted_at is not null))
                   from job_uploads ju join uploads u on u.id = ju.upload_id
                   where ju.job_id = j.id), '{}'::jsonb);
end $$;

-- genq_job_requeue(job, epoch, delay_ms, code, message): as in 0003, and a
-- job whose attempts are used up lands in the dead-letter set.
create or replace function genq_job_requeue(p_job uuid, p_epoch bigint, p_delay_ms int,
                                            p_code text, p_message text)
returns text
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return null;
  end if;
  if j.attempt >= j.max_attempts then
    perform genq_job_fail(p_job, p_epoch, null, p_code, p_message, true);
    update jobs set dead_at = now() where id = p_job;
    return 'failed';
  end if;
  update jobs
  set status = 'queued', lease_until = null, worker_id = null, dispatched = false,
      next_attempt_at = now() + make_interval(secs => greatest(coalesce(p_delay_ms, 0), 0) / 1000.0),
      error = jsonb_build_object('code', p_code, 'message', p_message, 'retryable', true)
  where id = p_job;
  return 'queued';
end $$;

-- genq_job_requeue(job, epoch, delay_ms, code, message, step): as in 0004
-- (the failing step carries the error), and a job whose attempts are used up
-- lands in the dead-letter set.
create or replace function genq_job_requeue(p_job uuid, p_epoch bigint, p_delay_ms int,
                                            p_code text, p_message text, p_step text)
returns text
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return null;
  end if;
  if j.attempt >= j.max_attempts then
    perform genq_job_fail(p_job, p_epoch, nullif(p_step, ''), p_code, p_message, true);
    update jobs set dead_at = now() where id = p_job;
    return 'failed';
  end if;
  return genq_job_requeue(p_job, p_epoch, p_delay_ms, p_code, p_message);
end $$;

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
-- Hedra step gets instead "retry:r<n>", which makes its next submit's
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
      provider_ref = case
        when s.status = 'failed' or s.ref_released then
          case when s.provider = 'hedra' then 'retry:r' || v_n end
        else s.provider_ref end
  where s.job_id = p_job and s.status <> 'succeeded';

  perform set_config('genq.retry_job', p_job::text, true);
  update jobs
  set status = 'queued', epoch = epoch + 1, attempt = 0, reclaims = 0, retries = v_n,
      max_attempts = coalesce(p_max_attempts, max_attempts), dead_at = null,
      held = held + v_need, released = released - v_need, dispatched = false,
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

-- genq_jobs_find(status, kind, user, limit) → every user's jobs for
-- operators, newest first; each filter NULL = any; limit clamped to
-- 1..10000 (NULL = 50).
create or replace function genq_jobs_find(p_status text, p_kind text, p_user text, p_limit int)
returns table (id uuid, user_id text, kind text, status text, attempt int, max_attempts int,
               created_at timestamptz, finished_at timestamptz, error_code text,
               dead_at timestamptz)
language sql stable as $$
  select j.id, j.user_id, j.kind, j.status, j.attempt, j.max_attempts, j.created_at,
         j.finished_at, j.error ->> 'code', j.dead_at
  from jobs j
  where (p_status is null or j.status = p_status)
    and (p_kind is null or j.kind = p_kind)
    and (p_user is null or j.user_id = p_user)
  order by j.id desc
  limit least(greatest(coalesce(p_limit, 50), 1), 10000)
$$;

-- genq_job_json: as in 0004, plus dead_at (RFC 3339, null unless the job is
-- in the dead-letter set).
create or replace function genq_job_json(p_job uuid) returns jsonb
language plpgsql stable as $$
declare
  j jobs;
  v jsonb;
begin
  select * into j from jobs where id = p_job;
  if not found then
    return null;
  end if;
  v := jsonb_build_object(
    'id', j.id, 'kind', j.kind, 'status', j.status,
    'created_at', genq_ts(j.created_at), 'started_at', genq_ts(j.started_at),
    'finished_at', genq_ts(j.finished_at), 'dead_at', genq_ts(j.dead_at),
    'attempt', j.attempt, 'max_attempts', j.max_attempts,
    'queue_position',
      case when j.status = 'queued' then
        1 + (select count(*) from jobs q
             where q.status = 'queued' and q.kind = j.kind and q.id < j.id) end,
    'next_attempt_at',
      case when j.status = 'queued' and j.next_attempt_at > now()
           then genq_ts(j.next_attempt_at) end,
    'input', j.input,
    'cost', jsonb_build_object('price', j.price, 'held', j.held,
                               'captured', j.captured, 'released', j.released),
    'steps', coalesce((
      select jsonb_agg(jsonb_build_object(
               'name', s.name, 'provider', s.provider, 'stage', s.stage, 'status', s.status,
               'attempt', s.attempt, 'progress', s.progress, 'provider_ref', s.provider_ref,
               'error', s.error)
             order by s.idx)
      from job_steps s where s.job_id = j.id), '[]'::jsonb),
    'output', coalesce(j.output, '{}'::jsonb) || jsonb_build_object('assets', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', a.id, 'step', a.step, 'kind', a.kind, 'content_type', a.content_type,
               'bytes', a.bytes, 'sha256', a.sha256, 'url', '/v1/assets/' || a.id)
             order by a.created_at, a.step)
      from assets a where a.job_id = j.id), '[]'::jsonb)),
    'error', j.error);
  if j.webhook_url is not null then
    v := v || jsonb_build_object('webhook_url', j.webhook_url);
  end if;
  return v;
end $$;

-- genq_audit: as in 0002, plus each job against its own ledger rows: what
-- it holds is the sum of its rows' held deltas (holds, retry holds, captures,
-- releases) and what it captured is the sum of its capture rows. With
-- held + captured + released = price (job_cost) this pins released too.
-- (A job in the dead-letter set is failed: the jobs_dead_is_failed
-- constraint; so terminal_job_holds covers it.)
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
