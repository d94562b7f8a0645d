#ifndef GENQ_RELAY_H
#define GENQ_RELAY_H

#include "db.h"
#include "redis.h"

/* The relay gets jobs committed in PostgreSQL into their Redis streams.
 *
 * PostgreSQL is the source of truth: a job exists once its submit
 * transaction commits, with dispatched = false. relay_job() sends it to its
 * stream right after the commit and, once Redis has it, marks it dispatched
 * (marks are batched into one UPDATE; each names the dispatch generation the
 * job had when it was sent, so a late mark cannot hide a job that was
 * claimed, renewed, requeued or handed back meanwhile). If that fails — Redis down, the
 * process killed between commit and XADD — nothing is lost: every
 * interval, the relay asks PostgreSQL for queued jobs still undispatched
 * after a grace period (and retries whose time has come) and sends them.
 * A job sent twice is harmless: a worker claims it in PostgreSQL, where only
 * one claim can win; the loser drops the duplicate message.
 *
 * One relay per process (API and workers); a Redis lock with a TTL of one
 * interval keeps the periodic scan to one process at a time. */

typedef struct relay relay;

/* interval_ms: scan period (e.g. 1000); grace_ms: how long a committed job
 * may wait for its immediate dispatch before the scan sends it. */
int relay_start(relay **out, uv_loop_t *loop, db *d, rds *r, unsigned interval_ms,
                unsigned grace_ms);
/* Sends a job genq_submit_job just committed (dispatch generation 0) now.
 * Never fails visibly: failures are left to the scan. kind and job_id are
 * copied. */
void relay_job(relay *rl, const char *kind, const char *job_id);
/* The same for a job queued again by an operator (genq_job_retry), whose
 * dispatch generation is now gen. */
void relay_job_gen(relay *rl, const char *kind, const char *job_id, long long gen);
/* Stops timers and frees the relay once outstanding replies came back. */
void relay_stop(relay *rl);

#endif
