-- 0007_functions: every function moved to schema/functions/, where each is
-- defined once and re-applied by every migrate. What the files there no
-- longer define, or define with another signature or result, goes here,
-- before they are applied (in the same transaction).

-- jobs.id: genq_submit_job gives genq_uuid7() itself, so no table needs a
-- function to exist before the functions are applied.
alter table jobs alter column id drop default;

-- One genq_job_requeue, with the step as an optional last argument.
drop function if exists genq_job_requeue(uuid, bigint, int, text, text);

-- The fenced functions answer the job's status after the call, or NULL when
-- fenced out (they answered booleans).
drop function if exists genq_step_begin(uuid, bigint, text);
drop function if exists genq_step_checkpoint(uuid, bigint, text, text);
drop function if exists genq_step_progress(uuid, bigint, text, real);
drop function if exists genq_job_fail(uuid, bigint, text, text, text, boolean);
drop function if exists genq_job_handback(uuid, bigint);
drop function if exists genq_job_heartbeat(uuid, bigint, int);
