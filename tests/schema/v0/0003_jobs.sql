-- 0003_jobs: the job life cycle (SPEC §4, §5): planning and pricing, submit
-- with its credit hold, dispatch bookkeeping, claim/lease/epoch fencing,
-- step checkpoints and captures, failure, retry, cancel, and the job JSON.
--
-- Each function is one transaction. Lock order: the job row (FOR UPDATE)
-- before its account row; submit locks only the account (its job is new).
-- Worker-facing functions are fenced: they change nothing unless the job is
-- running at the caller's epoch, so a worker that lost its lease can never
-- finish, charge or overwrite a job someone else now owns.

-- genq_ts(t): RFC 3339 UTC with milliseconds and 'Z' (null stays null).
create or replace function genq_ts(p_t timestamptz) returns text
language sql stable as $$
  select to_char(p_t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- genq_plan_steps(kind, input) → the steps of a job of that kind, priced
-- from `prices` now. Unknown kind, a campaign without 1..12 scenes, or a step
-- kind with no price raise 22023.
create or replace function genq_plan_steps(p_kind text, p_input jsonb)
returns table (idx int, name text, step_kind text, provider text, price int)
language plpgsql stable as $$
#variable_conflict use_column
declare
  n int;
  r record;
begin
  if p_kind = 'campaign' then
    n := case when jsonb_typeof(p_input -> 'scenes') = 'number'
              then (p_input ->> 'scenes')::numeric::int end;
    if n is null or n < 1 or n > 12 or (p_input ->> 'scenes')::numeric <> n then
      raise exception 'campaign needs input.scenes between 1 and 12' using errcode = '22023';
    end if;
  elsif p_kind is null or p_kind not in ('storyboard', 'image', 'video', 'lipsync') then
    raise exception 'unknown job kind %', coalesce(p_kind, 'null') using errcode = '22023';
  end if;
  for r in
    with plan (i, nm, sk, pv) as (
      select 0, p_kind, p_kind,
             case p_kind when 'storyboard' then 'openai' when 'lipsync' then 'hedra' else 'luma' end
      where p_kind <> 'campaign'
      union all
      select 0, 'storyboard', 'storyboard', 'openai' where p_kind = 'campaign'
      union all
      select g, 'video_' || g, 'video', 'luma' from generate_series(1, n) g
      where p_kind = 'campaign'
      union all
      select n + 1, 'lipsync', 'lipsync', 'hedra' where p_kind = 'campaign'
    )
    select pl.i, pl.nm, pl.sk, pl.pv, pr.credits
    from plan pl left join prices pr on pr.step_kind = pl.sk
    order by pl.i
  loop
    if r.credits is null then
      raise exception 'no price for step kind %', r.sk using errcode = '22023';
    end if;
    idx := r.i; name := r.nm; step_kind := r.sk; provider := r.pv; price := r.credits;
    return next;
  end loop;
end $$;

-- genq_job_json(job) → the SPEC §4 job object, or NULL when there is no such
-- job. Ownership is the caller's business (genq_job_get checks it).
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
    'finished_at', genq_ts(j.finished_at),
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
               'name', s.name, 'provider', s.provider, 'status', s.status,
               'attempt', s.attempt, 'provider_ref', s.provider_ref, 'error', s.error)
             order by s.idx)
      from job_steps s where s.job_id = j.id), '[]'::jsonb),
    'output', j.output, 'error', j.error);
  if j.webhook_url is not null then
    v := v || jsonb_build_object('webhook_url', j.webhook_url);
  end if;
  return v;
end $$;

-- genq_job_release_held(job) → credits released. Internal: the caller has the
-- job row locked and is moving it to a terminal state. Whatever the job still
-- holds goes back to the account's available credits, once (ledger key
-- job:<id>:release).
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
  values (j.user_id, j.id, 'release', 0, -j.held, 'job:' || j.id || ':release')
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

-- genq_submit_job(user, kind, input, webhook, idem_key, request_hash,
-- max_attempts) → (job json, created).
-- Holds the job's full price in the same transaction that creates it.
-- Idempotency: a job of this user with the same key is returned unchanged
-- (created = false) when request_hash matches, else GQ409. Insufficient
-- available credits raise GQ402 and create nothing. Submits of one user
-- serialize on the account row, so the key check after the lock also covers
-- concurrent submits with the same key (the ON CONFLICT is the backstop).
create or replace function genq_submit_job(p_user text, p_kind text, p_input jsonb,
                                           p_webhook text, p_idem_key text,
                                           p_request_hash text, p_max_attempts int)
returns table (job jsonb, created boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_hash text;
  v_plan jsonb;
  v_price int;
  v_avail bigint;
begin
  if p_input is null or jsonb_typeof(p_input) <> 'object' then
    raise exception 'input must be a JSON object' using errcode = '22023';
  end if;
  if p_max_attempts is null or p_max_attempts < 1 or p_max_attempts > 100 then
    raise exception 'max_attempts must be 1..100' using errcode = '22023';
  end if;
  perform genq_account_ensure(p_user);
  select a.balance - a.held into v_avail from accounts a where a.user_id = p_user for update;

  if p_idem_key is not null then
    select j.id, j.request_hash into v_id, v_hash
    from jobs j where j.user_id = p_user and j.idempotency_key = p_idem_key;
    if found then
      if v_hash is distinct from p_request_hash then
        raise exception 'idempotency key reused with another request' using errcode = 'GQ409';
      end if;
      return query select genq_job_json(v_id), false;
      return;
    end if;
  end if;

  select jsonb_agg(to_jsonb(p) order by p.idx), sum(p.price)
  into v_plan, v_price
  from genq_plan_steps(p_kind, p_input) p;
  if v_avail < v_price then
    raise exception 'insufficient credits: % available, % needed', v_avail, v_price
      using errcode = 'GQ402';
  end if;

  insert into jobs (user_id, kind, input, webhook_url, idempotency_key, request_hash,
                    max_attempts, price, held)
  values (p_user, p_kind, p_input, p_webhook, p_idem_key, p_request_hash,
          p_max_attempts, v_price, v_price)
  on conflict (user_id, idempotency_key) do nothing
  returning jobs.id into v_id;
  if v_id is null then
    select j.id, j.request_hash into v_id, v_hash
    from jobs j where j.user_id = p_user and j.idempotency_key = p_idem_key;
    if v_hash is distinct from p_request_hash then
      raise exception 'idempotency key reused with another request' using errcode = 'GQ409';
    end if;
    return query select genq_job_json(v_id), false;
    return;
  end if;

  insert into job_steps (job_id, idx, name, step_kind, provider, status, price)
  select v_id, x.idx, x.name, x.step_kind, x.provider, 'pending', x.price
  from jsonb_to_recordset(v_plan) as x (idx int, name text, step_kind text, provider text,
                                        price int);
  update accounts set held = held + v_price where user_id = p_user;
  insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
  values (p_user, v_id, 'hold', 0, v_price, 'job:' || v_id || ':hold');
  return query select genq_job_json(v_id), true;
end $$;

-- genq_mark_dispatched(ids, epochs) → how many of them are now marked as
-- pushed to Redis: queued jobs, and running jobs whose lease lapsed (re-sent
-- so that someone reclaims them). genq_undispatched skips marked jobs; a
-- claim clears the mark, so a job is re-sent once per lapse, not on every
-- scan. A mark names the epoch the job had when it was sent: a mark that
-- arrives late, after the job was claimed and requeued (a new epoch), must
-- not hide the requeued job from the relay.
create or replace function genq_mark_dispatched(p_ids uuid[], p_epochs bigint[]) returns int
language plpgsql as $$
declare
  n int;
begin
  update jobs j set dispatched = true
  from unnest(p_ids, p_epochs) as m(id, epoch)
  where j.id = m.id and j.epoch = m.epoch and not j.dispatched
    and (j.status = 'queued' or (j.status = 'running' and j.lease_until < now()));
  get diagnostics n = row_count;
  return n;
end $$;

-- genq_undispatched(min_age_ms, limit) → the jobs the relay must (re)send to
-- Redis, oldest first, with the epoch to mark them with: queued jobs never
-- pushed (or requeued since), older than min_age_ms and due; and running
-- jobs whose lease has lapsed (their worker died or was cut off; SPEC §5),
-- not yet re-sent since.
create or replace function genq_undispatched(p_min_age_ms int, p_limit int)
returns table (id uuid, kind text, epoch bigint)
language plpgsql stable as $$
#variable_conflict use_column
begin
  return query
  select u.id, u.kind, u.epoch from (
    (select j.id, j.kind, j.epoch, j.created_at from jobs j
     where j.status = 'queued' and not j.dispatched
       and j.created_at < now() - make_interval(secs => coalesce(p_min_age_ms, 0) / 1000.0)
       and (j.next_attempt_at is null or j.next_attempt_at <= now())
     order by j.created_at
     limit greatest(coalesce(p_limit, 100), 1))
    union all
    (select j.id, j.kind, j.epoch, j.created_at from jobs j
     where j.status = 'running' and j.lease_until < now() and not j.dispatched
     order by j.lease_until
     limit greatest(coalesce(p_limit, 100), 1))
  ) u
  order by u.created_at
  limit greatest(coalesce(p_limit, 100), 1);
end $$;

-- genq_lapsed(limit) → running jobs whose lease has lapsed (their worker died
-- or was cut off), oldest lease first: what the reconciler re-dispatches.
create or replace function genq_lapsed(p_limit int)
returns table (id uuid, kind text)
language plpgsql stable as $$
#variable_conflict use_column
begin
  return query
  select j.id, j.kind from jobs j
  where j.status = 'running' and j.lease_until < now()
  order by j.lease_until
  limit greatest(coalesce(p_limit, 100), 1);
end $$;

-- genq_claim_job(job, worker, lease_s) → one row (the new epoch, what the
-- worker needs, and the steps with their checkpoints) or no row when the job
-- is not claimable: queued and due, or running with a lapsed lease (a
-- reclaim, which bumps the epoch and fences the old owner out). A job being
-- claimed by someone else right now is waited for (a row lock, not SKIP
-- LOCKED: a short UPDATE such as genq_mark_dispatched must not make a claim
-- miss a claimable job), and then is no longer claimable: two workers never
-- both win. A reclaim of a job that has used all its attempts fails it
-- instead (code lease_expired), so a job that kills its workers stops.
create or replace function genq_claim_job(p_job uuid, p_worker text, p_lease_s int)
returns table (epoch bigint, kind text, input jsonb, attempt int, max_attempts int,
               steps jsonb)
language plpgsql as $$
#variable_conflict use_column
declare
  j jobs;
begin
  select * into j from jobs where jobs.id = p_job for update;
  if not found then
    return;
  end if;
  if j.status = 'running' and j.lease_until < now() and j.attempt >= j.max_attempts then
    update job_steps set status = 'canceled', finished_at = now()
    where job_id = j.id and status in ('pending', 'running');
    update jobs
    set status = 'failed', finished_at = now(), lease_until = null, epoch = j.epoch + 1,
        error = jsonb_build_object('code', 'lease_expired',
                                   'message', 'the worker running this job stopped answering',
                                   'retryable', true)
    where jobs.id = j.id;
    perform genq_job_release_held(j.id);
    return;
  end if;
  if not ((j.status = 'queued' and (j.next_attempt_at is null or j.next_attempt_at <= now()))
          or (j.status = 'running' and j.lease_until < now())) then
    return;
  end if;
  update jobs
  set status = 'running', epoch = j.epoch + 1, attempt = j.attempt + 1,
      lease_until = now() + make_interval(secs => p_lease_s), worker_id = p_worker,
      started_at = coalesce(j.started_at, now()), next_attempt_at = null, dispatched = false
  where jobs.id = j.id;
  return query
  select j.epoch + 1, j.kind, j.input, j.attempt + 1, j.max_attempts,
         coalesce((select jsonb_agg(jsonb_build_object(
                            'name', s.name, 'step_kind', s.step_kind, 'provider', s.provider,
                            'status', s.status, 'attempt', s.attempt,
                            'provider_ref', s.provider_ref, 'output', s.output)
                          order by s.idx)
                   from job_steps s where s.job_id = j.id), '[]'::jsonb);
end $$;

-- genq_job_heartbeat(job, epoch, lease_s) → true when the job is still
-- running at that epoch and its lease now runs lease_s from now.
create or replace function genq_job_heartbeat(p_job uuid, p_epoch bigint, p_lease_s int)
returns boolean
language plpgsql as $$
begin
  update jobs set lease_until = now() + make_interval(secs => p_lease_s)
  where id = p_job and status = 'running' and epoch = p_epoch;
  return found;
end $$;

-- genq_step_begin(job, epoch, step) → true when the step (pending or running)
-- is now running with one more attempt; false and no change when the job is
-- not running at that epoch, its lease lapsed, or the step is not startable.
create or replace function genq_step_begin(p_job uuid, p_epoch bigint, p_step text)
returns boolean
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, true);
  if j.id is null then
    return false;
  end if;
  update job_steps
  set status = 'running', attempt = attempt + 1, started_at = now()
  where job_id = p_job and name = p_step and status in ('pending', 'running');
  return found;
end $$;

-- genq_step_checkpoint(job, epoch, step, ref) → true when the provider's
-- generation id is recorded (NULL clears it, to start a fresh generation).
-- Fenced on status and epoch but not on the lease: while the epoch is ours
-- nobody else owns the job, and losing a paid generation's id costs money.
create or replace function genq_step_checkpoint(p_job uuid, p_epoch bigint, p_step text,
                                                p_ref text)
returns boolean
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return false;
  end if;
  update job_steps set provider_ref = p_ref
  where job_id = p_job and name = p_step and status in ('pending', 'running');
  return found;
end $$;

-- genq_step_succeed(job, epoch, step, output, job_output) → the job's status
-- after ('running' or 'succeeded'), or NULL when fenced out (nothing changed).
-- The step's price is captured exactly once (ledger job:<id>:capture:<step>);
-- succeeding an already succeeded step changes nothing. job_output (when not
-- null) is merged into the job's output. When every step has succeeded the
-- job succeeds, its error is cleared and any remainder is released.
create or replace function genq_step_succeed(p_job uuid, p_epoch bigint, p_step text,
                                             p_output jsonb, p_job_output jsonb)
returns text
language plpgsql as $$
declare
  j jobs;
  v_price int;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return null;
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
        error = null
    where job_id = p_job and name = p_step;
    update jobs set held = held - v_price, captured = captured + v_price where id = p_job;
    update accounts set balance = balance - v_price, held = held - v_price
    where user_id = j.user_id;
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

-- genq_job_fail(job, epoch, step, code, message, retryable) → true when the
-- job is now failed; false when fenced out (nothing changed). The named step
-- (if any) fails with the error, the other unfinished steps are canceled and
-- whatever the job still holds is released.
create or replace function genq_job_fail(p_job uuid, p_epoch bigint, p_step text, p_code text,
                                         p_message text, p_retryable boolean)
returns boolean
language plpgsql as $$
declare
  j jobs;
  v_err jsonb := jsonb_build_object('code', p_code, 'message', p_message,
                                    'retryable', coalesce(p_retryable, false));
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return false;
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
  return true;
end $$;

-- genq_job_requeue(job, epoch, delay_ms, code, message) → 'queued' (to run
-- again after delay_ms, with the error kept as the last error), 'failed'
-- when the attempts are used up (as genq_job_fail, retryable), or NULL when
-- fenced out. Steps keep their status and provider_ref: a worker that wants a
-- fresh generation clears the ref with genq_step_checkpoint(..., NULL).
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
    return 'failed';
  end if;
  update jobs
  set status = 'queued', lease_until = null, worker_id = null, dispatched = false,
      next_attempt_at = now() + make_interval(secs => greatest(coalesce(p_delay_ms, 0), 0) / 1000.0),
      error = jsonb_build_object('code', p_code, 'message', p_message, 'retryable', true)
  where id = p_job;
  return 'queued';
end $$;

-- genq_job_cancel(user, job) → the job JSON after canceling, or NULL when it
-- is not this user's. A queued or running job becomes canceled with its epoch
-- bumped (its worker is fenced out), unfinished steps are canceled and the
-- hold is released; a terminal job is returned unchanged.
create or replace function genq_job_cancel(p_user text, p_job uuid) returns jsonb
language plpgsql as $$
declare
  j jobs;
begin
  select * into j from jobs where id = p_job for update;
  if not found or j.user_id is distinct from p_user then
    return null;
  end if;
  if j.status in ('queued', 'running') then
    update job_steps set status = 'canceled', finished_at = now()
    where job_id = p_job and status in ('pending', 'running');
    update jobs
    set status = 'canceled', epoch = epoch + 1, finished_at = now(), lease_until = null,
        next_attempt_at = null
    where id = p_job;
    perform genq_job_release_held(p_job);
  end if;
  return genq_job_json(p_job);
end $$;

-- genq_job_get(user, job) → the job JSON, or NULL when missing or another
-- user's (the API answers 404 for both).
create or replace function genq_job_get(p_user text, p_job uuid) returns jsonb
language plpgsql stable as $$
begin
  if not exists (select 1 from jobs where id = p_job and user_id = p_user) then
    return null;
  end if;
  return genq_job_json(p_job);
end $$;

-- genq_jobs_list(user, status, kind, limit, cursor) →
-- {"data": [job...], "next_cursor": "<uuid>" | null}: the user's jobs newest
-- first, only ids below cursor when given; status/kind NULL = any; limit
-- clamped to 1..100 (NULL = 20). next_cursor is null on the last page.
create or replace function genq_jobs_list(p_user text, p_status text, p_kind text, p_limit int,
                                          p_cursor uuid)
returns jsonb
language plpgsql stable as $$
declare
  lim int := least(greatest(coalesce(p_limit, 20), 1), 100);
  ids uuid[];
  more boolean;
begin
  select array_agg(x.id order by x.id desc) into ids
  from (select j.id from jobs j
        where j.user_id = p_user
          and (p_status is null or j.status = p_status)
          and (p_kind is null or j.kind = p_kind)
          and (p_cursor is null or j.id < p_cursor)
        order by j.id desc
        limit lim + 1) x;
  ids := coalesce(ids, '{}');
  more := cardinality(ids) > lim;
  if more then
    ids := ids[1:lim];
  end if;
  return jsonb_build_object(
    'data', coalesce((select jsonb_agg(genq_job_json(u.id) order by u.ord)
                      from unnest(ids) with ordinality as u (id, ord)), '[]'::jsonb),
    'next_cursor', case when more then ids[lim]::text end);
end $$;
