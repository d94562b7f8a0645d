-- 0018_limits: the state of the per-user usage limits (SPEC §4) whose
-- values live in plans (0015_plans): the submission token bucket and the
-- uploads of each UTC day. The unfinished jobs need no state of their own:
-- they are counted from jobs (jobs_user_status, 0010). Functions:
-- schema/functions/limits.sql; docs/limits.md.
--
-- 'unlimited': a plan with no limit at all (every value 0), for operators'
-- own users, benchmarks and tests that submit without pause.
insert into plans (plan, max_unfinished_jobs, submit_per_minute, submit_burst,
                   upload_bytes_per_day, uploads_per_day)
values ('unlimited', 0, 0, 0, 0, 0)
on conflict (plan) do nothing;

-- submit_buckets: a user's submission token bucket as it was at `at` (its
-- tokens then; it refills at the plan's submit_per_minute up to its
-- submit_burst). No row: a full bucket. Written only by the submit
-- transaction, under the user's account lock, so reads and writes of one
-- bucket are serialized across every API process.
create table submit_buckets (
  user_id text primary key references accounts on delete cascade,
  tokens  double precision not null check (tokens >= 0),
  at      timestamptz not null
);

-- upload_days: what a user uploaded on one UTC day, counted when each
-- upload is recorded (genq_upload_create), so concurrent uploads cannot
-- pass the plan's upload_bytes_per_day and uploads_per_day together.
create table upload_days (
  user_id text not null references accounts on delete cascade,
  day     date not null,
  bytes   bigint not null check (bytes >= 0),
  uploads int not null check (uploads >= 0),
  primary key (user_id, day)
);
