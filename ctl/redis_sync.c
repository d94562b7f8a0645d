/* redis_sync.c — Redis for genqctl: an rds connection (common/redis.h) on a
 * private libuv loop, run until the answer is in or a deadline passes, so
 * that a command reads like a synchronous call and never hangs (ctl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "redis.h"

struct ctl_redis {
  uv_loop_t loop;
  uv_timer_t timer;
  rds *r;
  int timed_out, closed;
};

static void on_timeout(uv_timer_t *t) {
  ((ctl_redis *)t->data)->timed_out = 1;
}

/* Runs the loop until *flag is set or ms pass: 0, or -1 on the deadline. */
static int run_until(ctl_redis *c, const int *flag, int ms) {
  c->timed_out = 0;
  uv_timer_start(&c->timer, on_timeout, (uint64_t)(ms > 0 ? ms : 1), 0);
  while (!*flag && !c->timed_out)
    uv_run(&c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->timer);
  return *flag ? 0 : -1;
}

int ctl_redis_wait(ctl_redis *c, const int *flag, int timeout_ms) {
  return run_until(c, flag, timeout_ms);
}

static void on_closed(void *arg) {
  ((ctl_redis *)arg)->closed = 1;
}

static void free_loop(ctl_redis *c) {
  uv_close((uv_handle_t *)&c->timer, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  free(c);
}

typedef struct {
  ctl_redis *c;
  int up;
} connect_wait;

static void connected(rds *r, void *arg) {
  (void)r;
  ((connect_wait *)arg)->up = 1;
}

ctl_redis *ctl_redis_open(const char *url, int timeout_ms, char *err, size_t errlen) {
  if (!url || !*url) {
    snprintf(err, errlen, "GENQ_REDIS_URL is not set");
    return NULL;
  }
  ctl_redis *c = calloc(1, sizeof *c);
  if (!c || uv_loop_init(&c->loop) != 0) {
    free(c);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  log_init("ctl", LOG_ERROR); /* the connection's own logs are not the operator's */
  uv_timer_init(&c->loop, &c->timer);
  c->timer.data = c;
  /* the message names the variable, never the URL: it may carry a password */
  char why[256];
  if (rds_open(&c->r, &c->loop, url, why, sizeof why) != 0) {
    snprintf(err, errlen, "GENQ_REDIS_URL: %s", why);
    free_loop(c);
    return NULL;
  }
  connect_wait w = {c, 0};
  rds_on_connect(c->r, connected, &w);
  int ok = run_until(c, &w.up, timeout_ms) == 0;
  rds_on_connect(c->r, NULL, NULL);
  if (!ok) {
    snprintf(err, errlen, "cannot reach Redis (GENQ_REDIS_URL) within %d ms", timeout_ms);
    ctl_redis_close(c);
    return NULL;
  }
  return c;
}

rds *ctl_redis_rds(ctl_redis *c) {
  return c->r;
}

void ctl_redis_close(ctl_redis *c) {
  if (!c) return;
  rds_close(c->r, on_closed, c);
  while (!c->closed)
    uv_run(&c->loop, UV_RUN_ONCE);
  free_loop(c);
}

/* ---- one command ---- */

/* RESP2 (hiredis 0.14): strings, status, integers, errors, arrays, nil. */
static cJSON *reply_json(const redisReply *r) {
  switch (r->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS: {
    char *s = strndup(r->str ? r->str : "", r->len);
    cJSON *j = s ? cJSON_CreateString(s) : NULL;
    free(s);
    return j;
  }
  case REDIS_REPLY_INTEGER:
    return cJSON_CreateNumber((double)r->integer);
  case REDIS_REPLY_ERROR: {
    cJSON *o = cJSON_CreateObject();
    char *s = strndup(r->str ? r->str : "", r->len);
    if (o && s) cJSON_AddStringToObject(o, "error", s);
    free(s);
    return o;
  }
  case REDIS_REPLY_ARRAY: {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->elements; i++) {
      cJSON *e = reply_json(r->element[i]);
      if (!e) {
        cJSON_Delete(a);
        return NULL;
      }
      cJSON_AddItemToArray(a, e);
    }
    return a;
  }
  default:
    return cJSON_CreateNull();
  }
}

/* Heap-held: a command that outlives its deadline is answered later (or
 * failed by the close), and its callback frees the state then. */
typedef struct {
  int done, abandoned;
  cJSON *out;
} call_state;

static void answered(redisReply *reply, const char *err, void *arg) {
  (void)err;
  call_state *st = arg;
  if (st->abandoned) {
    free(st);
    return;
  }
  st->done = 1;
  st->out = reply ? reply_json(reply) : NULL;
}

cJSON *ctl_redis_call(ctl_redis *c, int argc, const char **argv) {
  call_state *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  if (rds_command_argv(c->r, answered, st, argc, argv, NULL) != 0) {
    free(st);
    return NULL;
  }
  if (run_until(c, &st->done, CTL_REDIS_TIMEOUT_MS) != 0) {
    st->abandoned = 1;
    return NULL;
  }
  cJSON *out = st->out;
  free(st);
  return out;
}

ctl_redis *ctl_redis_connect(char *err, size_t errlen) {
  genq_config cfg;
  if (config_load(&cfg, CONFIG_CTL, err, errlen) < 0) return NULL;
  ctl_redis *c = NULL;
  if (!cfg.redis_url)
    snprintf(err, errlen, "GENQ_REDIS_URL is not set");
  else
    c = ctl_redis_open(cfg.redis_url, CTL_REDIS_CONNECT_MS, err, errlen);
  config_free(&cfg);
  return c;
}
