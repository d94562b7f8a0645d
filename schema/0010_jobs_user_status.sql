-- 0010_jobs_user_status: GET /v1/jobs?status= (genq_jobs_list) reads the
-- user's jobs of one status newest first from an index of its own, instead
-- of walking every job of the user.
create index jobs_user_status on jobs (user_id, status, id desc);
