/* provlimit_state.c — the provider limits' state for operators
 * (provlimit_state.h). */
#include "provlimit_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provlimit_lua.h"

const char *const provlimit_providers[PROVLIMIT_NPROVIDERS] = {"openai", "luma", "hedra"};

static const char *field(const redisReply *h, const char *name) {
  for (size_t i = 0; h && i + 1 < h->elements; i += 2)
    if (h->element[i]->type == REDIS_REPLY_STRING && !strcmp(h->element[i]->str, name) &&
        h->element[i + 1]->type == REDIS_REPLY_STRING)
      return h->element[i + 1]->str;
  return NULL;
}

static long long num(const redisReply *h, const char *name) {
  const char *v = field(h, name);
  return v ? strtoll(v, NULL, 10) : 0;
}

cJSON *provlimit_state_json(const char *provider, const redisReply *reply) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[1]->type != REDIS_REPLY_INTEGER ||
      reply->element[2]->type != REDIS_REPLY_ARRAY)
    return NULL;
  long long now = reply->element[0]->integer;
  const redisReply *h = reply->element[2];
  cJSON *p = cJSON_CreateObject();
  if (!p) return NULL;
  cJSON_AddStringToObject(p, "provider", provider);
  long long max = num(h, "max"), window = field(h, "window") ? num(h, "window") : max;
  long long paused = num(h, "paused_until"), open_until = num(h, "open_until");
  const char *br = field(h, "breaker");
  if (!br || !*br) br = "closed";
  /* an open breaker past its cool-down lets the next probe through */
  if (!strcmp(br, "open") && open_until <= now) br = "half_open";
  cJSON_AddNumberToObject(p, "max_in_flight", (double)max);
  cJSON_AddNumberToObject(p, "window", (double)window);
  cJSON_AddNumberToObject(p, "in_use", (double)reply->element[1]->integer);
  cJSON_AddBoolToObject(p, "paused", paused > now);
  if (paused > now)
    cJSON_AddNumberToObject(p, "paused_for_ms", (double)(paused - now));
  else
    cJSON_AddNullToObject(p, "paused_for_ms");
  cJSON_AddNumberToObject(p, "rate_per_minute", (double)num(h, "rate"));
  cJSON_AddStringToObject(p, "breaker", br);
  cJSON_AddNumberToObject(p, "failures", (double)num(h, "failures"));
  cJSON_AddNumberToObject(p, "breaker_trips", (double)num(h, "trips"));
  cJSON_AddNumberToObject(p, "rate_limited", (double)num(h, "limited"));
  return p;
}

/* One read: the three replies, in any order, into their slots. */
typedef struct {
  provlimit_state_cb cb;
  void *arg;
  int pending;
  cJSON *got[PROVLIMIT_NPROVIDERS];
  char err[256];
} state_read;

typedef struct {
  state_read *rd;
  int i;
} state_part;

static void finish(state_read *rd) {
  cJSON *arr = rd->err[0] ? NULL : cJSON_CreateArray();
  for (int i = 0; i < PROVLIMIT_NPROVIDERS; i++) {
    if (arr && rd->got[i])
      cJSON_AddItemToArray(arr, rd->got[i]);
    else
      cJSON_Delete(rd->got[i]);
  }
  if (!rd->err[0] && !arr) snprintf(rd->err, sizeof rd->err, "out of memory");
  rd->cb(arr, rd->err[0] ? rd->err : NULL, rd->arg);
  cJSON_Delete(arr);
  free(rd);
}

static void on_show(redisReply *reply, const char *err, void *arg) {
  state_part *part = arg;
  state_read *rd = part->rd;
  int i = part->i;
  free(part);
  cJSON *p = err ? NULL : provlimit_state_json(provlimit_providers[i], reply);
  if (!p && !rd->err[0])
    snprintf(rd->err, sizeof rd->err, "Redis: %s",
             err ? err
                 : (reply && reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                                            : "unexpected reply"));
  rd->got[i] = p;
  if (--rd->pending == 0) finish(rd);
}

int provlimit_state_read(rds *r, provlimit_state_cb cb, void *arg) {
  static const char show_lua[] = PROVLIMIT_SHOW_LUA;
  if (!rds_connected(r)) return -1;
  state_read *rd = calloc(1, sizeof *rd);
  if (!rd) return -1;
  rd->cb = cb;
  rd->arg = arg;
  rd->pending = 1; /* held while sending, so that no reply finishes it early */
  for (int i = 0; i < PROVLIMIT_NPROVIDERS; i++) {
    char ks[64], kst[64];
    snprintf(ks, sizeof ks, PROVLIMIT_KEY_FMT, provlimit_providers[i], "slots");
    snprintf(kst, sizeof kst, PROVLIMIT_KEY_FMT, provlimit_providers[i], "state");
    const char *argv[] = {"EVAL", show_lua, "2", ks, kst};
    state_part *part = malloc(sizeof *part);
    if (part) {
      part->rd = rd;
      part->i = i;
    }
    if (!part || rds_command_argv(r, on_show, part, 5, argv, NULL) != 0) {
      free(part);
      if (!rd->err[0]) snprintf(rd->err, sizeof rd->err, "Redis is not connected");
      continue;
    }
    rd->pending++;
  }
  if (--rd->pending == 0) {
    if (!rd->err[0]) snprintf(rd->err, sizeof rd->err, "Redis is not connected");
    finish(rd); /* nothing went out: cb runs now */
  }
  return 0;
}
