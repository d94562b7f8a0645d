-- Completion webhooks (SPEC §4; docs/webhooks.md): the outbox trigger, the
-- workers' claim and record, the signing secrets, replay and the listing.
-- Tables: schema/0014_webhooks.sql.

-- genq_webhook_deadline(t) → until when a delivery created (or replayed) at
-- t is retried: 24 hours.
create or replace function genq_webhook_deadline(p_t timestamptz) returns timestamptz
language sql immutable as $$
  select p_t + interval '24 hours'
$$;

-- genq_webhook_msg_id(id) → the delivery's webhook-id header: "msg_" and
-- the id's 32 hex digits. The same on every attempt and replay, so that a
-- receiver drops duplicates by it.
create or replace function genq_webhook_msg_id(p_id uuid) returns text
language sql immutable as $$
  select 'msg_' || replace(p_id::text, '-', '')
$$;

-- The outbox: a job with a webhook_url that moves to succeeded, failed or
-- canceled gets one delivery row, written in the transaction that moved
-- it, whichever function did (a worker's success or failure, a cancel from
-- the API or genqctl, a lapsed job gone dead). The trigger is deferred to
-- the commit, so the payload's job object is the one the transaction
-- leaves (a cancel releases the hold after its status moves). Its WHEN is
-- checked at the UPDATE itself: a job without a webhook_url, and any move
-- that is not into a terminal status, queues nothing.
create or replace function genq_jobs_webhook() returns trigger
language plpgsql as $$
declare
  v_event text := 'job.' || new.status;
begin
  insert into webhook_deliveries (id, job_id, user_id, event, url, payload, deadline)
  values (genq_uuid7(), new.id, new.user_id, v_event, new.webhook_url,
          jsonb_build_object('type', v_event, 'timestamp', genq_ts(clock_timestamp()),
                             'data', genq_job_json(new.id))::text,
          genq_webhook_deadline(now()));
  return null;
end $$;

-- A constraint trigger (the only kind that can be deferred) has no CREATE
-- OR REPLACE: it is made again whole on every migrate.
drop trigger if exists jobs_webhook on jobs;
create constraint trigger jobs_webhook after update of status on jobs
  deferrable initially deferred
  for each row when (new.webhook_url is not null and new.status is distinct from old.status
                     and new.status in ('succeeded', 'failed', 'canceled'))
  execute function genq_jobs_webhook();

-- genq_webhook_signing_secrets(user, now) → the user's secrets that sign at
-- now, newest first, each "<key_id>:<sealed>" (common/secret_box.h opens
-- them): the current one and those rotated away less than their grace ago.
create or replace function genq_webhook_signing_secrets(p_user text,
                                                        p_now timestamptz default now())
returns text[]
language sql stable as $$
  select coalesce(array_agg(s.key_id || ':' || s.sealed order by s.created_at desc, s.id desc),
                  '{}')
  from webhook_secrets s
  where s.user_id = p_user and (s.expires_at is null or s.expires_at > p_now)
$$;

-- genq_webhooks_claim(worker, limit, lease_s, now) → up to limit deliveries
-- that are due, oldest due first, each now the caller's: state delivering,
-- attempt counted, its lease (next_attempt_at) lease_s from now. Due: a
-- pending one whose next attempt has come, or a delivering one whose
-- claimer's lease lapsed (a dead worker's claims come back). SKIP LOCKED:
-- workers claiming at once take different rows. attempt is the number of
-- this attempt, which genq_webhook_record is fenced by; secrets as
-- genq_webhook_signing_secrets (empty: the user has none yet).
create or replace function genq_webhooks_claim(p_worker text, p_limit int, p_lease_s int,
                                               p_now timestamptz default now())
returns table (id uuid, webhook_id text, job_id uuid, user_id text, event text, url text,
               payload text, attempt int, secrets text[])
language plpgsql as $$
#variable_conflict use_column
begin
  return query
  with due as (
    select d.id from webhook_deliveries d
    where d.state in ('pending', 'delivering') and d.next_attempt_at <= p_now
    order by d.next_attempt_at
    limit greatest(coalesce(p_limit, 0), 0)
    for update skip locked),
  claimed as (
    update webhook_deliveries d
    set state = 'delivering', attempts = d.attempts + 1, last_attempt_at = p_now,
        next_attempt_at = p_now + make_interval(secs => p_lease_s), worker_id = p_worker
    from due where d.id = due.id
    returning d.id, d.job_id, d.user_id, d.event, d.url, d.payload, d.attempts)
  select c.id, genq_webhook_msg_id(c.id), c.job_id, c.user_id, c.event, c.url, c.payload,
         c.attempts, genq_webhook_signing_secrets(c.user_id, p_now)
  from claimed c;
end $$;

-- genq_webhook_backoff_ms(attempts, base_ms) → the wait after failed attempt
-- number `attempts` before the next, before jitter: base × 1, 6, 24, 120,
-- 360, then 720 (with the default 5 s: 5 s, 30 s, 2 min, 10 min, 30 min,
-- then every hour until the deadline).
create or replace function genq_webhook_backoff_ms(p_attempts int, p_base_ms int) returns bigint
language sql immutable as $$
  select (array[1, 6, 24, 120, 360, 720])[least(greatest(p_attempts, 1), 6)]::bigint * p_base_ms
$$;

-- genq_webhook_record(id, attempt, outcome, status, error, base_ms, now) →
-- the delivery's state after the attempt, or NULL when the caller no longer
-- holds it (its lease lapsed and another claim counted a later attempt, or
-- a replay came between): nothing changes then. outcome:
--   delivered  the receiver answered 2xx
--   retry      anything else worth another try (an error, a timeout, a
--              status other than 2xx and 410): pending again after
--              genq_webhook_backoff_ms ±20%, or failed when that passes the
--              deadline
--   gone       the receiver answered 410 Gone: failed, no more attempts
--   refused    the URL or its resolved address is not allowed: refused
-- status is the HTTP status (NULL when there was none); error says why it
-- was not delivered (never a secret).
create or replace function genq_webhook_record(p_id uuid, p_attempt int, p_outcome text,
                                               p_status int, p_error text, p_base_ms int,
                                               p_now timestamptz default now())
returns text
language plpgsql as $$
declare
  d webhook_deliveries;
  v_next timestamptz;
  v_state text;
begin
  if p_outcome is null or p_outcome not in ('delivered', 'retry', 'gone', 'refused') then
    raise exception 'unknown webhook outcome %', p_outcome using errcode = '22023';
  end if;
  select * into d from webhook_deliveries where id = p_id for update;
  if not found or d.state <> 'delivering' or d.attempts <> p_attempt then
    return null;
  end if;
  if p_outcome = 'retry' then
    v_next := p_now + make_interval(
      secs => genq_webhook_backoff_ms(d.attempts, p_base_ms) * (0.8 + 0.4 * random()) / 1000.0);
    v_state := case when v_next > d.deadline then 'failed' else 'pending' end;
  else
    v_state := case p_outcome when 'delivered' then 'delivered' when 'gone' then 'failed'
                              else 'refused' end;
  end if;
  update webhook_deliveries
  set state = v_state, next_attempt_at = coalesce(v_next, p_now), last_status = p_status,
      last_error = case when p_outcome = 'delivered' then null else left(p_error, 500) end,
      delivered_at = case when p_outcome = 'delivered' then p_now end, worker_id = null
  where id = p_id;
  return v_state;
end $$;

-- genq_webhook_release(id, attempt) → true when the caller's claim was
-- handed back unattempted (a worker stopping before it sent anything): due
-- again at once, the attempt not counted. False when it no longer held it.
create or replace function genq_webhook_release(p_id uuid, p_attempt int) returns boolean
language plpgsql as $$
begin
  update webhook_deliveries
  set state = 'pending', attempts = attempts - 1, next_attempt_at = now(), worker_id = null
  where id = p_id and state = 'delivering' and attempts = p_attempt and attempts > 0;
  return found;
end $$;

-- genq_webhook_secret_ensure(user, key_id, sealed) → the user's signing
-- secrets (as genq_webhook_signing_secrets), after storing this sealed one
-- as the current secret if the user had none; a concurrent first store
-- wins and this one is dropped.
create or replace function genq_webhook_secret_ensure(p_user text, p_key_id text, p_sealed text)
returns text[]
language plpgsql as $$
begin
  insert into webhook_secrets (user_id, key_id, sealed) values (p_user, p_key_id, p_sealed)
  on conflict (user_id) where expires_at is null do nothing;
  return genq_webhook_signing_secrets(p_user);
end $$;

-- genq_webhook_secret_rotate(user, key_id, sealed, grace_s, now) → until when
-- the secret it replaces goes on signing beside the new one (now + grace_s),
-- or NULL when the user had none. The new sealed secret becomes current;
-- the old ones sign until now + grace_s at the latest (a grace of 0 revokes
-- them: a leaked secret's answer); secrets whose grace is over are deleted.
-- GQ404 for a user genq has not seen.
create or replace function genq_webhook_secret_rotate(p_user text, p_key_id text, p_sealed text,
                                                      p_grace_s int default 86400,
                                                      p_now timestamptz default now())
returns timestamptz
language plpgsql as $$
declare
  v_until timestamptz;
begin
  perform 1 from accounts where user_id = p_user for update;
  if not found then
    raise exception 'no such user' using errcode = 'GQ404';
  end if;
  delete from webhook_secrets where user_id = p_user and expires_at <= p_now;
  v_until := p_now + make_interval(secs => p_grace_s);
  if not exists (select 1 from webhook_secrets where user_id = p_user and expires_at is null) then
    v_until := null;
  end if;
  -- the current one and any still in an earlier grace stop by then
  update webhook_secrets set expires_at = least(coalesce(expires_at, 'infinity'), p_now + make_interval(secs => p_grace_s))
  where user_id = p_user and (expires_at is null or expires_at > p_now);
  insert into webhook_secrets (user_id, key_id, sealed, created_at)
  values (p_user, p_key_id, p_sealed, p_now);
  return v_until;
end $$;

-- genq_webhook_secrets_to_rekey(key_id) → every stored secret sealed under
-- another key than key_id (genqctl secrets rekey opens and seals them again).
create or replace function genq_webhook_secrets_to_rekey(p_key_id text)
returns table (id bigint, user_id text, key_id text, sealed text)
language sql stable as $$
  select s.id, s.user_id, s.key_id, s.sealed from webhook_secrets s
  where s.key_id <> p_key_id order by s.id
$$;

-- genq_webhook_secret_reseal(id, old_key_id, key_id, sealed) → true when
-- secret id, still sealed under old_key_id, now holds sealed under key_id.
create or replace function genq_webhook_secret_reseal(p_id bigint, p_old_key_id text,
                                                      p_key_id text, p_sealed text)
returns boolean
language plpgsql as $$
begin
  update webhook_secrets set key_id = p_key_id, sealed = p_sealed
  where id = p_id and key_id = p_old_key_id;
  return found;
end $$;

-- genq_webhook_json(delivery) → a delivery as genqctl shows it.
create or replace function genq_webhook_json(d webhook_deliveries) returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'id', d.id, 'webhook_id', genq_webhook_msg_id(d.id), 'job_id', d.job_id,
    'user', d.user_id, 'event', d.event, 'url', d.url, 'state', d.state,
    'attempts', d.attempts, 'last_status', d.last_status, 'last_error', d.last_error,
    'next_attempt_at',
      case when d.state in ('pending', 'delivering') then genq_ts(d.next_attempt_at) end,
    'created_at', genq_ts(d.created_at), 'last_attempt_at', genq_ts(d.last_attempt_at),
    'delivered_at', genq_ts(d.delivered_at), 'deadline', genq_ts(d.deadline))
$$;

-- genq_webhooks_list(job) → the job's deliveries, oldest first, as a JSON
-- array of genq_webhook_json.
create or replace function genq_webhooks_list(p_job uuid) returns jsonb
language sql stable as $$
  select coalesce(jsonb_agg(genq_webhook_json(d) order by d.created_at, d.id), '[]'::jsonb)
  from webhook_deliveries d where d.job_id = p_job
$$;

-- genq_webhook_replay(id, now) → the delivery, queued again: pending, due at
-- once, its attempts and deadline starting over, its webhook-id the same.
-- GQ404 when there is no such delivery; GQ409 while it is being delivered.
create or replace function genq_webhook_replay(p_id uuid, p_now timestamptz default now())
returns jsonb
language plpgsql as $$
declare
  d webhook_deliveries;
begin
  select * into d from webhook_deliveries where id = p_id for update;
  if not found then
    raise exception 'no such delivery' using errcode = 'GQ404';
  end if;
  if d.state = 'delivering' then
    raise exception 'the delivery is being attempted now' using errcode = 'GQ409';
  end if;
  update webhook_deliveries
  set state = 'pending', attempts = 0, next_attempt_at = p_now,
      deadline = genq_webhook_deadline(p_now), delivered_at = null, worker_id = null
  where id = p_id
  returning * into d;
  return genq_webhook_json(d);
end $$;
