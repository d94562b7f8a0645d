#ifndef GENQ_SWEEP_STEPS_H
#define GENQ_SWEEP_STEPS_H

/* The retention sweep's steps (SPEC §7; docs/privacy.md), in the order
 * they run: one list for the workers' periodic sweep (worker/sweep.c) and
 * genqctl sweep (ctl/sweep_cmd.c). Each is one statement, one transaction,
 * of a function in schema/functions/ taking $1 the time the sweep runs at
 * (timestamptz text; NULL = now()) and $2 a batch limit. Its rows are
 * (count, storage_key): count is what the row adds to the step's total,
 * storage_key (may be NULL) an object to delete from storage once the
 * statement has committed. A call that returns no row has nothing left to
 * do: a full sweep calls each step until then, a worker once per tick. */
typedef struct {
  const char *name; /* in genqctl sweep's report */
  const char *sql;
} genq_sweep_step;

static const genq_sweep_step genq_sweep_steps[] = {
    /* uploads unused 24 h, or used only by terminal jobs (media.sql) */
    {"uploads", "select 1::bigint, storage_key from genq_uploads_sweep($1::timestamptz, $2::int)"},
    /* accounts deleted 30 days ago: their data; count = accounts purged */
    {"accounts", "select (what = 'account')::int::bigint, storage_key "
                 "from genq_account_purge($1::timestamptz, $2::int)"},
    /* ledger rows over 2 years old, folded into one carry row per account */
    {"ledger", "select n::bigint, null::text from genq_ledger_fold($1::timestamptz, $2::int) n "
               "where n > 0"},
    /* upload_days of past days, idle submit buckets (limits.sql) */
    {"limits", "select n::bigint, null::text from genq_limits_sweep($1::timestamptz, $2::int) n "
               "where n > 0"},
    /* settled webhook deliveries past their 24 h, expired signing secrets */
    {"webhooks", "select n::bigint, null::text from genq_webhooks_sweep($1::timestamptz, $2::int) "
                 "n where n > 0"},
    /* Idempotency-Keys 24 h after their job (jobs.sql) */
    {"idempotency", "select n::bigint, null::text from "
                    "genq_idempotency_sweep($1::timestamptz, $2::int) n where n > 0"},
};

#define GENQ_SWEEP_STEPS ((int)(sizeof genq_sweep_steps / sizeof genq_sweep_steps[0]))

#endif
