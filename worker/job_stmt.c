/* job_stmt.c — statements about a job, fenced by its epoch and surviving a
 * PostgreSQL restart.
 *
 * A statement that failed for a transient reason (connection lost, server
 * restarting: db_transient) is sent again with backoff while the job is
 * still this worker's. Each of them may be repeated: a checkpoint of the
 * same id, a step that already succeeded and a write fenced by an epoch that
 * moved on all change nothing the second time. Giving up instead would drop
 * a paid generation's id, or leave the job to its lease and a reclaim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define STMT_RETRY_MIN_MS 200
#define STMT_RETRY_MAX_MS 5000
#define STMT_MAX_PARAMS 8

typedef struct {
  wjob *j;
  char *sql;
  int n;
  char *p[STMT_MAX_PARAMS]; /* p[0] the job's id, p[1] its epoch */
  db_cb cb;
  void *arg;
  unsigned delay_ms;
  int sent; /* times sent so far */
  uv_timer_t timer;
} job_stmt;

static void stmt_free(job_stmt *q) {
  free(q->sql);
  for (int i = 0; i < q->n; i++)
    free(q->p[i]);
  free(q);
}

static void stmt_closed(uv_handle_t *h) {
  stmt_free(h->data);
}

/* The job is still this worker's and the worker is not past its grace. */
static int stmt_may_resend(const job_stmt *q) {
  return !q->j->lost && !worker_past_grace(q->j->w);
}

static void stmt_done(const db_result *r, void *arg);

static void stmt_send(uv_timer_t *t) {
  job_stmt *q = t->data;
  if (q->sent++ && !stmt_may_resend(q)) {
    db_result r = {.ok = 0, .sqlstate = "57014", .error = "the job was let go"};
    q->cb(&r, q->arg);
    uv_close((uv_handle_t *)&q->timer, stmt_closed);
    return;
  }
  if (db_query(q->j->w->db, q->sql, q->n, (const char *const *)q->p, stmt_done, q) != 0) {
    db_result r = {.ok = 0, .sqlstate = "53000", .error = "the statement queue is full"};
    stmt_done(&r, q);
  }
}

static void stmt_done(const db_result *r, void *arg) {
  job_stmt *q = arg;
  if (db_transient(r) && stmt_may_resend(q)) {
    log_warn("job statement failed, sending it again", LS("job_id", q->j->id),
             LS("error", r->error), LI("delay_ms", q->delay_ms));
    uv_timer_start(&q->timer, stmt_send, q->delay_ms, 0);
    q->delay_ms = q->delay_ms * 2 > STMT_RETRY_MAX_MS ? STMT_RETRY_MAX_MS : q->delay_ms * 2;
    return;
  }
  q->cb(r, q->arg);
  uv_close((uv_handle_t *)&q->timer, stmt_closed);
}

int job_stmt_query(wjob *j, const char *sql, int n, const char *const *params, db_cb cb,
                   void *arg) {
  job_stmt *q = calloc(1, sizeof(*q));
  char epoch[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  if (!q || n + 2 > STMT_MAX_PARAMS || !(q->sql = strdup(sql))) {
    free(q);
    return -1;
  }
  q->j = j;
  q->cb = cb;
  q->arg = arg;
  q->delay_ms = STMT_RETRY_MIN_MS;
  for (q->n = 0; q->n < n + 2; q->n++) {
    const char *v = q->n == 0 ? j->id : q->n == 1 ? epoch : params[q->n - 2];
    if (v && !(q->p[q->n] = strdup(v))) {
      stmt_free(q);
      return -1;
    }
  }
  uv_timer_init(j->w->loop, &q->timer);
  q->timer.data = q;
  uv_timer_start(&q->timer, stmt_send, 0, 0);
  return 0;
}
