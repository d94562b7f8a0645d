-- 0026_submit_cost: what every submitted job paid for GET /v1/usage and
-- the usage limits, made cheaper.
--
-- jobs_user_created (0021) was one more index written by every job insert
-- and by every update of a job that cannot be HOT (a status move, the
-- dispatch mark, a lease: 7 µs of the 200 µs PostgreSQL spends on a
-- submission in a batch of 8). The user's jobs index takes over what it
-- served: jobs_user_id carries created_at and kind too, so genq_usage
-- reads the jobs a user submitted in the range and the captures' kinds
-- from it alone, never the table. It reads the user's whole entry (the
-- range is a filter, not a bound) where jobs_user_created read only the
-- range: for a user with 100,000 jobs over a year, 30 days take 31 ms
-- instead of 26, 366 days 131 instead of 150 (the captures' kinds read the
-- user's whole entry before as after).
create index jobs_user_id_next on jobs (user_id, id desc) include (created_at, kind);
drop index jobs_user_id;
alter index jobs_user_id_next rename to jobs_user_id;
drop index jobs_user_created;

-- genq_limits_submit_state (schema/functions/limits.sql) answers a row, so
-- that the submit's statement inlines it and keeps its plan: the result
-- changes, so the jsonb one goes.
drop function if exists genq_limits_submit_state(text[]);
