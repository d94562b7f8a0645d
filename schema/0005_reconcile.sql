-- 0005_reconcile: what PostgreSQL remembers of Redis, to dispatch again what
-- Redis lost (SPEC §5; schema/functions/dispatch.sql): the last incarnation
-- of Redis seen, and when and how many jobs were reset.

create table if not exists dispatch_state (
  id boolean primary key default true check (id),
  redis_incarnation text,
  reset_at timestamptz,
  reset_jobs bigint not null default 0
);
insert into dispatch_state (id) values (true) on conflict do nothing;

