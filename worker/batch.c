/* batch.c — group commit of the step statements every job makes: its steps'
 * begins (genq_step_begin) and successes (genq_step_succeed).
 *
 * One call of each kind is in flight at a time. A statement that comes while
 * one is in flight waits for its answer, then goes with every other that
 * came meanwhile in one call of the batch function (genq_steps_begin,
 * genq_steps_succeed), which locks the batch's job rows in id order and
 * answers each element on its own, fenced by its own epoch. Nothing waits on
 * a timer: when the database keeps up, every statement goes alone and at
 * once; when it does not, one round trip and one transaction carry many
 * jobs' statements.
 *
 * A batch call that fails changes nothing (one transaction), so each of its
 * statements is then sent on its own through job_stmt_query: an element that
 * raises fails alone, and a transient failure is resent per statement while
 * its job is still this worker's, as if it had never been batched. A batch
 * that lost its connection mid-way may have committed; each statement is
 * safe to repeat (job_stmt.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define BATCH_MAX 256      /* statements per call; the rest go with the next */
#define BATCH_MAX_PARAMS 6 /* job, epoch and the statement's own */

struct batch_item {
  batch_item *next;
  wjob *j;
  int n;                     /* parameters, job and epoch included */
  char *p[BATCH_MAX_PARAMS]; /* p[0] the job's id, p[1] its epoch */
  db_cb cb;
  void *arg;
};

typedef struct {
  const char *single; /* the statement alone: $1 job, $2 epoch, then its own */
  const char *batch;  /* its batch function: one array per parameter; (ord, status) */
  const char *name;   /* for logs */
} batch_sql;

static const batch_sql sqls[BATCH_KINDS] = {
    [BATCH_STEP_BEGIN] = {"select genq_step_begin($1::uuid, $2::bigint, $3)",
                          "select ord, status from genq_steps_begin($1::uuid[], $2::bigint[], "
                          "$3::text[])",
                          "step begin"},
    [BATCH_STEP_SUCCEED] = {"select genq_step_succeed($1::uuid, $2::bigint, $3, $4::jsonb, "
                            "$5::jsonb, $6::jsonb)",
                            "select ord, status from genq_steps_succeed($1::uuid[], $2::bigint[], "
                            "$3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[])",
                            "step success"},
};

typedef struct {
  worker *w;
  batch_kind k;
  int n;
  batch_item **items; /* in the order they came */
} batch_call;

static void item_free(batch_item *it) {
  for (int i = 0; i < it->n; i++)
    free(it->p[i]);
  free(it);
}

static void answer_error(batch_item *it, const char *sqlstate, const char *error) {
  db_result r = {.ok = 0, .sqlstate = sqlstate, .error = error};
  it->cb(&r, it->arg);
}

/* The statement alone, with job_stmt's resends. */
static void send_alone(batch_kind k, batch_item *it) {
  if (job_stmt_query(it->j, sqls[k].single, it->n - 2, (const char *const *)it->p + 2, it->cb,
                     it->arg) != 0)
    answer_error(it, "53000", "the statement could not be queued");
}

/* Answers it as the single statement would have: one row, one text column,
 * the status or NULL. */
static void answer_row(batch_item *it, const char *status) {
  PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
  static char name[] = "status";
  PGresAttDesc col = {.name = name, .typid = 25 /* text */, .typlen = -1, .atttypmod = -1};
  if (!res || !PQsetResultAttrs(res, 1, &col) ||
      !PQsetvalue(res, 0, 0, (char *)status, status ? (int)strlen(status) : -1)) {
    PQclear(res);
    answer_error(it, "53200", "out of memory");
    return;
  }
  db_result r = {.ok = 1, .res = res};
  it->cb(&r, it->arg);
  PQclear(res);
}

static void flush(worker *w, batch_kind k);

static void call_done(const db_result *r, void *arg) {
  batch_call *c = arg;
  worker *w = c->w;
  batch_kind k = c->k;
  w->batches[k].busy = 0;
  /* the statements that came meanwhile go now, before these are answered */
  flush(w, k);
  if (!r->ok) {
    log_warn("batch failed, sending its statements one by one", LS("statement", sqls[k].name),
             LI("statements", c->n), LS("error", r->error));
    for (int i = 0; i < c->n; i++)
      send_alone(k, c->items[i]);
  } else {
    int rows = PQntuples(r->res);
    char *answered = calloc((size_t)c->n, 1);
    for (int row = 0; answered && row < rows; row++) {
      int ord = atoi(PQgetvalue(r->res, row, 0));
      if (ord < 1 || ord > c->n || answered[ord - 1]) continue;
      answered[ord - 1] = 1;
      answer_row(c->items[ord - 1],
                 PQgetisnull(r->res, row, 1) ? NULL : PQgetvalue(r->res, row, 1));
    }
    for (int i = 0; i < c->n; i++) /* never expected: each is asked again alone */
      if (!answered || !answered[i]) send_alone(k, c->items[i]);
    free(answered);
  }
  for (int i = 0; i < c->n; i++)
    item_free(c->items[i]);
  free(c->items);
  free(c);
}

/* Sends what waits as one call when none of kind k is in flight. */
static void flush(worker *w, batch_kind k) {
  batch_queue *q = &w->batches[k];
  if (q->busy || !q->head) return;
  int n = q->queued < BATCH_MAX ? q->queued : BATCH_MAX;
  batch_call *c = calloc(1, sizeof(*c));
  batch_item **items = calloc((size_t)n, sizeof(*items));
  int nparams = q->head->n;
  const char **col = calloc((size_t)n, sizeof(*col));
  char *arrays[BATCH_MAX_PARAMS] = {0};
  int ok = c && items && col;
  for (int i = 0; ok && i < n; i++) {
    items[i] = q->head;
    q->head = q->head->next;
    if (!q->head) q->tail = NULL;
    q->queued--;
  }
  if (!ok) { /* out of memory: each goes alone */
    free(c);
    free(items);
    free(col);
    for (batch_item *it = q->head, *next; it; it = next) {
      next = it->next;
      send_alone(k, it);
      item_free(it);
    }
    q->head = q->tail = NULL;
    q->queued = 0;
    return;
  }
  c->w = w;
  c->k = k;
  c->n = n;
  c->items = items;
  for (int p = 0; ok && p < nparams; p++) {
    for (int i = 0; i < n; i++)
      col[i] = items[i]->p[p];
    ok = (arrays[p] = db_array_literal(col, n)) != NULL;
  }
  free(col);
  q->busy = 1;
  if (!ok ||
      db_query(w->db, sqls[k].batch, nparams, (const char *const *)arrays, call_done, c) != 0) {
    db_result r = {.ok = 0, .sqlstate = "53000", .error = "the batch could not be queued"};
    call_done(&r, c);
  }
  for (int p = 0; p < nparams; p++)
    free(arrays[p]);
}

int batch_query(wjob *j, batch_kind k, int n, const char *const *params, db_cb cb, void *arg) {
  worker *w = j->w;
  batch_item *it = calloc(1, sizeof(*it));
  char epoch[24];
  snprintf(epoch, sizeof(epoch), "%lld", j->epoch);
  if (!it || k < 0 || k >= BATCH_KINDS || n + 2 > BATCH_MAX_PARAMS ||
      n + 2 != (k == BATCH_STEP_BEGIN ? 3 : 6)) {
    free(it);
    return -1;
  }
  it->j = j;
  it->cb = cb;
  it->arg = arg;
  for (it->n = 0; it->n < n + 2; it->n++) {
    const char *v = it->n == 0 ? j->id : it->n == 1 ? epoch : params[it->n - 2];
    if (v && !(it->p[it->n] = strdup(v))) {
      item_free(it);
      return -1;
    }
  }
  batch_queue *q = &w->batches[k];
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  q->queued++;
  flush(w, k);
  return 0;
}
