-- fleet.sql: what `genqctl status` (docs/fleet.md) and genq-api's GET /metrics
-- (docs/metrics.md) read from PostgreSQL.
-- The workers themselves are in Redis (the registry); this is the queue as
-- PostgreSQL, the truth, has it.

-- genq_fleet_status() → {at, kinds: [{kind, queued, ready, retry_waiting,
-- oldest_ready_at, oldest_age_s, next_retry_at, running, dead}], queued,
-- ready, retry_waiting, running, dead, running_by_worker: [{worker_id,
-- running, lease_until}]}. `genqctl status` and GET /v1/admin/stats (and
-- the dashboard's event stream) read it.
-- Every kind the jobs table allows appears, with zeros when it has no job. ready: queued and due
-- now; retry_waiting: queued with next_attempt_at still ahead (SPEC §4: "a
-- job waiting for a retry is queued"). A ready job has waited since it was
-- submitted or since its retry fell due, whichever is later: oldest_age_s is
-- that of the one waiting longest (null when none is ready). The queued
-- jobs are read through jobs_queued_kind, the running ones through
-- jobs_running_lease, the dead ones (the dead-letter set) through jobs_dead
-- (partial indexes): the work is the size of the queue, of what runs and of
-- the dead-letter set, never of the table. plpgsql: genq_ts is in util.sql,
-- applied after this file.
create or replace function genq_fleet_status() returns jsonb
language plpgsql stable as $$
declare
  v_now timestamptz := now();
  v_out jsonb;
begin
  -- every kind the jobs table allows, in its order: the check constraint
  -- is the vocabulary's one home (test_vocabulary.c holds job.c to it)
  with k (kind, ord) as (
    select x.m[1], x.n
    from pg_constraint c,
         regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g')
           with ordinality as x (m, n)
    where c.conrelid = 'jobs'::regclass and c.contype = 'c'
      and pg_get_constraintdef(c.oid) like '%(kind = ANY%'),
  q as (
    select j.kind,
           count(*) as queued,
           count(*) filter (where j.next_attempt_at is null or j.next_attempt_at <= v_now) as ready,
           count(*) filter (where j.next_attempt_at > v_now) as retry_waiting,
           min(greatest(j.created_at, j.next_attempt_at))
             filter (where j.next_attempt_at is null or j.next_attempt_at <= v_now) as oldest,
           min(j.next_attempt_at) filter (where j.next_attempt_at > v_now) as next_retry
    from jobs j where j.status = 'queued' group by j.kind),
  r as (select j.kind, count(*) as running from jobs j where j.status = 'running' group by j.kind),
  d as (select j.kind, count(*) as dead from jobs j where j.dead_at is not null group by j.kind)
  select jsonb_build_object(
    'at', genq_ts(v_now),
    'kinds', jsonb_agg(jsonb_build_object(
      'kind', k.kind,
      'queued', coalesce(q.queued, 0),
      'ready', coalesce(q.ready, 0),
      'retry_waiting', coalesce(q.retry_waiting, 0),
      'oldest_ready_at', genq_ts(q.oldest),
      'oldest_age_s', round(extract(epoch from v_now - q.oldest)::numeric, 3),
      'next_retry_at', genq_ts(q.next_retry),
      'running', coalesce(r.running, 0),
      'dead', coalesce(d.dead, 0)) order by k.ord),
    'queued', coalesce(sum(q.queued), 0),
    'ready', coalesce(sum(q.ready), 0),
    'retry_waiting', coalesce(sum(q.retry_waiting), 0),
    'running', coalesce(sum(r.running), 0),
    'dead', coalesce(sum(d.dead), 0))
  into v_out
  from k left join q on q.kind = k.kind left join r on r.kind = k.kind
    left join d on d.kind = k.kind;

  return v_out || jsonb_build_object('running_by_worker', coalesce((
    select jsonb_agg(jsonb_build_object('worker_id', w.worker_id, 'running', w.running,
                                        'lease_until', genq_ts(w.lease_until))
                     order by w.worker_id)
    from (select j.worker_id, count(*) as running, max(j.lease_until) as lease_until
          from jobs j where j.status = 'running' and j.worker_id is not null
          group by j.worker_id) w), '[]'::jsonb));
end $$;

-- genq_fleet_metrics() → what genq-api's GET /metrics exports of the fleet
-- (api/metrics.c, docs/metrics.md): genq_fleet_status() without its
-- per-worker list (one definition of the queue per kind), and
--   dead: [{kind, jobs}]             jobs in the dead-letter set, per kind
--                                    that has any
--   leases_lapsed                    running jobs whose lease has lapsed
--                                    (their worker is gone: reclaimed soon)
--   credits_held                     credits the unfinished jobs hold (the
--                                    sum of every account's held, SPEC §6)
--   webhooks: [{state, deliveries}]  webhook deliveries kept, per state
--                                    that has any
-- What it reads: the queue and what runs (partial indexes), the dead-letter
-- set (jobs_dead) and the webhook outbox, which the sweeper keeps to a day
-- past each delivery's deadline; never the whole jobs table or the ledger,
-- so that a scrape costs the size of what is in flight, not of history.
create or replace function genq_fleet_metrics() returns jsonb
language sql stable as $$
  select (genq_fleet_status() - 'running_by_worker') || jsonb_build_object(
    'dead', coalesce((
      select jsonb_agg(jsonb_build_object('kind', d.kind, 'jobs', d.n) order by d.kind)
      from (select j.kind, count(*) as n from jobs j where j.dead_at is not null
            group by j.kind) d), '[]'::jsonb),
    'leases_lapsed', (select count(*) from jobs j
                      where j.status = 'running' and j.lease_until < now()),
    'credits_held', (select coalesce(sum(j.held), 0) from jobs j where j.status = 'queued')
                    + (select coalesce(sum(j.held), 0) from jobs j where j.status = 'running'),
    'webhooks', coalesce((
      select jsonb_agg(jsonb_build_object('state', w.state, 'deliveries', w.n) order by w.state)
      from (select d.state, count(*) as n from webhook_deliveries d group by d.state) w),
      '[]'::jsonb))
$$;
