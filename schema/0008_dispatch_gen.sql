-- 0008_dispatch_gen: a relay's mark names the state it sent (SPEC §5,
-- schema/functions/dispatch.sql).
--
-- dispatch_gen counts the writes after which a message already in Redis may
-- no longer get the job run: a claim, a lease renewal, a requeue, a
-- hand-back, an operator retry and a reset of the marks. genq_undispatched
-- answers it with each job, and genq_mark_dispatched marks a job only while
-- it is still the same; the epoch alone could not tell a requeue or a
-- renewal from the state the relay saw.
alter table jobs add column dispatch_gen bigint not null default 0;

-- The relay's functions name the generation, not the epoch.
drop function if exists genq_mark_dispatched(uuid[], bigint[]);
drop function if exists genq_relay_scan(int, int, text);
drop function if exists genq_undispatched(int, int);
