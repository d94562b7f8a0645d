-- 0025_claim_reclaimed: genq_claim_jobs also answers, per job claimed,
-- whether the claim was a reclaim (the job was running under a worker
-- whose lease had lapsed), which the worker counts in
-- genq_worker_reclaims_total (docs/metrics.md). Its result changes, so the
-- old function goes here; leases.sql creates the new one in the same
-- transaction (docs/schema.md, "Changing a signature or a result").
drop function if exists genq_claim_jobs(uuid[], text, int, int);
