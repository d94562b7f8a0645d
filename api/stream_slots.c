/* stream_slots.c — how many event streams a user holds open, counted in
 * Redis so that the cap (GENQ_MAX_STREAMS_PER_USER) holds across every API
 * process (SPEC §12): one sorted set per user, genq:streams:<user>, whose
 * members are the open streams ("<process>:<n>") scored by the end of
 * their lease. Taking a slot drops the lapsed members and adds one unless
 * the user is at the cap; events.c renews its streams' leases every
 * STREAM_SLOT_RENEW_MS and gives each slot back when its stream ends. A
 * process that dies without giving its slots back loses them when their
 * lease lapses (STREAM_SLOT_LEASE_MS). Times are Redis's own (TIME), so the
 * API processes' clocks do not matter.
 *
 * Redis unreachable: a stream is let through (and logged): the cap guards
 * the API's connections, which do not depend on Redis, and refusing every
 * stream while Redis restarts would be worse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

/* KEYS[1] the user's set; ARGV: cap, lease ms, member. 1 taken, 0 full. */
static const char take_lua[] =
    "local t = redis.call('TIME') "
    "local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "return 1";
/* KEYS[1] the user's set; ARGV: lease ms, member. Renews a member still there. */
static const char renew_lua[] =
    "local t = redis.call('TIME') "
    "local now = t[1] * 1000 + math.floor(t[2] / 1000) "
    "if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2]) then "
    "redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return 1";

typedef struct {
  void (*cb)(int granted, void *arg);
  void *arg;
} take_op;

static void slot_key(char *out, size_t cap, const char *user) {
  snprintf(out, cap, "genq:streams:%s", user);
}

void api_stream_slot_name(api_ctx *ctx, char out[API_SLOT_NAME_MAX]) {
  static unsigned long long n;
  snprintf(out, API_SLOT_NAME_MAX, "%s:%llu", ctx->instance, ++n);
}

static void took(redisReply *reply, const char *err, void *arg) {
  take_op *op = arg;
  int granted = 1;
  if (err || !reply || reply->type != REDIS_REPLY_INTEGER) {
    log_warn("job events: the per-user stream count is unavailable; stream let through",
             LS("error", err                                         ? err
                         : reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                     : "bad reply"));
  } else {
    granted = reply->integer == 1;
  }
  op->cb(granted, op->arg);
  free(op);
}

int api_stream_slot_take(api_ctx *ctx, const char *user, const char *name,
                         void (*cb)(int granted, void *arg), void *arg) {
  if (ctx->cfg.max_streams_per_user <= 0) return 1;
  char key[sizeof(((api_user *)0)->user) + 16], cap[16], lease[16];
  slot_key(key, sizeof key, user);
  snprintf(cap, sizeof cap, "%d", ctx->cfg.max_streams_per_user);
  snprintf(lease, sizeof lease, "%d", STREAM_SLOT_LEASE_MS);
  take_op *op = malloc(sizeof(*op));
  if (!op) return 1;
  op->cb = cb;
  op->arg = arg;
  const char *argv[] = {"EVAL", take_lua, "1", key, cap, lease, name};
  if (rds_command_argv(ctx->redis, took, op, 7, argv, NULL) != 0) {
    free(op);
    log_warn("job events: Redis is down; stream let through without its count", LS("user", user));
    return 1;
  }
  return 0;
}

void api_stream_slot_renew(api_ctx *ctx, const char *user, const char *name) {
  if (ctx->cfg.max_streams_per_user <= 0) return;
  char key[sizeof(((api_user *)0)->user) + 16], lease[16];
  slot_key(key, sizeof key, user);
  snprintf(lease, sizeof lease, "%d", STREAM_SLOT_LEASE_MS);
  const char *argv[] = {"EVAL", renew_lua, "1", key, lease, name};
  rds_command_argv(ctx->redis, NULL, NULL, 6, argv, NULL);
}

void api_stream_slot_release(api_ctx *ctx, const char *user, const char *name) {
  if (ctx->cfg.max_streams_per_user <= 0) return;
  char key[sizeof(((api_user *)0)->user) + 16];
  slot_key(key, sizeof key, user);
  const char *argv[] = {"ZREM", key, name};
  rds_command_argv(ctx->redis, NULL, NULL, 3, argv, NULL);
}
