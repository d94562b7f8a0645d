-- 0020_privacy: privacy rights and retention (SPEC §7; docs/privacy.md).
-- Functions: schema/functions/privacy.sql.
--
-- accounts.deleted_at (0001_core) is set by DELETE /v1/me; 30 days later the
-- sweeper purges the account's data (genq_account_purge) and sets
-- purged_at. The row stays as a tombstone: the user stays refused, and the
-- ledger rows (kept 2 years) and Stripe purchases keep their account.
alter table accounts add column purged_at timestamptz;

-- Ledger rows older than 2 years are folded into one 'carry' row per
-- account (idem_key carry:<user>) that holds their sums, so balance =
-- sum(balance_delta), held = sum(held_delta) and debt = sum(debt_delta)
-- still hold. ledger_carried_before is the horizon of the account's last
-- fold: the audit accepts a job or purchase of before it that has no rows
-- left (they were folded), and only those.
alter table accounts add column ledger_carried_before timestamptz;
alter table ledger drop constraint ledger_movement_check;
alter table ledger add constraint ledger_movement_check
  check (movement in ('grant', 'hold', 'capture', 'release', 'adjust', 'reversal', 'repay',
                      'carry'));

-- what the retention sweep reads: old ledger rows, deleted accounts due,
-- settled webhook deliveries; and a user's deliveries for the export
-- (the ledger by time as a BRIN: rows are appended in time order, and a
-- block-range summary costs the hot path's inserts next to nothing, where a
-- btree would be one more index write per hold, capture and release)
create index ledger_created on ledger using brin (created_at);
create index accounts_purge_due on accounts (deleted_at) where purged_at is null
  and deleted_at is not null;
create index webhook_deliveries_settled on webhook_deliveries (deadline)
  where state in ('delivered', 'failed', 'refused');
create index webhook_deliveries_user on webhook_deliveries (user_id, id);
create index submit_buckets_at on submit_buckets (at);
create index upload_days_day on upload_days (day);
create index ledger_ref on ledger (ref) where ref is not null;

-- genq_uploads_sweep takes the time it sweeps at (schema/functions/
-- media.sql): the one-argument version goes (a function has one
-- definition, one file).
drop function if exists genq_uploads_sweep(int);
