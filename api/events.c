/* events.c — GET /v1/jobs/{id}/events: a job's changes as server-sent events.
 *
 * Whoever commits a change of a job PUBLISHes its id on QUEUE_EVENTS_CHANNEL
 * (queue_publish_change). This process keeps one subscription to it, which
 * also keeps the job cache fresh (ctx->jobs, common/job_cache.h): a notice
 * drops the job from the cache, then wakes the open streams of that job (a
 * hash table keyed by job id). Each reads the job through the cache — so the
 * streams of one job share one read of PostgreSQL — and sends it when its
 * text differs from what it sent last. While the subscription is down the
 * cache keeps nothing and every stream re-reads on its 5 s tick; once Redis
 * confirms the subscription again, the cache starts empty and every stream
 * reads once. With the subscription up, a stream re-reads only every 30 s
 * (a writer that died between its commit and its notice), so PostgreSQL's
 * load does not grow with the number of quiet streams.
 * A stream ends once it has sent a terminal status, when the job stops
 * being visible to its user, or when its client leaves.
 *
 * Wire format, per event: "event: job\ndata: <job JSON on one line>\n
 * id: <n>\n\n", n counting from 1 within the stream; ": ping\n\n" after
 * about 15 s of silence keeps proxies from timing the connection out.
 *
 * Lifetimes: a stream is freed only when it is closing, its timer's close
 * callback has run, no read is outstanding (a read has no cancel) and
 * nobody on the stack holds a pin on it — a read may call back before it
 * returns, so code that starts one pins what it walks. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "job.h"
#include "log.h"
#include "queue.h"

#define EV_BUCKETS 4096   /* power of two */
#define EV_TICK_MS 5000   /* ping check, and re-read while notices may be lost */
#define EV_REREAD_TICKS 6 /* re-read every 30 s while notices arrive */
#define EV_PING_MS 15000  /* silence before a ping */
#define EV_ID_LEN 36

typedef struct ev_stream ev_stream;
struct ev_stream {
  ev_stream *prev, *next; /* bucket chain, while linked */
  ev_stream *run_next;    /* notice dispatch list */
  api_ctx *ctx;
  http_request *req; /* NULL once released */
  uv_timer_t timer;
  char job_id[EV_ID_LEN + 1]; /* lower case, as writers publish it */
  char user[sizeof(((api_user *)0)->user)];
  char key_id[API_KEY_ID_LEN]; /* opened with this API key; "" with a session token */
  long long exp;               /* the token's expiry: the stream ends at the first tick past it */
  char *last;                  /* the job JSON sent last */
  size_t last_len;
  unsigned long seq; /* events sent */
  unsigned ticks;    /* since the last read */
  uint64_t last_write_ms;
  char slot[API_SLOT_NAME_MAX]; /* its place in the user's count (stream_slots.c) */
  int slotted;                  /* holds it: give it back at the end */
  int begun;                    /* the stream's head is out */
  int fetching;                 /* a db_query callback is outstanding */
  int again;                    /* a notice came during the fetch: read once more */
  int closing, linked, timer_open, pins;
};

/* The module's state, ctx->events: from api_events_start to api_events_stop. */
struct api_events {
  api_ctx *ctx;
  rds *sub; /* the subscription */
  int live; /* Redis confirmed it and it has not gone down since */
  unsigned nstreams;
  unsigned opened;  /* spreads the streams' timers */
  uv_timer_t renew; /* renews the slots' leases */
  ev_stream *buckets[EV_BUCKETS];
};

static void ev_fetch(ev_stream *s);

/* ---- table ---- */

static ev_stream **ev_bucket(struct api_events *ev, const char *id) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = id; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return &ev->buckets[h & (EV_BUCKETS - 1)];
}

/* A stream is linked from its start to its close; api_events_stop closes
 * every one before the table goes, so a linked stream's table exists. */
static void ev_link(ev_stream *s) {
  struct api_events *ev = s->ctx->events;
  ev_stream **b = ev_bucket(ev, s->job_id);
  s->prev = NULL;
  s->next = *b;
  if (*b) (*b)->prev = s;
  *b = s;
  s->linked = 1;
  ev->nstreams++;
}

static void ev_unlink(ev_stream *s) {
  struct api_events *ev = s->ctx->events;
  if (!s->linked) return;
  if (s->prev)
    s->prev->next = s->next;
  else
    *ev_bucket(ev, s->job_id) = s->next;
  if (s->next) s->next->prev = s->prev;
  s->linked = 0;
  ev->nstreams--;
}

/* ---- lifecycle ---- */

static void ev_maybe_free(ev_stream *s) {
  if (!s->closing || s->timer_open || s->fetching || s->pins) return;
  free(s->last);
  free(s);
}

static void ev_timer_closed(uv_handle_t *h) {
  ev_stream *s = h->data;
  s->timer_open = 0;
  ev_maybe_free(s);
}

/* Ends the stream and releases its request. Idempotent. A request whose
 * stream never began (the server is shutting down) gets a 503. */
static void ev_close(ev_stream *s, const char *why) {
  if (s->closing) return;
  s->closing = 1;
  ev_unlink(s);
  if (s->slotted) api_stream_slot_release(s->ctx, s->user, s->slot);
  s->slotted = 0;
  if (s->req) {
    log_debug("job events stream closed", LS("request_id", http_req_id(s->req)),
              LS("job_id", s->job_id), LS("reason", why), LI("events", s->seq));
    if (!s->begun && !http_req_gone(s->req)) {
      static const char *const retry[] = {"Retry-After: 1", NULL};
      api_reply_error(s->req, 503, "unavailable", "the server is shutting down", retry);
    } else {
      http_stream_end(s->req);
    }
    s->req = NULL;
  }
  uv_close((uv_handle_t *)&s->timer, ev_timer_closed);
  ev_maybe_free(s);
}

static void ev_on_gone(http_request *req, void *arg) {
  (void)req;
  ev_close(arg, "client gone");
}

/* ---- events ---- */

static int ev_is_terminal(const char *json, size_t len) {
  cJSON *o = cJSON_ParseWithLength(json, len);
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
  job_status s;
  int terminal =
      cJSON_IsString(st) && job_status_parse(st->valuestring, &s) == 0 && job_status_terminal(s);
  cJSON_Delete(o);
  return terminal;
}

static int ev_write(ev_stream *s, const char *data, size_t len) {
  if (http_stream_write(s->req, data, len) != 0) return -1;
  s->last_write_ms = uv_now(s->ctx->loop);
  return 0;
}

/* Sends the job unless its text is what was sent last. Returns 0, 1 when
 * the job is terminal (the stream is done), -1 when the client is gone or
 * too slow. */
static int ev_send_job(ev_stream *s, const char *json, size_t len) {
  if (s->last && s->last_len == len && memcmp(s->last, json, len) == 0) return 0;
  char *copy = malloc(len + 1);
  size_t n;
  char *msg = api_sse_event("job", json, len, s->seq + 1, &n);
  if (!copy || !msg) {
    free(copy);
    free(msg);
    return -1;
  }
  memcpy(copy, json, len);
  copy[len] = '\0';
  int rc = ev_write(s, msg, n);
  free(msg);
  if (rc != 0) {
    free(copy);
    return -1;
  }
  s->seq++;
  free(s->last);
  s->last = copy;
  s->last_len = len;
  return ev_is_terminal(json, len);
}

static void ev_tick(uv_timer_t *t) {
  ev_stream *s = t->data;
  if (s->closing) return;
  /* A stream does not outlive its token (with the verifier's 5 s of skew):
   * a browser's EventSource reconnects with the fresh one. */
  if (s->exp > 0 && (long long)time(NULL) > s->exp + 5) {
    ev_close(s, "token expired");
    return;
  }
  /* access.c ends these at once; this catches a stream that began while
   * its revocation was being applied */
  if (api_access_user_deleted(s->ctx, s->user) ||
      (s->key_id[0] && api_access_key_revoked(s->ctx, s->key_id))) {
    ev_close(s, "access revoked");
    return;
  }
  /* Ticks come every EV_TICK_MS: ping at the first one past ~15 s quiet. */
  if (uv_now(t->loop) - s->last_write_ms + EV_TICK_MS / 2 >= EV_PING_MS) {
    static const char ping[] = ": ping\n\n";
    if (ev_write(s, ping, sizeof(ping) - 1) != 0) {
      ev_close(s, "client gone or too slow");
      return;
    }
  }
  if (++s->ticks >= (s->ctx->events->live ? EV_REREAD_TICKS : 1) && !s->fetching) ev_fetch(s);
}

static int ev_begin(ev_stream *s) {
  /* nginx would otherwise buffer the stream */
  static const char *const headers[] = {"X-Accel-Buffering: no", NULL};
  if (http_stream_begin(s->req, 200, "text/event-stream", headers) != 0) return -1;
  s->begun = 1;
  s->last_write_ms = uv_now(s->ctx->loop);
  uint64_t jitter = (s->ctx->events->opened++ * 7919u) % 1000u; /* spread streams opened together */
  uv_timer_start(&s->timer, ev_tick, EV_TICK_MS + jitter, EV_TICK_MS);
  log_debug("job events stream opened", LS("request_id", http_req_id(s->req)),
            LS("job_id", s->job_id));
  return 0;
}

/* ---- reading the job ---- */

static void ev_fetched(const job_cache_read *r, void *arg) {
  ev_stream *s = arg;
  s->fetching = 0;
  if (s->closing) {
    ev_maybe_free(s);
    return;
  }
  if (!r->ok) {
    if (!s->begun) {
      api_reply_db_error(s->req, r->failure);
      s->req = NULL;
      ev_close(s, "database error");
      return;
    }
    log_warn("job events: reading the job failed", LS("job_id", s->job_id),
             LS("sqlstate", r->failure->sqlstate ? r->failure->sqlstate : ""));
  } else if (!r->user || strcmp(r->user, s->user) != 0) {
    /* not the user's, or no longer visible to them (account deleted) */
    if (!s->begun) {
      api_reply_error(s->req, 404, "not_found", "no such job", NULL);
      s->req = NULL;
    }
    ev_close(s, "no such job");
    return;
  } else {
    if (!s->begun && ev_begin(s) != 0) {
      ev_close(s, "client gone");
      return;
    }
    int rc = ev_send_job(s, r->json, r->len);
    if (rc != 0) {
      ev_close(s, rc > 0 ? "terminal" : "client gone or too slow");
      return;
    }
  }
  if (s->again) {
    s->again = 0;
    ev_fetch(s);
  }
}

static void ev_fetch(ev_stream *s) {
  if (s->closing || s->fetching) return;
  s->fetching = 1;
  s->ticks = 0;
  s->pins++;
  int rc = job_cache_get(s->ctx->jobs, s->job_id, ev_fetched, s);
  s->pins--;
  if (rc != 0) {
    s->fetching = 0;
    if (!s->begun && !s->closing) {
      static const char *const retry[] = {"Retry-After: 1", NULL};
      api_reply_error(s->req, 503, "unavailable", "the database is overloaded", retry);
      s->req = NULL;
      ev_close(s, "database overloaded");
    }
    /* a running stream tries again on its next tick */
  }
  ev_maybe_free(s);
}

/* ---- notices ---- */

/* Wakes the streams on list (linked through run_next, each pinned). */
static void ev_wake(ev_stream *run) {
  while (run) {
    ev_stream *s = run;
    run = s->run_next;
    s->pins--;
    if (!s->closing) {
      if (s->fetching)
        s->again = 1;
      else
        ev_fetch(s);
    }
    ev_maybe_free(s);
  }
}

/* Collect first, then fetch: a fetch may call back at once and close
 * streams, which the pins keep allocated until we are past them. */
static ev_stream *ev_collect(ev_stream *run, ev_stream *s, const char *id) {
  for (; s; s = s->next) {
    if (id && strcmp(s->job_id, id) != 0) continue;
    s->pins++;
    s->run_next = run;
    run = s;
  }
  return run;
}

static void ev_on_notice(const char *channel, const char *msg, size_t len, void *arg) {
  struct api_events *ev = arg;
  api_ctx *ctx = ev->ctx;
  (void)channel;
  if (!msg) { /* subscribed (again): what was missed is read afresh */
    ev->live = 1;
    job_cache_set_live(ctx->jobs, 1);
    ev_stream *run = NULL;
    for (size_t i = 0; i < EV_BUCKETS; i++)
      run = ev_collect(run, ev->buckets[i], NULL);
    ev_wake(run);
    return;
  }
  char id[EV_ID_LEN + 1];
  if (len != EV_ID_LEN) return; /* not a job id: nobody to wake */
  for (size_t i = 0; i < len; i++)
    id[i] = (char)tolower((unsigned char)msg[i]);
  id[len] = '\0';
  if (!genq_is_uuid(id)) return;
  job_cache_forget(ctx->jobs, id);
  api_admin_events_notice(ctx);
  ev_wake(ev_collect(NULL, *ev_bucket(ev, id), id));
}

static void ev_on_down(rds *r, void *arg) {
  struct api_events *ev = arg;
  (void)r;
  ev->live = 0;
  job_cache_set_live(ev->ctx->jobs, 0);
}

/* ---- the user's count of streams ---- */

static void ev_go(ev_stream *s) {
  ev_link(s);
  ev_fetch(s);
}

static void ev_slot_taken(int granted, void *arg) {
  ev_stream *s = arg;
  s->pins--;
  if (s->closing || !s->ctx->events) { /* the client left, or the server stops, meanwhile */
    if (granted) api_stream_slot_release(s->ctx, s->user, s->slot);
    ev_close(s, "server stopping"); /* no-op when already closing */
    ev_maybe_free(s);
    return;
  }
  if (!granted) {
    static const char *const retry[] = {"Retry-After: 5", NULL};
    char msg[96];
    snprintf(msg, sizeof msg, "at most %d open event streams per user; close one first",
             s->ctx->cfg.max_streams_per_user);
    log_warn("job events: a user is at the stream cap", LS("request_id", http_req_id(s->req)),
             LS("user", s->user), LI("max", s->ctx->cfg.max_streams_per_user));
    api_reply_error(s->req, 429, "too_many_streams", msg, retry);
    s->req = NULL;
    ev_close(s, "over the per-user cap");
    return;
  }
  s->slotted = 1;
  ev_go(s);
}

static void ev_renew_all(uv_timer_t *t) {
  struct api_events *ev = t->data;
  for (size_t i = 0; i < EV_BUCKETS; i++)
    for (ev_stream *s = ev->buckets[i]; s; s = s->next)
      if (s->slotted) api_stream_slot_renew(ev->ctx, s->user, s->slot);
}

/* ---- API ---- */

void api_jobs_events(api_ctx *ctx, http_request *req, const api_user *u, const char *id) {
  static const char *const retry[] = {"Retry-After: 5", NULL};
  if (!genq_is_uuid(id)) { /* an id that cannot exist is simply not found */
    api_reply_error(req, 404, "not_found", "no such job", NULL);
    return;
  }
  if (!ctx->events) { /* not started, or stopping */
    api_reply_error(req, 503, "unavailable", "job events are not available", retry);
    return;
  }
  if (ctx->events->nstreams >= API_MAX_STREAMS) {
    log_warn("job events: too many open streams", LS("request_id", http_req_id(req)),
             LI("streams", ctx->events->nstreams));
    api_reply_error(req, 503, "unavailable", "too many open event streams; retry later", retry);
    return;
  }
  ev_stream *s = calloc(1, sizeof(*s));
  if (!s) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  s->ctx = ctx;
  s->req = req;
  for (size_t i = 0; i < EV_ID_LEN; i++)
    s->job_id[i] = (char)tolower((unsigned char)id[i]);
  snprintf(s->user, sizeof(s->user), "%s", u->user);
  snprintf(s->key_id, sizeof(s->key_id), "%s", u->key_id);
  s->exp = u->exp;
  uv_timer_init(ctx->loop, &s->timer);
  s->timer.data = s;
  s->timer_open = 1;
  http_req_on_gone(req, ev_on_gone, s);
  api_stream_slot_name(ctx, s->slot);
  s->pins++;
  if (api_stream_slot_take(ctx, s->user, s->slot, ev_slot_taken, s) == 0) return;
  s->pins--;
  ev_go(s);
}

int api_events_start(api_ctx *ctx) {
  char err[256];
  if (ctx->events) return 0;
  struct api_events *ev = calloc(1, sizeof(*ev));
  if (!ev) return -1;
  ev->ctx = ctx;
  if (rds_open(&ev->sub, ctx->loop, ctx->cfg.redis_url, err, sizeof(err)) != 0) {
    log_error("job events: cannot open the Redis subscription", LS("error", err));
    free(ev);
    return -1;
  }
  rds_on_down(ev->sub, ev_on_down, ev);
  if (rds_subscribe(ev->sub, QUEUE_EVENTS_CHANNEL, ev_on_notice, ev) != 0) {
    log_error("job events: cannot subscribe", LS("channel", QUEUE_EVENTS_CHANNEL));
    rds_close(ev->sub, NULL, NULL);
    free(ev);
    return -1;
  }
  uv_timer_init(ctx->loop, &ev->renew);
  ev->renew.data = ev;
  uv_timer_start(&ev->renew, ev_renew_all, STREAM_SLOT_RENEW_MS, STREAM_SLOT_RENEW_MS);
  ctx->events = ev;
  return 0;
}

void api_events_revoked(api_ctx *ctx, const char *user, const char *key_id) {
  api_admin_events_revoked(ctx, user, key_id);
  struct api_events *ev = ctx->events;
  if (!ev) return;
  for (size_t i = 0; i < EV_BUCKETS; i++)
    for (ev_stream *s = ev->buckets[i], *next; s; s = next) {
      next = s->next; /* ev_close unlinks s */
      if ((user && strcmp(s->user, user) == 0) || (key_id && strcmp(s->key_id, key_id) == 0))
        ev_close(s, "access revoked");
    }
}

static void ev_renew_closed(uv_handle_t *h) {
  free(h->data);
}

/* Streams still waiting for a database reply are freed when it comes (or
 * when db_close fails it): nothing of theirs refers to the table then. */
void api_events_stop(api_ctx *ctx) {
  struct api_events *ev = ctx->events;
  if (!ev) return;
  for (size_t i = 0; i < EV_BUCKETS; i++)
    while (ev->buckets[i])
      ev_close(ev->buckets[i], "server stopping");
  rds_close(ev->sub, NULL, NULL); /* no message arrives once closing */
  job_cache_set_live(ctx->jobs, 0);
  ctx->events = NULL;
  uv_close((uv_handle_t *)&ev->renew, ev_renew_closed);
}

unsigned api_events_open(const api_ctx *ctx) {
  return ctx->events ? ctx->events->nstreams : 0;
}
