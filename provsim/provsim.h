#ifndef GENQ_PROVSIM_H
#define GENQ_PROVSIM_H

/* Internal interfaces of genq-provsim, the provider simulator. One file per
 * provider (sim_openai.c, sim_luma.c, sim_hedra.c), one for the media it
 * serves (sim_media.c, with the id tables and helpers the providers share),
 * one for Luma's callbacks (sim_callback.c), one for the clocks (clock.c),
 * one for the schema-driven filler, one for the counters, one for answers
 * (respond.c), one for fault injection (faults.c), and a
 * multipart/form-data reader (multipart.h) for the uploads.
 *
 * Calls between these files go one way: a file calls only files below it
 * in this order, never one above it or beside it (sim_callback.c asks
 * sim_luma.c about a generation through the functions it was given).
 *   main.c
 *   sim_openai.c, sim_luma.c, sim_hedra.c
 *   sim_media.c, sim_callback.c
 *   respond.c
 *   faults.c
 *   stats.c, clock.c, schema_fill.c, multipart.c (which call no other file) */

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
/* A gauge: provider.name is fn(arg), read each time the JSON is made (a
 * current level such as generations in flight, which reset does not touch).
 * fn runs on the loop thread and must not fail. Returns 0 or -1. */
typedef long long (*simstats_gauge_fn)(void *arg);
int simstats_declare_gauge(simstats *st, const char *provider, const char *name,
                           simstats_gauge_fn fn, void *arg);
/* Zeroes every counter and empties every map; declarations are kept. */
void simstats_reset(simstats *st);
/* The JSON text (caller frees with cJSON_free), NULL on OOM. */
char *simstats_json(const simstats *st);

/* ---- schema filler (schema_fill.c) ----------------------------------- */

/* A JSON value valid against the JSON Schema subset OpenAI structured outputs
 * accept (object, array, string, integer, number, boolean, null, type arrays,
 * enum, const, anyOf, local $ref), with strings derived from `prompt` and the
 * property names. Output size is bounded. Caller owns the result; NULL on OOM. */
cJSON *schemafill_generate(const cJSON *schema, const char *prompt);

/* OpenAI's strict-mode rules: the root is an object schema, and every object
 * schema has additionalProperties false and lists every property in required.
 * Returns 0, or -1 with OpenAI's style of message in msg. */
int schemafill_check_strict(const cJSON *schema, const char *name, char *msg, size_t msglen);

/* ---- id tables (sim_media.c) ----------------------------------------- */

/* A string-keyed hash table of nodes embedded in the caller's structs (as
 * list nodes are), which also keeps them in insertion order, so that the
 * oldest can be evicted and lists served newest first. The table owns
 * neither nodes nor keys: a key must stay valid while its node is in. */
typedef struct simtab_node {
  struct simtab_node *hnext;         /* bucket chain */
  struct simtab_node *older, *newer; /* insertion order */
  const char *key;
} simtab_node;

typedef struct {
  simtab_node **buckets;
  size_t mask; /* bucket count - 1 */
  size_t count;
  simtab_node *oldest, *newest;
} simtab;

#define SIMTAB_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* nbuckets is rounded up to a power of two. Returns 0 or -1 (OOM). */
int simtab_init(simtab *t, size_t nbuckets);
/* Frees the buckets only; the caller frees its structs first. */
void simtab_free(simtab *t);
simtab_node *simtab_get(const simtab *t, const char *key);
/* Adds n as the newest under key, which must not be in the table. */
void simtab_add(simtab *t, simtab_node *n, const char *key);
void simtab_remove(simtab *t, simtab_node *n);

/* ---- clocks (clock.c) ------------------------------------------------ */

long long sim_wall_ms(void); /* Unix time in milliseconds */
long long sim_mono_ms(void); /* monotonic milliseconds, for elapsed times */
/* "2025-01-31T12:00:00.123Z" */
void sim_rfc3339(long long wall_ms, char out[32]);

/* ---- shared helpers (sim_media.c) ------------------------------------ */

/* A random UUID v4, lowercase, 36 characters and a NUL. */
void sim_uuid4(char out[37]);
/* Reads the integer environment variable name (milliseconds, 0..max) into
 * *out, or def when unset or empty. Returns 0, or -1 with a message. */
int sim_env_ms(const char *name, unsigned def, unsigned max, unsigned *out, char *err,
               size_t errlen);

/* ---- the simulator --------------------------------------------------- */

typedef enum { SIM_OPENAI, SIM_LUMA, SIM_HEDRA, SIM_NPROVIDERS } sim_provider;

typedef struct provsim_pending provsim_pending;
typedef struct simmedia simmedia;
typedef struct simfaults simfaults;

typedef struct provsim {
  uv_loop_t *loop;
  simstats *stats;
  simmedia *media;
  simfaults *faults;
  provsim_pending *pending; /* delayed answers, answered at once on shutdown */
  int closing;
  char self[80]; /* "host:port" it listens on: download URLs without a Host header */
  void *openai;  /* sim_openai.c's state */
  void *luma;    /* sim_luma.c's */
  void *hedra;   /* sim_hedra.c's */
} provsim;

/* "http://<Host header>" (or "http://<ps->self>" when the request has no
 * usable Host), the origin the client reached us at: the base of the URLs we
 * hand out. Returns 0, or -1 when out is too small. */
int sim_origin(const provsim *ps, const http_request *req, char *out, size_t n);

/* ---- answers (respond.c) --------------------------------------------- */

/* Draws the request fault of req, a request to provider p
 * (simfaults_begin), and deals at once with the faults that come before the
 * request takes effect: an injected error or rate limit is answered through
 * provsim_reply (so after the provider's LATENCY_MS), a reset has aborted
 * the connection. Returns 0 then: the handler must not run. Otherwise
 * returns 1 and the handler runs; its answer, through provsim_reply,
 * carries the fault. */
int provsim_begin(provsim *ps, http_request *req, sim_provider p);
/* Answers a request of a provider endpoint, and every answer of one goes
 * through here: after delay_ms, or, when delay_ms < 0, after the provider's
 * LATENCY_MS (see faults.c), on a uv_timer (never sleeping); at once when the
 * delay is 0 or the simulator is closing. The fault drawn for the request
 * (provsim_begin) is applied here: a hung request is held unanswered, a
 * truncated or malformed one is cut or spoiled as it is sent. Copies headers
 * and body; extra_headers as for http_respond. A request that did not come
 * through provsim_begin is answered plainly after delay_ms (0 if < 0). */
void provsim_reply(provsim *ps, http_request *req, int delay_ms, int status,
                   const char *content_type, const char *const *extra_headers, const char *body,
                   size_t len);
/* Answers every delayed request now and closes their timers (shutdown). */
void provsim_flush_pending(provsim *ps);
/* Answers at once, in genq's own error shape (not a provider's):
 * {"error":{"code","message","request_id"}}; for what no provider serves
 * (no such endpoint, a body too large, out of memory). */
void provsim_error(http_request *req, int status, const char *code, const char *message,
                   const char *const *extra_headers);
/* The server's error writer (http_server_set_error_writer): its own
 * refusals (400, 408, 413, 431, 503) in that shape too. */
void provsim_server_error(http_request *req, int status, const char *code, const char *message,
                          void *arg);

/* ---- fault injection (faults.c) -------------------------------------- */

/* The request faults: at most one per request, drawn when it arrives. */
typedef enum {
  SIMFAULT_NONE,
  SIMFAULT_ERROR,      /* 500, 502 or 503 in the provider's error shape */
  SIMFAULT_RATE_LIMIT, /* 429 with Retry-After */
  SIMFAULT_HANG,       /* never answered; held until the client leaves */
  SIMFAULT_RESET,      /* the connection closed with RST, nothing answered */
  SIMFAULT_TRUNCATE,   /* the full Content-Length promised, half the body sent */
  SIMFAULT_MALFORMED,  /* the normal status with a body that is not JSON */
  SIMFAULT_NREQUEST
} simfault;

/* How a generation (a Luma generation, a Hedra job, an OpenAI completion)
 * ends. */
typedef enum { SIMOUTCOME_OK, SIMOUTCOME_MODERATION, SIMOUTCOME_FAIL } simoutcome;

/* Reads PROVSIM_[<P>_]<F> for every provider and fault, and PROVSIM_SEED
 * (see faults.c), declares the fault counters of the providers that inject
 * any, and logs the seed. Returns 0, or -1 with a message naming the
 * variable. */
int simfaults_init(provsim *ps, char *err, size_t errlen);
void simfaults_free(provsim *ps);
/* The answer delay of provider p: PROVSIM_<P>_LATENCY_MS. */
unsigned simfaults_latency(const provsim *ps, sim_provider p);

/* What simfaults_begin tells its caller (provsim_begin) to do. */
typedef enum {
  SIMBEGIN_HANDLE, /* run the handler: its answer carries the fault, if any */
  SIMBEGIN_REPLY,  /* an error or rate limit: send the simfault_reply */
  SIMBEGIN_DONE    /* a reset: the connection is aborted, nothing to send */
} simbegin;

/* The answer of an injected error or rate limit, in the provider's error
 * shape. headers (NULL, or a NULL-terminated list) points into the struct
 * itself: send it from where simfaults_begin filled it. body is NULL when
 * out of memory; the caller frees it with cJSON_free. */
typedef struct {
  int status;
  const char *content_type;
  const char *const *headers;
  char *body;
  const char *hdr[6];
  char retry[40], retry_ms[48], reset[48];
} simfault_reply;

/* Draws the request fault of req, a request to provider p, counts it, and
 * tells what is to happen; answers nothing itself. Error, rate_limit:
 * fills *reply and returns SIMBEGIN_REPLY, for the caller to send through
 * provsim_reply. Reset: aborts the connection and returns SIMBEGIN_DONE.
 * Otherwise returns SIMBEGIN_HANDLE: the handler runs, and its answer,
 * through provsim_reply, carries the fault. */
simbegin simfaults_begin(provsim *ps, http_request *req, sim_provider p, simfault_reply *reply);
/* The fault drawn for req (SIMFAULT_NONE when there is none). Returns 1 and
 * sets *p when req came through simfaults_begin, else 0. */
int simfaults_of(const http_request *req, sim_provider *p, simfault *f);
/* Tells that req's create took effect (a generation or completion exists
 * and was counted under key, as the provider counts its creates): when the
 * answer to req is to be lost (hang, truncate, malformed), counts
 * <provider>.lost_creates[key]. key NULL: nothing to count. */
void simfaults_created(provsim *ps, const http_request *req, const char *key);
/* Draws how a new generation of provider p ends (MODERATION_RATE,
 * FAIL_RATE) and counts what it injects. */
simoutcome simfaults_outcome(provsim *ps, sim_provider p);
/* Sends req's answer now, with its truncate or malformed fault applied, or
 * holds it unanswered when it hangs. For provsim_reply. */
void simfaults_answer(provsim *ps, http_request *req, int status, const char *content_type,
                      const char *const *extra_headers, const char *body, size_t len);
/* Closes the connections of every hung request (shutdown). */
void simfaults_release_hung(provsim *ps);

/* ---- OpenAI (sim_openai.c), under /openai ---------------------------- */

/* Declares the counters. Its latency is PROVSIM_OPENAI_LATENCY_MS (faults.c).
 * Returns 0, or -1 with a message. */
int sim_openai_init(provsim *ps, char *err, size_t errlen);
void sim_openai_free(provsim *ps);
/* Handles a request whose path starts with /openai; path is the rest ("/v1/..."). */
void sim_openai_handle(provsim *ps, http_request *req, const char *path);

/* ---- media and downloads (sim_media.c), under /files ----------------- */

/* Small valid media: a PNG, a baseline JPEG, a one-second H.264 MP4. */
typedef enum { SIMMEDIA_PNG, SIMMEDIA_JPEG, SIMMEDIA_MP4 } simmedia_kind;

simmedia *simmedia_new(void);
void simmedia_free(simmedia *m);
/* Makes GET /files/<name> serve the built-in bytes of kind. name is
 * [A-Za-z0-9._-], 1..79 bytes. Beyond 400000 files the oldest goes.
 * Returns 0, or -1 (bad name, OOM). */
int simmedia_add_builtin(simmedia *m, const char *name, simmedia_kind kind);
/* Makes GET /files/<name> serve a copy of data. Uploads together are held
 * under 256 MiB: the oldest go first. Returns 0, or -1 (bad name,
 * too big, OOM). */
int simmedia_add_copy(simmedia *m, const char *name, const char *content_type, const char *data,
                      size_t len);
/* Handles GET or HEAD /files/<name>; path is the rest ("/<name>"). */
void simmedia_handle(provsim *ps, http_request *req, const char *path);

/* ---- callbacks (sim_callback.c) -------------------------------------- */

/* The sender of Luma's callbacks: the generation of a create that named a
 * loopback callback_url is POSTed there, as JSON, at the times sim_luma.c
 * tells, each callback up to 3 tries until a 2xx. Counts luma.callbacks,
 * luma.callback_failures and luma.callbacks_refused. */
typedef struct simcb simcb;

/* What the sender asks about generation id, each time it needs it (the
 * generation may be deleted meanwhile). due: when its callback n (0, 1, ...)
 * is due, on sim_mono_ms's clock; -1 when the generation is gone or has no
 * callback n. body: the generation as it is now, as JSON text (freed with
 * cJSON_free), NULL when out of memory; NULL with *gone set to 1 when the
 * generation is gone. */
typedef long long (*simcb_due_fn)(void *arg, const char *id, int n);
typedef char *(*simcb_body_fn)(void *arg, const char *id, int *gone);

/* Declares the counters and makes the HTTP client; due and body get arg.
 * Returns 0, or -1 (OOM) with *out NULL. */
int simcb_new(simcb **out, provsim *ps, simcb_due_fn due, simcb_body_fn body, void *arg);
/* Sends the callbacks of generation id (already findable through due) to
 * url; refused (and counted) unless url is http(s) on a loopback host. */
void simcb_schedule(simcb *s, const char *id, const char *url);
/* Shutdown: callbacks still to send are dropped, those in flight canceled;
 * nothing new is scheduled. Does nothing when s is NULL or stopped. */
void simcb_stop(simcb *s);
/* Frees s, once stopped and the loop has run. */
void simcb_free(simcb *s);

/* ---- Luma AI (sim_luma.c), under /luma ------------------------------- */

/* Reads PROVSIM_LUMA_VIDEO_MS (default 10000) and PROVSIM_LUMA_IMAGE_MS
 * (default 4000) and declares the counters. Returns 0, or -1 with a message. */
int sim_luma_init(provsim *ps, char *err, size_t errlen);
/* The test knobs POST /_sim/luma/rate_limit and /_sim/luma/peak_reset. */
void sim_luma_rate_limit(provsim *ps, http_request *req);
void sim_luma_peak_reset(provsim *ps, http_request *req);
void sim_luma_free(provsim *ps);
/* Shutdown: callbacks still to send are dropped, those in flight canceled. */
void sim_luma_stop(provsim *ps);
/* Handles a request whose path starts with /luma; path is the rest
 * ("/dream-machine/v1/..."). */
void sim_luma_handle(provsim *ps, http_request *req, const char *path);

/* ---- Hedra (sim_hedra.c), under /hedra ------------------------------- */

/* Reads PROVSIM_HEDRA_MS (default 12000) and declares the counters. Returns
 * 0, or -1 with a message. */
int sim_hedra_init(provsim *ps, char *err, size_t errlen);
void sim_hedra_free(provsim *ps);
/* Handles a request whose path starts with /hedra; path is the rest ("/v3/..."). */
void sim_hedra_handle(provsim *ps, http_request *req, const char *path);

#endif
