/* Provider answers: the request's fault drawn by faults.c, the answer of an
 * injected error sent, simulated latency on uv timers, then the fault applied
 * by faults.c (see provsim.h); and the simulator's own errors. Calls
 * faults.c, never the other way round. */
#include "provsim.h"

#include <stdlib.h>
#include <string.h>

#define MAX_EXTRA_HEADERS 16

struct provsim_pending {
  uv_timer_t timer;
  provsim *ps;
  http_request *req;
  int status;
  char *content_type;
  char *headers[MAX_EXTRA_HEADERS + 1];
  char *body;
  size_t len;
  provsim_pending *prev, *next;
};

static void pending_free(provsim_pending *p) {
  free(p->content_type);
  for (int i = 0; p->headers[i]; i++)
    free(p->headers[i]);
  free(p->body);
  free(p);
}

static void on_timer_closed(uv_handle_t *h) {
  pending_free(h->data);
}

/* Answers, unlinks and closes; the memory goes in the close callback. */
static void deliver(provsim_pending *p) {
  provsim *ps = p->ps;
  if (p->prev)
    p->prev->next = p->next;
  else
    ps->pending = p->next;
  if (p->next) p->next->prev = p->prev;
  simfaults_answer(ps, p->req, p->status, p->content_type, (const char *const *)p->headers, p->body,
                   p->len);
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

static void on_timer(uv_timer_t *t) {
  deliver(t->data);
}

void provsim_reply(provsim *ps, http_request *req, int delay_ms, int status,
                   const char *content_type, const char *const *extra_headers, const char *body,
                   size_t len) {
  sim_provider prov;
  simfault f;
  int drawn = simfaults_of(req, &prov, &f);
  unsigned delay = delay_ms >= 0 ? (unsigned)delay_ms : drawn ? simfaults_latency(ps, prov) : 0;
  if (delay == 0 || ps->closing || f == SIMFAULT_HANG) { /* a hung request waits for nothing */
    simfaults_answer(ps, req, status, content_type, extra_headers, body, len);
    return;
  }
  provsim_pending *p = calloc(1, sizeof *p);
  int ok = p != NULL;
  if (ok && content_type) ok = (p->content_type = strdup(content_type)) != NULL;
  for (int i = 0; ok && extra_headers && extra_headers[i] && i < MAX_EXTRA_HEADERS; i++)
    ok = (p->headers[i] = strdup(extra_headers[i])) != NULL;
  if (ok && len) ok = (p->body = malloc(len)) != NULL;
  if (!ok) { /* no memory to wait with: answer now rather than never */
    if (p) pending_free(p);
    simfaults_answer(ps, req, status, content_type, extra_headers, body, len);
    return;
  }
  if (len) memcpy(p->body, body, len);
  p->ps = ps;
  p->req = req;
  p->status = status;
  p->len = len;
  uv_timer_init(ps->loop, &p->timer);
  p->timer.data = p;
  p->next = ps->pending;
  if (p->next) p->next->prev = p;
  ps->pending = p;
  /* the delay counts from now: the loop's cached time is that of its last
   * wake-up, which on a busy machine can be long enough ago to answer early */
  uv_update_time(ps->loop);
  uv_timer_start(&p->timer, on_timer, delay, 0);
}

int provsim_begin(provsim *ps, http_request *req, sim_provider p) {
  simfault_reply r;
  switch (simfaults_begin(ps, req, p, &r)) {
  case SIMBEGIN_HANDLE:
    return 1;
  case SIMBEGIN_REPLY:
    if (r.body)
      provsim_reply(ps, req, -1, r.status, r.content_type, r.headers, r.body, strlen(r.body));
    else
      provsim_error(req, 500, "internal", "out of memory", NULL);
    cJSON_free(r.body);
    return 0;
  default:
    return 0;
  }
}

void provsim_flush_pending(provsim *ps) {
  while (ps->pending)
    deliver(ps->pending);
}

void provsim_error(http_request *req, int status, const char *code, const char *message,
                   const char *const *extra_headers) {
  if (http_req_gone(req)) { /* nobody to tell: just release it */
    http_respond(req, status, NULL, NULL, NULL, 0);
    return;
  }
  cJSON *root = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(root, "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "request_id", http_req_id(req));
  char *json = e ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  http_respond(req, status, "application/json", extra_headers, json ? json : "",
               json ? strlen(json) : 0);
  cJSON_free(json);
}

void provsim_server_error(http_request *req, int status, const char *code, const char *message,
                          void *arg) {
  (void)arg;
  provsim_error(req, status, code, message, NULL);
}
