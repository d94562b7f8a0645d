/* provlimit_state.c — reading PROVLIMIT_SHOW_LUA's answer into a
 * provlimit_state (provlimit_state.h): the one place that knows the state
 * hash's fields and what an open breaker past its cool-down means. */
#include "provlimit_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provlimit_lua.h"

const char *const provlimit_providers[PROVLIMIT_PROVIDERS] = {"openai", "luma", "hedra"};

void provlimit_state_keys(const char *provider, char slots[64], char state[64]) {
  snprintf(slots, 64, PROVLIMIT_KEY_FMT, provider, "slots");
  snprintf(state, 64, PROVLIMIT_KEY_FMT, provider, "state");
}

static const char *field(const redisReply *h, const char *name) {
  for (size_t i = 0; i + 1 < h->elements; i += 2)
    if (h->element[i]->type == REDIS_REPLY_STRING && !strcmp(h->element[i]->str, name) &&
        h->element[i + 1]->type == REDIS_REPLY_STRING)
      return h->element[i + 1]->str;
  return NULL;
}

static long long num(const redisReply *h, const char *name) {
  const char *v = field(h, name);
  return v ? strtoll(v, NULL, 10) : 0;
}

int provlimit_state_read(const redisReply *reply, provlimit_state *out) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[1]->type != REDIS_REPLY_INTEGER ||
      reply->element[2]->type != REDIS_REPLY_ARRAY)
    return -1;
  long long now = reply->element[0]->integer;
  const redisReply *h = reply->element[2];
  memset(out, 0, sizeof *out);
  out->max_in_flight = num(h, "max");
  out->window = field(h, "window") ? num(h, "window") : out->max_in_flight;
  out->in_use = reply->element[1]->integer;
  long long paused = num(h, "paused_until");
  out->paused_for_ms = paused > now ? paused - now : 0;
  out->rate_per_minute = num(h, "rate");
  out->failures = num(h, "failures");
  out->trips = num(h, "trips");
  out->limited = num(h, "limited");
  const char *br = field(h, "breaker");
  if (!br || !*br) br = "closed";
  /* an open breaker past its cool-down lets the next probe through */
  if (!strcmp(br, "open") && num(h, "open_until") <= now) br = "half_open";
  snprintf(out->breaker, sizeof out->breaker, "%s", br);
  return 0;
}
