#ifndef GENQ_PROVLIMIT_STATE_H
#define GENQ_PROVLIMIT_STATE_H

#include <cjson/cJSON.h>

#include "redis.h"

/* What the fleet-wide provider limits look like now (provlimit_lua.h,
 * docs/providers.md), read from Redis for operators: `genqctl providers
 * show`, `genqctl status`, GET /v1/admin/providers and the dashboard. */

#define PROVLIMIT_NPROVIDERS 3
/* The providers, in the order of the worker's prov_id. */
extern const char *const provlimit_providers[PROVLIMIT_NPROVIDERS];

/* One provider's state from the reply of PROVLIMIT_SHOW_LUA ({now, slots
 * in use, the state hash}): {provider, max_in_flight, window, in_use,
 * paused, paused_for_ms, rate_per_minute, breaker (closed, open,
 * half_open, forced_open), failures, breaker_trips, rate_limited}, or NULL
 * when the reply is not that shape (or out of memory). */
cJSON *provlimit_state_json(const char *provider, const redisReply *reply);

/* Reads every provider's state: one EVAL each on r. cb runs exactly once
 * per call that returned 0, with the array in provlimit_providers' order
 * (the callee's: freed after cb returns), or NULL and err saying why —
 * before this returns when nothing could be sent. Returns 0, or -1 when r
 * is not connected (cb never runs). */
typedef void (*provlimit_state_cb)(const cJSON *providers, const char *err, void *arg);
int provlimit_state_read(rds *r, provlimit_state_cb cb, void *arg);

#endif
