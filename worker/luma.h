#ifndef GENQ_WORKER_LUMA_H
#define GENQ_WORKER_LUMA_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "http_client.h"
#include "provider_http.h"

/* Luma AI Dream Machine client (PROVIDERS.md): create a video or image
 * generation, poll it, delete it. Every answer is validated and classified
 * into a code and a retryable flag for the worker's retry policy. Luma has no
 * idempotency key: the caller checkpoints the returned id before it waits,
 * and on resume polls that id instead of creating again. */

/* Generation bodies are a few KiB; anything near this is not Luma talking. */
#define LUMA_MAX_RESPONSE (1u << 20)
/* Generation ids are uuids; this bounds what may be put in a URL path. */
#define LUMA_MAX_ID 128

typedef struct {
  const char *base_url; /* e.g. https://api.lumalabs.ai/dream-machine/v1 (a '/' at the end is ok) */
  const char *api_key;  /* Authorization: Bearer <api_key>; "" sends none (Luma answers 401) */
  long timeout_ms;      /* whole request; 0 → 60000 */
  provider_stats *stats; /* NULL, or where each answer is counted (metrics) */
} luma_opts;

typedef struct {
  const char *model;        /* required: ray-2, ray-flash-2 (video); photon-1, photon-flash-1 */
  const char *prompt;       /* required, non-empty */
  const char *aspect_ratio; /* NULL or 1:1, 16:9, ... (the provider validates enums) */
  const char *duration;     /* video: NULL or 5s, 9s */
  const char *resolution;   /* video: NULL or 540p, 720p, 1080p, 4k */
  const char *keyframe_url; /* video: NULL or the http(s) URL of the first frame image */
  const char *format;       /* image: NULL or jpg, png */
  const char *callback_url; /* NULL, or the http(s) URL Luma POSTs the Generation to on each
                               state change (a wake-up only: callback_url.h) */
} luma_create;

typedef struct {
  int ok;              /* 1: the generation is queued, dreaming or completed (or, for
                          luma_delete, gone) */
  int retryable;       /* on failure: 1 when asking again may help */
  const char *code;    /* on failure: "provider_network", "provider_timeout", "provider_canceled",
                          "provider_unavailable" (5xx), "provider_rate_limited" (429),
                          "provider_invalid_request" (400, 422, other 4xx), "provider_auth" (401,
                          403), "provider_not_found" (404), "provider_bad_response" (bad JSON,
                          missing id, unknown state, oversized body), "provider_moderation",
                          "provider_generation_failed"; NULL when ok */
  const char *message; /* human, bounded, never contains the API key; "ok" when ok */
  long retry_after_ms; /* from Retry-After / retry-after-ms, else -1 */
  int status;          /* HTTP status, 0 when the transfer failed */
  const char *request_id; /* x-request-id of the response, or NULL */
  /* Set when the body was a valid Generation (also for state "failed"): */
  const char *id;
  const char *state;          /* queued, dreaming, completed, failed */
  const char *failure_reason; /* NULL unless the provider gave one */
  const char *asset_url;      /* completed: assets.video (video) or assets.image (image) */
  int moderation;             /* failed (or refused with 400) for a content-policy reason */
} luma_result;

/* Called exactly once for each call that returned 0, on the loop thread,
 * also when the transfer is canceled with httpc_cancel (code
 * "provider_canceled", retryable). r and every string it points to are valid
 * only during the call. A state "failed" comes as ok = 0 with code
 * "provider_moderation" (not retryable) or "provider_generation_failed"
 * (retryable: Luma refunds failed generations), id and state still set. */
typedef void (*luma_cb)(const luma_result *r, void *arg);

/* POST {base_url}/generations/video and /generations/image. Copy what they
 * need from o and c. Return 0 and set *xfer (if not NULL) to the httpc
 * transfer id, usable with httpc_cancel; or -1 when the options or input are
 * unusable (missing model/prompt, keyframe_url not http(s)) or the request
 * could not be started (cb never runs). */
int luma_create_video(httpc *h, const luma_opts *o, const luma_create *c, luma_cb cb, void *arg,
                      uint64_t *xfer);
int luma_create_image(httpc *h, const luma_opts *o, const luma_create *c, luma_cb cb, void *arg,
                      uint64_t *xfer);
/* GET {base_url}/generations/{id}. id: 1..LUMA_MAX_ID of [A-Za-z0-9_-], else -1. */
int luma_get(httpc *h, const luma_opts *o, const char *id, luma_cb cb, void *arg, uint64_t *xfer);
/* DELETE {base_url}/generations/{id}: cancels. 2xx and 404 (already gone)
 * are ok; id, state and asset_url are then NULL. */
int luma_delete(httpc *h, const luma_opts *o, const char *id, luma_cb cb, void *arg,
                uint64_t *xfer);

/* ---- pure parts, exposed for tests ---- */

/* The JSON body of a create (cJSON_free it), or NULL when c is unusable:
 * {"model","prompt","aspect_ratio"?, video: "duration"?, "resolution"?,
 * "keyframes"?: {"frame0": {"type": "image", "url"}}; image: "format"?;
 * "callback_url"?}. */
char *luma_create_body(const luma_create *c, int video);

typedef enum { LUMA_OP_CREATE_VIDEO, LUMA_OP_CREATE_IMAGE, LUMA_OP_GET, LUMA_OP_DELETE } luma_op;

typedef struct {
  cJSON *root; /* owns the strings below; luma_generation_free */
  const char *id;
  const char *generation_type; /* "video", "image" or NULL when absent */
  const char *state;           /* one of the four known states */
  const char *failure_reason;  /* NULL when absent or null */
  const char *asset_url;       /* completed: the asset of generation_type (video when absent) */
} luma_generation;

/* Parses and validates a Generation body: an object whose id is a usable id,
 * whose state is known, and which, when completed, names an http(s) asset
 * URL. Returns 0 (free out with luma_generation_free) or -1 with a reason in
 * err (out->root is then NULL; nothing to free). */
int luma_parse_generation(const char *body, size_t len, luma_generation *out, char *err,
                          size_t errlen);
void luma_generation_free(luma_generation *g);

/* 1 if a failure_reason (or error detail) speaks of moderation, content
 * policy, safety or flagged content. */
int luma_is_moderation(const char *reason);

/* Classifies a non-2xx answer (Luma's {"detail": "..."} or FastAPI's
 * {"detail": [{"msg": "..."}]}). Sets *code, *moderation and a message
 * "Luma HTTP <status>: <detail>" in msg; returns 1 if retryable, else 0. */
int luma_classify_error(int status, const char *body, size_t len, const char **code,
                        int *moderation, char *msg, size_t msglen);

/* Everything one response means, and the storage that r points into. Do not
 * copy it (r.message points into msg). */
typedef struct {
  luma_result r;
  luma_generation gen;
  char msg[512];
} luma_reply;

/* Reads resp (for the operation op) into rep->r: transfer errors, error
 * statuses, Generation bodies and their states. Free with luma_reply_free. */
void luma_reply_read(luma_reply *rep, luma_op op, const httpc_response *resp);
void luma_reply_free(luma_reply *rep);

#endif
