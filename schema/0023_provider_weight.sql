-- 0023_provider_weight: the weight of a plan's users in the fleet-wide
-- provider limits (worker/provlimit.c, docs/providers.md). Inside a
-- provider's window the next free slot goes to the waiting user with the
-- least slots held / weight, so one user's backlog never starves another
-- user's single job; a weight of 2 gets twice the slots of a weight of 1
-- when both wait. Operators edit it like the plan's other limits.
alter table plans add column provider_weight int not null default 1
  check (provider_weight between 1 and 1000);
