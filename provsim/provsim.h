#ifndef GENQ_PROVSIM_H
#define GENQ_PROVSIM_H

/* Internal interfaces of genq-provsim, the provider simulator. One file per
 * provider (sim_openai.c; Luma and Hedra drop in the same way), one for the
 * schema-driven filler, one for the counters, one for delayed answers. */

#include <stddef.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "http_server.h"

/* ---- counters (stats.c) ---------------------------------------------- */

/* Counts per provider: plain counters ("chat_completions") and keyed maps
 * ("by_prompt" → key → n). Served as JSON by GET /_sim/stats:
 * {"<provider>": {"<counter>": n, "<map>": {"<key>": n}}}. */
typedef struct simstats simstats;

simstats *simstats_new(void);
void simstats_free(simstats *st);
/* Makes a counter (is_map 0) or map (is_map 1) appear in the JSON even at
 * zero / empty. Returns 0 or -1 (OOM, too many). */
int simstats_declare(simstats *st, const char *provider, const char *name, int is_map);
/* Adds one to provider.name, or to provider.name[key] when key is not NULL.
 * Returns the new count, or -1 when it could not count (OOM, table full). */
long long simstats_incr(simstats *st, const char *provider, const char *name, const char *key);
/* Zeroes every counter and empties every map; declarations are kept. */
void simstats_reset(simstats *st);
/* The JSON text (caller frees with cJSON_free), NULL on OOM. */
char *simstats_json(const simstats *st);

/* ---- schema filler (schema_fill.c) ------------------------------------ */

/* A JSON value valid against the JSON Schema subset OpenAI structured outputs
 * accept (object, array, string, integer, number, boolean, null, type arrays,
 * enum, const, anyOf, local $ref), with strings derived from `prompt` and the
 * property names. Output size is bounded. Caller owns the result; NULL on OOM. */
cJSON *schemafill_generate(const cJSON *schema, const char *prompt);

/* OpenAI's strict-mode rules: the root is an object schema, and every object
 * schema has additionalProperties false and lists every property in required.
 * Returns 0, or -1 with OpenAI's style of message in msg. */
int schemafill_check_strict(const cJSON *schema, const char *name, char *msg, size_t msglen);

/* ---- the simulator ------------------------------------------------------ */

typedef struct provsim_pending provsim_pending;

typedef struct provsim {
  uv_loop_t *loop;
  simstats *stats;
  provsim_pending *pending; /* delayed answers, answered at once on shutdown */
  int closing;
  void *openai; /* sim_openai.c's state */
} provsim;

/* Answers req after delay_ms on a uv_timer (never sleeping), or at once when
 * delay_ms is 0 or the simulator is closing. Copies headers and body.
 * extra_headers as for http_respond. */
void provsim_respond_later(provsim *ps, http_request *req, unsigned delay_ms, int status,
                           const char *content_type, const char *const *extra_headers,
                           const char *body, size_t len);
/* Answers every delayed request now and closes their timers (shutdown). */
void provsim_flush_pending(provsim *ps);

/* ---- OpenAI (sim_openai.c), under /openai ------------------------------ */

/* Reads PROVSIM_OPENAI_LATENCY_MS (default 200) and declares the counters.
 * Returns 0, or -1 with a message naming the variable. */
int sim_openai_init(provsim *ps, char *err, size_t errlen);
void sim_openai_free(provsim *ps);
/* Handles a request whose path starts with /openai; path is the rest ("/v1/..."). */
void sim_openai_handle(provsim *ps, http_request *req, const char *path);

#endif
