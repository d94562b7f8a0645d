-- 0011_job_read: polls and event streams read a job with its owner through
-- genq_job_read (schema/functions/jobs.sql) and check the owner themselves,
-- so that one read serves every reader of the job; genq_job_get goes.
drop function if exists genq_job_get(text, uuid);
