-- 0006_dead_letters: the dead-letter set and operator retry (SPEC §5, §6,
-- §8); the functions are in schema/functions/dead_letters.sql.

-- dead_at: non-null = the job is in the dead-letter set (only a failed job
-- can be; a retry clears it). reclaims: times a lapsed lease of this run was
-- reclaimed (the poison counter). retries: operator retries so far; the n-th
-- holds under job:<id>:hold:retry:<n> and releases under
-- job:<id>:release:retry:<n>, so each run's movements happen once.
alter table jobs add column dead_at timestamptz;
alter table jobs add column reclaims int not null default 0 check (reclaims >= 0);
alter table jobs add column retries int not null default 0 check (retries >= 0);
alter table jobs add constraint jobs_dead_is_failed check (dead_at is null or status = 'failed');
create index jobs_dead on jobs (dead_at desc) where dead_at is not null;

