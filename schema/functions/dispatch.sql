-- Dispatch (SPEC §5, docs/queue.md): which committed jobs the relay must send
-- to Redis. Redis only carries "look at job X" messages; PostgreSQL
-- remembers which jobs were sent (jobs.dispatched). If Redis loses its data
-- (a restart without persistence, FLUSHALL), those marks lie: the messages
-- are gone. Redis keeps a random incarnation token (genq:{q}:incarnation,
-- set once with SET NX by the relay); the relay pairs it with Redis's
-- run_id, which changes at every restart. PostgreSQL remembers the last pair
-- it saw (dispatch_state). A relay scan that brings a different one clears
-- every unfinished job's mark in the same transaction, so the scan itself
-- sends them all again. Sending a job twice is harmless: only one claim can
-- win.

-- genq_mark_dispatched(ids, gens) → how many of them are now marked as
-- pushed to Redis: queued jobs, and running jobs whose lease lapsed (re-sent
-- so that someone reclaims them). genq_undispatched skips marked jobs, so a
-- job is re-sent once per change, not on every scan. A mark names the
-- dispatch generation the job had when it was sent (jobs.dispatch_gen): a
-- claim, a renewal, a requeue, a hand-back, a retry or a reset moves it on
-- and clears the mark, so a mark that arrives after any of them matches
-- nothing and cannot hide the job from the relay. Rows are locked in id
-- order (as genq_jobs_renew and the reset in genq_relay_scan lock them).
create or replace function genq_mark_dispatched(p_ids uuid[], p_gens bigint[]) returns int
language plpgsql as $$
declare
  n int;
begin
  with sent as (
    select j.id from jobs j join unnest(p_ids, p_gens) as m (id, gen)
      on j.id = m.id and j.dispatch_gen = m.gen
    where not j.dispatched
      and (j.status = 'queued' or (j.status = 'running' and j.lease_until < now()))
    order by j.id
    for update of j
  )
  update jobs j set dispatched = true from sent where j.id = sent.id;
  get diagnostics n = row_count;
  return n;
end $$;

-- genq_undispatched(min_age_ms, limit) → the jobs the relay must (re)send to
-- Redis, oldest first, with the generation to mark them with: queued jobs never
-- pushed (or requeued since), older than min_age_ms and due; and running
-- jobs whose lease has lapsed (their worker died or was cut off; SPEC §5),
-- not yet re-sent since.
create or replace function genq_undispatched(p_min_age_ms int, p_limit int)
returns table (id uuid, kind text, gen bigint)
language plpgsql stable as $$
#variable_conflict use_column
begin
  return query
  select u.id, u.kind, u.dispatch_gen from (
    (select j.id, j.kind, j.dispatch_gen, j.created_at from jobs j
     where j.status = 'queued' and not j.dispatched
       and j.created_at < now() - make_interval(secs => coalesce(p_min_age_ms, 0) / 1000.0)
       and (j.next_attempt_at is null or j.next_attempt_at <= now())
     order by j.created_at
     limit greatest(coalesce(p_limit, 100), 1))
    union all
    (select j.id, j.kind, j.dispatch_gen, j.created_at from jobs j
     where j.status = 'running' and j.lease_until < now() and not j.dispatched
     order by j.lease_until
     limit greatest(coalesce(p_limit, 100), 1))
  ) u
  order by u.created_at
  limit greatest(coalesce(p_limit, 100), 1);
end $$;

-- genq_relay_scan(min_age_ms, limit, incarnation) → what genq_undispatched
-- returns, after clearing the dispatch marks of every queued and running job
-- when Redis's incarnation token is not the one PostgreSQL saw last (Redis
-- lost its data since: the marked messages are gone). The first scan of a
-- new installation records the token the same way (nothing is marked yet).
create or replace function genq_relay_scan(p_min_age_ms int, p_limit int, p_incarnation text)
returns table (id uuid, kind text, gen bigint)
language plpgsql as $$
#variable_conflict use_column
declare
  n bigint;
begin
  if p_incarnation is not null and exists (
      select 1 from dispatch_state s where s.redis_incarnation is distinct from p_incarnation) then
    update dispatch_state s set redis_incarnation = p_incarnation
    where s.redis_incarnation is distinct from p_incarnation;
    if found then
      with marked as (
        select j.id from jobs j where j.status in ('queued', 'running') and j.dispatched
        order by j.id
        for update
      )
      update jobs j set dispatched = false, dispatch_gen = j.dispatch_gen + 1
      from marked where j.id = marked.id;
      get diagnostics n = row_count;
      update dispatch_state s set reset_at = now(), reset_jobs = s.reset_jobs + n;
      raise log 'genq: Redis incarnation changed to %, % job(s) to dispatch again', p_incarnation, n;
    end if;
  end if;
  return query select * from genq_undispatched(p_min_age_ms, p_limit);
end $$;
