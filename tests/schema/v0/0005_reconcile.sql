-- 0005_reconcile: dispatch again what Redis lost (SPEC §5).
--
-- Redis only carries "look at job X" messages; PostgreSQL remembers which
-- jobs were sent (jobs.dispatched). If Redis loses its data (a restart
-- without persistence, FLUSHALL), those marks lie: the messages are gone.
-- Redis keeps a random incarnation token (genq:{q}:incarnation, set once
-- with SET NX by the relay); the relay pairs it with Redis's run_id, which
-- changes at every restart (a restart from a snapshot may have kept the
-- token but lost the newest messages). PostgreSQL remembers the last pair
-- it saw. A relay scan that brings a different one clears every unfinished
-- job's mark in the same transaction, so the scan itself sends them all
-- again.
-- Sending a job twice is harmless: only one claim can win.

create table if not exists dispatch_state (
  id boolean primary key default true check (id),
  redis_incarnation text,
  reset_at timestamptz,
  reset_jobs bigint not null default 0
);
insert into dispatch_state (id) values (true) on conflict do nothing;

-- genq_relay_scan(min_age_ms, limit, incarnation) → what genq_undispatched
-- returns, after clearing the dispatch marks of every queued and running job
-- when Redis's incarnation token is not the one PostgreSQL saw last (Redis
-- lost its data since: the marked messages are gone). The first scan of a
-- new installation records the token the same way (nothing is marked yet).
create or replace function genq_relay_scan(p_min_age_ms int, p_limit int, p_incarnation text)
returns table (id uuid, kind text, epoch bigint)
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
      update jobs j set dispatched = false
      where j.status in ('queued', 'running') and j.dispatched;
      get diagnostics n = row_count;
      update dispatch_state s set reset_at = now(), reset_jobs = s.reset_jobs + n;
      raise log 'genq: Redis incarnation changed to %, % job(s) to dispatch again', p_incarnation, n;
    end if;
  end if;
  return query select * from genq_undispatched(p_min_age_ms, p_limit);
end $$;

-- genq_lapsed (0003) was never used: genq_undispatched re-sends lapsed jobs.
drop function if exists genq_lapsed(int);
