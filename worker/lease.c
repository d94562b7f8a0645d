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

typedef struct {
  char id[37];
  long long epoch;
} held_job;

typedef struct {
  worker *w;
  held_job *sent;
  int nsent;
  uint64_t sent_at; /* loop time the renewal was sent */
} beat_ctx;

static int cmp_id(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void renewed(const db_result *r, void *arg) {
  beat_ctx *b = arg;
  worker *w = b->w;
  if (!r->ok) {
    /* PostgreSQL is away: nothing to conclude; the next beat tries again */
    log_warn("lease renewal failed", LS("error", r->error));
  } else {
    int n = PQntuples(r->res);
    char(*owned)[37] = calloc((size_t)n + 1, 37);
    for (int i = 0; owned && i < n; i++)
      memcpy(owned[i], PQgetvalue(r->res, i, 0), 36);
    if (owned) qsort(owned, (size_t)n, 37, cmp_id);
    for (wjob *j = w->jobs, *next; owned && j; j = next) {
      next = j->next;
      held_job key;
      memcpy(key.id, j->id, 37);
      held_job *s = bsearch(&key, b->sent, (size_t)b->nsent, sizeof(held_job), cmp_id);
      if (!s || s->epoch != j->epoch) continue;
      if (bsearch(j->id, owned, (size_t)n, 37, cmp_id)) {
        j->lease_until = b->sent_at + (uint64_t)w->cfg.lease_seconds * 1000;
        continue;
      }
      log_warn("lease lost: abandoning job", LS("job_id", j->id), LI("epoch", j->epoch));
      runner_job_lost(j); /* its steps stop; nothing more is committed */
    }
    free(owned);
  }
  free(b->sent);
  free(b);
}

static void beat(uv_timer_t *t) {
  worker *w = t->data;
  if (worker_past_grace(w) || w->inflight == 0) return;
  beat_ctx *b = calloc(1, sizeof(*b));
  size_t cap = (size_t)w->inflight;
  char *ids = malloc(cap * 37 + 3), *epochs = malloc(cap * 21 + 3);
  if (b) b->sent = calloc(cap, sizeof(held_job));
  if (!b || !b->sent || !ids || !epochs) goto out;
  b->w = w;
  /* PostgreSQL array literals: {id,...} and {epoch,...} */
  size_t io = 1, eo = 1;
  ids[0] = epochs[0] = '{';
  for (wjob *j = w->jobs; j && (size_t)b->nsent < cap; j = j->next) {
    if (j->epoch == 0 || j->lost) continue; /* not claimed yet */
    const char *sep = b->nsent ? "," : "";
    io += (size_t)snprintf(ids + io, 38, "%s%s", sep, j->id);
    eo += (size_t)snprintf(epochs + eo, 22, "%s%lld", sep, j->epoch);
    memcpy(b->sent[b->nsent].id, j->id, 37);
    b->sent[b->nsent++].epoch = j->epoch;
  }
  memcpy(ids + io, "}", 2);
  memcpy(epochs + eo, "}", 2);
  if (b->nsent == 0) goto out;
  qsort(b->sent, (size_t)b->nsent, sizeof(held_job), cmp_id);
  b->sent_at = uv_now(w->loop);
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", w->cfg.lease_seconds);
  const char *p[3] = {ids, epochs, lease};
  if (db_query(w->db, "select id from genq_jobs_renew($1::uuid[], $2::bigint[], $3::int)", 3, p,
               renewed, b) == 0) {
    b = NULL;
  }
out:
  free(ids);
  free(epochs);
  if (b) {
    free(b->sent);
    free(b);
  }
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
