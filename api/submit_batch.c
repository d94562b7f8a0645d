/* submit_batch.c — group commit of POST /v1/jobs.
 *
 * Submissions that arrive together share one call of genq_submit_jobs()
 * (schema/functions/jobs.sql): one statement, one transaction, one commit,
 * one row answered per submission. A submission waits only while batches
 * are in flight: it goes when nothing of ours is in flight, when fewer
 * than API_SUBMIT_INFLIGHT_MAX batches are and a connection is idle, or
 * when the queue holds a full batch (API_SUBMIT_BATCH_MAX). "Goes" means at
 * the end of the loop's current turn (a check handle), with every other
 * submission read in that turn: the requests that arrived together share a
 * batch instead of the first going alone. There is no timer, so a lone
 * submission waits for nothing but its own turn's end.
 *
 * A batch locks its users' account rows until it commits, so a user's
 * submissions never go while a batch of this process with that user is in
 * flight: they wait for its answer and go together in the next batch
 * (batches of one process never wait on each other's account locks, and
 * one busy user's submissions gather into big batches). So every waiting
 * submission has a batch in flight ahead of it — nothing waits while
 * nothing is in flight, and a waiting user is in flight — and each batch's
 * answer sends what waited on it. Within a user, submissions keep their
 * arrival order.
 *
 * Each submission keeps its own outcome: the database checks every one
 * first and writes only those that passed, so one 402, 400 or 409 leaves
 * the others untouched. A failure of the whole call (the connection, the
 * queue) is every submission's answer, and none of them was written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "queue.h"

/* At most this many submissions per call: the batch's transaction holds
 * its users' account rows until it commits. */
#define API_SUBMIT_BATCH_MAX 64

/* At most this many batches in flight (unless the queue holds a full
 * batch): PostgreSQL's cost of a submission falls steeply with the size of
 * its batch (one backend: about 1.6 ms of CPU for a batch of one, 0.55 ms
 * a submission in a batch of eight), so under load a few big batches beat
 * one per idle connection. */
#define API_SUBMIT_INFLIGHT_MAX 2

/* How far past the users in flight a batch looks for more submissions. */
#define API_SUBMIT_SCAN_MAX (4 * API_SUBMIT_BATCH_MAX)

typedef struct submit_item {
  struct submit_item *next;
  http_request *req;
  char kind[16];
  char *user;
  char *json; /* the submission as genq_submit_jobs reads it */
  size_t len;
} submit_item;

typedef struct submit_call {
  struct submit_call *next, *prev; /* the calls in flight */
  api_ctx *ctx;
  submit_item *items; /* in batch order */
  unsigned n;
} submit_call;

struct api_submits {
  submit_item *head, *tail;
  unsigned queued;
  unsigned inflight;
  submit_call *calls;
  uv_check_t turn_end; /* sends what this turn of the loop queued */
};

static void item_free(submit_item *it) {
  free(it->user);
  free(it->json);
  free(it);
}

/* 1 when a batch in flight has this user */
static int user_busy(const struct api_submits *q, const char *user) {
  for (const submit_call *c = q->calls; c; c = c->next)
    for (const submit_item *it = c->items; it; it = it->next)
      if (strcmp(it->user, user) == 0) return 1;
  return 0;
}

/* ---- answers ---- */

static void reply_refused(http_request *req, const char *st, const char *message,
                          const char *column) {
  if (strcmp(st, "GQ400") == 0) {
    /* an input the database refused: the column names the field, the
     * message says what is wrong with it */
    const char *m = message;
    if (!column || strncmp(column, "input.", 6) != 0 || !m || !*m) m = "input: refused";
    api_reply_error(req, 400, "invalid_input", m, NULL);
  } else if (strcmp(st, "GQ402") == 0) {
    api_reply_error(req, 402, "insufficient_credits", "not enough credits available for this job",
                    NULL);
  } else if (strcmp(st, "GQ4D2") == 0) { /* a refund left a debt (schema/functions/stripe.sql) */
    api_reply_error(req, 402, "credit_debt",
                    "a refund took back credits already spent: buy credits to pay the debt "
                    "before submitting (GET /v1/credits shows it)",
                    NULL);
  } else if (strcmp(st, "GQ429") == 0) {
    api_reply_limit(req, column, message); /* a usage limit of the plan (limits.c) */
  } else if (strcmp(st, "GQ401") == 0) {   /* DELETE /v1/me (schema/functions/privacy.sql) */
    api_reply_error(req, 401, "account_deleted", "the account is deleted", NULL);
  } else if (strcmp(st, "GQ409") == 0) {
    api_reply_error(req, 409, "idempotency_conflict",
                    "Idempotency-Key was already used with a different request", NULL);
  } else {
    db_result r = {.ok = 0, .sqlstate = st, .error = message, .message = message, .column = column};
    api_reply_db_error(req, &r);
  }
}

static void reply_row(api_ctx *ctx, submit_item *it, PGresult *res, int row) {
  http_request *req = it->req;
  if (!PQgetisnull(res, row, 3)) {
    reply_refused(req, PQgetvalue(res, row, 3), PQgetvalue(res, row, 4),
                  PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5));
    return;
  }
  if (PQgetisnull(res, row, 0)) {
    api_reply_error(req, 500, "internal", "internal error", NULL);
    return;
  }
  const char *job = PQgetvalue(res, row, 0);
  int created = strcmp(PQgetvalue(res, row, 1), "t") == 0;
  if (created) {
    const char *id = PQgetvalue(res, row, 2);
    relay_job(ctx->relay, it->kind, id);
    queue_publish_change(ctx->redis, id);
    api_metrics_submitted(ctx, it->kind);
    log_info("job submitted", LS("request_id", http_req_id(req)), LS("job_id", id),
             LS("kind", it->kind));
  }
  if (created) {
    api_reply_json_text(req, 202, job, strlen(job));
    return;
  }
  /* An idempotent replay answers as the first answer did, 202, with the job
   * as it is now (so a client retrying a submit learns how far it got), and
   * says it is a replay as Stripe does. */
  static const char *const replayed[] = {"Cache-Control: no-store", "Idempotent-Replayed: true",
                                         NULL};
  http_respond(req, 202, "application/json", replayed, job, strlen(job));
}

static void submit_flush(api_ctx *ctx);
static void call_unlink(struct api_submits *q, submit_call *call);

static void submitted(const db_result *r, void *arg) {
  submit_call *call = arg;
  api_ctx *ctx = call->ctx;
  int rows = r->ok ? PQntuples(r->res) : 0;
  if (r->ok && rows != (int)call->n)
    log_error("submit batch: rows do not match the batch", LI("rows", rows), LI("batch", call->n));
  int i = 0;
  submit_item *it = call->items;
  while (it) {
    submit_item *next = it->next;
    if (!r->ok)
      api_reply_db_error(it->req, r);
    else if (rows != (int)call->n || atoi(PQgetvalue(r->res, i, 6)) != i + 1)
      api_reply_error(it->req, 500, "internal", "internal error", NULL);
    else
      reply_row(ctx, it, r->res, i);
    item_free(it);
    it = next;
    i++;
  }
  call_unlink(ctx->submits, call);
  free(call);
  submit_flush(ctx);
}

/* ---- batching ---- */

static void fail_items(submit_item *it) {
  static const char *const retry[] = {"Retry-After: 1", NULL};
  while (it) {
    submit_item *next = it->next;
    api_reply_error(it->req, 503, "unavailable", "the database is overloaded; nothing was changed",
                    retry);
    item_free(it);
    it = next;
  }
}

/* Takes up to API_SUBMIT_BATCH_MAX waiting submissions of users not in
 * flight out of the queue, in order; returns them as a list (NULL: none). */
static submit_item *submit_take(struct api_submits *q, unsigned *n, size_t *len) {
  submit_item *items = NULL, **tail = &items, **link = &q->head, *prev = NULL;
  unsigned scanned = 0;
  *n = 0;
  *len = 2;
  while (*link && *n < API_SUBMIT_BATCH_MAX && scanned++ < API_SUBMIT_SCAN_MAX) {
    submit_item *it = *link;
    if (q->calls && user_busy(q, it->user)) {
      prev = it;
      link = &it->next;
      continue;
    }
    *link = it->next;
    if (q->tail == it) q->tail = prev;
    it->next = NULL;
    *tail = it;
    tail = &it->next;
    (*n)++;
    *len += it->len + 1;
  }
  q->queued -= *n;
  return items;
}

static void call_unlink(struct api_submits *q, submit_call *call) {
  if (call->prev)
    call->prev->next = call->next;
  else
    q->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  q->inflight--;
}

/* Sends the next batch as one call; 0 when nothing could go. */
static int submit_send(api_ctx *ctx) {
  struct api_submits *q = ctx->submits;
  unsigned n;
  size_t len;
  submit_item *items = submit_take(q, &n, &len);
  if (!items) return 0;
  submit_call *call = calloc(1, sizeof(*call));
  char *batch = call ? malloc(len + 1) : NULL;
  if (!batch) {
    free(call);
    fail_items(items);
    return 1;
  }
  char *p = batch;
  *p++ = '[';
  for (submit_item *it = items; it; it = it->next) {
    if (it != items) *p++ = ',';
    memcpy(p, it->json, it->len);
    p += it->len;
  }
  *p++ = ']';
  *p = '\0';
  call->ctx = ctx;
  call->items = items;
  call->n = n;
  /* in flight from here: db_query may answer before it returns */
  call->next = q->calls;
  if (q->calls) q->calls->prev = call;
  q->calls = call;
  q->inflight++;
  const char *params[1] = {batch};
  int rc = db_query(ctx->db,
                    "select job, created, job->>'id', err_state, err_message, err_field, ord "
                    "from genq_submit_jobs($1::jsonb)",
                    1, params, submitted, call);
  free(batch);
  if (rc != 0) {
    call_unlink(q, call);
    free(call);
    fail_items(items);
  }
  return 1;
}

static void submit_flush(api_ctx *ctx) {
  struct api_submits *q = ctx->submits;
  while (q->queued > 0 &&
         (q->inflight == 0 || (q->inflight < API_SUBMIT_INFLIGHT_MAX && db_idle(ctx->db) > 0) ||
          q->queued >= API_SUBMIT_BATCH_MAX))
    if (!submit_send(ctx)) break;
}

static void on_turn_end(uv_check_t *h) {
  uv_check_stop(h);
  submit_flush(h->data);
}

int api_submit_enqueue(api_ctx *ctx, http_request *req, const char *user, const char *kind,
                       cJSON *submission) {
  if (!ctx->submits) {
    if (!(ctx->submits = calloc(1, sizeof(*ctx->submits)))) return -1;
    uv_check_init(ctx->loop, &ctx->submits->turn_end);
    ctx->submits->turn_end.data = ctx;
  }
  submit_item *it = calloc(1, sizeof(*it));
  char *json = cJSON_PrintUnformatted(submission);
  if (!it || !json) {
    free(it);
    free(json);
    return -1;
  }
  it->req = req;
  snprintf(it->kind, sizeof(it->kind), "%s", kind);
  it->json = json;
  it->len = strlen(json);
  if (!(it->user = strdup(user))) {
    item_free(it);
    return -1;
  }
  struct api_submits *q = ctx->submits;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  q->queued++;
  if (!uv_is_active((uv_handle_t *)&q->turn_end)) uv_check_start(&q->turn_end, on_turn_end);
  return 0;
}

static void on_submits_closed(uv_handle_t *h) {
  free(h->data);
}

void api_submits_free(api_ctx *ctx) {
  if (!ctx->submits) return;
  /* nothing is left: the loop ran until every request was answered */
  for (submit_item *it = ctx->submits->head, *next; it; it = next) {
    next = it->next;
    item_free(it);
  }
  /* the check handle is closed by one more (short) run of the loop */
  ctx->submits->turn_end.data = ctx->submits;
  uv_close((uv_handle_t *)&ctx->submits->turn_end, on_submits_closed);
  ctx->submits = NULL;
  uv_run(ctx->loop, UV_RUN_DEFAULT);
}
