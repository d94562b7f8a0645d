-- 0021_usage: the indexes GET /v1/usage reads (genq_usage,
-- schema/functions/usage.sql) and the one the Idempotency-Key sweep reads
-- (genq_idempotency_sweep, jobs.sql). The usage of one user over at most
-- 366 days is three index range scans of that user's rows in the range:
-- jobs by the day they were submitted, jobs by the day they ended, and the
-- ledger's captures by the day they were captured.
-- (id too: the captures take their job's kind from it by a hash join that
-- reads only this index, never the table)
create index jobs_user_created on jobs (user_id, created_at) include (kind, id);
create index jobs_user_finished on jobs (user_id, finished_at) include (kind, status)
  where finished_at is not null;
create index ledger_user_captures on ledger (user_id, created_at) include (job_id, balance_delta)
  where movement = 'capture';
-- the keys still set, oldest first: an Idempotency-Key expires 24 h after
-- the job it made, and the sweep clears the expired ones in bounded batches
create index jobs_idempotency_live on jobs (created_at) where idempotency_key is not null;
