/* sweep.c — what nobody needs any more.
 *
 * Retention (SPEC §7; docs/privacy.md): every GENQ_SWEEP_INTERVAL_MS a
 * worker runs each step of the retention sweep once, one after the other
 * (common/sweep_steps.h: uploads nobody needs, accounts deleted 30 days
 * ago, ledger rows over 2 years old, the limits' old rows, settled webhook
 * deliveries), each one bounded batch, one transaction. A step's rows name
 * the stored objects it let go (uploads whose jobs are all terminal or that
 * were never used in 24 h — genq_uploads_sweep marks them deleted, safe
 * against a submit linking one at the same moment — and the assets and
 * uploads of purged accounts): their bytes are deleted after the commit.
 * Any number of workers may sweep at once: each row is claimed by one. A
 * byte deletion that fails leaves an orphan file, logged; the row already
 * says deleted (or is gone), so nothing can use it. What one batch leaves
 * is taken by the next tick; genqctl sweep runs every step to the end.
 *
 * Provider work of ended jobs: generations that failed or canceled jobs had
 * started and that no worker deleted (genq_refs_to_release hands each out
 * once) are deleted at Luma, which refunds them. Hedra has no cancel. */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "sweep_steps.h"
#include "worker.h"

#define SWEEP_BATCH 100

typedef struct {
  worker *w;
  int step; /* in genq_sweep_steps */
  int left; /* storage deletions outstanding, +1 while starting them */
} sweep_ctx;

static void step_run(sweep_ctx *c);

static void step_next(sweep_ctx *c) {
  c->step++;
  step_run(c);
}

static void one_deleted(const char *err, void *arg) {
  sweep_ctx *c = arg;
  if (err) log_warn("swept bytes not deleted", LS("error", err));
  if (--c->left == 0) step_next(c);
}

static void swept(const db_result *r, void *arg) {
  sweep_ctx *c = arg;
  worker *w = c->w;
  const char *name = genq_sweep_steps[c->step].name;
  if (!r->ok) {
    log_warn("sweep step failed", LS("step", name), LS("error", r->error));
    step_next(c);
    return;
  }
  int n = PQntuples(r->res);
  long long count = 0;
  for (int i = 0; i < n; i++)
    count += strtoll(PQgetvalue(r->res, i, 0), NULL, 10);
  if (n > 0) log_info("swept", LS("step", name), LI("count", count), LI("rows", n));
  c->left = 1;
  for (int i = 0; i < n && w->storage; i++) {
    if (PQgetisnull(r->res, i, 1)) continue;
    c->left++;
    if (storage_delete(w->storage, PQgetvalue(r->res, i, 1), one_deleted, c) != 0)
      one_deleted("not started", c);
  }
  one_deleted(NULL, c);
}

static void step_run(sweep_ctx *c) {
  worker *w = c->w;
  if (c->step >= GENQ_SWEEP_STEPS || worker_stopping(w)) {
    free(c);
    w->sweeping = 0;
    return;
  }
  char lim[16];
  snprintf(lim, sizeof lim, "%d", SWEEP_BATCH);
  const char *p[2] = {NULL /* now() */, lim};
  if (db_query(w->db, genq_sweep_steps[c->step].sql, 2, p, swept, c) != 0) {
    free(c);
    w->sweeping = 0;
  }
}

static void sweep_more(worker *w) {
  if (w->sweeping || worker_stopping(w)) return;
  sweep_ctx *c = calloc(1, sizeof(*c));
  if (!c) return;
  c->w = w;
  w->sweeping = 1;
  step_run(c);
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
