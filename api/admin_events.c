/* admin_events.c — GET /v1/admin/events: the fleet as server-sent events,
 * for the dashboard (docs/admin.md).
 *
 * Events, each "event: <name>\ndata: <JSON on one line>\nid: <n>\n\n"
 * (sse.c):
 *   stats      genq_fleet_status (GET /v1/admin/stats): at once, within a
 *              second of any job's change notice (the Redis fan-out the job
 *              streams use, events.c), and at least every 5 s
 *   workers    the registry (GET /v1/admin/workers), every 2 s
 *   providers  the provider limits (GET /v1/admin/providers), every 2 s
 *   action     an admin action just committed by any API process or
 *              genqctl (QUEUE_ADMIN_CHANNEL): the action row
 * and ": ping" after 15 s of silence.
 *
 * One hub per process reads each of those once for all its open admin
 * streams — the database is asked at most once a second however many
 * dashboards are open — and only while at least one is open. Streams are
 * bounded like the job streams: each holds one of its user's stream slots
 * (GENQ_MAX_STREAMS_PER_USER, stream_slots.c), a process holds at most
 * ADMIN_STREAMS_MAX, a stream ends with its token (within a few seconds of
 * exp), when its key or account is revoked, and a client too slow to read
 * (over 1 MiB unsent) is dropped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "log.h"
#include "provlimit_state.h"
#include "queue.h"
#include "registry.h"

#define AE_TICK_MS 1000
#define AE_STATS_TICKS 5 /* stats at least this often (ticks) */
#define AE_FLEET_TICKS 2 /* workers and providers */
#define AE_PING_MS 15000

enum { SNAP_STATS, SNAP_WORKERS, SNAP_PROVIDERS, SNAP_COUNT };
static const char *const snap_event[SNAP_COUNT] = {"stats", "workers", "providers"};

typedef struct ae_stream ae_stream;
struct ae_stream {
  ae_stream *prev, *next; /* the hub's list, while linked */
  struct api_admin_events *hub;
  http_request *req; /* NULL once released */
  char user[sizeof(((api_user *)0)->user)];
  char key_id[API_KEY_ID_LEN];
  long long exp;
  char slot[API_SLOT_NAME_MAX];
  int slotted, begun, linked, closing, pins;
  unsigned long seq;
  uint64_t last_write_ms;
  unsigned sent[SNAP_COUNT]; /* the generation of each snapshot it has */
};

typedef struct {
  char *text;
  size_t len;
  unsigned gen; /* 0: none read yet */
  int reading;
} ae_snap;

struct api_admin_events {
  api_ctx *ctx;
  rds *sub;  /* QUEUE_ADMIN_CHANNEL */
  int live;  /* the job notices' subscription is up: no need to poll stats every tick */
  int dirty; /* a job changed since stats were last read */
  uv_timer_t tick;
  unsigned ticks;
  ae_stream *streams;
  unsigned nstreams; /* open or waiting for their slot */
  ae_snap snap[SNAP_COUNT];
  int outstanding; /* reads whose callback has not run */
  int stopping, timer_closed;
};

static void hub_read(struct api_admin_events *hub, int which);
static void hub_maybe_free(struct api_admin_events *hub);

/* ---- streams ---- */

/* A stream counts in hub->nstreams until it is freed: the hub outlives
 * every stream that refers to it. */
static void ae_maybe_free(ae_stream *s) {
  if (!s->closing || s->pins) return;
  struct api_admin_events *hub = s->hub;
  free(s);
  hub->nstreams--;
  hub_maybe_free(hub); /* the last stream of a stopped hub frees it */
}

static void ae_close(ae_stream *s, const char *why) {
  if (s->closing) return;
  s->closing = 1;
  struct api_admin_events *hub = s->hub;
  if (s->linked) {
    if (s->prev)
      s->prev->next = s->next;
    else
      hub->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    s->linked = 0;
  }
  if (s->slotted) api_stream_slot_release(hub->ctx, s->user, s->slot);
  s->slotted = 0;
  if (s->req) {
    log_debug("admin events stream closed", LS("request_id", http_req_id(s->req)),
              LS("reason", why), LI("events", s->seq));
    if (!s->begun && !http_req_gone(s->req)) {
      static const char *const retry[] = {"Retry-After: 1", NULL};
      api_reply_error(s->req, 503, "unavailable", "the server is shutting down", retry);
    } else {
      http_stream_end(s->req);
    }
    s->req = NULL;
  }
  ae_maybe_free(s);
}

static void ae_on_gone(http_request *req, void *arg) {
  (void)req;
  ae_close(arg, "client gone");
}

/* Writes one event; -1 closes the stream (the client is gone or too slow). */
static int ae_send(ae_stream *s, const char *event, const char *data, size_t len) {
  size_t n;
  char *msg = api_sse_event(event, data, len, s->seq + 1, &n);
  int rc = msg ? http_stream_write(s->req, msg, n) : -1;
  free(msg);
  if (rc != 0) {
    ae_close(s, "client gone or too slow");
    return -1;
  }
  s->seq++;
  s->last_write_ms = uv_now(s->hub->ctx->loop);
  return 0;
}

/* Sends the snapshots the stream does not have yet. */
static void ae_catch_up(ae_stream *s) {
  for (int i = 0; i < SNAP_COUNT && !s->closing; i++) {
    ae_snap *sn = &s->hub->snap[i];
    if (sn->gen && s->sent[i] != sn->gen && ae_send(s, snap_event[i], sn->text, sn->len) == 0)
      s->sent[i] = sn->gen;
  }
}

static void hub_broadcast_snapshots(struct api_admin_events *hub) {
  for (ae_stream *s = hub->streams, *next; s; s = next) {
    next = s->next; /* ae_close unlinks s */
    ae_catch_up(s);
  }
}

static void hub_start_ticking(struct api_admin_events *hub);

static void ae_go(ae_stream *s) {
  struct api_admin_events *hub = s->hub;
  static const char *const headers[] = {"X-Accel-Buffering: no", NULL};
  if (http_stream_begin(s->req, 200, "text/event-stream", headers) != 0) {
    ae_close(s, "client gone");
    return;
  }
  s->begun = 1;
  s->last_write_ms = uv_now(hub->ctx->loop);
  s->prev = NULL;
  s->next = hub->streams;
  if (hub->streams) hub->streams->prev = s;
  hub->streams = s;
  s->linked = 1;
  log_debug("admin events stream opened", LS("request_id", http_req_id(s->req)));
  ae_catch_up(s);
  for (int i = 0; i < SNAP_COUNT; i++)
    if (!hub->snap[i].gen) hub_read(hub, i);
  hub_start_ticking(hub);
}

static void ae_slot_taken(int granted, void *arg) {
  ae_stream *s = arg;
  s->pins--;
  if (granted && (s->closing || s->hub->stopping))
    api_stream_slot_release(s->hub->ctx, s->user, s->slot);
  if (s->closing) { /* the client left meanwhile */
    ae_maybe_free(s);
    return;
  }
  if (s->hub->stopping) {
    ae_close(s, "server stopping"); /* frees s */
    return;
  }
  if (!granted) {
    static const char *const retry[] = {"Retry-After: 5", NULL};
    char msg[96];
    snprintf(msg, sizeof msg, "at most %d open event streams per user; close one first",
             s->hub->ctx->cfg.max_streams_per_user);
    api_reply_error(s->req, 429, "too_many_streams", msg, retry);
    s->req = NULL;
    ae_close(s, "over the per-user cap");
    return;
  }
  s->slotted = 1;
  ae_go(s);
}

void api_admin_events(api_ctx *ctx, http_request *req, const api_user *u) {
  static const char *const retry[] = {"Retry-After: 5", NULL};
  struct api_admin_events *hub = ctx->admin_events;
  if (!hub || hub->stopping) {
    api_reply_error(req, 503, "unavailable", "admin events are not available", retry);
    return;
  }
  if (hub->nstreams >= ADMIN_STREAMS_MAX) {
    log_warn("admin events: too many open streams", LS("request_id", http_req_id(req)),
             LI("streams", hub->nstreams));
    api_reply_error(req, 503, "unavailable", "too many open admin event streams; retry later",
                    retry);
    return;
  }
  ae_stream *s = calloc(1, sizeof *s);
  if (!s) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  s->hub = hub;
  s->req = req;
  snprintf(s->user, sizeof s->user, "%s", u->user);
  snprintf(s->key_id, sizeof s->key_id, "%s", u->key_id);
  s->exp = u->exp;
  hub->nstreams++;
  http_req_on_gone(req, ae_on_gone, s);
  api_stream_slot_name(ctx, s->slot);
  s->pins++;
  if (api_stream_slot_take(ctx, s->user, s->slot, ae_slot_taken, s) == 0) return;
  s->pins--;
  ae_go(s);
}

void api_admin_events_revoked(api_ctx *ctx, const char *user, const char *key_id) {
  struct api_admin_events *hub = ctx->admin_events;
  if (!hub) return;
  for (ae_stream *s = hub->streams, *next; s; s = next) {
    next = s->next;
    if ((user && strcmp(s->user, user) == 0) || (key_id && strcmp(s->key_id, key_id) == 0))
      ae_close(s, "access revoked");
  }
}

/* ---- the hub's reads ---- */

static void hub_maybe_free(struct api_admin_events *hub) {
  if (!hub->stopping || !hub->timer_closed || hub->outstanding || hub->nstreams) return;
  for (int i = 0; i < SNAP_COUNT; i++)
    free(hub->snap[i].text);
  free(hub);
}

/* A read came back: text (NULL: it failed, keep what was) becomes the
 * snapshot, sent to every stream when it changed. Takes text. */
static void hub_got(struct api_admin_events *hub, int which, char *text) {
  ae_snap *sn = &hub->snap[which];
  hub->outstanding--;
  sn->reading = 0;
  if (hub->stopping) {
    free(text);
    hub_maybe_free(hub);
    return;
  }
  if (!text) return;
  size_t len = strlen(text);
  if (sn->text && sn->len == len && memcmp(sn->text, text, len) == 0) {
    free(text);
    return;
  }
  free(sn->text);
  sn->text = text;
  sn->len = len;
  if (++sn->gen == 0) sn->gen = 1;
  hub_broadcast_snapshots(hub);
}

static char *print_take(cJSON *o) {
  char *text = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return text;
}

static char *redis_error_text(const char *err) {
  cJSON *o = cJSON_CreateObject();
  if (o) cJSON_AddStringToObject(o, "error", err ? err : "Redis is unavailable");
  return print_take(o);
}

static void stats_read(const db_result *r, void *arg) {
  struct api_admin_events *hub = arg;
  char *text = NULL;
  if (r->ok && PQntuples(r->res) == 1)
    text = strdup(PQgetvalue(r->res, 0, 0));
  else if (!r->ok && !hub->stopping)
    log_warn("admin events: reading the stats failed", LS("error", r->error ? r->error : ""));
  hub_got(hub, SNAP_STATS, text);
}

static void workers_read(const cJSON *workers, long long now_ms, const char *err, void *arg) {
  struct api_admin_events *hub = arg;
  if (err || !workers) {
    hub_got(hub, SNAP_WORKERS, redis_error_text("Redis is unavailable"));
    return;
  }
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddNumberToObject(o, "at_ms", (double)now_ms);
    cJSON_AddItemToObject(o, "workers", cJSON_Duplicate(workers, 1));
  }
  hub_got(hub, SNAP_WORKERS, print_take(o));
}

static void providers_read(const cJSON *providers, const char *err, void *arg) {
  struct api_admin_events *hub = arg;
  (void)err;
  if (!providers) {
    hub_got(hub, SNAP_PROVIDERS, redis_error_text("Redis is unavailable"));
    return;
  }
  cJSON *o = cJSON_CreateObject();
  if (o) cJSON_AddItemToObject(o, "providers", cJSON_Duplicate(providers, 1));
  hub_got(hub, SNAP_PROVIDERS, print_take(o));
}

static void hub_read(struct api_admin_events *hub, int which) {
  ae_snap *sn = &hub->snap[which];
  if (sn->reading || hub->stopping) return;
  int rc;
  sn->reading = 1;
  hub->outstanding++;
  if (which == SNAP_STATS) {
    hub->dirty = 0;
    rc = db_query(hub->ctx->db, "select genq_fleet_status()", 0, NULL, stats_read, hub);
  } else if (which == SNAP_WORKERS) {
    rc = registry_list(hub->ctx->redis, workers_read, hub);
  } else {
    rc = provlimit_state_read(hub->ctx->redis, providers_read, hub);
  }
  if (rc != 0) { /* not sent: Redis down (a Redis read says so to the streams) */
    hub->outstanding--;
    sn->reading = 0;
    if (which != SNAP_STATS) {
      hub->outstanding++;
      sn->reading = 1;
      hub_got(hub, which, redis_error_text("Redis is unavailable"));
    }
  }
}

/* ---- the tick ---- */

static void hub_tick(uv_timer_t *t) {
  struct api_admin_events *hub = t->data;
  if (!hub->streams && hub->nstreams == 0) {
    uv_timer_stop(&hub->tick); /* nobody listens: read nothing */
    return;
  }
  hub->ticks++;
  uint64_t now = uv_now(t->loop);
  for (ae_stream *s = hub->streams, *next; s; s = next) {
    next = s->next;
    /* a stream does not outlive its token (with the verifier's 5 s of skew) */
    if (s->exp > 0 && (long long)time(NULL) > s->exp + 5) {
      ae_close(s, "token expired");
      continue;
    }
    if (api_access_user_deleted(hub->ctx, s->user) ||
        (s->key_id[0] && api_access_key_revoked(hub->ctx, s->key_id))) {
      ae_close(s, "access revoked");
      continue;
    }
    if (now - s->last_write_ms >= AE_PING_MS) {
      static const char ping[] = ": ping\n\n";
      if (http_stream_write(s->req, ping, sizeof ping - 1) != 0)
        ae_close(s, "client gone or too slow");
      else
        s->last_write_ms = now;
    }
  }
  if (hub->dirty || !hub->live || hub->ticks % AE_STATS_TICKS == 0) hub_read(hub, SNAP_STATS);
  if (hub->ticks % AE_FLEET_TICKS == 0) {
    hub_read(hub, SNAP_WORKERS);
    hub_read(hub, SNAP_PROVIDERS);
  }
}

static void hub_start_ticking(struct api_admin_events *hub) {
  if (!uv_is_active((uv_handle_t *)&hub->tick))
    uv_timer_start(&hub->tick, hub_tick, AE_TICK_MS, AE_TICK_MS);
}

void api_admin_events_notice(api_ctx *ctx) {
  if (ctx->admin_events) ctx->admin_events->dirty = 1;
}

/* An action from QUEUE_ADMIN_CHANNEL: to every stream as it is. */
static void on_action(const char *channel, const char *msg, size_t len, void *arg) {
  struct api_admin_events *hub = arg;
  (void)channel;
  if (!msg) { /* subscribed (again) */
    hub->live = 1;
    hub->dirty = 1;
    return;
  }
  cJSON *o = cJSON_ParseWithLength(msg, len);
  int ok = cJSON_IsObject(o);
  cJSON_Delete(o);
  if (!ok) return; /* not an action: nothing to forward */
  hub->dirty = 1;
  for (ae_stream *s = hub->streams, *next; s; s = next) {
    next = s->next;
    ae_send(s, "action", msg, len);
  }
}

static void on_down(rds *r, void *arg) {
  (void)r;
  ((struct api_admin_events *)arg)->live = 0;
}

int api_admin_events_start(api_ctx *ctx) {
  char err[256];
  struct api_admin_events *hub = calloc(1, sizeof *hub);
  if (!hub) return -1;
  hub->ctx = ctx;
  if (rds_open(&hub->sub, ctx->loop, ctx->cfg.redis_url, err, sizeof err) != 0) {
    log_error("admin events: cannot open the Redis subscription", LS("error", err));
    free(hub);
    return -1;
  }
  rds_on_down(hub->sub, on_down, hub);
  if (rds_subscribe(hub->sub, QUEUE_ADMIN_CHANNEL, on_action, hub) != 0) {
    log_error("admin events: cannot subscribe", LS("channel", QUEUE_ADMIN_CHANNEL));
    rds_close(hub->sub, NULL, NULL);
    free(hub);
    return -1;
  }
  uv_timer_init(ctx->loop, &hub->tick);
  hub->tick.data = hub;
  ctx->admin_events = hub;
  return 0;
}

static void tick_closed(uv_handle_t *h) {
  struct api_admin_events *hub = h->data;
  hub->timer_closed = 1;
  hub_maybe_free(hub);
}

void api_admin_events_stop(api_ctx *ctx) {
  struct api_admin_events *hub = ctx->admin_events;
  if (!hub) return;
  while (hub->streams)
    ae_close(hub->streams, "server stopping");
  hub->stopping = 1; /* streams waiting for their slot close when it comes */
  rds_close(hub->sub, NULL, NULL);
  ctx->admin_events = NULL;
  uv_close((uv_handle_t *)&hub->tick, tick_closed);
}
