-- 0004_media: uploads in, assets out, parallel stages of steps, step
-- progress (SPEC §3, §4, §7).
--
-- A job's steps run in stages: every step of the lowest unfinished stage may
-- run at once (a campaign's videos), and a stage starts only when the one
-- before has succeeded. Later steps read earlier steps' outputs.

alter table job_steps add column stage int not null default 0;
alter table job_steps add column progress real check (progress >= 0 and progress <= 1);

-- Media a user uploaded for generation (POST /v1/uploads). The bytes live in
-- storage under storage_key; the row outlives them (deleted_at) so a job that
-- referenced the upload can still say which one it was.
create table uploads (
  id           uuid primary key,
  user_id      text not null references accounts,
  content_type text not null,
  bytes        bigint not null check (bytes > 0),
  sha256       text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  storage_key  text not null,
  created_at   timestamptz not null default now(),
  expires_at   timestamptz not null default now() + interval '24 hours',
  deleted_at   timestamptz
);
create index uploads_user on uploads (user_id, id);
create index uploads_live on uploads (expires_at) where deleted_at is null;

-- Which uploads a job needs, and for what (image, audio, keyframe, avatar,
-- voice). An upload linked to an unfinished job is never swept.
create table job_uploads (
  job_id    uuid not null references jobs on delete cascade,
  role      text not null,
  upload_id uuid not null references uploads,
  primary key (job_id, role)
);
create index job_uploads_upload on job_uploads (upload_id);

-- Generated results, stored by genq (provider outputs expire at the
-- provider). One per step at most.
create table assets (
  id           uuid primary key,
  user_id      text not null references accounts,
  job_id       uuid not null references jobs on delete cascade,
  step         text not null,
  kind         text not null check (kind in ('image', 'video', 'audio')),
  content_type text not null,
  bytes        bigint not null check (bytes > 0),
  sha256       text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  storage_key  text not null,
  created_at   timestamptz not null default now(),
  unique (job_id, step)
);
create index assets_user on assets (user_id, id);

-- The input fields that name uploads, per job kind: field → (role, media
-- class the upload's content type must have).
create or replace function genq_upload_fields(p_kind text)
returns table (field text, role text, media text)
language sql immutable as $$
  select v.field, v.role, v.media from (values
    ('video', 'keyframe_upload_id', 'keyframe', 'image'),
    ('lipsync', 'image_upload_id', 'image', 'image'),
    ('lipsync', 'audio_upload_id', 'audio', 'audio'),
    ('campaign', 'avatar_upload_id', 'avatar', 'image'),
    ('campaign', 'voice_upload_id', 'voice', 'audio')
  ) v (kind, field, role, media)
  where v.kind = p_kind
$$;

-- genq_upload_create(user, id, content_type, bytes, sha256, key) → the
-- upload JSON. The bytes are already stored under key.
create or replace function genq_upload_create(p_user text, p_id uuid, p_type text, p_bytes bigint,
                                              p_sha256 text, p_key text)
returns jsonb
language plpgsql as $$
declare
  u uploads;
begin
  perform genq_account_ensure(p_user);
  insert into uploads (id, user_id, content_type, bytes, sha256, storage_key)
  values (p_id, p_user, p_type, p_bytes, p_sha256, p_key)
  returning * into u;
  return jsonb_build_object('id', u.id, 'content_type', u.content_type, 'bytes', u.bytes,
                            'sha256', u.sha256, 'expires_at', genq_ts(u.expires_at));
end $$;

-- genq_job_link_uploads(job, user, kind, input): internal to submit. Every
-- upload the input names must be the user's, still stored, and of the right
-- media class; the uploads are locked (FOR SHARE) so the sweeper cannot
-- delete one between this check and the commit. GQ400 names the field.
-- With job NULL it only checks (submit checks before it looks at credits:
-- bad input is answered before payment).
create or replace function genq_job_link_uploads(p_job uuid, p_user text, p_kind text,
                                                 p_input jsonb)
returns void
language plpgsql as $$
declare
  f record;
  v_id uuid;
  u uploads;
begin
  if p_kind = 'lipsync' and p_input ? 'video_asset_id' then
    -- Hedra animates a start image; a video has no place in its request.
    raise exception 'input.video_asset_id: lip-sync of a video is not supported by the lip-sync provider; use image_upload_id'
      using errcode = 'GQ400';
  end if;
  for f in select * from genq_upload_fields(p_kind) loop
    if p_input ->> f.field is null then
      continue;
    end if;
    begin
      v_id := (p_input ->> f.field)::uuid;
    exception when invalid_text_representation then
      raise exception 'input.%: not an upload id', f.field using errcode = 'GQ400';
    end;
    select * into u from uploads where id = v_id and user_id = p_user for share;
    if not found then
      raise exception 'input.%: no such upload', f.field using errcode = 'GQ400';
    end if;
    if u.deleted_at is not null then
      raise exception 'input.%: the upload has expired; upload it again', f.field
        using errcode = 'GQ400';
    end if;
    if split_part(u.content_type, '/', 1) <> f.media then
      raise exception 'input.%: the upload is %, an % is needed', f.field, u.content_type, f.media
        using errcode = 'GQ400';
    end if;
    if p_job is not null then
      insert into job_uploads (job_id, role, upload_id) values (p_job, f.role, v_id);
    end if;
  end loop;
end $$;

-- genq_plan_steps now says each step's stage.
drop function genq_plan_steps(text, jsonb);
create function genq_plan_steps(p_kind text, p_input jsonb)
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

-- genq_submit_job: as in 0003, plus stages and upload links.
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

-- genq_job_json: steps carry their stage and progress; output.assets lists
-- the job's stored results, each with the URL the owner downloads it from.
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

-- genq_claim_job: as in 0003; each step also says its stage and step_kind,
-- and the uploads the job uses come along (role → id, content type, key).
drop function genq_claim_job(uuid, text, int);
create function genq_claim_job(p_job uuid, p_worker text, p_lease_s int)
returns table (epoch bigint, kind text, input jsonb, attempt int, max_attempts int,
               steps jsonb, uploads jsonb)
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

-- genq_step_progress(job, epoch, step, progress) → true when recorded.
-- Fenced like a checkpoint; a step that is not running is left alone.
create or replace function genq_step_progress(p_job uuid, p_epoch bigint, p_step text,
                                              p_progress real)
returns boolean
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return false;
  end if;
  update job_steps set progress = least(greatest(p_progress, 0), 1)
  where job_id = p_job and name = p_step and status = 'running'
    and progress is distinct from least(greatest(p_progress, 0), 1);
  return true;
end $$;

-- genq_step_succeed(job, epoch, step, output, job_output, asset): as in 0003,
-- and when asset is given ({id, kind, content_type, bytes, sha256,
-- storage_key}: the bytes are already stored) the asset row is recorded in
-- the same transaction as the capture.
drop function genq_step_succeed(uuid, bigint, text, jsonb, jsonb);
create function genq_step_succeed(p_job uuid, p_epoch bigint, p_step text, p_output jsonb,
                                  p_job_output jsonb, p_asset jsonb)
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

-- genq_asset_get(user, asset) → (content_type, bytes, storage_key) of the
-- user's asset; no row for anyone else's (the API answers 404).
create or replace function genq_asset_get(p_user text, p_asset uuid)
returns table (content_type text, bytes bigint, storage_key text)
language sql stable as $$
  select a.content_type, a.bytes, a.storage_key from assets a
  where a.id = p_asset and a.user_id = p_user
$$;

-- genq_uploads_sweep(limit) → uploads whose bytes may go now, marked
-- deleted: never used and 24 h old, or used only by terminal jobs. Each
-- candidate is locked and re-checked in a statement of its own, so a submit
-- that linked it meanwhile (holding it FOR SHARE until its commit) wins.
create or replace function genq_uploads_sweep(p_limit int)
returns table (id uuid, storage_key text)
language plpgsql as $$
#variable_conflict use_column
declare
  c record;
  u uploads;
begin
  for c in
    select up.id from uploads up
    where up.deleted_at is null
      and (exists (select 1 from job_uploads ju where ju.upload_id = up.id)
           or up.expires_at < now())
      and not exists (select 1 from job_uploads ju join jobs j on j.id = ju.job_id
                      where ju.upload_id = up.id and j.status in ('queued', 'running'))
    order by up.created_at
    limit greatest(coalesce(p_limit, 100), 1)
  loop
    select * into u from uploads up where up.id = c.id and up.deleted_at is null
    for update skip locked;
    continue when not found;
    continue when exists (select 1 from job_uploads ju join jobs j on j.id = ju.job_id
                          where ju.upload_id = u.id and j.status in ('queued', 'running'));
    continue when not exists (select 1 from job_uploads ju where ju.upload_id = u.id)
                  and u.expires_at >= now();
    update uploads set deleted_at = now() where uploads.id = u.id;
    id := u.id; storage_key := u.storage_key;
    return next;
    p_limit := coalesce(p_limit, 100) - 1;
    exit when p_limit <= 0;
  end loop;
end $$;

-- genq_job_handback(job, epoch) → true when the job is queued again at once:
-- a worker shutting down hands back what it could not finish within its
-- grace period. The attempt is given back too (the job did not fail), its
-- steps keep their checkpoints, and the relay dispatches it to another
-- worker, which resumes them. False when fenced out (nothing changed).
create or replace function genq_job_handback(p_job uuid, p_epoch bigint) returns boolean
language plpgsql as $$
declare
  j jobs;
begin
  j := genq_job_fenced(p_job, p_epoch, false);
  if j.id is null then
    return false;
  end if;
  update jobs
  set status = 'queued', attempt = greatest(attempt - 1, 0), lease_until = null,
      worker_id = null, dispatched = false, next_attempt_at = null
  where id = p_job;
  return true;
end $$;

-- Provider work nobody will use: a failed or canceled job's steps that had
-- started a generation. The worker that ends the job deletes them at once;
-- the sweeper catches the rest (a job canceled while queued between attempts, one
-- failed by a reclaim, a worker that stopped first). Each is handed out
-- once.
alter table job_steps add column ref_released boolean not null default false;
create index job_steps_unreleased on job_steps (job_id)
  where provider_ref is not null and not ref_released and status in ('canceled', 'failed');

-- genq_refs_to_release(job, limit) → (job, step, provider, provider_ref),
-- marked released: the unused generations of one job that ended failed or
-- canceled (its worker, at once), or with job NULL those of any such job
-- that ended over a minute ago (the sweeper, after the worker had its turn).
create or replace function genq_refs_to_release(p_job uuid, p_limit int)
returns table (job_id uuid, step text, provider text, provider_ref text)
language sql as $$
  update job_steps s set ref_released = true
  from (select s2.job_id, s2.name from job_steps s2 join jobs j on j.id = s2.job_id
        where s2.provider_ref is not null and not s2.ref_released
          and s2.status in ('canceled', 'failed') and s2.provider_ref not like 'retry:%'
          and j.status in ('failed', 'canceled')
          and (s2.job_id = p_job
               or (p_job is null and j.finished_at < now() - interval '1 minute'))
        limit greatest(coalesce(p_limit, 100), 1)
        for update of s2 skip locked) c
  where s.job_id = c.job_id and s.name = c.name
  returning s.job_id, s.name, s.provider, s.provider_ref
$$;

-- genq_job_requeue(job, epoch, delay_ms, code, message, step): as the
-- five-argument form, and when the attempts are used up the failing step
-- (not just the job) carries the error.
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
    return 'failed';
  end if;
  return genq_job_requeue(p_job, p_epoch, p_delay_ms, p_code, p_message);
end $$;
