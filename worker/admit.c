/* admit.c — a provider slot before the claim (docs/providers.md).
 *
 * When the provider of a job's first step is limited fleet-wide
 * (provlimit.c), the worker that read the job's stream message takes that
 * step's slot before it claims the job. Until then the job is only a
 * message this worker holds pending: in PostgreSQL it is still queued, so
 * the API shows it queued with its queue_position, and it holds no lease
 * and spends no attempt. Once the slot is granted the job is claimed like
 * any other (fetch.c) and its first step adopts the slot (provlimit_acquire).
 *
 *   admit_take → genq_jobs_fair_share (user and weight: one statement for
 *   the jobs of one read) → the acquire script, asked again on the
 *   admission's timer while no slot is free → fetch.c's claim
 *
 * A waiting job counts against --concurrency (it is in the in-flight list,
 * unclaimed). Its message stays pending under this worker: every 10 s
 * XCLAIM ... JUSTID resets its idle time, so that no worker's XAUTOCLAIM
 * (fetch.c, 30 s) takes it while this one lives; when this worker dies,
 * another reclaims it. Going quiet or stopping puts each back on its
 * stream; a cancel notice drops it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "queue.h"
#include "worker.h"

#define ADMIT_TOUCH_MS 10000
#define ADMIT_SHARE_MAX 256 /* jobs per genq_jobs_fair_share statement */

typedef enum { ADMIT_WAIT, ADMIT_CLAIM, ADMIT_GIVE_BACK, ADMIT_DROP } admit_end;

typedef struct wadmit {
  wjob *j;
  struct wadmit *prev, *next; /* w->admits */
  uv_timer_t timer;           /* the next ask */
  void (*claim)(wjob *j, const char *msg_id);
  prov_id p;
  int asks;
  int started;       /* its user was asked for (share_send) */
  int busy;          /* a statement or an ask is out: its answer goes on */
  admit_end pending; /* how it ends once the answer is in */
  char msg_id[48];
} wadmit;

static void ask(wadmit *a);
static void share_send(worker *w, wadmit *only);

static void closed(uv_handle_t *h) {
  free(h->data);
}

/* Off the waiting list and away from its job. */
static void unlink_admit(wadmit *a) {
  wjob *j = a->j;
  worker *w = j->w;
  if (a->prev) a->prev->next = a->next;
  if (a->next) a->next->prev = a->prev;
  if (w->admits == a) w->admits = a->next;
  w->nadmits--;
  j->admit = NULL;
  a->j = NULL;
  uv_timer_stop(&a->timer);
}

static void free_admit(wadmit *a) {
  uv_close((uv_handle_t *)&a->timer, closed);
}

/* Leaves the waiting list and ends as `how` says; with an answer still
 * out, once it is in. */
static void end(wadmit *a, admit_end how) {
  if (a->busy) {
    a->pending = how;
    return;
  }
  wjob *j = a->j;
  worker *w = j->w;
  char msg_id[sizeof a->msg_id];
  memcpy(msg_id, a->msg_id, sizeof msg_id);
  void (*claim)(wjob *, const char *) = a->claim;
  prov_id p = a->p;
  unlink_admit(a);
  free_admit(a);
  switch (how) {
  case ADMIT_CLAIM:
    j->pre_slot = (uint8_t)(p + 1);
    claim(j, msg_id);
    break;
  case ADMIT_GIVE_BACK:
    /* XADD before XACK+XDEL on one connection: a crash between them
     * leaves a duplicate, never a loss */
    queue_dispatch(w->redis, j->kind, j->id, NULL, NULL);
    queue_done(w->redis, j->kind, msg_id, NULL, NULL);
    runner_job_finish(j);
    break;
  default:
    queue_done(w->redis, j->kind, msg_id, NULL, NULL);
    runner_job_finish(j);
  }
}

/* An answer came in: the end asked meanwhile, or the worker no longer
 * takes jobs. 1 when the admission ended. */
static int ended_meanwhile(wadmit *a, int granted) {
  worker *w = a->j->w;
  admit_end how = a->pending;
  if (how == ADMIT_WAIT && w->state != WORKER_RUNNING) how = ADMIT_GIVE_BACK;
  if (how == ADMIT_WAIT) return 0;
  if (granted == 1) provlimit_free(a->j, a->p, a->j->pre_step);
  a->pending = ADMIT_WAIT;
  end(a, how);
  return 1;
}

static void tick(uv_timer_t *t) {
  wadmit *a = t->data;
  if (a->j->user)
    ask(a);
  else
    share_send(a->j->w, a);
}

static void later(wadmit *a, long ms) {
  uv_timer_start(&a->timer, tick, (uint64_t)provlimit_wait_ms(ms), 0);
}

static void answered(redisReply *reply, const char *err, void *arg) {
  wadmit *a = arg;
  a->busy = 0;
  if (!a->j) { /* its job left meanwhile (the grace ran out): a slot granted lapses */
    free_admit(a);
    return;
  }
  long long wait = 0;
  int granted = provlimit_answer(reply, &wait);
  if (ended_meanwhile(a, granted)) return;
  if (granted == 1) {
    end(a, ADMIT_CLAIM);
    return;
  }
  if (granted < 0) {
    log_warn("provider slot: Redis did not answer, asking again", LS("job_id", a->j->id),
             LS("provider", provlimit_name(a->p)),
             LS("error", err ? err : (reply && reply->str ? reply->str : "bad reply")));
    later(a, PROVLIMIT_ERROR_WAIT_MS);
    return;
  }
  if (a->asks++ == 0)
    log_info("waiting for a provider slot, still queued", LS("job_id", a->j->id),
             LS("step", a->j->pre_step), LS("provider", provlimit_name(a->p)), LI("wait_ms", wait));
  later(a, wait > 0 ? (long)wait : PROVLIMIT_FULL_WAIT_MS);
}

static void ask(wadmit *a) {
  char m[PROVLIMIT_MEMBER_MAX];
  provlimit_member(a->j, a->j->pre_step, m, sizeof m);
  if (provlimit_ask(a->j, a->p, m, answered, a) != 0) {
    later(a, PROVLIMIT_ERROR_WAIT_MS);
    return;
  }
  a->busy = 1;
}

/* ---- whose turn: the jobs' users and weights ---- */

typedef struct {
  int n;
  wadmit *a[];
} share_batch;

static void share_read(const db_result *r, void *arg) {
  share_batch *b = arg;
  int rows = r->ok ? PQntuples(r->res) : 0;
  for (int i = 0; i < b->n; i++) {
    wadmit *a = b->a[i];
    wjob *j = a->j;
    a->busy = 0;
    if (!j) { /* its job left meanwhile */
      free_admit(a);
      continue;
    }
    int row = -1;
    for (int k = 0; k < rows && row < 0; k++)
      if (strcasecmp(PQgetvalue(r->res, k, 0), j->id) == 0) row = k;
    if (row >= 0 && !j->user) {
      j->user = strdup(PQgetvalue(r->res, row, 1));
      j->weight = atoi(PQgetvalue(r->res, row, 2));
    }
    if (ended_meanwhile(a, 0)) continue;
    if (r->ok && row < 0) { /* no such job any more: nothing to run */
      log_debug("job gone before its claim, message dropped", LS("job_id", j->id));
      end(a, ADMIT_DROP);
    } else if (!j->user) {
      log_warn("provider slot: the job's user not read, asking again", LS("job_id", j->id),
               LS("error", r->ok ? "out of memory" : r->error));
      later(a, PROVLIMIT_ERROR_WAIT_MS);
    } else {
      ask(a);
    }
  }
  free(b);
}

/* One statement for `only`, or for every admission that has not asked
 * yet: those admit_take took from one read, at the head of the list. */
static void share_send(worker *w, wadmit *only) {
  wadmit *a = only ? only : w->admits;
  while (a && (only || !a->started)) {
    share_batch *b = malloc(sizeof(*b) + ADMIT_SHARE_MAX * sizeof(wadmit *));
    const char *ids[ADMIT_SHARE_MAX];
    if (!b) {
      for (; a && (only || !a->started); a = only ? NULL : a->next) {
        a->started = 1;
        later(a, PROVLIMIT_ERROR_WAIT_MS);
      }
      return;
    }
    b->n = 0;
    for (; a && (only || !a->started) && b->n < ADMIT_SHARE_MAX; a = only ? NULL : a->next) {
      a->started = 1;
      ids[b->n] = a->j->id;
      b->a[b->n++] = a;
    }
    char *arr = db_array_literal(ids, b->n);
    const char *p[1] = {arr};
    if (!arr || db_query(w->db, "select id, user_id, weight from genq_jobs_fair_share($1::uuid[])",
                         1, p, share_read, b) != 0) {
      for (int i = 0; i < b->n; i++)
        later(b->a[i], PROVLIMIT_ERROR_WAIT_MS);
      free(b);
    } else {
      for (int i = 0; i < b->n; i++)
        b->a[i]->busy = 1;
    }
    free(arr);
  }
}

/* ---- the waiting messages ---- */

static void touch(uv_timer_t *t) {
  worker *w = t->data;
  if (!w->nadmits || w->redis_closed) return;
  const char *ids[QUEUE_TOUCH_MAX];
  for (int k = 0; k < w->nkinds; k++) {
    int n = 0;
    for (wadmit *a = w->admits; a; a = a->next) {
      if (strcmp(a->j->kind, w->kinds[k]) != 0) continue;
      ids[n++] = a->msg_id;
      if (n == QUEUE_TOUCH_MAX) {
        queue_touch(w->redis, w->id, w->kinds[k], ids, n);
        n = 0;
      }
    }
    if (n) queue_touch(w->redis, w->id, w->kinds[k], ids, n);
  }
}

int admit_take(worker *w, wjob *j, const char *msg_id, void (*claim)(wjob *j, const char *msg_id)) {
  job_kind k;
  prov_id p;
  const char *provider = NULL, *step;
  if (job_kind_parse(j->kind, &k) != 0 || !(step = job_kind_first_step(k, &provider)) ||
      provlimit_parse(provider, &p) != 0 || !provlimit_on(w, p))
    return 0;
  wadmit *a = calloc(1, sizeof(*a));
  if (!a) return 0; /* claimed at once: its step waits for the slot instead */
  a->j = j;
  a->claim = claim;
  a->p = p;
  snprintf(a->msg_id, sizeof a->msg_id, "%s", msg_id);
  uv_timer_init(w->loop, &a->timer);
  a->timer.data = a;
  a->next = w->admits;
  if (w->admits) w->admits->prev = a;
  w->admits = a;
  w->nadmits++;
  j->admit = a;
  j->pre_step = step;
  return 1;
}

void admit_flush(worker *w) {
  share_send(w, NULL);
}

int admit_holds(worker *w, const char *id, const char *kind, const char *msg_id) {
  wjob *j = runner_job_lookup(w, id);
  if (!j || !j->admit) return 0;
  wadmit *a = j->admit;
  if (strcmp(a->msg_id, msg_id) != 0) {
    /* another message of the same job (sent again after Redis lost its
     * data): keep the newer, which surely is on the stream */
    queue_done(w->redis, kind, a->msg_id, NULL, NULL);
    snprintf(a->msg_id, sizeof a->msg_id, "%s", msg_id);
  }
  return 1;
}

void admit_give_back(worker *w) {
  if (w->nadmits)
    log_info("jobs waiting for a provider slot go back to their queues", LI("jobs", w->nadmits));
  for (wadmit *a = w->admits, *next; a; a = next) {
    next = a->next;
    end(a, ADMIT_GIVE_BACK);
  }
}

int admit_cancel(worker *w, const char *id) {
  wjob *j = runner_job_lookup(w, id);
  if (!j || !j->admit) return 0;
  log_info("job canceled while it waited for a provider slot", LS("job_id", id));
  end(j->admit, ADMIT_DROP);
  return 1;
}

void admit_waiting(const worker *w, uint64_t out[PROV_COUNT]) {
  for (const wadmit *a = w->admits; a; a = a->next)
    if (a->p < PROV_COUNT) out[a->p]++;
}

void admit_claimed(wjob *j) {
  if (!j->pre_slot) return;
  const cJSON *s;
  cJSON_ArrayForEach(s, j->steps) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "name");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "status");
    if (cJSON_IsString(name) && strcmp(name->valuestring, j->pre_step) == 0 && cJSON_IsString(st) &&
        strcmp(st->valuestring, "succeeded") == 0) {
      provlimit_free(j, (prov_id)(j->pre_slot - 1), j->pre_step);
      j->pre_slot = 0;
    }
  }
}

void admit_job_ended(wjob *j) {
  wadmit *a = j->admit;
  if (a) { /* left before its admission ended (the grace ran out while it asked) */
    unlink_admit(a);
    if (!a->busy) free_admit(a); /* else its answer frees it */
  }
  if (j->pre_slot) { /* never adopted: the claim was refused, or the job ended first */
    provlimit_free(j, (prov_id)(j->pre_slot - 1), j->pre_step);
    j->pre_slot = 0;
  }
}

void admit_start(worker *w) {
  w->job_ended = admit_job_ended;
  uv_timer_init(w->loop, &w->admit_timer);
  w->admit_timer.data = w;
  for (int p = 0; p < PROV_COUNT; p++)
    if (provlimit_on(w, (prov_id)p)) {
      uv_timer_start(&w->admit_timer, touch, ADMIT_TOUCH_MS, ADMIT_TOUCH_MS);
      break;
    }
}
