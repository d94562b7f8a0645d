-- 0012_queue_counts: queue_position without counting the queue. Every job
-- that enters `queued` takes the next arrival number of its kind
-- (jobs.queue_no), every job that leaves it adds a departure; a job's
-- position is its number minus the departures of its kind (exact while the
-- queue is first in, first out; genq_job_json). The counters are spread
-- over shards (a writer takes the one of its backend), so that submits and
-- claims of one kind do not all wait on one row; a kind's figure is the
-- sum of its shards. Maintained by genq_jobs_queue_count (jobs.sql).
create table queue_counts (
  kind       text not null,
  shard      int not null,
  arrivals   bigint not null default 0,
  departures bigint not null default 0,
  primary key (kind, shard)
);
alter table jobs add column queue_no bigint;

-- the jobs queued now, numbered in id order, as if they had arrived so
with q as (select id, row_number() over (partition by kind order by id) as n
           from jobs where status = 'queued')
update jobs j set queue_no = q.n from q where j.id = q.id;
insert into queue_counts (kind, shard, arrivals)
select kind, 0, count(*) from jobs where status = 'queued' group by kind;
