#ifndef GENQ_API_H
#define GENQ_API_H

#include <cjson/cJSON.h>

#include "config.h"
#include "db.h"
#include "http_client.h"
#include "http_server.h"
#include "job_cache.h"
#include "jwt.h"
#include "redis.h"
#include "relay.h"
#include "routes.h"
#include "storage.h"
#include "uuid.h"

struct api_access;
struct api_events;
struct api_metrics;
struct api_submits;
struct api_admin_events;

/* genq-api: the process-wide context, shared by the route handlers. */
typedef struct api_ctx {
  uv_loop_t *loop;
  genq_config cfg;
  db *db;
  rds *redis;
  jwt_verifier *jwt;
  jwt_cache *tokens; /* verified tokens, so a poll skips the RS256 check */
  job_cache *jobs;   /* what polls and event streams read (events.c keeps it fresh) */
  http_server *server;
  relay *relay;
  httpc *http;                           /* outgoing HTTP: the s3 storage backend */
  storage *storage;                      /* uploads and assets; NULL once shutdown has closed it */
  struct api_access *access;             /* access.c's copy of live keys and deleted accounts */
  struct api_events *events;             /* events.c's state */
  struct api_submits *submits;           /* submit_batch.c's queue; NULL until the first submit */
  struct api_admin_events *admin_events; /* admin_events.c's streams */
  struct api_metrics *metrics;           /* metrics.c's counts and the fleet's cached state */
  unsigned stored_streams;               /* stored.c's large downloads in progress */
  char instance[17];                     /* this process, in the names of its stream slots */
} api_ctx;

/* Slots of the verified-token cache: one per session polling at once, about
 * 600 bytes each. */
#define API_TOKEN_CACHE 4096

/* Open event streams per process; beyond, 503 (main.c accepts this many
 * connections and more). */
#define API_MAX_STREAMS 10000
#define API_STORED_STREAMS 64 /* large downloads at once (one 256 KiB piece each) */

#define API_KEY_ID_LEN 37 /* an API key's id (a UUID) and its NUL */

/* The authenticated caller of one request. */
typedef struct {
  char user[256];
  int admin;
  long long exp;               /* the token's expiry (Unix seconds; 0 for an API key): an
                                  event stream ends then */
  char key_id[API_KEY_ID_LEN]; /* the API key's id, "" for a session token */
} api_user;

/* ---- auth.c ---- */
/* Called with the caller once a request's API key was found in
 * PostgreSQL; route and id are what api_authenticate was given. */
typedef void (*api_auth_cb)(api_ctx *ctx, http_request *req, const api_user *u, int route,
                            const char *id);
/* Authenticates the request: a Clerk session JWT or a genq API key (gq_…)
 * as a Bearer token, or Clerk's __session cookie (which a request that
 * changes anything may carry only from an allowed origin). Returns 0 and
 * fills *u; or -1 after answering 401 (403 cross_site_request); or 1 when
 * PostgreSQL is asked (an API key this process does not hold yet, or any
 * caller before access.c's first load: was the account deleted?): then
 * either done runs later with the caller, or the request is answered. */
int api_authenticate(api_ctx *ctx, http_request *req, api_user *u, int route, const char *id,
                     api_auth_cb done);
/* 1 when the request carries a valid token; answers nothing (used before
 * the body is read, to decide how much of it to accept). */
int api_authenticated(api_ctx *ctx, const http_request *req);

/* ---- access.c: the live API keys and the deleted accounts ---- */
/* Loads them and follows their changes (PostgreSQL every second, Redis
 * notices at once). 0, or -1 (genq-api exits). */
int api_access_start(api_ctx *ctx);
void api_access_stop(api_ctx *ctx);
/* 1 once the first load succeeded. */
int api_access_ready(const api_ctx *ctx);
int api_access_user_deleted(const api_ctx *ctx, const char *user);
int api_access_key_revoked(const api_ctx *ctx, const char *key_id);
/* 1 for the SHA-256 of a key this process held and saw revoked. */
int api_access_key_hash_revoked(const api_ctx *ctx, const unsigned char hash[32]);
/* The live key with this SHA-256: 1 and *u filled (its use recorded at
 * most once a minute), or 0 when this process does not hold it. */
int api_access_key(api_ctx *ctx, const unsigned char hash[32], api_user *u);
/* After DELETE /v1/me committed (accounts.deleted_at set, the user's keys
 * revoked): this process refuses the user from now on, ends their event
 * streams, and tells every other API process through Redis. */
void api_auth_user_deleted(api_ctx *ctx, const char *user);

/* ---- limits.c: the usage limits' answers (docs/limits.md) ---- */
/* Answers 429 for a GQ429 refusal of genq's SQL (schema/functions/
 * limits.sql): column '<code>/<retry seconds>' gives the error code and
 * Retry-After, message the error's message. */
void api_reply_limit(http_request *req, const char *column, const char *message);
/* Answers a refusal of an unauthenticated or unauthenticatable request
 * (status, code, message, extra headers as api_reply_error; headers must
 * outlive the answer, e.g. static) — or, when the peer address has used up
 * its refusals (GENQ_IP_REFUSALS_PER_MINUTE / _BURST, shared by every API
 * process through Redis), 429 too_many_requests with Retry-After instead.
 * The answer may come later, from the loop. For any route that refuses
 * unauthenticated callers (401, a forged capability's 404, a webhook's bad
 * signature). */
void api_ip_refuse(api_ctx *ctx, http_request *req, int status, const char *code,
                   const char *message, const char *const *headers);

/* ---- reply.c ---- */
/* Answers with genq's error shape (SPEC §4):
 * {"error":{"code":"...","message":"...","request_id":"<the X-Request-Id>"}},
 * as application/json. extra_headers as for http_respond. */
void api_reply_error(http_request *req, int status, const char *code, const char *message,
                     const char *const *extra_headers);
/* The server's error writer (http_server_set_error_writer): its own
 * refusals (400, 408, 413, 431, 503) in the same shape. */
void api_server_error(http_request *req, int status, const char *code, const char *message,
                      void *arg);
void api_reply_json_text(http_request *req, int status, const char *json, size_t len);
/* Serializes and frees obj. */
void api_reply_json(http_request *req, int status, cJSON *obj);
/* Maps a failed db_result to 503 (connection trouble) or 500 and answers. */
void api_reply_db_error(http_request *req, const db_result *r);

/* ---- stored.c ---- */
typedef struct {
  size_t max_bytes;              /* larger objects are an error (503) */
  const char *const *headers;    /* extra response headers, NULL-ended */
  const char *not_found_message; /* the 404's message (no row, or bytes gone) */
} api_stored_opts;
/* Runs sql (one row of content_type, storage_key, bytes, or none → 404)
 * and answers with those bytes from storage: whole when small, else
 * streamed piece by piece (at most API_STORED_STREAMS at once). */
void api_reply_stored(api_ctx *ctx, http_request *req, const api_stored_opts *o, const char *sql,
                      int nparams, const char *const *params);

/* ---- route handlers (jobs.c, credits.c, health.c) ---- */
void api_jobs_submit(api_ctx *ctx, http_request *req, const api_user *u);
/* submit_batch.c: queues one validated submission of user (submission: the
 * object genq_submit_jobs reads, copied) for the next batch; req is answered once,
 * later, from the loop or before this returns. -1 when out of memory (req
 * not answered, nothing queued). */
int api_submit_enqueue(api_ctx *ctx, http_request *req, const char *user, const char *kind,
                       cJSON *submission);
/* Frees what submit_batch.c keeps, once the loop has ended. */
void api_submits_free(api_ctx *ctx);
void api_jobs_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
void api_jobs_list(api_ctx *ctx, http_request *req, const api_user *u);
void api_jobs_cancel(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
void api_credits_get(api_ctx *ctx, http_request *req, const api_user *u);
/* GET /v1/credits/ledger?limit=&cursor= (credits.c). */
void api_credits_ledger(api_ctx *ctx, http_request *req, const api_user *u);
/* GET /v1/usage?from=&to= (usage.c): the caller's jobs and captured credits
 * per UTC day and kind. */
void api_usage_get(api_ctx *ctx, http_request *req, const api_user *u);
void api_healthz(api_ctx *ctx, http_request *req);
void api_readyz(api_ctx *ctx, http_request *req);

/* ---- me.c: privacy rights (docs/privacy.md) ---- */
/* DELETE /v1/me: genq_account_delete, then api_auth_user_deleted → 202
 * {deleted_at, purge_after, canceled, keys_revoked}. */
void api_me_delete(api_ctx *ctx, http_request *req, const api_user *u);
/* GET /v1/me/export: the user's data as one JSON document, streamed page
 * by page. */
void api_me_export(api_ctx *ctx, http_request *req, const api_user *u);

/* ---- uploads.c, assets.c ---- */
/* POST /v1/uploads: raw body, checked against its Content-Type, stored as
 * uploads/<id>, recorded → 201 {id, content_type, bytes, sha256, expires_at}. */
void api_uploads_create(api_ctx *ctx, http_request *req, const api_user *u);
/* GET /v1/assets/{id}: the caller's stored result bytes. */
void api_assets_get(api_ctx *ctx, http_request *req, const api_user *u, const char *id);
/* GET|HEAD /v1/uploads/{id}/content?expires=&sig= (upload_content.c): an
 * upload's bytes for whoever holds a valid signed URL (signed_url.h), no
 * bearer token; every refusal is the same 404. */
void api_upload_content(api_ctx *ctx, http_request *req, const char *id);
/* POST /v1/callbacks/luma/{token} (callbacks.c): a Luma callback, taken as
 * a wake-up of the job its token names (callback_url.h); 204, or 404 for a
 * token genq did not make. No bearer token. */
void api_callback_luma(api_ctx *ctx, http_request *req, const char *token);
/* Callback bodies are a Generation of a few KiB; they are never read. */
#define API_CALLBACK_MAX_BODY (64u << 10)
/* POST /v1/webhooks/stripe (stripe.c): a Stripe event, verified by its
 * Stripe-Signature and applied by genq_stripe_event. No bearer token. */
void api_webhook_stripe(api_ctx *ctx, http_request *req);
/* Stripe events are a few KiB. */
#define API_STRIPE_MAX_BODY (256u << 10)

/* ---- events.c ---- */
/* GET /v1/jobs/{id}/events: server-sent events, one "job" event per change,
 * until the job is terminal. */
void api_jobs_events(api_ctx *ctx, http_request *req, const api_user *u, const char *id);

/* ---- stream_slots.c: a user's open event streams, counted in Redis ---- */
#define API_SLOT_NAME_MAX 48
#define STREAM_SLOT_LEASE_MS 60000
#define STREAM_SLOT_RENEW_MS 20000
/* A new slot's name, unique across the API processes. */
void api_stream_slot_name(api_ctx *ctx, char out[API_SLOT_NAME_MAX]);
/* Takes a slot named name for user. Returns 1 when the stream may go on at
 * once (no cap, or Redis unreachable: cb never runs), 0 when cb will tell:
 * granted 1, or 0 when the user is at GENQ_MAX_STREAMS_PER_USER. */
int api_stream_slot_take(api_ctx *ctx, const char *user, const char *name,
                         void (*cb)(int granted, void *arg), void *arg);
void api_stream_slot_renew(api_ctx *ctx, const char *user, const char *name);
void api_stream_slot_release(api_ctx *ctx, const char *user, const char *name);
/* After the server listens: 0, or -1 (genq-api exits). */
int api_events_start(api_ctx *ctx);
/* At shutdown, before the server closes: ends every stream. */
void api_events_stop(api_ctx *ctx);
/* Ends the streams of user (when not NULL) and those opened with the API
 * key key_id (when not NULL): their access was revoked. */
void api_events_revoked(api_ctx *ctx, const char *user, const char *key_id);

/* Event streams this process holds open. */
unsigned api_events_open(const api_ctx *ctx);

/* ---- metrics.c: GET /metrics (docs/metrics.md) ---- */
/* Counts this process' HTTP answers by route (routes: each route number's
 * template, nroutes of them, borrowed; the server's observer) and readies
 * the fleet's cached state. After http_server_new: 0, or -1 (out of
 * memory). */
int api_metrics_start(api_ctx *ctx, const char *const *routes, unsigned nroutes);
/* GET /metrics: the fleet (read from PostgreSQL when older than a second,
 * waited for a second at most), this process' counts, process_*. */
void api_metrics_get(api_ctx *ctx, http_request *req);
/* A job of kind was created by a submission (not a replay). */
void api_metrics_submitted(api_ctx *ctx, const char *kind);
/* At shutdown, before the server closes: waiting scrapes are answered. */
void api_metrics_stop(api_ctx *ctx);
/* After the loop ended. */
void api_metrics_free(api_ctx *ctx);

/* ---- sse.c ---- */
/* One server-sent event: "event: <event>\ndata: <data>\nid: <id>\n\n",
 * each CR or LF of data turned into a space so that it stays one data line
 * (JSON text keeps its meaning). event: a name without line breaks. Returns
 * a malloc'd, NUL-terminated buffer and its length in *out_len, or NULL on
 * OOM. */
char *api_sse_event(const char *event, const char *data, size_t len, unsigned long id,
                    size_t *out_len);

/* ---- admin*.c: the operators' API and dashboard (docs/admin.md) ---- */
/* Every request under /v1/admin, authenticated: an admin's (a Clerk
 * session whose metadata says role admin, or an API key made with
 * --admin) is routed (admin.c); anyone else's is 404 not_found, whatever
 * the path and method, like a resource they may not see. */
void api_admin(api_ctx *ctx, http_request *req, const api_user *u);
/* GET|HEAD /admin[/...] (admin_page.c): the dashboard's static files,
 * compiled into the binary, under a strict Content-Security-Policy. No
 * authentication: the page holds no data; it signs in with a pasted token
 * and calls /v1/admin. */
void api_admin_page(api_ctx *ctx, http_request *req);
/* admin_events.c: the admin event streams. start: after the server
 * listens (0, or -1: genq-api exits); stop: at shutdown, ends them. */
int api_admin_events_start(api_ctx *ctx);
void api_admin_events_stop(api_ctx *ctx);
/* A job changed (its change notice arrived, events.c): the streams' stats
 * are read again soon. */
void api_admin_events_notice(api_ctx *ctx);
/* As api_events_revoked, for the admin streams. */
void api_admin_events_revoked(api_ctx *ctx, const char *user, const char *key_id);

/* ---- util ---- */
/* Finds `name` in a raw query string and percent-decodes it into out.
 * Returns 1 found, 0 absent, -1 bad encoding or too long. */
int api_query_param(const char *query, const char *name, char *out, size_t outlen);

#endif
