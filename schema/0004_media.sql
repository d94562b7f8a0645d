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

-- Provider work nobody will use: a failed or canceled job's steps that had
-- started a generation. The worker that ends the job deletes them at once;
-- the sweeper catches the rest (a job canceled while queued between attempts, one
-- failed by a reclaim, a worker that stopped first). Each is handed out
-- once.
alter table job_steps add column ref_released boolean not null default false;
create index job_steps_unreleased on job_steps (job_id)
  where provider_ref is not null and not ref_released and status in ('canceled', 'failed');

