-- 0024_admin_actions: the audit of operators' actions (docs/admin.md) and
-- the index the admin listing of ended jobs reads. Functions:
-- schema/functions/admin.sql.
--
-- One row per action that changed something — a job retried or canceled,
-- credits granted, a worker made quiet or stopped — written in the same
-- transaction as the change it records (a worker command's effect is in
-- Redis: its row follows Redis's answer). actor_kind says who: 'user' (an
-- admin's Clerk session; actor_id is the user id), 'api_key' (an admin API
-- key; actor_id is the key's id, actor_user its user) or 'genqctl'
-- (actor_id is the operating system user and host). request_id is the
-- X-Request-Id of the HTTP request (null from genqctl).
create table admin_actions (
  id          bigint generated always as identity primary key,
  at          timestamptz not null default now(),
  actor_kind  text not null check (actor_kind in ('user', 'api_key', 'genqctl')),
  actor_id    text not null check (length(actor_id) between 1 and 300),
  actor_user  text,
  action      text not null check (action in ('job.retry', 'job.cancel', 'credits.grant',
                                              'worker.quiet', 'worker.stop')),
  target      text not null check (length(target) between 1 and 300),
  request_id  text check (length(request_id) <= 64),
  detail      jsonb not null default '{}'::jsonb
);
create index admin_actions_target on admin_actions (target, id desc);
-- a grant's ledger key names its action: a replay answers with it
create unique index admin_actions_grant_key on admin_actions ((detail ->> 'ledger_key'))
  where action = 'credits.grant';

-- Failed and canceled jobs, most recently ended first: GET /v1/admin/jobs
-- and the retry by filter read them from here, not from the whole table
-- (written only when a job ends that way). The dead ones come from
-- jobs_dead (0006).
create index jobs_ended_badly on jobs (finished_at desc, id desc)
  where status in ('failed', 'canceled');
