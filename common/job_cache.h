#ifndef GENQ_JOB_CACHE_H
#define GENQ_JOB_CACHE_H

#include <stddef.h>

#include "db.h"

/* The job JSON that polls (GET /v1/jobs/{id}) and event streams read: one
 * read of PostgreSQL (genq_job_read, schema/functions/jobs.sql) per job,
 * kept until a change notice names the job or ttl_ms passes, whichever is
 * first. Readers of one job that arrive while it is being read share that
 * read.
 *
 * Freshness. Whoever commits a change of a job announces it after the
 * commit (queue_publish_change); the owner of the cache subscribes and calls
 * job_cache_forget for every notice. A read that was on its way when a
 * notice came answers its readers but is not kept (it may predate the
 * change), and a reader arriving after the notice waits for a read begun
 * after it. Notices can be lost only while the subscription is down — the
 * owner then calls job_cache_set_live(0), and nothing is kept until it is
 * back and the cache has been emptied (job_cache_set_live(1)) — or when a
 * writer dies between its commit and its notice: ttl_ms bounds how long a
 * reader may see the state before such a change. queue_position and
 * next_attempt_at, which move without a change of the job itself, are as
 * old as ttl_ms at most.
 *
 * Bounded: at most max_entries jobs and max_bytes of JSON are kept; the
 * least recently read go first. Single-threaded: every call on the loop
 * thread. */

typedef struct job_cache job_cache;

typedef struct {
  unsigned max_entries; /* default 16384 */
  size_t max_bytes;     /* of kept JSON, default 32 MiB */
  unsigned ttl_ms;      /* default 5000 */
} job_cache_options;

/* What a reader gets. ok = 0: the database failed (failure says how; 503 or
 * 500 for the caller). ok = 1 and user NULL: there is no such job. Else the
 * job's owner and its JSON text (len bytes, NUL-terminated). Valid only
 * during the callback; the caller checks that user is its own. */
typedef struct {
  int ok;
  const db_result *failure;
  const char *user;
  const char *json;
  size_t len;
} job_cache_read;

typedef void (*job_cache_cb)(const job_cache_read *r, void *arg);

/* o may be NULL (defaults). Returns 0, or -1 out of memory. The cache starts
 * not live. */
int job_cache_open(job_cache **out, uv_loop_t *loop, db *d, const job_cache_options *o);
/* Reads job id (a lower-case UUID): cb runs once, before this returns when
 * the job is kept. Returns 0, or -1 when the database queue is full (cb
 * never runs). */
int job_cache_get(job_cache *c, const char *id, job_cache_cb cb, void *arg);
/* A change notice: what is kept of job id is dropped. */
void job_cache_forget(job_cache *c, const char *id);
/* live 0: notices may be lost from now on (the subscription is down):
 * nothing is kept or served from what is kept. live 1: notices arrive
 * again: everything kept before is dropped first. */
void job_cache_set_live(job_cache *c, int live);
/* Jobs kept now and their bytes (tests read them). */
unsigned job_cache_entries(const job_cache *c);
size_t job_cache_bytes(const job_cache *c);
/* Frees what is kept; reads still on their way answer their readers and
 * free the rest when they come back (before db_close completes). */
void job_cache_close(job_cache *c);

#endif
