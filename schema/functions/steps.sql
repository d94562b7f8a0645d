-- Steps (SPEC §3, §5): a running job's steps begin, checkpoint the provider's
-- generation id, report progress and succeed (capturing their price), and
-- the job fails or is requeued for a retry.
--
-- Every function here is fenced (genq_job_fenced, leases.sql) and answers the
-- job's status after the call, or NULL when the caller is fenced out and
-- nothing changed.

-- genq_step_begin(job, epoch, step) → 'running' when the step (pending or
-- running) is now running with one more attempt; NULL and no change when the
-- job is not running at that epoch, its lease lapsed, or the step is not
-- startable.
create or replace function genq_step_begin(p_job uuid, p_epoch bigint, p_step text)
returns text
language sql as $$
  update job_steps s set status = 'running', attempt = s.attempt + 1, started_at = now()
  from genq_job_fenced(p_job, p_epoch, true) j
  where j.id is not null and s.job_id = p_job and s.name = p_step
    and s.status in ('pending', 'running')
  returning 'running'::text
$$;

-- genq_steps_begin(jobs, epochs, steps) → one row per element of the batch
-- (ord, its 1-based position; status, what genq_step_begin(job, epoch, step)
-- answers for it: 'running', or NULL with no change when fenced out or the
-- step is not startable). Each element is fenced by its own job's epoch; a
-- worker sends the begins that came while its previous batch was in flight
-- as one call. The job rows are locked first, in id order, so two batches
-- never wait on each other in a circle.
create or replace function genq_steps_begin(p_jobs uuid[], p_epochs bigint[], p_steps text[])
returns table (ord int, status text)
language plpgsql as $$
begin
  perform 1 from jobs j where j.id = any(p_jobs) order by j.id for update;
  return query
  select b.ord::int, genq_step_begin(b.job, b.epoch, b.step)
  from unnest(p_jobs, p_epochs, p_steps) with ordinality as b (job, epoch, step, ord)
  order by b.ord;
end $$;

-- genq_step_checkpoint(job, epoch, step, ref) → 'running' when the provider's
-- generation id is recorded; NULL when fenced out or the step is finished.
-- A NULL ref forgets the step's generation (it failed, is gone at the
-- provider, or its output was unusable) to start a fresh one: the forgotten
-- id becomes the step's retry_key, so that the next create's idempotency
-- key (<job>:<step>:<retry_key> at Hedra) is new, and the same across
-- crashes. Fenced on status and epoch but not on the lease: while the epoch
-- is ours nobody else owns the job, and losing a paid generation's id costs
-- money.
create or replace function genq_step_checkpoint(p_job uuid, p_epoch bigint, p_step text,
                                                p_ref text)
returns text
language sql as $$
  update job_steps s
  set provider_ref = p_ref,
      retry_key = case when p_ref is null and s.provider_ref is not null then s.provider_ref
                       else s.retry_key end
  from genq_job_fenced(p_job, p_epoch, false) j
  where j.id is not null and s.job_id = p_job and s.name = p_step
    and s.status in ('pending', 'running')
  returning 'running'::text
$$;

-- genq_step_progress(job, epoch, step, progress) → 'running', or NULL when
-- fenced out. Fenced like a checkpoint; a step that is not running is left
-- alone.
create or replace function genq_step_progress(p_job uuid, p_epoch bigint, p_step text,
                                              p_progress real)
returns text
language sql as $$
  with j as (select * from genq_job_fenced(p_job, p_epoch, false) where id is not null),
  moved as (
    update job_steps s set progress = least(greatest(p_progress, 0), 1)
    from j
    where s.job_id = p_job and s.name = p_step and s.status = 'running'
      and s.progress is distinct from least(greatest(p_progress, 0), 1)
  )
  select 'running'::text from j
$$;

-- genq_step_succeed(job, epoch, step, output, job_output, asset) → the job's
-- status after ('running' or 'succeeded'), or NULL when fenced out (nothing
-- changed). The step's price is captured exactly once (ledger
-- job:<id>:capture:<step>); succeeding an already succeeded step changes
-- nothing. job_output (when not null) is merged into the job's output. When
-- asset is given ({id, kind, content_type, bytes, sha256, storage_key}: the
-- bytes are already stored) the asset row is recorded in the same
-- transaction as the capture. When every step has succeeded the job
-- succeeds, its error is cleared and any remainder is released.
--
-- A resend of a success that already committed (its answer was lost) is
-- recognised by its own result — the asset row with this asset's id, or,
-- for a step without an asset, the succeeded step with this very output —
-- and answers the job's status as it is now, not NULL: a worker that reads
-- NULL deletes the bytes it stored, and those bytes are the user's asset.
create or replace function genq_step_succeed(p_job uuid, p_epoch bigint, p_step text,
                                             p_output jsonb, p_job_output jsonb, p_asset jsonb)
returns text
language plpgsql as $$
declare
  j jobs;
  v_price int;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return (select jb.status from jobs jb join job_steps s on s.job_id = jb.id
            where jb.id = p_job and s.name = p_step and s.status = 'succeeded'
              and case when p_asset is null then s.output = p_output
                       else exists (select 1 from assets a
                                    where a.id = (p_asset ->> 'id')::uuid and a.job_id = p_job
                                      and a.step = p_step) end);
  end if;
  select s.price into v_price from job_steps s
  where s.job_id = p_job and s.name = p_step and s.status in ('pending', 'running')
  for update;
  if found then
    insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
    values (j.user_id, j.id, 'capture', -v_price, -v_price,
            'job:' || j.id || ':capture:' || p_step)
    on conflict (idem_key) do nothing;
    if not found then
      raise exception 'step % of job % captured twice', p_step, j.id using errcode = 'GQ500';
    end if;
    update job_steps
    set status = 'succeeded', output = p_output, captured = v_price, finished_at = now(),
        error = null, progress = 1
    where job_id = p_job and name = p_step;
    update jobs set held = held - v_price, captured = captured + v_price where id = p_job;
    update accounts set balance = balance - v_price, held = held - v_price
    where user_id = j.user_id;
    if p_asset is not null then
      insert into assets (id, user_id, job_id, step, kind, content_type, bytes, sha256,
                          storage_key)
      values ((p_asset ->> 'id')::uuid, j.user_id, j.id, p_step, p_asset ->> 'kind',
              p_asset ->> 'content_type', (p_asset ->> 'bytes')::bigint, p_asset ->> 'sha256',
              p_asset ->> 'storage_key');
    end if;
  elsif not exists (select 1 from job_steps s where s.job_id = p_job and s.name = p_step) then
    raise exception 'job % has no step %', p_job, p_step using errcode = '22023';
  end if;
  if p_job_output is not null then
    update jobs set output = coalesce(output, '{}'::jsonb) || p_job_output where id = p_job;
  end if;
  if not exists (select 1 from job_steps s where s.job_id = p_job and s.status <> 'succeeded')
  then
    update jobs
    set status = 'succeeded', finished_at = now(), lease_until = null, error = null,
        next_attempt_at = null
    where id = p_job;
    perform genq_job_release_held(p_job);
    return 'succeeded';
  end if;
  return 'running';
end $$;

-- genq_steps_succeed(jobs, epochs, steps, outputs, job_outputs, assets) → one
-- row per element of the batch (ord, its 1-based position; status, what
-- genq_step_succeed answers for it alone: the job's status after, or NULL
-- when fenced out, a resent success recognising its own commit as there).
-- A worker sends the successes that came while its previous batch was in
-- flight as one call. The job rows are locked first, in id order, then
-- their accounts, in user order (a success captures on its account), so two
-- batches, or a batch and a single job's call, never wait on each other in
-- a circle. An element that raises (a second capture, an unknown step) fails
-- the whole call, which changes nothing: the worker then sends each element
-- on its own (genq_step_succeed), and only that one fails.
create or replace function genq_steps_succeed(p_jobs uuid[], p_epochs bigint[], p_steps text[],
                                              p_outputs jsonb[], p_job_outputs jsonb[],
                                              p_assets jsonb[])
returns table (ord int, status text)
language plpgsql as $$
begin
  perform 1 from jobs j where j.id = any(p_jobs) order by j.id for update;
  perform 1 from accounts a
  where a.user_id in (select j.user_id from jobs j where j.id = any(p_jobs))
  order by a.user_id for update;
  return query
  select b.ord::int, genq_step_succeed(b.job, b.epoch, b.step, b.output, b.job_output, b.asset)
  from unnest(p_jobs, p_epochs, p_steps, p_outputs, p_job_outputs, p_assets) with ordinality
       as b (job, epoch, step, output, job_output, asset, ord)
  order by b.ord;
end $$;

-- genq_job_fail(job, epoch, step, code, message, retryable) → 'failed', or
-- NULL when fenced out (nothing changed). The named step (if any) fails with
-- the error, the other unfinished steps are canceled and whatever the job
-- still holds is released.
create or replace function genq_job_fail(p_job uuid, p_epoch bigint, p_step text, p_code text,
                                         p_message text, p_retryable boolean)
returns text
language plpgsql as $$
declare
  j jobs;
  v_err jsonb := jsonb_build_object('code', p_code, 'message', p_message,
                                    'retryable', coalesce(p_retryable, false));
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return null;
  end if;
  if p_step is not null then
    update job_steps set status = 'failed', error = v_err, finished_at = now()
    where job_id = p_job and name = p_step and status in ('pending', 'running');
  end if;
  update job_steps set status = 'canceled', finished_at = now()
  where job_id = p_job and status in ('pending', 'running');
  update jobs
  set status = 'failed', error = v_err, finished_at = now(), lease_until = null,
      next_attempt_at = null
  where id = p_job;
  perform genq_job_release_held(p_job);
  return 'failed';
end $$;

-- genq_job_requeue(job, epoch, delay_ms, code, message, step = NULL) →
-- 'queued' (to run again after delay_ms, with the error kept as the last
-- error), 'failed' when the attempts are used up (as genq_job_fail,
-- retryable, with the failing step carrying the error, and the job in the
-- dead-letter set), or NULL when fenced out. Steps keep their status and
-- provider_ref: a worker that wants a fresh generation clears the ref with
-- genq_step_checkpoint(..., NULL).
create or replace function genq_job_requeue(p_job uuid, p_epoch bigint, p_delay_ms int,
                                            p_code text, p_message text,
                                            p_step text default null)
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
  return genq_job_queue_again(p_job, p_delay_ms, false,
                              jsonb_build_object('code', p_code, 'message', p_message,
                                                 'retryable', true));
end $$;
