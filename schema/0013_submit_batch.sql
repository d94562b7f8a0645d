-- 0013_submit_batch: submissions go in batches (genq_submit_jobs in
-- schema/functions/jobs.sql). The uploads a job names are checked without
-- raising (genq_job_uploads_check, media.sql), so that one refused
-- submission of a batch costs no subtransaction; the raising
-- genq_job_link_uploads it replaces goes.
drop function if exists genq_job_link_uploads(uuid, text, text, jsonb);
