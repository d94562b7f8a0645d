-- Uploads and assets (SPEC §3, §4, §7): media users upload for generation,
-- the results genq stores, the sweep of uploads nobody needs any more, and
-- the provider generations that ended jobs left behind.

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
-- upload JSON. The bytes are already stored under key. GQ429 (nothing
-- written) when the upload would pass the plan's daily limits
-- (genq_limits_upload_take, limits.sql); GQ401 when the account is deleted
-- (DELETE /v1/me, privacy.sql).
create or replace function genq_upload_create(p_user text, p_id uuid, p_type text, p_bytes bigint,
                                              p_sha256 text, p_key text)
returns jsonb
language plpgsql as $$
declare
  u uploads;
begin
  perform genq_account_ensure(p_user);
  perform genq_account_refuse_deleted(p_user); -- GQ401 (privacy.sql)
  perform genq_limits_upload_take(p_user, p_bytes);
  insert into uploads (id, user_id, content_type, bytes, sha256, storage_key)
  values (p_id, p_user, p_type, p_bytes, p_sha256, p_key)
  returning * into u;
  return jsonb_build_object('id', u.id, 'content_type', u.content_type, 'bytes', u.bytes,
                            'sha256', u.sha256, 'expires_at', genq_ts(u.expires_at));
end $$;

-- genq_job_uploads_check(user, kind, input) → the uploads a job of that
-- kind with that input links: one row (field, role, upload_id, NULL) per
-- upload field the input fills, or, at the first field that is refused,
-- one row (field, NULL, NULL, what is wrong) and no more. Internal to
-- submit (genq_submit_jobs, jobs.sql), which answers a refusal as GQ400
-- naming the field ('input.' || field) with the message. Every upload must
-- be the user's, still stored, and of the right media class; the ones
-- answered are locked (FOR SHARE) so the sweeper cannot delete one between
-- this check and the commit. Raises nothing, so one refused submission of
-- a batch needs no subtransaction.
create or replace function genq_job_uploads_check(p_user text, p_kind text, p_input jsonb)
returns table (field text, role text, upload_id uuid, problem text)
language plpgsql as $$
#variable_conflict use_column
declare
  f record;
  v_text text;
  u uploads;
begin
  if p_kind = 'lipsync' and p_input ? 'video_asset_id' then
    -- Hedra animates a start image; a video has no place in its request.
    field := 'video_asset_id';
    problem := 'input.video_asset_id: lip-sync of a video is not supported by the lip-sync provider; use image_upload_id';
    return next;
    return;
  end if;
  for f in select * from genq_upload_fields(p_kind) loop
    v_text := p_input ->> f.field;
    continue when v_text is null;
    field := f.field;
    if v_text !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      problem := format('input.%s: not an upload id', f.field);
      return next;
      return;
    end if;
    select * into u from uploads up where up.id = v_text::uuid and up.user_id = p_user for share;
    if not found then
      problem := format('input.%s: no such upload', f.field);
    elsif u.deleted_at is not null then
      problem := format('input.%s: the upload has expired; upload it again', f.field);
    elsif split_part(u.content_type, '/', 1) <> f.media then
      problem := format('input.%s: the upload is %s, an %s is needed', f.field, u.content_type,
                        f.media);
    end if;
    if problem is not null then
      return next;
      return;
    end if;
    role := f.role;
    upload_id := u.id;
    return next;
  end loop;
end $$;

-- genq_asset_get(user, asset) → (content_type, bytes, storage_key) of the
-- user's asset; no row for anyone else's (the API answers 404).
create or replace function genq_asset_get(p_user text, p_asset uuid)
returns table (content_type text, bytes bigint, storage_key text)
language sql stable as $$
  select a.content_type, a.bytes, a.storage_key from assets a
  where a.id = p_asset and a.user_id = p_user
$$;

-- genq_uploads_sweep(now, limit) → uploads whose bytes may go now, marked
-- deleted: never used and 24 h old at now (NULL = now(); genqctl sweep
-- --now moves it forward), or used only by terminal jobs. Each candidate
-- is locked and re-checked in a statement of its own, so a submit that
-- linked it meanwhile (holding it FOR SHARE until its commit) wins.
create or replace function genq_uploads_sweep(p_now timestamptz, p_limit int)
returns table (id uuid, storage_key text)
language plpgsql as $$
#variable_conflict use_column
declare
  c record;
  u uploads;
  v_now timestamptz := coalesce(p_now, now());
begin
  for c in
    select up.id from uploads up
    where up.deleted_at is null
      and (exists (select 1 from job_uploads ju where ju.upload_id = up.id)
           or up.expires_at < v_now)
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
                  and u.expires_at >= v_now;
    update uploads set deleted_at = now() where uploads.id = u.id;
    id := u.id; storage_key := u.storage_key;
    return next;
    p_limit := coalesce(p_limit, 100) - 1;
    exit when p_limit <= 0;
  end loop;
end $$;

-- genq_refs_to_release(job, limit) → (job, step, provider, provider_ref),
-- marked released: the unused generations of one job that ended failed or
-- canceled (its worker, at once), or with job NULL those of any such job
-- that ended over a minute ago (the sweeper, after the worker had its turn).
-- Only Luma's (Hedra has no cancel; a Hedra job is never marked released,
-- so a retry resumes it under its idempotency key instead of paying for a
-- new one), and only a step that captured nothing: deleting stops Luma's
-- work on a generation nobody will use, but Luma refunds only generations
-- that fail (PROVIDERS.md), not deleted ones, so a step whose generation
-- was created before a cancel is charged (genq_job_cancel, jobs.sql) and
-- its generation, paid for, is left alone.
create or replace function genq_refs_to_release(p_job uuid, p_limit int)
returns table (job_id uuid, step text, provider text, provider_ref text)
language sql as $$
  update job_steps s set ref_released = true
  from (select s2.job_id, s2.name from job_steps s2 join jobs j on j.id = s2.job_id
        where s2.provider_ref is not null and not s2.ref_released
          and s2.status in ('canceled', 'failed') and s2.provider = 'luma' and s2.captured = 0
          and j.status in ('failed', 'canceled')
          and (s2.job_id = p_job
               or (p_job is null and j.finished_at < now() - interval '1 minute'))
        limit greatest(coalesce(p_limit, 100), 1)
        for update of s2 skip locked) c
  where s.job_id = c.job_id and s.name = c.name
  returning s.job_id, s.name, s.provider, s.provider_ref
$$;
