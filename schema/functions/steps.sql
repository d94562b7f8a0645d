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
-- never wait on each other in a circle; then one UPDATE of job_steps begins
-- every step whose element is fenced in (reading the job rows after they
-- are locked, so each element sees its job as it is now). A step named
-- twice in one batch begins once. The job rows are locked, not written: a
-- begin makes no new version of a jobs row.
create or replace function genq_steps_begin(p_jobs uuid[], p_epochs bigint[], p_steps text[])
returns table (ord int, status text)
language plpgsql as $$
begin
  perform 1 from jobs j where j.id = any(p_jobs) order by j.id for update;
  return query
  with b as (
    select x.job, x.epoch, x.step, x.n
    from unnest(p_jobs, p_epochs, p_steps) with ordinality as x (job, epoch, step, n)
  ), begun as (
    update job_steps s set status = 'running', attempt = s.attempt + 1, started_at = now()
    from b join jobs j on j.id = b.job
    where j.status = 'running' and j.epoch = b.epoch and j.lease_until >= now()
      and s.job_id = b.job and s.name = b.step and s.status in ('pending', 'running')
    returning s.job_id, s.name, j.epoch
  )
  select b.n::int,
         case when exists (select 1 from begun g
                           where g.job_id = b.job and g.name = b.step and g.epoch = b.epoch)
              then 'running'::text end
  from b
  order by b.n;
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
-- step changes nothing (a step named twice in one batch is captured by the
-- first). job_output (when not null, an object) is merged into the job's
-- output. When
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
--
-- Set-based: after the job rows are locked, one statement fences every
-- element (reading the locked rows as they are now), succeeds the steps
-- with one UPDATE of job_steps and writes each job's row once with one
-- UPDATE of jobs (its captures, its merged output and its end together:
-- each UPDATE of a jobs row writes every index of jobs again); then the
-- accounts, the ledger rows (captures and remainders released) and the
-- asset rows, one statement each.
--
-- Locks: every job row of the batch first, in id order; the accounts last,
-- in user order, just before the commit, and only then the ledger rows and
-- asset rows (whose foreign keys share-lock the account: taken before, that
-- share lock would let another transaction's FOR UPDATE of the account
-- queue between it and this call's own write, a deadlock), and each account
-- written once with the sum of its movements. Two batches, or a batch and
-- any single job's call, never wait on each other in a circle, and an
-- account (one user's jobs in both workers' batches) is held only for the
-- last three statements of the call. An element that raises (a second
-- capture, an unknown step) fails the whole call, which changes nothing:
-- the worker then sends each element on its own, and only that one fails.
create or replace function genq_steps_succeed(p_jobs uuid[], p_epochs bigint[], p_steps text[],
                                              p_outputs jsonb[], p_job_outputs jsonb[],
                                              p_assets jsonb[])
returns table (ord int, status text)
language plpgsql as $$
declare
  v_missing text;
  v_ords int[];
  v_answers text[];
  v_cap_jobs uuid[];
  v_cap_steps text[];
  v_cap_users text[];
  v_cap_prices int[];
  v_cap_assets jsonb[];
  v_rel_jobs uuid[];
  v_rel_users text[];
  v_rel_amounts int[];
  v_rel_keys text[];
  v_users text[];
  v_balance bigint[];
  v_held bigint[];
  v_rows int;
begin
  perform 1 from jobs jb where jb.id = any(p_jobs) order by jb.id for update;
  with b as (
    select x.job, x.epoch, x.step, x.output, x.job_output, x.asset, x.n::int as n
    from unnest(p_jobs, p_epochs, p_steps, p_outputs, p_job_outputs, p_assets)
         with ordinality as x (job, epoch, step, output, job_output, asset, n)
  ), live as (
    -- the elements fenced in, with their step as it was before this call
    select b.*, j.user_id, j.held as job_held, j.retries, s.name is not null as has_step,
           coalesce(s.status in ('pending', 'running'), false) as open, s.price,
           (select count(*) from job_steps o where o.job_id = b.job and o.status <> 'succeeded')
             as unfinished
    from b join jobs j on j.id = b.job and j.status = 'running' and j.epoch = b.epoch
         left join job_steps s on s.job_id = b.job and s.name = b.step
  ), cap as (
    select l.*, l.open and row_number() over (partition by l.job, l.step order by l.n) = 1
             as captures
    from live l
  ), el as (
    -- done: every step of the job has succeeded once this element is applied
    select c.*, c.unfinished = count(*) filter (where c.captures)
                                 over (partition by c.job order by c.n) as done
    from cap c
  ), pj as (
    select e.job, e.user_id, max(e.job_held) as held, max(e.retries) as retries,
           coalesce(sum(e.price) filter (where e.captures), 0)::int as captured,
           bool_or(e.job_output is not null) as has_output,
           -- the job_outputs merged in batch order, as o1 || o2 || ... (a later key wins)
           (select jsonb_object_agg(kv.key, kv.value order by o.n)
            from el o cross join lateral jsonb_each(o.job_output) kv
            where o.job = e.job) as job_output,
           bool_or(e.done) as done
    from el e group by e.job, e.user_id
  ), pjr as (
    select p.*, case when p.done then p.held - p.captured else 0 end as released from pj p
  ), steps_done as (
    update job_steps s
    set status = 'succeeded', output = e.output, captured = e.price, finished_at = now(),
        error = null, progress = 1
    from el e
    where e.captures and s.job_id = e.job and s.name = e.step
  ), jobs_done as (
    update jobs jb
    set held = jb.held - p.captured - p.released, captured = jb.captured + p.captured,
        released = jb.released + p.released,
        output = case when not p.has_output then jb.output
                      else coalesce(jb.output, '{}'::jsonb) || coalesce(p.job_output, '{}') end,
        status = case when p.done then 'succeeded' else jb.status end,
        finished_at = case when p.done then now() else jb.finished_at end,
        lease_until = case when p.done then null else jb.lease_until end,
        error = case when p.done then null else jb.error end,
        next_attempt_at = case when p.done then null else jb.next_attempt_at end
    from pjr p
    where jb.id = p.job and (p.captured > 0 or p.has_output or p.done)
  ), answers as (
    select b.n,
           case when e.n is not null then
                  case when e.done then 'succeeded' else 'running' end
                else (select jb.status from jobs jb join job_steps s on s.job_id = jb.id
                      where jb.id = b.job and s.name = b.step and s.status = 'succeeded'
                        and case when b.asset is null then s.output = b.output
                                 else exists (select 1 from assets a
                                              where a.id = (b.asset ->> 'id')::uuid
                                                and a.job_id = b.job and a.step = b.step) end)
           end as status
    from b left join el e on e.n = b.n
  ), movements as (
    select p.user_id, -sum(p.captured) as balance, -sum(p.captured + p.released) as held
    from pjr p where p.captured > 0 or p.released > 0
    group by p.user_id
  )
  select (select array_agg(a.n order by a.n) from answers a),
         (select array_agg(a.status order by a.n) from answers a),
         (select format('job %s has no step %s', e.job, e.step) from el e
          where not e.has_step order by e.n limit 1),
         (select array_agg(e.job order by e.n) from el e where e.captures),
         (select array_agg(e.step order by e.n) from el e where e.captures),
         (select array_agg(e.user_id order by e.n) from el e where e.captures),
         (select array_agg(e.price order by e.n) from el e where e.captures),
         (select array_agg(e.asset order by e.n) from el e where e.captures),
         (select array_agg(p.job order by p.job) from pjr p where p.released > 0),
         (select array_agg(p.user_id order by p.job) from pjr p where p.released > 0),
         (select array_agg(p.released order by p.job) from pjr p where p.released > 0),
         (select array_agg('job:' || p.job || ':release'
                           || case when p.retries > 0 then ':retry:' || p.retries else '' end
                           order by p.job)
          from pjr p where p.released > 0),
         (select array_agg(m.user_id order by m.user_id) from movements m),
         (select array_agg(m.balance order by m.user_id) from movements m),
         (select array_agg(m.held order by m.user_id) from movements m)
  into v_ords, v_answers, v_missing, v_cap_jobs, v_cap_steps, v_cap_users, v_cap_prices,
       v_cap_assets, v_rel_jobs, v_rel_users, v_rel_amounts, v_rel_keys, v_users, v_balance,
       v_held;
  if v_missing is not null then
    raise exception '%', v_missing using errcode = '22023';
  end if;
  if v_users is not null then
    perform 1 from accounts a where a.user_id = any(v_users) order by a.user_id
    for no key update;
    update accounts a set balance = a.balance + m.balance, held = a.held + m.held
    from unnest(v_users, v_balance, v_held) as m (user_id, balance, held)
    where a.user_id = m.user_id;
  end if;
  if v_cap_jobs is not null or v_rel_jobs is not null then
    insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
    select m.user_id, m.job, m.movement, m.balance, m.held, m.idem_key
    from (select c.user_id, c.job, 'capture' as movement, -c.price as balance, -c.price as held,
                 'job:' || c.job || ':capture:' || c.step as idem_key, c.n
          from unnest(v_cap_jobs, v_cap_steps, v_cap_users, v_cap_prices)
               with ordinality as c (job, step, user_id, price, n)
          union all
          select r.user_id, r.job, 'release', 0, -r.amount, r.idem_key,
                 coalesce(cardinality(v_cap_jobs), 0) + r.n
          from unnest(v_rel_jobs, v_rel_users, v_rel_amounts, v_rel_keys)
               with ordinality as r (job, user_id, amount, idem_key, n)) m
    order by m.n
    on conflict (idem_key) do nothing;
    get diagnostics v_rows = row_count;
    if v_rows <> coalesce(cardinality(v_cap_jobs), 0) + coalesce(cardinality(v_rel_jobs), 0) then
      raise exception 'a step of jobs % captured twice, or one of jobs % released twice',
                      v_cap_jobs, v_rel_jobs using errcode = 'GQ500';
    end if;
    insert into assets (id, user_id, job_id, step, kind, content_type, bytes, sha256,
                        storage_key)
    select (c.asset ->> 'id')::uuid, c.user_id, c.job, c.step, c.asset ->> 'kind',
           c.asset ->> 'content_type', (c.asset ->> 'bytes')::bigint, c.asset ->> 'sha256',
           c.asset ->> 'storage_key'
    from unnest(v_cap_jobs, v_cap_steps, v_cap_users, v_cap_assets) as c (job, step, user_id, asset)
    where c.asset is not null;
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
