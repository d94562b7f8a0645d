-- Jobs (SPEC §3, §4): the state-move trigger, planning and pricing, submit
-- (in batches) with its credit hold, the job JSON, cancel and the user's job list.

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

-- The queue counters of schema/0012_queue_counts.sql: a job entering queued
-- (a submit, a requeue, a hand-back, a retry) counts an arrival of its kind
-- and takes the sum of the kind's arrivals as its queue_no; a job leaving
-- queued counts a departure. The shard is the backend's, so two writers
-- rarely share a counter row.
--
-- genq_queue_arrive(kind, n) → the sum of the kind's arrivals once n more
-- are counted: the queue_no of the last of them. A batch of submits
-- (genq_submit_jobs) counts its jobs of a kind with one call and numbers
-- them itself; the triggers below count every other arrival, one by one.
create or replace function genq_queue_arrive(p_kind text, p_n int) returns bigint
language plpgsql as $$
begin
  insert into queue_counts as c (kind, shard, arrivals) values (p_kind, pg_backend_pid() % 32, p_n)
  on conflict (kind, shard) do update set arrivals = c.arrivals + p_n;
  return (select sum(c.arrivals) from queue_counts c where c.kind = p_kind);
end $$;

create or replace function genq_jobs_queue_count() returns trigger
language plpgsql as $$
begin
  if new.status = 'queued' and (tg_op = 'INSERT' or old.status <> 'queued') then
    new.queue_no := genq_queue_arrive(new.kind, 1);
  elsif tg_op = 'UPDATE' and old.status = 'queued' and new.status <> 'queued' then
    insert into queue_counts as c (kind, shard, departures)
    values (new.kind, pg_backend_pid() % 32, 1)
    on conflict (kind, shard) do update set departures = c.departures + 1;
    new.queue_no := null;
  end if;
  return new;
end $$;

-- Called only where there is something to count: a queued job inserted
-- without its queue_no (a batch of submits numbers its own), and a move
-- into or out of queued (not a step's success, a running job's end).
create or replace trigger jobs_queue_count before update of status on jobs
  for each row when (old.status is distinct from new.status
                     and 'queued' in (old.status, new.status))
  execute function genq_jobs_queue_count();
create or replace trigger jobs_queue_count_insert before insert on jobs
  for each row when (new.status = 'queued' and new.queue_no is null)
  execute function genq_jobs_queue_count();

-- genq_plan_problem(kind, input) → why a job of that kind with that input
-- cannot be planned (an unknown kind, a campaign without 1..12 scenes), or
-- NULL. genq_plan_steps raises it; a batch of submissions answers it for
-- the one submission alone.
create or replace function genq_plan_problem(p_kind text, p_input jsonb) returns text
language plpgsql immutable as $$
declare
  v numeric;
begin
  if p_kind = 'campaign' then
    v := case when jsonb_typeof(p_input -> 'scenes') = 'number'
              then (p_input ->> 'scenes')::numeric end;
    if v is null or v < 1 or v > 12 or v <> trunc(v) then
      return 'campaign needs input.scenes between 1 and 12';
    end if;
  elsif p_kind is null or p_kind not in ('storyboard', 'image', 'video', 'lipsync') then
    return format('unknown job kind %s', coalesce(p_kind, 'null'));
  end if;
  return null;
end $$;

-- genq_plan_steps(kind, input) → the steps of a job of that kind, priced
-- from `prices` now, with the stage each runs in: every step of the lowest
-- unfinished stage may run at once (a campaign's videos), and a stage starts
-- only when the one before has succeeded. What genq_plan_problem refuses,
-- or a step kind with no price, raise 22023.
create or replace function genq_plan_steps(p_kind text, p_input jsonb)
returns table (idx int, name text, step_kind text, provider text, price int, stage int)
language plpgsql stable as $$
declare
  n int;
  v_problem text;
  v_video int;
begin
  v_problem := genq_plan_problem(p_kind, p_input);
  if v_problem is not null then
    raise exception '%', v_problem using errcode = '22023';
  end if;
  -- Plain statements, each planned once per session: a single query over
  -- every kind's plan was planned again at every call (a third of a
  -- millisecond, the most of a submit after the job's JSON).
  if p_kind <> 'campaign' then
    idx := 0; name := p_kind; step_kind := p_kind; stage := 0;
    provider := case p_kind when 'storyboard' then 'openai' when 'lipsync' then 'hedra'
                            else 'luma' end;
    price := genq_step_price(p_kind);
    return next;
    return;
  end if;
  n := (p_input ->> 'scenes')::numeric::int;
  idx := 0; name := 'storyboard'; step_kind := 'storyboard'; provider := 'openai'; stage := 0;
  price := genq_step_price('storyboard');
  return next;
  v_video := genq_step_price('video');
  for g in 1 .. n loop
    idx := g; name := 'video_' || g; step_kind := 'video'; provider := 'luma'; stage := 1;
    price := v_video;
    return next;
  end loop;
  idx := n + 1; name := 'lipsync'; step_kind := 'lipsync'; provider := 'hedra'; stage := 2;
  price := genq_step_price('lipsync');
  return next;
end $$;

-- genq_step_price(step_kind) → its price in credits now, from `prices`;
-- a step kind with no price raises 22023.
create or replace function genq_step_price(p_step_kind text) returns int
language plpgsql stable as $$
declare
  v int;
begin
  select pr.credits into v from prices pr where pr.step_kind = p_step_kind;
  if v is null then
    raise exception 'no price for step kind %', p_step_kind using errcode = '22023';
  end if;
  return v;
end $$;

-- genq_jobs_json(ids) → (id, user_id, job) for each of those jobs that
-- exists, in no particular order: job is the SPEC §4 job object. The one
-- definition of it; a batch (a submit's, a page of the job list) is read
-- with one statement, not one per job. Ownership is the caller's business
-- (user_id is the owner). Steps carry their stage and progress;
-- output.assets lists the job's stored results, each with the URL the owner
-- downloads it from; dead_at is set while the job is in the dead-letter set.
create or replace function genq_jobs_json(p_ids uuid[])
returns table (id uuid, user_id text, job jsonb)
language plpgsql stable
-- Planned once per session: a custom plan (chosen for "= any(array)", whose
-- generic estimate looks dearer) was planned again at every call. And by
-- index whatever the statistics say: a plan made while jobs was empty (a
-- new API's first submits) read the whole table at every call until the
-- next ANALYZE.
set plan_cache_mode = force_generic_plan
set enable_seqscan = off as $$
#variable_conflict use_column
begin
  return query
  select j.id, j.user_id, jsonb_build_object(
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
    'error', j.error)
    || case when j.webhook_url is not null
            then jsonb_build_object('webhook_url', j.webhook_url) else '{}'::jsonb end
  from jobs j where j.id = any(p_ids);
end $$;

-- genq_job_json(job) → the job object of genq_jobs_json, or NULL when there
-- is no such job.
create or replace function genq_job_json(p_job uuid) returns jsonb
language sql stable as $$
  select x.job from genq_jobs_json(array[p_job]) x
$$;

-- genq_idempotency_window() → how long an Idempotency-Key names the job it
-- made: 24 h after the job's created_at (Stripe's rule), then the same key
-- makes a new job.
create or replace function genq_idempotency_window() returns interval
language sql immutable as $$ select interval '24 hours' $$;

-- genq_idempotency_sweep(now, limit) → keys cleared: at most limit (NULL:
-- 1000, clamped to 1..10000) jobs whose Idempotency-Key expired by now
-- (created at or before now − 24 h) lose it and its request hash, oldest
-- first, by the jobs_idempotency_live index; rows another transaction has
-- locked are skipped (the next run clears them). For the sweeper, which
-- calls it until it answers less than limit. A submit never waits for it:
-- genq_submit_jobs clears an expired key it meets itself.
create or replace function genq_idempotency_sweep(p_now timestamptz, p_limit int) returns int
language plpgsql as $$
declare
  n int;
begin
  with c as (
    select j.id from jobs j
    where j.idempotency_key is not null
      and j.created_at <= coalesce(p_now, now()) - genq_idempotency_window()
    order by j.created_at
    limit least(greatest(coalesce(p_limit, 1000), 1), 10000)
    for update skip locked)
  update jobs j set idempotency_key = null, request_hash = null from c where j.id = c.id;
  get diagnostics n = row_count;
  return n;
end $$;

-- genq_submit_jobs(batch) → one row per submission of the batch, in its
-- order: (ord, job json, created) for a job created (created = true) or an
-- idempotent replay (created = false); or (ord, NULL, NULL, err_state,
-- err_message, err_field) for a submission refused, with nothing of it
-- written: 22023 bad arguments, GQ400 an input field refused (err_field
-- names it, 'input.<field>'), GQ402 insufficient credits, GQ4D2 the
-- account has a credit debt (stripe.sql), GQ401 the account is deleted
-- (privacy.sql), GQ409 an idempotency key reused
-- with another request, GQ429 a usage limit of the user's plan (limits.sql:
-- err_field '<code>/<retry seconds>').
--
-- batch: a JSON array of {user, kind, input, webhook_url?,
-- idempotency_key?, request_hash?, max_attempts}. The API sends the
-- submissions that arrived while an earlier batch was in flight as one
-- batch (api/submit_batch.c): one call, one transaction, one commit.
--
-- Each submission is all or nothing on its own and none affects another:
-- every check runs first, without raising (no subtransaction per item),
-- and only what passed is written, with one statement per table for the
-- whole batch. Per submission, as one call each would be, in this order:
-- input an object and max_attempts 1..100 (22023), the user's account
-- (created when new, with its sign-up grant), the idempotency key (a job of
-- this user with that key made less than 24 h ago, committed or earlier in
-- this batch, is answered again when request_hash matches, else GQ409; an
-- older one's key has expired: it is cleared and a new job made), the plan
-- and its price
-- (genq_plan_problem, genq_plan_steps; planned once per kind, or campaign
-- size, in a batch), the uploads the input names (genq_job_uploads_check,
-- media.sql; GQ400), then the credits: within one user the submissions are
-- taken in batch order, each against what is available after the ones
-- before it, so the one that does not fit is GQ402 and the rest still go.
--
-- Locks: accounts are held for as little of the call as can be, because
-- every submit and every capture of their users waits on them. First what
-- needs no account lock: the missing accounts are created (ON CONFLICT DO
-- NOTHING locks no existing row; a concurrent creation of the same user
-- waits for the other's commit), and each submission's input, plan and
-- uploads are checked, and the batch's expired Idempotency-Keys cleared
-- (their job rows locked in id order: everywhere a job row is locked
-- before its account). Then every account of the batch is locked, once,
-- in user_id order (two batches over the same users never deadlock), and
-- under that lock the idempotency keys are looked up — a submit of the same
-- user committed meanwhile is seen, so concurrent submits with one key are
-- settled by the lock (the unique (user_id, idempotency_key) is the
-- backstop: it would refuse the whole batch, never create twice) — the
-- credits decided and the rows written, each user's holds added with one
-- UPDATE of the account row.
create or replace function genq_submit_jobs(p_batch jsonb)
returns table (ord int, job jsonb, created boolean, err_state text, err_message text,
               err_field text)
language plpgsql
-- generic plans, by index (as genq_jobs_json, above)
set plan_cache_mode = force_generic_plan
set enable_seqscan = off as $$
#variable_conflict use_column
declare
  n int;
  it record;
  c record;
  o int;
  v_users text[];
  v_new text[];
  v_avail bigint[];
  v_debt bigint[];
  v_deleted boolean[];
  v_ui int;
  v_user text;
  v_kind text;
  v_input jsonb;
  v_key text;
  v_hash text;
  v_max numeric;
  v_item jsonb;
  v_seen jsonb := '{}';
  v_plans jsonb := '{}';
  v_plan_key text;
  v_prev jsonb;
  v_prev_id uuid;
  v_prev_hash text;
  v_problem text;
  v_plan jsonb;
  v_price int;
  v_id uuid;
  v_limits jsonb;     -- the batch's users' usage limits (limits.sql)
  v_refusal text[];
  -- per submission, by ord: the answer
  r_id uuid[];
  r_created boolean[];
  r_state text[];
  r_msg text[];
  r_field text[];
  -- per submission, by ord: what the checks before the lock found
  k_user text[];
  k_late boolean[];  -- r_state is a plan or upload refusal: a replay still wins
  k_plan jsonb[];
  k_price int[];
  -- the uploads the inputs name: (ord, role, upload)
  u_ord int[] := '{}';
  u_role text[] := '{}';
  u_upload uuid[] := '{}';
  -- the submissions that passed, to be written
  a_id uuid[] := '{}';
  a_user text[] := '{}';
  a_kind text[] := '{}';
  a_input jsonb[] := '{}';
  a_webhook text[] := '{}';
  a_key text[] := '{}';
  a_hash text[] := '{}';
  a_max int[] := '{}';
  a_price int[] := '{}';
  a_plan jsonb[] := '{}';
  -- the (user, idempotency key) pairs of the batch
  x_users text[] := '{}';
  x_keys text[] := '{}';
begin
  if p_batch is null or jsonb_typeof(p_batch) <> 'array' then
    raise exception 'the batch must be a JSON array' using errcode = '22023';
  end if;
  n := jsonb_array_length(p_batch);
  if n = 0 then
    return;
  end if;
  r_id := array_fill(null::uuid, array[n]);
  r_created := array_fill(null::boolean, array[n]);
  r_state := array_fill(null::text, array[n]);
  r_msg := r_state;
  r_field := r_state;
  k_user := r_state;
  k_late := array_fill(false, array[n]);
  k_plan := array_fill(null::jsonb, array[n]);
  k_price := array_fill(null::int, array[n]);

  -- the accounts that are missing: created, with their sign-up grants
  select coalesce(array_agg(distinct e ->> 'user' order by e ->> 'user'), '{}') into v_users
  from jsonb_array_elements(p_batch) e
  where jsonb_typeof(e -> 'user') = 'string' and e ->> 'user' <> '';
  with created as (
    insert into accounts (user_id)
    select u from unnest(v_users) u order by u
    on conflict (user_id) do nothing
    returning accounts.user_id)
  select coalesce(array_agg(created.user_id), '{}') into v_new from created;
  for c in select u from unnest(v_new) u order by u loop
    perform genq_account_signup(c.u);
  end loop;

  -- before the lock: each submission's input, plan and uploads
  for it in select e.value as v, e.ordinality::int as o
            from jsonb_array_elements(p_batch) with ordinality e loop
    v_user := case when jsonb_typeof(it.v -> 'user') = 'string' then it.v ->> 'user' end;
    v_kind := it.v ->> 'kind';
    v_input := it.v -> 'input';
    v_max := case when jsonb_typeof(it.v -> 'max_attempts') = 'number'
                  then (it.v ->> 'max_attempts')::numeric end;
    if v_input is null or jsonb_typeof(v_input) <> 'object' then
      r_state[it.o] := '22023';
      r_msg[it.o] := 'input must be a JSON object';
      continue;
    end if;
    if v_max is null or v_max < 1 or v_max > 100 or v_max <> trunc(v_max) then
      r_state[it.o] := '22023';
      r_msg[it.o] := 'max_attempts must be 1..100';
      continue;
    end if;
    if v_user is null or v_user = '' then
      r_state[it.o] := '22023';
      r_msg[it.o] := 'user id is empty';
      continue;
    end if;
    k_user[it.o] := v_user;
    if jsonb_typeof(it.v -> 'idempotency_key') = 'string' then
      x_users := x_users || v_user;
      x_keys := x_keys || (it.v ->> 'idempotency_key');
    end if;

    v_problem := genq_plan_problem(v_kind, v_input);
    if v_problem is not null then
      r_state[it.o] := '22023';
      r_msg[it.o] := v_problem;
      k_late[it.o] := true;
      continue;
    end if;
    -- one plan per kind (a campaign's depends on its scenes) in a batch
    v_plan_key := case when v_kind = 'campaign' then 'campaign/' || (v_input ->> 'scenes')::numeric
                       else v_kind end;
    v_prev := v_plans -> v_plan_key;
    if v_prev is null then
      select jsonb_agg(to_jsonb(p) order by p.idx), sum(p.price)
      into v_plan, v_price
      from genq_plan_steps(v_kind, v_input) p;
      v_plans := v_plans || jsonb_build_object(v_plan_key,
                                               jsonb_build_object('plan', v_plan, 'price', v_price));
    else
      v_plan := v_prev -> 'plan';
      v_price := (v_prev ->> 'price')::int;
    end if;
    k_plan[it.o] := v_plan;
    k_price[it.o] := v_price;

    v_problem := null;
    for c in select * from genq_job_uploads_check(v_user, v_kind, v_input) loop
      if c.problem is not null then
        v_problem := c.problem;
        r_field[it.o] := 'input.' || c.field;
        exit;
      end if;
      u_ord := u_ord || it.o;
      u_role := u_role || c.role;
      u_upload := u_upload || c.upload_id;
    end loop;
    if v_problem is not null then
      r_state[it.o] := 'GQ400';
      r_msg[it.o] := v_problem;
      k_late[it.o] := true;
    end if;
  end loop;

  -- expired Idempotency-Keys of the batch: cleared before the account lock
  -- (a job row is locked before its account everywhere, or a worker's
  -- capture and this could wait on each other), in job id order; a key a
  -- concurrent submit cleared first is passed over (its row no longer
  -- matches once that one commits), and under the lock its new job is seen
  if cardinality(x_users) > 0 then
    with c as (
      select j.id from jobs j
      join unnest(x_users, x_keys) as x (u, key) on j.user_id = x.u and j.idempotency_key = x.key
      where j.created_at <= now() - genq_idempotency_window()
      order by j.id
      for update of j)
    update jobs j set idempotency_key = null, request_hash = null from c where j.id = c.id;
  end if;

  -- every account of the batch, locked in user_id order
  perform 1 from accounts a where a.user_id = any(v_users) order by a.user_id for no key update;
  select array_agg(a.balance - a.held order by x.i),
         array_agg(a.debt order by x.i),  -- debt: stripe.sql
         array_agg(a.deleted_at is not null order by x.i) into v_avail, v_debt, v_deleted
  from unnest(v_users) with ordinality x (u, i) join accounts a on a.user_id = x.u;
  select st.state into v_limits from genq_limits_submit_state(v_users) st;

  -- under the lock: idempotency keys, then credits
  for o in 1 .. n loop
    continue when k_user[o] is null;  -- refused before its account
    v_user := k_user[o];
    v_item := p_batch -> (o - 1);
    v_key := v_item ->> 'idempotency_key';
    v_hash := v_item ->> 'request_hash';
    if v_key is not null then
      v_prev := v_seen -> (jsonb_build_array(v_user, v_key)::text);
      if v_prev is not null then
        v_prev_id := (v_prev ->> 'id')::uuid;
        v_prev_hash := v_prev ->> 'hash';
      else
        select j.id, j.request_hash into v_prev_id, v_prev_hash
        from jobs j where j.user_id = v_user and j.idempotency_key = v_key
          and j.created_at > now() - genq_idempotency_window();
        if not found then
          v_prev_id := null;
        end if;
      end if;
      if v_prev_id is not null then
        r_msg[o] := null;
        r_field[o] := null;
        if v_prev_hash is distinct from v_hash then
          r_state[o] := 'GQ409';
          r_msg[o] := 'idempotency key reused with another request';
        else
          r_state[o] := null;
          r_id[o] := v_prev_id;
          r_created[o] := false;
        end if;
        continue;
      end if;
    end if;
    continue when r_state[o] is not null;  -- its plan or an upload refused

    v_price := k_price[o];
    v_ui := array_position(v_users, v_user);
    if v_deleted[v_ui] then -- DELETE /v1/me (privacy.sql): no new work, ever
      r_state[o] := 'GQ401';
      r_msg[o] := 'the account is deleted';
      continue;
    end if;
    if v_debt[v_ui] > 0 then -- a refund left a debt: no new jobs until it is paid (stripe.sql)
      r_state[o] := 'GQ4D2';
      r_msg[o] := format('credit debt of %s: a refund took back credits already spent', v_debt[v_ui]);
      continue;
    end if;

    -- usage limits (limits.sql): the plan's unfinished jobs, submission rate
    v_refusal := case when v_limits ? v_user  -- no entry: the plan limits nothing
                      then genq_limits_submit_refusal(v_limits -> v_user) end;
    if v_refusal is not null then
      r_state[o] := 'GQ429';
      r_field[o] := v_refusal[1];
      r_msg[o] := v_refusal[2];
      continue;
    end if;
    if v_avail[v_ui] < v_price then
      r_state[o] := 'GQ402';
      r_msg[o] := format('insufficient credits: %s available, %s needed', v_avail[v_ui], v_price);
      continue;
    end if;
    v_avail[v_ui] := v_avail[v_ui] - v_price;
    if v_limits ? v_user then
      v_limits := genq_limits_submit_spent(v_limits, v_user);
    end if;

    v_id := genq_uuid7();
    a_id := a_id || v_id;
    a_user := a_user || v_user;
    a_kind := a_kind || (v_item ->> 'kind');
    a_input := a_input || (v_item -> 'input');
    a_webhook := a_webhook || (v_item ->> 'webhook_url');
    a_key := a_key || v_key;
    a_hash := a_hash || v_hash;
    a_max := a_max || (v_item ->> 'max_attempts')::numeric::int;
    a_price := a_price || v_price;
    a_plan := a_plan || k_plan[o];
    if v_key is not null then
      v_seen := v_seen || jsonb_build_object(jsonb_build_array(v_user, v_key)::text,
                                             jsonb_build_object('id', v_id, 'hash', v_hash));
    end if;
    r_id[o] := v_id;
    r_created[o] := true;
  end loop;

  if cardinality(a_id) > 0 then
    -- numbered in batch order, each kind's arrivals counted with one call
    -- (in kind order: two batches take the counter rows in one order)
    with k as (
      select x.k, count(*)::int as n from unnest(a_kind) as x (k) group by x.k order by x.k),
    b as (
      select k.k, genq_queue_arrive(k.k, k.n) - k.n as base from k)
    insert into jobs (id, user_id, kind, input, webhook_url, idempotency_key, request_hash,
                      max_attempts, price, held, queue_no)
    select x.id, x.u, x.k, x.i, x.w, x.key, x.h, x.m, x.p, x.p,
           b.base + row_number() over (partition by x.k order by x.o)
    from unnest(a_id, a_user, a_kind, a_input, a_webhook, a_key, a_hash, a_max, a_price)
         with ordinality as x (id, u, k, i, w, key, h, m, p, o)
    join b on b.k = x.k
    order by x.o;
    insert into job_uploads (job_id, role, upload_id)
    select r_id[u.o], u.role, u.up from unnest(u_ord, u_role, u_upload) as u (o, role, up)
    where r_created[u.o];
    insert into job_steps (job_id, idx, name, step_kind, provider, status, price, stage)
    select x.id, s.idx, s.name, s.step_kind, s.provider, 'pending', s.price, s.stage
    from unnest(a_id, a_plan) as x (id, plan),
         jsonb_to_recordset(x.plan) as s (idx int, name text, step_kind text, provider text,
                                          price int, stage int);
    update accounts a set held = a.held + t.total
    from (select x.u, sum(x.p) as total from unnest(a_user, a_price) as x (u, p) group by x.u) t
    where a.user_id = t.u;
    insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
    select x.u, x.id, 'hold', 0, x.p, 'job:' || x.id || ':hold'
    from unnest(a_user, a_id, a_price) as x (u, id, p);
    perform genq_limits_submit_save(v_limits);  -- the tokens taken (limits.sql)
  end if;

  return query
    select x.o::int, jj.job, x.c, x.st, x.msg, x.fld
    from unnest(r_id, r_created, r_state, r_msg, r_field) with ordinality
         as x (id, c, st, msg, fld, o)
    left join genq_jobs_json(r_id) jj on jj.id = x.id
    order by x.o;
end $$;

-- genq_submit_job(user, kind, input, webhook, idem_key, request_hash,
-- max_attempts) → (job json, created): one submission, as a batch of one
-- (genq_submit_jobs), its refusal raised with its SQLSTATE, message and
-- column. For operators and tests; the API sends batches.
create or replace function genq_submit_job(p_user text, p_kind text, p_input jsonb,
                                           p_webhook text, p_idem_key text,
                                           p_request_hash text, p_max_attempts int)
returns table (job jsonb, created boolean)
language plpgsql as $$
#variable_conflict use_column
declare
  r record;
begin
  select * into r
  from genq_submit_jobs(jsonb_build_array(jsonb_build_object(
         'user', p_user, 'kind', p_kind, 'input', p_input, 'webhook_url', p_webhook,
         'idempotency_key', p_idem_key, 'request_hash', p_request_hash,
         'max_attempts', p_max_attempts))) s;
  if r.err_state is not null then
    if r.err_field is not null then
      raise exception '%', r.err_message using errcode = r.err_state, column = r.err_field;
    end if;
    raise exception '%', r.err_message using errcode = r.err_state;
  end if;
  job := r.job;
  created := r.created;
  return next;
end $$;

-- genq_job_read(job) → (its owner, the job JSON), or no row when there is no
-- such job: what the API's job cache (common/job_cache.c) keeps for polls
-- and event streams, which answer 404 unless the owner is the caller.
create or replace function genq_job_read(p_job uuid) returns table (user_id text, job jsonb)
language sql stable as $$
  select x.user_id, x.job from genq_jobs_json(array[p_job]) x
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
    'data', coalesce((select jsonb_agg(x.job order by u.ord)
                      from unnest(ids) with ordinality as u (id, ord)
                      join genq_jobs_json(ids) x on x.id = u.id), '[]'::jsonb),
    'next_cursor', case when more then ids[lim]::text end);
end $$;

-- genq_job_cancel(user, job) → the job JSON after canceling, or NULL when it
-- is not this user's. A queued or running job becomes canceled with its epoch
-- bumped (its worker is fenced out) and its unfinished steps canceled. What
-- a cancel costs: an unfinished step whose provider generation was already
-- created (its provider_ref is set: a Luma generation or a Hedra job
-- checkpointed by genq_step_checkpoint; a storyboard step never has one)
-- has cost genq its provider's price, so it captures its own price, once,
-- under the key every capture of that step uses (job:<id>:capture:<step>,
-- as genq_steps_succeed: a later success of it is fenced out, and the key
-- would refuse a second capture anyway); the rest of the hold is released.
-- Such a step stays canceled with captured = price, and its generation is
-- not deleted at the provider (genq_refs_to_release, media.sql): the user
-- paid for it. A terminal job is returned unchanged.
--
-- Locks: the job row, then its account (as every capture and release).
create or replace function genq_job_cancel(p_user text, p_job uuid) returns jsonb
language plpgsql as $$
declare
  j jobs;
  v_steps text[];
  v_prices int[];
  v_total int;
  v_rows int;
begin
  select * into j from jobs where id = p_job for update;
  if not found or j.user_id is distinct from p_user then
    return null;
  end if;
  if j.status in ('queued', 'running') then
    with paid as (
      update job_steps s set status = 'canceled', finished_at = now(), captured = s.price
      where s.job_id = p_job and s.status in ('pending', 'running')
        and s.provider_ref is not null
      returning s.name, s.price, s.idx)
    select array_agg(paid.name order by paid.idx), array_agg(paid.price order by paid.idx),
           coalesce(sum(paid.price), 0)
    into v_steps, v_prices, v_total
    from paid;
    update job_steps set status = 'canceled', finished_at = now()
    where job_id = p_job and status in ('pending', 'running');
    update jobs
    set status = 'canceled', epoch = epoch + 1, finished_at = now(), lease_until = null,
        next_attempt_at = null, held = held - v_total, captured = captured + v_total
    where id = p_job;
    if v_steps is not null then
      update accounts set balance = balance - v_total, held = held - v_total
      where user_id = j.user_id;
      insert into ledger (user_id, job_id, movement, balance_delta, held_delta, idem_key)
      select j.user_id, p_job, 'capture', -x.price, -x.price, 'job:' || p_job || ':capture:' || x.name
      from unnest(v_steps, v_prices) with ordinality as x (name, price, n)
      order by x.n
      on conflict (idem_key) do nothing;
      get diagnostics v_rows = row_count;
      if v_rows <> cardinality(v_steps) then
        raise exception 'a step of job % captured twice', p_job using errcode = 'GQ500';
      end if;
    end if;
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
