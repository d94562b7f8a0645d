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

-- genq_steps_succeed(jobs, epochs, steps, outputs, job_outputs, assets) → one
-- row per element of the batch: ord, its 1-based position, and status, the
-- job's status after it ('running' or 'succeeded'), or NULL when fenced out
-- (nothing changed for it). Each element is fenced by its own job's epoch; a
-- worker sends the successes that came while its previous batch was in
-- flight as one call, and a single one as a batch of one
-- (genq_step_succeed). Per element: the step's price is captured exactly
-- once (ledger job:<id>:capture:<step>); succeeding an already succeeded
-- step changes nothing. job_output (when not null) is merged into the job's
-- output. When asset is given ({id, kind, content_type, bytes, sha256,
-- storage_key}: the bytes are already stored) the asset row is recorded in
-- the same transaction as the capture. When every step has succeeded the
-- job succeeds, its error is cleared and any remainder is released.
--
-- A resend of a success that already committed (its answer was lost) is
-- recognised by its own result — the asset row with this asset's id, or,
-- for a step without an asset, the succeeded step with this very output —
-- and answers the job's status as it is now, not NULL: a worker that reads
-- NULL deletes the bytes it stored, and those bytes are the user's asset.
--
-- Locks: every job row of the batch first, in id order; the accounts last,
-- in user order, just before the commit, and only then the capture ledger
-- rows and asset rows (whose foreign keys share-lock the account: taken
-- before, that share lock would let another transaction's FOR UPDATE of the
-- account queue between it and this call's own write, a deadlock), and each
-- account written once with the sum of its movements. Two batches, or a
-- batch and any single job's call, never wait on each other in a circle,
-- and an account (one user's jobs in both workers' batches) is held only for
-- the end of the call. (A remainder released at the job's end, rare, writes
-- its ledger row in the loop; a deadlock it might meet fails the call, and
-- the worker sends each element again on its own.) An element
-- that raises (a second capture, an unknown step) fails the whole call,
-- which changes nothing: the worker then sends each element on its own, and
-- only that one fails.
create or replace function genq_steps_succeed(p_jobs uuid[], p_epochs bigint[], p_steps text[],
                                              p_outputs jsonb[], p_job_outputs jsonb[],
                                              p_assets jsonb[])
returns table (ord int, status text)
language plpgsql as $$
declare
  e record;
  j jobs;
  v_price int;
  v_captured int;
  v_released int;
  v_done boolean;
  v_status text;
  v_ords int[] := '{}';
  v_answers text[] := '{}';
  v_users text[] := '{}';
  v_balance int[] := '{}';
  v_held int[] := '{}';
  v_cap_jobs uuid[] := '{}';
  v_cap_steps text[] := '{}';
  v_cap_users text[] := '{}';
  v_cap_prices int[] := '{}';
  v_cap_assets jsonb[] := '{}';
  v_rows int;
begin
  perform 1 from jobs jb where jb.id = any(p_jobs) order by jb.id for update;
  for e in
    select * from unnest(p_jobs, p_epochs, p_steps, p_outputs, p_job_outputs, p_assets)
                  with ordinality as b (job, epoch, step, output, job_output, asset, n)
    order by b.n
  loop
    j := genq_job_fenced(e.job, e.epoch, false);
    if j.id is null then
      v_status := (select jb.status from jobs jb join job_steps s on s.job_id = jb.id
                   where jb.id = e.job and s.name = e.step and s.status = 'succeeded'
                     and case when e.asset is null then s.output = e.output
                              else exists (select 1 from assets a
                                           where a.id = (e.asset ->> 'id')::uuid
                                             and a.job_id = e.job and a.step = e.step) end);
    else
      v_captured := 0;
      v_released := 0;
      select s.price into v_price from job_steps s
      where s.job_id = e.job and s.name = e.step and s.status in ('pending', 'running')
      for update;
      if found then
        update job_steps s
        set status = 'succeeded', output = e.output, captured = v_price, finished_at = now(),
            error = null, progress = 1
        where s.job_id = e.job and s.name = e.step;
        v_cap_jobs := v_cap_jobs || j.id;
        v_cap_steps := v_cap_steps || e.step;
        v_cap_users := v_cap_users || j.user_id;
        v_cap_prices := v_cap_prices || v_price;
        v_cap_assets := v_cap_assets || e.asset;
        v_captured := v_price;
      elsif not exists (select 1 from job_steps s where s.job_id = e.job and s.name = e.step) then
        raise exception 'job % has no step %', e.job, e.step using errcode = '22023';
      end if;
      v_done := not exists (select 1 from job_steps s
                            where s.job_id = e.job and s.status <> 'succeeded');
      -- the capture, the output and the end of the job: one write of the
      -- job's row (each UPDATE of it writes every index of jobs again)
      if v_captured > 0 or e.job_output is not null or v_done then
        update jobs jb
        set held = jb.held - v_captured, captured = jb.captured + v_captured,
            output = case when e.job_output is null then jb.output
                          else coalesce(jb.output, '{}'::jsonb) || e.job_output end,
            status = case when v_done then 'succeeded' else jb.status end,
            finished_at = case when v_done then now() else jb.finished_at end,
            lease_until = case when v_done then null else jb.lease_until end,
            error = case when v_done then null else jb.error end,
            next_attempt_at = case when v_done then null else jb.next_attempt_at end
        where jb.id = e.job;
      end if;
      if v_done then
        v_released := genq_job_release(e.job);
      end if;
      if v_captured > 0 or v_released > 0 then
        v_users := v_users || j.user_id;
        v_balance := v_balance || -v_captured;
        v_held := v_held || -(v_captured + v_released);
      end if;
      v_status := case when v_done then 'succeeded' else 'running' end;
    end if;
    v_ords := v_ords || e.n::int;
    v_answers := v_answers || v_status;
  end loop;
  if cardinality(v_users) > 0 then
    perform 1 from accounts a where a.user_id = any(v_users) order by a.user_id
    for no key update;
  end if;
  if cardinality(v_cap_jobs) > 0 then
    insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
    select c.user_id, c.job, 'capture', -c.price, -c.price, 'job:' || c.job || ':capture:' || c.step
    from unnest(v_cap_jobs, v_cap_steps, v_cap_users, v_cap_prices)
         with ordinality as c (job, step, user_id, price, n)
    order by c.n
    on conflict (idem_key) do nothing;
    get diagnostics v_rows = row_count;
    if v_rows <> cardinality(v_cap_jobs) then
      raise exception 'a step of jobs % captured twice', v_cap_jobs using errcode = 'GQ500';
    end if;
    insert into assets (id, user_id, job_id, step, kind, content_type, bytes, sha256,
                        storage_key)
    select (c.asset ->> 'id')::uuid, c.user_id, c.job, c.step, c.asset ->> 'kind',
           c.asset ->> 'content_type', (c.asset ->> 'bytes')::bigint, c.asset ->> 'sha256',
           c.asset ->> 'storage_key'
    from unnest(v_cap_jobs, v_cap_steps, v_cap_users, v_cap_assets) as c (job, step, user_id, asset)
    where c.asset is not null;
  end if;
  if cardinality(v_users) > 0 then
    update accounts a set balance = a.balance + d.balance, held = a.held + d.held
    from (select m.user_id, sum(m.balance)::int as balance, sum(m.held)::int as held
          from unnest(v_users, v_balance, v_held) as m (user_id, balance, held)
          group by m.user_id) d
    where a.user_id = d.user_id;
  end if;
  return query select r.o, r.s from unnest(v_ords, v_answers) as r (o, s);
end $$;

-- genq_step_succeed(job, epoch, step, output, job_output, asset) → the job's
-- status after ('running' or 'succeeded'), or NULL when fenced out (nothing
-- changed): genq_steps_succeed of a batch of one, with its exactly-once
-- capture and its recognition of a resent success.
create or replace function genq_step_succeed(p_job uuid, p_epoch bigint, p_step text,
                                             p_output jsonb, p_job_output jsonb, p_asset jsonb)
returns text
language sql as $$
  select s.status
  from genq_steps_succeed(array[p_job], array[p_epoch], array[p_step], array[p_output],
                          array[p_job_output], array[p_asset]) s
$$;

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
