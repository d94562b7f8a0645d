-- 0009_step_retry_key: a step's retry state in a column of its own (SPEC §5).
--
-- A Hedra submit carries the idempotency key <job>:<step>, or
-- <job>:<step>:<retry_key> once the step's Hedra job was forgotten (it
-- failed, or Hedra no longer knows it) or an operator retried the step:
-- a fresh key, still the same across crashes. It was written into
-- provider_ref as "retry:<key>", which made provider_ref mean two things.
alter table job_steps add column retry_key text;
update job_steps set retry_key = substr(provider_ref, 7), provider_ref = null
where provider_ref like 'retry:%';
