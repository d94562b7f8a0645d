-- Jobs (SPEC §3, §4): the state-move trigger, planning and pricing, submit
-- with its credit hold, the job JSON, cancel and the user's job list.

-- The single place job state moves are checked: any UPDATE of jobs.status
-- along a pair not in job_transitions (schema/0001_core.sql) raises SQLSTATE
-- GQ500 (and the whole calling function's transaction rolls back), with one
-- exception: failed → queued is legal for the one job genq_job_retry names
-- in its own transaction (genq.retry_job, a transaction-local setting; NULL
-- in a session that never set it, hence the coalesce). Also keeps
-- updated_at.
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

create or replace trigger jobs_before_update before update on jobs
  for each row execute function genq_jobs_before_update();

-- Keeps the queue counters of schema/0012_queue_counts.sql: a job entering
-- queued (a submit, a requeue, a hand-back, a retry) counts an arrival of
-- its kind and takes the sum of the kind's arrivals as its queue_no; a job
-- leaving queued counts a departure. The shard is the backend's, so two
-- writers rarely share a counter row.
create or replace function genq_jobs_queue_count() returns trigger
language plpgsql as $$
declare
  v_shard int := pg_backend_pid() % 32;
begin
  if new.status = 'queued' and (tg_op = 'INSERT' or old.status <> 'queued') then
    insert into queue_counts as c (kind, shard, arrivals) values (new.kind, v_shard, 1)
    on conflict (kind, shard) do update set arrivals = c.arrivals + 1;
    new.queue_no := (select sum(c.arrivals) from queue_counts c where c.kind = new.kind);
  elsif tg_op = 'UPDATE' and old.status = 'queued' and new.status <> 'queued' then
    insert into queue_counts as c (kind, shard, departures) values (new.kind, v_shard, 1)
    on conflict (kind, shard) do update set departures = c.departures + 1;
    new.queue_no := null;
  end if;
  return new;
end $$;

create or replace trigger jobs_queue_count before insert or update of status on jobs
  for each row execute function genq_jobs_queue_count();

-- genq_plan_steps(kind, input) → the steps of a job of that kind, priced
-- from `prices` now, with the stage each runs in: every step of the lowest
-- unfinished stage may run at once (a campaign's videos), and a stage starts
-- only when the one before has succeeded. Unknown kind, a campaign without
-- 1..12 scenes, or a step kind with no price raise 22023.
create or replace function genq_plan_steps(p_kind text, p_input jsonb)
returns table (idx int, name text, step_kind text, provider text, price int, stage int)
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
    with plan (i, nm, sk, pv, st) as (
      select 0, p_kind, p_kind,
             case p_kind when 'storyboard' then 'openai' when 'lipsync' then 'hedra' else 'luma' end,
             0
      where p_kind <> 'campaign'
      union all
      select 0, 'storyboard', 'storyboard', 'openai', 0 where p_kind = 'campaign'
      union all
      select g, 'video_' || g, 'video', 'luma', 1 from generate_series(1, n) g
      where p_kind = 'campaign'
      union all
      select n + 1, 'lipsync', 'lipsync', 'hedra', 2 where p_kind = 'campaign'
    )
    select pl.i, pl.nm, pl.sk, pl.pv, pl.st, pr.credits
    from plan pl left join prices pr on pr.step_kind = pl.sk
    order by pl.i
  loop
    if r.credits is null then
      raise exception 'no price for step kind %', r.sk using errcode = '22023';
    end if;
    idx := r.i; name := r.nm; step_kind := r.sk; provider := r.pv; price := r.credits;
    stage := r.st;
    return next;
  end loop;
end $$;

-- genq_job_json(job) → the SPEC §4 job object, or NULL when there is no such
-- job. Ownership is the caller's business (genq_job_read answers the owner). Steps
-- carry their stage and progress; output.assets lists the job's stored
-- results, each with the URL the owner downloads it from; dead_at is set
-- while the job is in the dead-letter set.
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
        greatest(1, j.queue_no - coalesce((select sum(c.departures) from queue_counts c
                                           where c.kind = j.kind), 0)) end,
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

-- genq_submit_job(user, kind, input, webhook, idem_key, request_hash,
-- max_attempts) → (job json, created).
-- Holds the job's full price in the same transaction that creates it, and
-- links the uploads its input names (genq_job_link_uploads, media.sql).
-- Idempotency: a job of this user with the same key is returned unchanged
-- (created = false) when request_hash matches, else GQ409. Insufficient
-- available credits raise GQ402 and create nothing. Submits of one user
-- serialize on the account row, so the key check after the lock also covers
-- concurrent submits with the same key (the unique (user_id,
-- idempotency_key) is the backstop: it would refuse, never create twice).
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
  perform genq_job_link_uploads(null, p_user, p_kind, p_input);
  if v_avail < v_price then
    raise exception 'insufficient credits: % available, % needed', v_avail, v_price
      using errcode = 'GQ402';
  end if;

  insert into jobs (id, user_id, kind, input, webhook_url, idempotency_key, request_hash,
                    max_attempts, price, held)
  values (genq_uuid7(), p_user, p_kind, p_input, p_webhook, p_idem_key, p_request_hash,
          p_max_attempts, v_price, v_price)
  returning jobs.id into v_id;

  perform genq_job_link_uploads(v_id, p_user, p_kind, p_input);
  insert into job_steps (job_id, idx, name, step_kind, provider, status, price, stage)
  select v_id, x.idx, x.name, x.step_kind, x.provider, 'pending', x.price, x.stage
  from jsonb_to_recordset(v_plan) as x (idx int, name text, step_kind text, provider text,
                                        price int, stage int);
  update accounts set held = held + v_price where user_id = p_user;
  insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
  values (p_user, v_id, 'hold', 0, v_price, 'job:' || v_id || ':hold');
  return query select genq_job_json(v_id), true;
end $$;

-- genq_job_read(job) → (its owner, the job JSON), or no row when there is no
-- such job: what the API's job cache (common/job_cache.c) keeps for polls
-- and event streams, which answer 404 unless the owner is the caller.
create or replace function genq_job_read(p_job uuid) returns table (user_id text, job jsonb)
language sql stable as $$
  select j.user_id, genq_job_json(j.id) from jobs j where j.id = p_job
$$;

-- genq_jobs_list(user, status, kind, limit, cursor) →
-- {"data": [job...], "next_cursor": "<uuid>" | null}: the user's jobs newest
-- first, only ids below cursor when given; status/kind NULL = any; limit
-- clamped to 1..100 (NULL = 20). next_cursor is null on the last page.
-- Planned for each call's filters (force_custom_plan), so that a status
-- filter reads the jobs_user_status index instead of every job of the user.
create or replace function genq_jobs_list(p_user text, p_status text, p_kind text, p_limit int,
                                          p_cursor uuid)
returns jsonb
language plpgsql stable
set plan_cache_mode = force_custom_plan as $$
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
