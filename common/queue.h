#ifndef GENQ_QUEUE_H
#define GENQ_QUEUE_H

#include "redis.h"

/* Job dispatch through Redis Streams. Design note: docs/queue.md.
 *
 * One stream per job kind, `genq:{q}:jobs:<kind>`, all under the hash tag
 * {q} so a worker can read several kinds in one XREADGROUP on Redis Cluster.
 * One consumer group, `workers`; each worker process is a consumer. A
 * message carries only the job id: PostgreSQL holds the job. A message is
 * acknowledged and deleted (XACK + XDEL) as soon as the worker has claimed
 * the job in PostgreSQL (or found it not claimable), so streams stay short
 * and never need MAXLEN trimming, which could drop undelivered jobs. A
 * worker that dies between reading and claiming leaves the message pending;
 * queue_reclaim (XAUTOCLAIM) hands such messages to a live worker. A job
 * waiting for a provider slot before its claim keeps its message pending
 * on purpose, kept fresh by queue_touch. */

#define QUEUE_GROUP "workers"
#define QUEUE_KEY_MAX 64

typedef struct {
  const char *kind;   /* the stream's kind */
  const char *msg_id; /* stream entry id, for queue_done */
  const char *job_id; /* NULL when the entry is malformed (queue_done it) */
} queue_msg;

/* Called exactly once per queue_fetch/queue_reclaim that returned 0. On
 * error msgs is NULL, n is 0 and err is set. msgs are valid only during the
 * call. */
typedef void (*queue_fetch_cb)(const queue_msg *msgs, int n, const char *err, void *arg);
/* Called exactly once; err NULL on success. */
typedef void (*queue_done_cb)(const char *err, void *arg);

/* Writes the stream key of a kind into buf (QUEUE_KEY_MAX bytes). */
void queue_key(const char *kind, char *buf);

/* XADD the job to its kind's stream. cb may be NULL. Returns 0 or -1 (not
 * connected; cb never runs). */
int queue_dispatch(rds *r, const char *kind, const char *job_id, queue_done_cb cb, void *arg);

/* Creates the consumer group (and stream) of each kind if missing
 * (XGROUP CREATE ... 0 MKSTREAM; BUSYGROUP is success). Fire-and-forget:
 * errors are logged. */
void queue_ensure_groups(rds *r, const char *const *kinds, int nkinds);

/* XREADGROUP for new messages of the given kinds, up to count, blocking up to
 * block_ms. Use a connection of its own: it blocks the connection. A NOGROUP
 * error (Redis lost its data) recreates the groups and reports the error. */
int queue_fetch(rds *r, const char *consumer, const char *const *kinds, int nkinds, int count,
                int block_ms, queue_fetch_cb cb, void *arg);

/* XAUTOCLAIM messages of one kind pending longer than min_idle_ms (their
 * reader died before claiming) for this consumer. */
int queue_reclaim(rds *r, const char *consumer, const char *kind, long min_idle_ms, int count,
                  queue_fetch_cb cb, void *arg);

/* Keeps pending messages of one kind this consumer holds on purpose (a
 * job waiting for a provider slot before its claim) from looking
 * abandoned: XCLAIM ... 0 JUSTID resets their idle time, so queue_reclaim
 * (of any worker) leaves them alone while this one lives. Fire and forget;
 * up to QUEUE_TOUCH_MAX ids per call. */
#define QUEUE_TOUCH_MAX 512
int queue_touch(rds *r, const char *consumer, const char *kind, const char *const *msg_ids, int n);

/* XACK + XDEL of one message. cb may be NULL. */
int queue_done(rds *r, const char *kind, const char *msg_id, queue_done_cb cb, void *arg);

/* Job change notices: after every committed change of a job (status, step,
 * progress, cancel) its writer PUBLISHes the job id on this channel; the
 * API's server-sent event streams re-read the job from PostgreSQL when they
 * hear it. A lost notice only delays an event (the streams also re-read on
 * a timer): PostgreSQL stays the truth. */
#define QUEUE_EVENTS_CHANNEL "genq:{q}:events"
/* PUBLISH job_id on QUEUE_EVENTS_CHANNEL, fire and forget. Returns 0 or -1
 * (not connected). */
int queue_publish_change(rds *r, const char *job_id);

/* Cancels: the API PUBLISHes a job's id here after committing its cancel;
 * the worker holding the job stops it at once (and deletes what still runs
 * at the provider) instead of at its next lease renewal. A lost notice only
 * delays that: the renewal finds the job is no longer its own. */
#define QUEUE_CANCEL_CHANNEL "genq:{q}:cancels"
int queue_publish_cancel(rds *r, const char *job_id);

/* Revocations: after committing one, its writer PUBLISHes "key <id>" (an
 * API key revoked) or "user <id>" (an account deleted) here; every genq-api
 * process refuses it from then on (api/access.c). A lost notice only delays
 * that by a second: each process also reads recent revocations from
 * PostgreSQL every second. */
#define QUEUE_ACCESS_CHANNEL "genq:{q}:access"

/* Wake-ups: genq-api PUBLISHes a job's id here when a provider's callback
 * for it arrives (callback_url.h); the worker holding the job polls its
 * waiting provider steps soon instead of at their next timer. Only a hint:
 * the poll reads the state from the provider, and a lost notice costs the
 * time until the fallback poll. */
#define QUEUE_WAKEUP_CHANNEL "genq:{q}:wakeups"

/* Operators' actions: after committing one (schema/functions/admin.sql),
 * its writer (genq-api's /v1/admin, genqctl) PUBLISHes the action row as
 * JSON here; every genq-api process forwards it to its open admin event
 * streams (api/admin_events.c). A lost notice only delays the dashboard
 * until its next refresh: the audit is in PostgreSQL. */
#define QUEUE_ADMIN_CHANNEL "genq:{q}:admin"
int queue_publish_wakeup(rds *r, const char *job_id);

#endif
