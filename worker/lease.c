/* lease.c — keeping the jobs this worker holds.
 *
 * Every running job has a lease in PostgreSQL (jobs.lease_until). One timer
 * renews the leases of every job in flight with a single statement, every
 * third of the lease, so job work can never starve it. A job whose renewal
 * did not match (its epoch moved on: it was reclaimed after this worker
 * stalled) is lost: its provider call is aborted and nothing more about it
 * is committed — every later write would be fenced anyway. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

/* One renewal in flight: the jobs it named carry its number (wjob.beat). */
typedef struct {
  worker *w;
  uint32_t beat;
  uint64_t sent_at; /* loop time the renewal was sent */
} beat_ctx;

static int cmp_id(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

/* The answer names the jobs of the renewal that were NOT renewed (their
 * epoch moved on, or they are no longer running): usually none, so that a
 * worker holding 10,000 waiting jobs does not receive, parse and search
 * 10,000 ids every third of the lease. */
static void renewed(const db_result *r, void *arg) {
  beat_ctx *b = arg;
  worker *w = b->w;
  if (!r->ok) {
    /* PostgreSQL is away: nothing to conclude; the next beat tries again */
    log_warn("lease renewal failed", LS("error", r->error));
    free(b);
    return;
  }
  int n = PQntuples(r->res);
  char(*lost)[37] = n ? calloc((size_t)n, 37) : NULL;
  if (n && !lost) {
    free(b); /* nothing concluded; the next beat tries again */
    return;
  }
  for (int i = 0; i < n; i++)
    memcpy(lost[i], PQgetvalue(r->res, i, 0), 36);
  if (n > 1) qsort(lost, (size_t)n, 37, cmp_id);
  uint64_t until = b->sent_at + (uint64_t)w->cfg.lease_seconds * 1000;
  for (wjob *j = w->jobs, *next; j; j = next) {
    next = j->next;
    if (j->beat != b->beat || j->epoch == 0) continue; /* not in this renewal */
    if (!n || !bsearch(j->id, lost, (size_t)n, 37, cmp_id)) {
      j->lease_until = until;
      continue;
    }
    log_warn("lease lost: abandoning job", LS("job_id", j->id), LI("epoch", j->epoch));
    runner_job_lost(j); /* its steps stop; nothing more is committed */
  }
  free(lost);
  free(b);
}

static void beat(uv_timer_t *t) {
  worker *w = t->data;
  static uint32_t beats;
  if (worker_past_grace(w) || w->inflight == 0) return;
  beat_ctx *b = calloc(1, sizeof(*b));
  size_t cap = (size_t)w->inflight, nsent = 0;
  char *ids = malloc(cap * 37 + 3), *epochs = malloc(cap * 21 + 3);
  if (!b || !ids || !epochs) goto out;
  b->w = w;
  if (++beats == 0) beats = 1; /* 0: a job no renewal named */
  b->beat = beats;
  /* PostgreSQL array literals: {id,...} and {epoch,...} */
  size_t io = 1, eo = 1;
  ids[0] = epochs[0] = '{';
  for (wjob *j = w->jobs; j && nsent < cap; j = j->next) {
    if (j->epoch == 0 || j->lost) continue; /* not claimed yet */
    const char *sep = nsent ? "," : "";
    io += (size_t)snprintf(ids + io, 38, "%s%s", sep, j->id);
    eo += (size_t)snprintf(epochs + eo, 22, "%s%lld", sep, j->epoch);
    j->beat = b->beat;
    nsent++;
  }
  memcpy(ids + io, "}", 2);
  memcpy(epochs + eo, "}", 2);
  if (nsent == 0) goto out;
  b->sent_at = uv_now(w->loop);
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  const char *p[3] = {ids, epochs, lease};
  /* the function scan runs genq_jobs_renew to its end whatever is read of
   * it; the left join keeps the ids it did not answer */
  if (db_query(w->db,
               "select h.id from unnest($1::uuid[]) as h (id) "
               "left join genq_jobs_renew($1::uuid[], $2::bigint[], $3::int) as r on r.id = h.id "
               "where r.id is null",
               3, p, renewed, b) == 0) {
    b = NULL;
  }
out:
  free(ids);
  free(epochs);
  free(b);
}

void lease_start(worker *w) {
  uint64_t every = (uint64_t)w->cfg.lease_seconds * 1000 / 3;
  uv_timer_init(w->loop, &w->heartbeat_timer);
  w->heartbeat_timer.data = w;
  uv_timer_start(&w->heartbeat_timer, beat, every, every);
}

typedef struct {
  wstep *s;
  void (*cb)(wstep *s, int ok);
  uint64_t sent_at;
} confirm_ctx;

static void confirmed(const db_result *r, void *arg) {
  confirm_ctx *c = arg;
  wjob *j = c->s->j;
  int ok = db_fenced_ok(r);
  if (ok)
    j->lease_until = c->sent_at + (uint64_t)j->w->cfg.lease_seconds * 1000;
  else
    log_warn("lease not confirmed before a provider create", LS("job_id", j->id),
             LI("epoch", j->epoch), LS("error", r->ok ? "not ours" : r->error));
  void (*cb)(wstep *, int) = c->cb;
  wstep *s = c->s;
  free(c);
  cb(s, ok);
}

void lease_confirm(wstep *s, void (*cb)(wstep *s, int ok)) {
  wjob *j = s->j;
  worker *w = j->w;
  if (uv_now(w->loop) < j->lease_until) {
    cb(s, 1);
    return;
  }
  confirm_ctx *c = malloc(sizeof(*c));
  char epoch[24], lease[16];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  const char *p[3] = {j->id, epoch, lease};
  if (c) {
    c->s = s;
    c->cb = cb;
    c->sent_at = uv_now(w->loop);
  }
  if (!c || db_query(w->db, "select genq_job_heartbeat($1::uuid, $2::bigint, $3::int)", 3, p,
                     confirmed, c) != 0) {
    free(c);
    cb(s, 0);
  }
}
