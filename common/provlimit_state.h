#ifndef GENQ_PROVLIMIT_STATE_H
#define GENQ_PROVLIMIT_STATE_H

#include <hiredis/hiredis.h>

/* provlimit_state.h — one provider's fleet-wide limits as they stand in
 * Redis (provlimit_lua.h, docs/providers.md): what `genqctl providers
 * show` prints and a worker's GET /metrics exports. Read with one EVAL of
 * PROVLIMIT_SHOW_LUA per provider (keys: provlimit_state_keys). */

#define PROVLIMIT_PROVIDERS 3
/* "openai", "luma", "hedra": the providers with limits, in worker.h's
 * prov_id order. */
extern const char *const provlimit_providers[PROVLIMIT_PROVIDERS];

typedef struct {
  long long max_in_flight;   /* the configured limit (0: none) */
  long long window;          /* slots the window allows now (a 429 shrinks it) */
  long long in_use;          /* slots held now, across the fleet */
  long long paused_for_ms;   /* how long creates stay paused (a 429); 0: not paused */
  long long rate_per_minute; /* paid calls a minute (0: no rate) */
  long long failures;        /* consecutive failures toward the breaker */
  long long trips;           /* times the breaker opened */
  long long limited;         /* 429s the fleet reported */
  /* "closed", "open", "half_open" (open past its cool-down: the next call
   * is the probe) or "forced_open" (genqctl providers open) */
  char breaker[16];
} provlimit_state;

/* The slots and state keys of provider (each 64 bytes). */
void provlimit_state_keys(const char *provider, char slots[64], char state[64]);
/* Reads PROVLIMIT_SHOW_LUA's answer {now, in use, state hash}: 0, or -1
 * when reply is not that. */
int provlimit_state_read(const redisReply *reply, provlimit_state *out);

#endif
