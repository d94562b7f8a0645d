/* Callbacks, as Luma sends them (see provsim.h): a create with a
 * callback_url gets the Generation POSTed there (unsigned, JSON) when it
 * starts dreaming and when it ends, each up to LU_CB_TRIES times (1 s, then
 * 2 s apart) until a 2xx. Only loopback URLs are called (the simulator never
 * reaches out of the machine; others count as luma.callbacks_refused), each
 * POST is bounded (LU_CB_TIMEOUT_MS, answers up to 4 KiB), a timer per
 * generation with a callback runs only until its last one. Counted:
 * luma.callbacks (answered 2xx), luma.callback_failures (every try failed).
 *
 * The sender knows nothing of a generation but its id: when a callback is
 * due and what to POST, it asks sim_luma.c each time (simcb_due_fn,
 * simcb_body_fn), since the generation may be deleted meanwhile. Only Luma
 * calls back, so the counters and log lines are Luma's. */
#include "provsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_client.h"
#include "log.h"

#define LU_CB_MAX_URL 2048
#define LU_CB_TRIES 3
#define LU_CB_TIMEOUT_MS 5000
#define LU_CB_MAX_ANSWER 4096

/* The callbacks still to send for one generation (found again by id: the
 * generation may be deleted meanwhile). Freed in its timer's close
 * callback. */
typedef struct lu_cb {
  uv_timer_t timer;
  simcb *s;
  struct lu_cb *prev, *next;
  char gen_id[37];
  int ending;  /* 0: the "dreaming" callback is next; 1: the final one */
  int tries;   /* of the callback being sent */
  int sending; /* a POST is in flight */
  char url[];
} lu_cb;

struct simcb {
  provsim *ps;
  httpc *http;  /* the POSTs */
  lu_cb *cbs;   /* pending, doubly linked */
  int stopping; /* simcb_stop: nothing new is scheduled */
  simcb_due_fn due;
  simcb_body_fn body;
  void *arg; /* of due and body */
};

static void cb_closed(uv_handle_t *h) {
  free(h->data);
}

static void cb_end(lu_cb *cb) {
  simcb *s = cb->s;
  if (cb->prev)
    cb->prev->next = cb->next;
  else
    s->cbs = cb->next;
  if (cb->next) cb->next->prev = cb->prev;
  uv_close((uv_handle_t *)&cb->timer, cb_closed);
}

static void cb_fire(uv_timer_t *t);

/* Arms the timer for the next callback of cb's generation, or ends cb (the
 * generation is gone, its last callback was sent, or the sender stops). */
static void cb_next(lu_cb *cb) {
  simcb *s = cb->s;
  long long at = s->stopping ? -1 : s->due(s->arg, cb->gen_id, cb->ending);
  if (at < 0) {
    cb_end(cb);
    return;
  }
  long long d = at - sim_mono_ms();
  cb->tries = 0;
  uv_timer_start(&cb->timer, cb_fire, d > 0 ? (uint64_t)d : 0, 0);
}

static void cb_answered(const httpc_response *resp, void *arg) {
  lu_cb *cb = arg;
  simcb *s = cb->s;
  cb->sending = 0;
  int ok = resp->status >= 200 && resp->status < 300;
  log_debug("luma callback answered", LS("id", cb->gen_id), LI("status", resp->status),
            LI("try", cb->tries));
  if (!ok && cb->tries < LU_CB_TRIES && !s->stopping) {
    uv_timer_start(&cb->timer, cb_fire, (uint64_t)1000 * (uint64_t)cb->tries, 0);
    return;
  }
  simstats_incr(s->ps->stats, "luma", ok ? "callbacks" : "callback_failures", NULL);
  cb->ending++;
  cb_next(cb);
}

/* POSTs the generation as it is now (one try). */
static void cb_fire(uv_timer_t *t) {
  lu_cb *cb = t->data;
  simcb *s = cb->s;
  int gone = 0;
  char *body = s->stopping ? NULL : s->body(s->arg, cb->gen_id, &gone);
  if (s->stopping || gone) { /* deleted: Luma says nothing more about it */
    cb_end(cb);
    return;
  }
  const char *const headers[] = {"Content-Type: application/json", NULL};
  httpc_request req = {.method = "POST",
                       .url = cb->url,
                       .headers = headers,
                       .body = body,
                       .body_len = body ? strlen(body) : 0,
                       .timeout_ms = LU_CB_TIMEOUT_MS,
                       .connect_timeout_ms = LU_CB_TIMEOUT_MS,
                       .max_response_bytes = LU_CB_MAX_ANSWER};
  cb->tries++;
  if (body && httpc_send(s->http, &req, cb_answered, cb, NULL) == 0) {
    cb->sending = 1;
  } else if (cb->tries < LU_CB_TRIES) {
    uv_timer_start(&cb->timer, cb_fire, (uint64_t)1000 * (uint64_t)cb->tries, 0);
  } else {
    simstats_incr(s->ps->stats, "luma", "callback_failures", NULL);
    cb->ending++;
    cb_next(cb);
  }
  cJSON_free(body);
}

/* 1 when url is http(s) to a loopback host: 127.x.x.x, localhost or [::1]. */
static int loopback_url(const char *url) {
  const char *h = !strncmp(url, "http://", 7)    ? url + 7
                  : !strncmp(url, "https://", 8) ? url + 8
                                                 : NULL;
  if (!h || strpbrk(h, "@ \t\r\n")) return 0; /* no userinfo tricks, no spaces */
  size_t n = strcspn(h, ":/?#");
  if (!strncmp(h, "[::1]", 5)) return h[5] == '\0' || strchr(":/?#", h[5]) != NULL;
  if (n == 9 && !strncasecmp(h, "localhost", 9)) return 1;
  if (strncmp(h, "127.", 4) != 0) return 0;
  return strspn(h, "0123456789.") == n;
}

void simcb_schedule(simcb *s, const char *gen_id, const char *url) {
  if (!url || s->stopping || !s->http) return;
  size_t n = strlen(url);
  if (n > LU_CB_MAX_URL || !loopback_url(url)) {
    simstats_incr(s->ps->stats, "luma", "callbacks_refused", NULL);
    log_warn("luma callback_url not called: only loopback URLs are", LS("id", gen_id));
    return;
  }
  lu_cb *cb = calloc(1, sizeof *cb + n + 1);
  if (!cb) return;
  memcpy(cb->url, url, n + 1);
  snprintf(cb->gen_id, sizeof cb->gen_id, "%s", gen_id);
  cb->s = s;
  uv_timer_init(s->ps->loop, &cb->timer);
  cb->timer.data = cb;
  cb->next = s->cbs;
  if (s->cbs) s->cbs->prev = cb;
  s->cbs = cb;
  cb_next(cb);
}

int simcb_new(simcb **out, provsim *ps, simcb_due_fn due, simcb_body_fn body, void *arg) {
  *out = NULL;
  simcb *s = calloc(1, sizeof *s);
  if (!s) return -1;
  s->ps = ps;
  s->due = due;
  s->body = body;
  s->arg = arg;
  if (simstats_declare(ps->stats, "luma", "callbacks", 0) < 0 ||
      simstats_declare(ps->stats, "luma", "callback_failures", 0) < 0 ||
      simstats_declare(ps->stats, "luma", "callbacks_refused", 0) < 0 ||
      httpc_new(&s->http, ps->loop) < 0) {
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

void simcb_stop(simcb *s) {
  if (!s || s->stopping) return;
  s->stopping = 1;
  if (s->http) httpc_close(s->http); /* answers each POST in flight: canceled */
  s->http = NULL;
  while (s->cbs)
    cb_end(s->cbs);
}

void simcb_free(simcb *s) {
  free(s);
}
