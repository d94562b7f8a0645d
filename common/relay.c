/* relay.c — committed jobs into Redis (see relay.h). */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"

#define RELAY_BATCH 256        /* ids per mark-dispatched UPDATE */
#define RELAY_SCAN_LIMIT "500" /* jobs per scan */
#define RELAY_FLUSH_MS 20
#define RELAY_LOCK_KEY "genq:{q}:relay-lock"
#define RELAY_INCARNATION_KEY "genq:{q}:incarnation"

struct relay {
  db *db;
  rds *redis;
  uv_timer_t scan_timer;
  uv_timer_t flush_timer;
  unsigned interval_ms, grace_ms;
  int scanning;    /* a scan is under way */
  int outstanding; /* callbacks not yet returned */
  int stopping;
  int closed_handles;
  char token[33]; /* a fresh candidate incarnation token for each scan */
  struct mark {
    char id[37];
    long long gen; /* the job's dispatch generation when it was sent */
  } * marks;       /* dispatched, not yet marked */
  int nmarks;
};

typedef struct {
  relay *rl;
  char id[37];
  long long gen;
} send_ctx;

static void maybe_free(relay *rl) {
  if (rl->stopping && rl->outstanding == 0 && rl->closed_handles == 2) {
    free(rl->marks);
    free(rl);
  }
}

/* ---- marking dispatched, batched ---- */

static void mark_done(const db_result *r, void *arg) {
  relay *rl = arg;
  rl->outstanding--;
  if (!r->ok) log_warn("relay mark failed", LS("error", r->error));
  maybe_free(rl);
}

/* One UPDATE for the batch: genq_mark_dispatched($ids, $gens) with two
 * PostgreSQL array literals. A mark that cannot be written only means the
 * scan sends the job once more. */
static void flush_marks(relay *rl) {
  int n = rl->nmarks;
  rl->nmarks = 0;
  if (n == 0) return;
  char *ids = malloc((size_t)n * 37 + 3), *gens = malloc((size_t)n * 21 + 3);
  if (ids && gens) {
    size_t io = 0, eo = 0;
    ids[io++] = '{';
    gens[eo++] = '{';
    for (int i = 0; i < n; i++) {
      if (i) {
        ids[io++] = ',';
        gens[eo++] = ',';
      }
      memcpy(ids + io, rl->marks[i].id, 36);
      io += 36;
      eo += (size_t)snprintf(gens + eo, 21, "%lld", rl->marks[i].gen);
    }
    ids[io++] = '}';
    ids[io] = 0;
    gens[eo++] = '}';
    gens[eo] = 0;
    const char *params[2] = {ids, gens};
    if (db_query(rl->db, "select genq_mark_dispatched($1::uuid[], $2::bigint[])", 2, params,
                 mark_done, rl) == 0)
      rl->outstanding++;
  }
  free(ids);
  free(gens);
}

static void flush_cb(uv_timer_t *t) {
  flush_marks(t->data);
}

static void add_mark(relay *rl, const char *id, long long gen) {
  if (rl->stopping) return;
  memcpy(rl->marks[rl->nmarks].id, id, 37);
  rl->marks[rl->nmarks++].gen = gen;
  if (rl->nmarks == RELAY_BATCH)
    flush_marks(rl);
  else if (!uv_is_active((uv_handle_t *)&rl->flush_timer))
    uv_timer_start(&rl->flush_timer, flush_cb, RELAY_FLUSH_MS, 0);
}

/* ---- sending ---- */

static void sent(const char *err, void *arg) {
  send_ctx *s = arg;
  relay *rl = s->rl;
  rl->outstanding--;
  if (err)
    log_warn("relay dispatch failed", LS("job_id", s->id), LS("error", err));
  else
    add_mark(rl, s->id, s->gen);
  free(s);
  maybe_free(rl);
}

static void send_job(relay *rl, const char *kind, const char *job_id, long long gen) {
  if (rl->stopping || strlen(job_id) != 36) return;
  send_ctx *s = malloc(sizeof(*s));
  if (!s) return;
  s->rl = rl;
  s->gen = gen;
  memcpy(s->id, job_id, 37);
  if (queue_dispatch(rl->redis, kind, job_id, sent, s) != 0) {
    free(s); /* Redis down: the scan will send it */
    return;
  }
  rl->outstanding++;
}

void relay_job(relay *rl, const char *kind, const char *job_id) {
  send_job(rl, kind, job_id, 0); /* just committed: dispatch generation 0 */
}

void relay_job_gen(relay *rl, const char *kind, const char *job_id, long long gen) {
  send_job(rl, kind, job_id, gen);
}

/* ---- the periodic scan ---- */

static void scan_rows(const db_result *r, void *arg) {
  relay *rl = arg;
  rl->outstanding--;
  rl->scanning = 0;
  if (!r->ok) {
    log_warn("relay scan failed", LS("error", r->error));
  } else {
    int n = PQntuples(r->res);
    if (n > 0) log_info("relay dispatching undispatched jobs", LI("count", n));
    for (int i = 0; i < n; i++)
      send_job(rl, PQgetvalue(r->res, i, 1), PQgetvalue(r->res, i, 0),
               strtoll(PQgetvalue(r->res, i, 2), NULL, 10));
  }
  maybe_free(rl);
}

/* The scan proper: PostgreSQL clears every dispatch mark when the
 * incarnation changed (genq_relay_scan), and the scan sends those jobs. */
static void scan_sql(relay *rl, const char *incarnation) {
  char grace[16];
  snprintf(grace, sizeof(grace), "%u", rl->grace_ms);
  const char *params[3] = {grace, RELAY_SCAN_LIMIT, incarnation};
  if (db_query(rl->db, "select id, kind, gen from genq_relay_scan($1::int, $2::int, $3)", 3, params,
               scan_rows, rl) == 0)
    rl->outstanding++;
  else
    rl->scanning = 0;
}

/* Redis's run_id changes with every restart, even one that kept its data:
 * a restart from a snapshot or a lazily synced append-only file may have
 * lost the newest messages, so it counts as a new incarnation too. */
static void info_reply(redisReply *reply, const char *err, void *arg) {
  relay *rl = arg;
  rl->outstanding--;
  const char *id = NULL;
  if (!rl->stopping && !err && reply && reply->type == REDIS_REPLY_STRING)
    id = strstr(reply->str, "run_id:");
  size_t n = id ? strspn(id + 7, "0123456789abcdef") : 0;
  if (n == 0 || n > 64) {
    if (!rl->stopping && !err) log_warn("relay: no run_id in INFO server", LOG_END);
    rl->scanning = 0;
    maybe_free(rl);
    return;
  }
  char incarnation[64 + 1 + sizeof(rl->token)];
  snprintf(incarnation, sizeof(incarnation), "%.*s/%s", (int)n, id + 7, rl->token);
  scan_sql(rl, incarnation);
  maybe_free(rl);
}

/* Redis's incarnation token: ours when it had none (it lost its data, or
 * this is the first scan ever), else the one it keeps. */
static void incarnation_reply(redisReply *reply, const char *err, void *arg) {
  relay *rl = arg;
  rl->outstanding--;
  int ok = 0;
  if (!rl->stopping && !err && reply) {
    if (reply->type == REDIS_REPLY_NIL) {
      ok = 1; /* set now: Redis had none; rl->token is it */
    } else if (reply->type == REDIS_REPLY_STRING && reply->len > 0 &&
               reply->len < sizeof(rl->token)) {
      memcpy(rl->token, reply->str, reply->len);
      rl->token[reply->len] = '\0';
      ok = 1;
    }
  }
  if (!ok && !rl->stopping && err == NULL)
    log_warn("relay: unexpected incarnation reply", LI("type", reply ? reply->type : -1));
  if (ok && rds_command(rl->redis, info_reply, rl, "INFO server") == 0) {
    rl->outstanding++;
  } else {
    rl->scanning = 0;
  }
  maybe_free(rl);
}

static void lock_reply(redisReply *reply, const char *err, void *arg) {
  relay *rl = arg;
  rl->outstanding--;
  if (rl->stopping || err || !reply || reply->type != REDIS_REPLY_STATUS) {
    rl->scanning = 0; /* not ours this round (or Redis down: nothing to send to) */
    maybe_free(rl);
    return;
  }
  /* SET NX GET (Redis 7): the existing token, or nil when ours was set.
   * Fresh each time: after a flush this process must not bring back the
   * token PostgreSQL already knows. */
  unsigned char raw[16];
  if (uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL) != 0) {
    rl->scanning = 0;
    maybe_free(rl);
    return;
  }
  for (size_t i = 0; i < sizeof(raw); i++)
    snprintf(rl->token + 2 * i, 3, "%02x", raw[i]);
  if (rds_command(rl->redis, incarnation_reply, rl, "SET " RELAY_INCARNATION_KEY " %s NX GET",
                  rl->token) == 0)
    rl->outstanding++;
  else
    rl->scanning = 0;
}

static void scan_cb(uv_timer_t *t) {
  relay *rl = t->data;
  if (rl->scanning || rl->stopping) return;
  rl->scanning = 1;
  if (rds_command(rl->redis, lock_reply, rl, "SET " RELAY_LOCK_KEY " 1 NX PX %u",
                  rl->interval_ms > 100 ? rl->interval_ms - 50 : rl->interval_ms) == 0)
    rl->outstanding++;
  else
    rl->scanning = 0;
}

int relay_start(relay **out, uv_loop_t *loop, db *d, rds *r, unsigned interval_ms,
                unsigned grace_ms) {
  relay *rl = calloc(1, sizeof(*rl));
  if (!rl) return -1;
  rl->marks = calloc(RELAY_BATCH, sizeof(*rl->marks));
  if (!rl->marks) {
    free(rl);
    return -1;
  }
  rl->db = d;
  rl->redis = r;
  rl->interval_ms = interval_ms ? interval_ms : 1000;
  rl->grace_ms = grace_ms;
  uv_timer_init(loop, &rl->scan_timer);
  uv_timer_init(loop, &rl->flush_timer);
  rl->scan_timer.data = rl;
  rl->flush_timer.data = rl;
  uv_timer_start(&rl->scan_timer, scan_cb, rl->interval_ms, rl->interval_ms);
  *out = rl;
  return 0;
}

static void closed(uv_handle_t *h) {
  relay *rl = h->data;
  rl->closed_handles++;
  maybe_free(rl);
}

void relay_stop(relay *rl) {
  if (!rl || rl->stopping) return;
  flush_marks(rl); /* best effort: unmarked jobs are only sent twice */
  rl->stopping = 1;
  uv_close((uv_handle_t *)&rl->scan_timer, closed);
  uv_close((uv_handle_t *)&rl->flush_timer, closed);
}
