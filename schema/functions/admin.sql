-- admin.sql: what operators do through /v1/admin (api/admin*.c) and
-- genqctl, each change recorded in admin_actions (0024_admin_actions.sql)
-- in the same transaction as the change itself (docs/admin.md).
--
-- The actor is a JSON object: {"kind": "user", "id": <user id>},
-- {"kind": "api_key", "id": <key id>, "user": <its user>} or
-- {"kind": "genqctl", "id": "<os user>@<host>"}. Every function here is
-- plpgsql: genq_ts (util.sql) and the other files' functions are applied
-- after this one.

-- genq_admin_action_json(row) → the action as GET /v1/admin/actions shows
-- it.
create or replace function genq_admin_action_json(a admin_actions) returns jsonb
language plpgsql stable as $$
begin
  return jsonb_build_object(
    'id', a.id, 'at', genq_ts(a.at),
    'actor', jsonb_strip_nulls(jsonb_build_object('kind', a.actor_kind, 'id', a.actor_id,
                                                  'user', a.actor_user)),
    'action', a.action, 'target', a.target, 'request_id', a.request_id, 'detail', a.detail);
end $$;

-- genq_admin_record(actor, action, target, request_id, detail) → the row
-- written, as genq_admin_action_json. Internal: the caller has just made
-- the change, in this transaction. A malformed actor is 22023.
create or replace function genq_admin_record(p_actor jsonb, p_action text, p_target text,
                                             p_request_id text, p_detail jsonb)
returns jsonb
language plpgsql as $$
declare
  a admin_actions;
begin
  if p_actor is null or jsonb_typeof(p_actor) <> 'object'
     or coalesce(p_actor ->> 'kind', '') not in ('user', 'api_key', 'genqctl')
     or coalesce(p_actor ->> 'id', '') = '' then
    raise exception 'admin actor must be {"kind": "user"|"api_key"|"genqctl", "id": ...}'
      using errcode = '22023';
  end if;
  insert into admin_actions (actor_kind, actor_id, actor_user, action, target, request_id, detail)
  values (p_actor ->> 'kind', p_actor ->> 'id', p_actor ->> 'user', p_action, p_target,
          nullif(p_request_id, ''), coalesce(p_detail, '{}'::jsonb))
  returning * into a;
  return genq_admin_action_json(a);
end $$;

-- genq_admin_job_row(job) → a job as the admin listings show it: who it is
-- for, where it stands, and its last error (not its input or output).
create or replace function genq_admin_job_row(j jobs) returns jsonb
language plpgsql stable as $$
begin
  return jsonb_build_object(
    'id', j.id, 'user_id', j.user_id, 'kind', j.kind, 'status', j.status,
    'attempt', j.attempt, 'max_attempts', j.max_attempts, 'retries', j.retries,
    'created_at', genq_ts(j.created_at), 'started_at', genq_ts(j.started_at),
    'finished_at', genq_ts(j.finished_at), 'dead_at', genq_ts(j.dead_at),
    'next_attempt_at', case when j.status = 'queued' and j.next_attempt_at > now()
                            then genq_ts(j.next_attempt_at) end,
    'worker_id', case when j.status = 'running' then j.worker_id end,
    'price', j.price, 'error', j.error);
end $$;

-- genq_admin_cursor(t, id) → the cursor of a page that ended at that job:
-- "<t in microseconds since the epoch>.<id>" (opaque to clients).
create or replace function genq_admin_cursor(p_t timestamptz, p_id uuid) returns text
language plpgsql immutable as $$
begin
  return (extract(epoch from p_t) * 1000000)::bigint::text || '.' || p_id::text;
end $$;

-- genq_admin_jobs(status, kind, user, since, limit, cursor) → {"data":
-- [genq_admin_job_row...], "next_cursor"}: every user's jobs of one status
-- for operators, newest first. status: 'failed' (dead or not), 'dead' (the
-- dead-letter set), 'canceled' — ordered by when they ended (dead: by
-- dead_at) — or 'queued', 'running' — by when they were created; 'succeeded'
-- is not listed (22023). since: only jobs that ended (were created) at or
-- after it. limit clamped to 1..100 (NULL = 50). cursor: a page's
-- next_cursor (22P02 when malformed). Reads jobs_ended_badly, jobs_dead,
-- jobs_queued_kind or jobs_running_lease (or jobs_user_status with a user).
create or replace function genq_admin_jobs(p_status text, p_kind text, p_user text,
                                           p_since timestamptz, p_limit int, p_cursor text)
returns jsonb
language plpgsql stable
set plan_cache_mode = force_custom_plan as $$
declare
  lim int := least(greatest(coalesce(p_limit, 50), 1), 100);
  st text := coalesce(p_status, 'failed');
  c_t timestamptz;
  c_id uuid;
  rows jsonb[];
  keys text[];
begin
  if st not in ('failed', 'dead', 'canceled', 'queued', 'running') then
    raise exception 'status must be one of failed, dead, canceled, queued, running'
      using errcode = '22023';
  end if;
  if p_cursor is not null then
    if p_cursor !~ '^[0-9]{1,18}\.[0-9a-f-]{36}$' then
      raise exception 'cursor is not a valid cursor' using errcode = '22P02';
    end if;
    c_t := timestamptz 'epoch' + (split_part(p_cursor, '.', 1) || ' microseconds')::interval;
    c_id := split_part(p_cursor, '.', 2)::uuid;
  end if;
  if st = 'dead' then
    select array_agg(genq_admin_job_row(x) order by x.dead_at desc, x.id desc),
           array_agg(genq_admin_cursor(x.dead_at, x.id) order by x.dead_at desc, x.id desc)
    into rows, keys
    from (select j.* from jobs j
          where j.dead_at is not null
            and (p_kind is null or j.kind = p_kind) and (p_user is null or j.user_id = p_user)
            and (p_since is null or j.dead_at >= p_since)
            and (c_t is null or (j.dead_at, j.id) < (c_t, c_id))
          order by j.dead_at desc, j.id desc limit lim + 1) x;
  elsif st in ('failed', 'canceled') then
    select array_agg(genq_admin_job_row(x) order by x.finished_at desc, x.id desc),
           array_agg(genq_admin_cursor(x.finished_at, x.id) order by x.finished_at desc, x.id desc)
    into rows, keys
    from (select j.* from jobs j
          where j.status = st and j.status in ('failed', 'canceled')
            and (p_kind is null or j.kind = p_kind) and (p_user is null or j.user_id = p_user)
            and (p_since is null or j.finished_at >= p_since)
            and (c_t is null or (j.finished_at, j.id) < (c_t, c_id))
          order by j.finished_at desc, j.id desc limit lim + 1) x;
  else
    select array_agg(genq_admin_job_row(x) order by x.created_at desc, x.id desc),
           array_agg(genq_admin_cursor(x.created_at, x.id) order by x.created_at desc, x.id desc)
    into rows, keys
    from (select j.* from jobs j
          where j.status = st
            and (p_kind is null or j.kind = p_kind) and (p_user is null or j.user_id = p_user)
            and (p_since is null or j.created_at >= p_since)
            and (c_t is null or (j.created_at, j.id) < (c_t, c_id))
          order by j.created_at desc, j.id desc limit lim + 1) x;
  end if;
  rows := coalesce(rows, '{}');
  return jsonb_build_object(
    'data', to_jsonb(rows[1:lim]),
    'next_cursor', case when cardinality(rows) > lim then keys[lim] end);
end $$;

-- genq_admin_job_retry(actor, request_id, job, max_attempts, detail) →
-- {"job": <genq_job_json>, "user_id", "kind", "gen" (its dispatch
-- generation, for an immediate dispatch), "action"}: genq_job_retry
-- (dead_letters.sql) and its action row, together; or, when the retry is
-- refused, {"error": {"code", "message"}} and nothing changed: not_found
-- (GQ404), not_failed (GQ409), insufficient_credits (GQ402), inputs_gone
-- (GQ410: an upload it needs was deleted, or the account), invalid_argument
-- (max_attempts outside 1..100). The one place these refusals are named:
-- genqctl and the API read them from here.
create or replace function genq_admin_job_retry(p_actor jsonb, p_request_id text, p_job uuid,
                                                p_max_attempts int, p_detail jsonb default '{}')
returns jsonb
language plpgsql as $$
declare
  v_job jsonb;
  v_action jsonb;
  j jobs;
  v_state text;
  v_msg text;
begin
  begin
    v_job := genq_job_retry(p_job, p_max_attempts);
  exception
    when sqlstate 'GQ404' or sqlstate 'GQ409' or sqlstate 'GQ402' or sqlstate 'GQ410'
         or sqlstate '22023' then
      v_state := sqlstate;
      v_msg := sqlerrm;
  end;
  if v_state is not null then
    return jsonb_build_object('error', jsonb_build_object(
      'code', case v_state when 'GQ404' then 'not_found' when 'GQ409' then 'not_failed'
                           when 'GQ402' then 'insufficient_credits'
                           when 'GQ410' then 'inputs_gone' else 'invalid_argument' end,
      'message', v_msg));
  end if;
  select * into j from jobs where id = p_job;
  v_action := genq_admin_record(p_actor, 'job.retry', p_job::text, p_request_id,
                                coalesce(p_detail, '{}'::jsonb)
                                || jsonb_build_object('user_id', j.user_id, 'kind', j.kind,
                                                      'retry', j.retries,
                                                      'held', j.held,
                                                      'max_attempts', j.max_attempts));
  return jsonb_build_object('job', v_job, 'user_id', j.user_id, 'kind', j.kind,
                            'gen', j.dispatch_gen, 'action', v_action);
end $$;

-- genq_admin_jobs_retry(actor, request_id, status, kind, user, since, max,
-- max_attempts, dry_run) → the retry by filter: the failed jobs of status
-- 'dead' (the dead-letter set, since = dead_at) or 'failed' (dead or not,
-- since = finished_at), of that kind and user (NULL = any), oldest first,
-- at most max (1..1000, else 22023). A dry run changes nothing:
-- {"dry_run": true, "matched", "more", "jobs": [ids]}. Else each match is
-- retried as genq_admin_job_retry retries one (its own action row, detail
-- {"filter": ...}), and {"dry_run": false, "matched", "more", "retried":
-- [{id, user_id, kind, gen}], "not_retried": [{id, user_id, code,
-- message}], "actions": [...]}. more: jobs beyond max matched too (run it
-- again). One transaction; the jobs are locked in id order first, so two
-- retries by filter cannot deadlock on them.
create or replace function genq_admin_jobs_retry(p_actor jsonb, p_request_id text, p_status text,
                                                 p_kind text, p_user text, p_since timestamptz,
                                                 p_max int, p_max_attempts int, p_dry_run boolean)
returns jsonb
language plpgsql as $$
declare
  v_ids uuid[];
  v_users text[];
  v_more boolean;
  v_filter jsonb;
  r jsonb;
  v_retried jsonb := '[]';
  v_refused jsonb := '[]';
  v_actions jsonb := '[]';
begin
  if coalesce(p_status, 'dead') not in ('dead', 'failed') then
    raise exception 'status must be dead or failed' using errcode = '22023';
  end if;
  if p_max is null or p_max < 1 or p_max > 1000 then
    raise exception 'max must be 1..1000' using errcode = '22023';
  end if;
  if coalesce(p_status, 'dead') = 'dead' then
    select array_agg(x.id order by x.dead_at, x.id), array_agg(x.user_id order by x.dead_at, x.id)
    into v_ids, v_users
    from (select j.id, j.user_id, j.dead_at from jobs j
          where j.dead_at is not null
            and (p_kind is null or j.kind = p_kind) and (p_user is null or j.user_id = p_user)
            and (p_since is null or j.dead_at >= p_since)
          order by j.dead_at, j.id limit p_max + 1) x;
  else
    select array_agg(x.id order by x.finished_at, x.id),
           array_agg(x.user_id order by x.finished_at, x.id)
    into v_ids, v_users
    from (select j.id, j.user_id, j.finished_at from jobs j
          where j.status = 'failed' and j.status in ('failed', 'canceled')
            and (p_kind is null or j.kind = p_kind) and (p_user is null or j.user_id = p_user)
            and (p_since is null or j.finished_at >= p_since)
          order by j.finished_at, j.id limit p_max + 1) x;
  end if;
  v_ids := coalesce(v_ids, '{}');
  v_more := cardinality(v_ids) > p_max;
  v_ids := v_ids[1:p_max];
  if p_dry_run then
    return jsonb_build_object('dry_run', true, 'matched', cardinality(v_ids), 'more', v_more,
                              'jobs', to_jsonb(v_ids));
  end if;
  v_filter := jsonb_strip_nulls(jsonb_build_object(
    'status', coalesce(p_status, 'dead'), 'kind', p_kind, 'user_id', p_user,
    'since', genq_ts(p_since), 'max', p_max));
  perform 1 from jobs where id = any(v_ids) order by id for update;
  for i in 1 .. cardinality(v_ids) loop
    r := genq_admin_job_retry(p_actor, p_request_id, v_ids[i], p_max_attempts,
                              jsonb_build_object('filter', v_filter));
    if r ? 'error' then
      v_refused := v_refused || jsonb_build_object('id', v_ids[i], 'user_id', v_users[i],
                                                   'code', r -> 'error' ->> 'code',
                                                   'message', r -> 'error' ->> 'message');
    else
      v_retried := v_retried || jsonb_build_object('id', v_ids[i], 'user_id', v_users[i],
                                                   'kind', r ->> 'kind', 'gen', r -> 'gen');
      v_actions := v_actions || (r -> 'action');
    end if;
  end loop;
  return jsonb_build_object('dry_run', false, 'matched', cardinality(v_ids), 'more', v_more,
                            'retried', v_retried, 'not_retried', v_refused,
                            'actions', v_actions);
end $$;

-- genq_admin_job_cancel(actor, request_id, job) → {"job", "user_id",
-- "canceled" (true when this call canceled it), "action" (null when it had
-- already ended: nothing changed, nothing recorded)}, or NULL when there is
-- no such job. The job is canceled as its user would cancel it
-- (genq_job_cancel, jobs.sql: a step whose paid generation had started is
-- charged, the rest released).
create or replace function genq_admin_job_cancel(p_actor jsonb, p_request_id text, p_job uuid)
returns jsonb
language plpgsql as $$
declare
  j jobs;
  v_job jsonb;
  v_action jsonb;
begin
  select * into j from jobs where id = p_job for update;
  if not found then
    return null;
  end if;
  v_job := genq_job_cancel(j.user_id, p_job);
  if j.status in ('queued', 'running') then
    v_action := genq_admin_record(p_actor, 'job.cancel', p_job::text, p_request_id,
                                  jsonb_build_object('user_id', j.user_id, 'kind', j.kind,
                                                     'was', j.status,
                                                     'captured', (v_job -> 'cost' ->> 'captured')::int,
                                                     'released', (v_job -> 'cost' ->> 'released')::int));
  end if;
  return jsonb_build_object('job', v_job, 'user_id', j.user_id,
                            'canceled', j.status in ('queued', 'running'), 'action', v_action);
end $$;

-- genq_admin_credits_grant(actor, request_id, user, credits, reason,
-- ledger_key) → {"user_id", "granted", "credits": genq_credits(user),
-- "replayed", "action"}: genq_grant (credits.sql) under ledger_key (NULL:
-- a fresh admin:<uuid>, a grant that is never replayed), and its action
-- row. The same ledger_key again for the same user and amount
-- changes nothing and answers replayed true (with the first grant's action
-- when it was recorded); for another user or amount it is GQ409 and
-- nothing changes. credits 1..10^12 and a reason of 1..500 characters, else
-- 22023. Concurrent calls with one key wait for each other.
create or replace function genq_admin_credits_grant(p_actor jsonb, p_request_id text, p_user text,
                                                    p_credits bigint, p_reason text,
                                                    p_ledger_key text)
returns jsonb
language plpgsql as $$
declare
  l ledger;
  a admin_actions;
  v_action jsonb;
begin
  if p_user is null or length(p_user) not between 1 and 255 then
    raise exception 'user_id must be 1 to 255 characters' using errcode = '22023', column = 'user_id';
  end if;
  if p_credits is null or p_credits < 1 or p_credits > 1000000000000 then
    raise exception 'credits must be a whole number from 1 to 1000000000000'
      using errcode = '22023', column = 'credits';
  end if;
  if p_reason is null or length(p_reason) not between 1 and 500 then
    raise exception 'reason must be 1 to 500 characters' using errcode = '22023', column = 'reason';
  end if;
  if p_ledger_key = '' then
    raise exception 'a grant needs a ledger key' using errcode = '22023';
  end if;
  p_ledger_key := coalesce(p_ledger_key, 'admin:' || gen_random_uuid());
  perform pg_advisory_xact_lock(hashtextextended('genq:grant:' || p_ledger_key, 0));
  select * into l from ledger where idem_key = p_ledger_key;
  if found then
    if l.movement <> 'grant' or l.user_id is distinct from p_user
       or l.balance_delta <> p_credits then
      raise exception 'this Idempotency-Key was used for another grant'
        using errcode = 'GQ409';
    end if;
    select * into a from admin_actions
    where action = 'credits.grant' and detail ->> 'ledger_key' = p_ledger_key;
    return jsonb_build_object('user_id', p_user, 'granted', p_credits,
                              'credits', genq_credits(p_user), 'replayed', true,
                              'action', case when a.id is not null
                                             then genq_admin_action_json(a) end);
  end if;
  perform genq_grant(p_user, p_credits, p_ledger_key, p_reason);
  v_action := genq_admin_record(p_actor, 'credits.grant', p_user, p_request_id,
                                jsonb_build_object('credits', p_credits, 'reason', p_reason,
                                                   'ledger_key', p_ledger_key));
  return jsonb_build_object('user_id', p_user, 'granted', p_credits,
                            'credits', genq_credits(p_user), 'replayed', false,
                            'action', v_action);
end $$;

-- genq_admin_worker_command(actor, request_id, worker, command) → the
-- action row of a quiet or stop that Redis took (common/registry.h): the
-- command itself lives in Redis, so its row is written once Redis
-- answered that the worker is live and the command was sent.
create or replace function genq_admin_worker_command(p_actor jsonb, p_request_id text,
                                                     p_worker text, p_command text)
returns jsonb
language plpgsql as $$
begin
  if p_command not in ('quiet', 'stop') then
    raise exception 'command must be quiet or stop' using errcode = '22023';
  end if;
  return genq_admin_record(p_actor, 'worker.' || p_command, p_worker, p_request_id, '{}'::jsonb);
end $$;

-- genq_admin_actions(action, target, actor, limit, cursor) → {"data":
-- [genq_admin_action_json...], "next_cursor"}: the audit, newest first;
-- each filter NULL = any (actor: the actor's id); limit clamped to 1..100
-- (NULL = 50); cursor: ids below it.
create or replace function genq_admin_actions(p_action text, p_target text, p_actor text,
                                              p_limit int, p_cursor bigint)
returns jsonb
language plpgsql stable
set plan_cache_mode = force_custom_plan as $$
declare
  lim int := least(greatest(coalesce(p_limit, 50), 1), 100);
  rows jsonb[];
  ids bigint[];
begin
  select array_agg(genq_admin_action_json(x) order by x.id desc), array_agg(x.id order by x.id desc)
  into rows, ids
  from (select a.* from admin_actions a
        where (p_action is null or a.action = p_action)
          and (p_target is null or a.target = p_target)
          and (p_actor is null or a.actor_id = p_actor)
          and (p_cursor is null or a.id < p_cursor)
        order by a.id desc limit lim + 1) x;
  rows := coalesce(rows, '{}');
  return jsonb_build_object(
    'data', to_jsonb(rows[1:lim]),
    'next_cursor', case when cardinality(rows) > lim then ids[lim]::text end);
end $$;
