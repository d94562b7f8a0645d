/* sweep.c — what nobody needs any more.
 *
 * Upload retention (SPEC §7): uploaded media is kept only while
 * generation needs it. Every GENQ_SWEEP_INTERVAL_MS a worker asks
 * PostgreSQL for uploads whose jobs are all terminal, or that were never
 * used and are 24 h old (genq_uploads_sweep marks them deleted, safe against
 * a submit linking one at the same moment), then deletes their bytes. Any
 * number of workers may sweep at once: each upload is claimed by one. A
 * byte deletion that fails leaves an orphan file, logged; the row already
 * says deleted, so no job can use it.
 *
 * Provider work of ended jobs: generations that failed or canceled jobs had
 * started and that no worker deleted (genq_refs_to_release hands each out
 * once) are deleted at Luma, which refunds them. Hedra has no cancel. */
#include <stdlib.h>

#include "log.h"
#include "worker.h"

#define SWEEP_BATCH 100

typedef struct {
  worker *w;
  int left;
} sweep_ctx;

static void one_deleted(const char *err, void *arg) {
  sweep_ctx *c = arg;
  if (err) log_warn("upload bytes not deleted", LS("error", err));
  if (--c->left == 0) {
    worker *w = c->w;
    free(c);
    w->sweeping = 0;
  }
}

static void swept(const db_result *r, void *arg) {
  worker *w = arg;
  if (!r->ok) {
    log_warn("upload sweep failed", LS("error", r->error));
    w->sweeping = 0;
    return;
  }
  int n = PQntuples(r->res);
  if (n == 0 || !w->storage) {
    w->sweeping = 0;
    return;
  }
  log_info("uploads swept", LI("count", n));
  sweep_ctx *c = calloc(1, sizeof(*c));
  if (!c) {
    w->sweeping = 0;
    return;
  }
  c->w = w;
  c->left = n + 1;
  for (int i = 0; i < n; i++) {
    if (storage_delete(w->storage, PQgetvalue(r->res, i, 1), one_deleted, c) != 0)
      one_deleted("not started", c);
  }
  one_deleted(NULL, c);
}

static void sweep_more(worker *w) {
  if (w->sweeping || worker_stopping(w)) return;
  char lim[16];
  snprintf(lim, sizeof lim, "%d", SWEEP_BATCH);
  const char *p[1] = {lim};
  w->sweeping = 1;
  if (db_query(w->db, "select id, storage_key from genq_uploads_sweep($1::int)", 1, p, swept, w) !=
      0)
    w->sweeping = 0;
}

static void sweep_tick(uv_timer_t *t) {
  worker *w = t->data;
  sweep_more(w);
  if (!worker_stopping(w)) cleanup_release_provider_work(w, NULL);
}

void sweep_start(worker *w) {
  uv_timer_init(w->loop, &w->sweep_timer);
  w->sweep_timer.data = w;
  uv_timer_start(&w->sweep_timer, sweep_tick, (uint64_t)w->cfg.sweep_interval_ms,
                 (uint64_t)w->cfg.sweep_interval_ms);
}
