#ifndef GENQ_WORKER_HEDRA_H
#define GENQ_WORKER_HEDRA_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "http_client.h"
#include "provider_http.h"

/* Hedra v3 client for the lip-sync step (PROVIDERS.md): upload the image
 * and audio, submit a hedra-character-3 job with an idempotency key, poll
 * its status, read its result. Every answer is validated and classified
 * into a code and a retryable flag for the worker's retry policy. */

/* Hedra's answers are small JSON documents; anything near this is not Hedra. */
#define HEDRA_MAX_RESPONSE (1u << 20)
/* Job ids go into URL paths. */
#define HEDRA_MAX_ID 128
/* Hedra's own input limits: images up to 10 MiB, audio (and the rest) 100 MiB. */
#define HEDRA_MAX_IMAGE_UPLOAD (10u << 20)
#define HEDRA_MAX_UPLOAD (100u << 20)
#define HEDRA_MAX_IDEMPOTENCY_KEY 255

typedef struct {
  const char *base_url;  /* e.g. https://api.hedra.com/v3 ('/' at the end tolerated) */
  const char *api_key;   /* "<key_id>:<secret>" as Authorization: Key <api_key>; "" sends none */
  long timeout_ms;       /* whole request; 0 → 60000 (uploads of large audio may need more) */
  provider_stats *stats; /* NULL, or where each answer is counted (metrics) */
} hedra_opts;

typedef struct {
  int ok;              /* 1: the call did what it was for (see each call) */
  int retryable;       /* on failure: 1 when asking again may help */
  const char *code;    /* on failure: "provider_network", "provider_timeout", "provider_canceled",
                          "provider_unavailable" (5xx, UNAVAILABLE, INTERNAL),
                          "provider_rate_limited" (429, RESOURCE_EXHAUSTED),
                          "provider_invalid_request" (400, 422, INVALID_ARGUMENT, other 4xx),
                          "provider_auth" (401, 403), "provider_not_found" (404),
                          "provider_conflict" (409), "provider_insufficient_balance" (402),
                          "provider_moderation", "provider_bad_response" (bad JSON, missing or
                          bad fields, unknown status, oversized body),
                          "provider_generation_failed"; NULL when ok */
  const char *message; /* human, bounded, never contains the API key; "ok" when ok */
  long retry_after_ms; /* error.retry_after (seconds) if given, else Retry-After, else -1 */
  int status;          /* HTTP status, 0 when the transfer failed */
  const char *request_id; /* x-request-id of the response, or NULL */
  const char *url;        /* hedra_upload: the uploaded file's URL */
  const char *job_id;     /* hedra_submit, hedra_status, hedra_get_result */
  const char *state;      /* IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED; NULL if not given */
  double progress;        /* hedra_status: 0..1 (clamped), -1 when absent or not a number */
  const char *output_url; /* hedra_get_result when COMPLETED: the first output's URL */
  const char *output_content_type; /* its content_type (hedra_upload: the file's), or NULL */
  int moderation;                  /* refused or failed for a content-policy reason */
} hedra_result;

/* Called exactly once for each call that returned 0, on the loop thread,
 * also when the transfer is canceled with httpc_cancel (code
 * "provider_canceled", retryable). r and every string it points to are valid
 * only during the call. A job in status FAILED comes as ok = 0 with code
 * "provider_moderation" (not retryable) or "provider_generation_failed"
 * (retryable unless Hedra says otherwise), job_id and state still set. */
typedef void (*hedra_cb)(const hedra_result *r, void *arg);

/* POST {base_url}/files, multipart/form-data with one part "file" holding
 * data (copied). content_type: image/..., audio/... or video/...; len
 * 1..HEDRA_MAX_IMAGE_UPLOAD for images, else 1..HEDRA_MAX_UPLOAD; filename:
 * NULL ("upload") or up to 200 printable characters without '"', '\\' or
 * '/'. ok → url (and output_content_type). Returns 0 and sets *xfer (if not
 * NULL) to the httpc transfer id, or -1 when an argument is unusable or the
 * request could not be started (cb never runs). Same for the calls below. */
int hedra_upload(httpc *h, const hedra_opts *o, const char *data, size_t len,
                 const char *content_type, const char *filename, hedra_cb cb, void *arg,
                 uint64_t *xfer);

typedef struct {
  const char *prompt;          /* NULL or the text prompt */
  const char *aspect_ratio;    /* NULL or 1:1, 16:9, 9:16 (Hedra validates) */
  const char *resolution;      /* NULL or 540p, 720p, 1080p */
  const char *image_url;       /* required: http(s) URL of the start image (e.g. from upload) */
  const char *audio_url;       /* required: http(s) URL of the audio */
  const char *idempotency_key; /* required: 1..255 printable; genq: job id + step name */
} hedra_submit_req;

/* POST {base_url}/models/hedra-character-3. ok → job_id (and state when
 * Hedra gave one). Repeating it with the same idempotency_key returns the
 * same job instead of paying for a second. */
int hedra_submit(httpc *h, const hedra_opts *o, const hedra_submit_req *s, hedra_cb cb, void *arg,
                 uint64_t *xfer);
/* GET {base_url}/jobs/{job_id}/status. ok → state IN_QUEUE, IN_PROGRESS or
 * COMPLETED, and progress. job_id: 1..HEDRA_MAX_ID of [A-Za-z0-9_-].
 * The status body carries no reason, so FAILED usually comes as
 * "provider_generation_failed", retryable, moderation 0: on any terminal
 * state ask hedra_get_result, whose error says whether it was moderation. */
int hedra_status(httpc *h, const hedra_opts *o, const char *job_id, hedra_cb cb, void *arg,
                 uint64_t *xfer);
/* GET {base_url}/jobs/{job_id}. ok → state; when COMPLETED also output_url
 * (the first output with a URL) and output_content_type. */
int hedra_get_result(httpc *h, const hedra_opts *o, const char *job_id, hedra_cb cb, void *arg,
                     uint64_t *xfer);

/* ---- pure parts, exposed for tests ---- */

typedef enum { HEDRA_OP_UPLOAD, HEDRA_OP_SUBMIT, HEDRA_OP_STATUS, HEDRA_OP_RESULT } hedra_op;

/* The JSON body of a submit (cJSON_free it), or NULL when s is unusable. */
char *hedra_submit_body(const hedra_submit_req *s);

/* 1 if an error code or message speaks of moderation, content policy,
 * safety or flagged content. */
int hedra_is_moderation(const char *code, const char *message);

/* Classifies a non-2xx answer with Hedra's {"error": {"code", "message",
 * "retryable", "retry_after"}}. Sets *code, *moderation, the message "Hedra
 * HTTP <status> <CODE>: <message>" in msg, and *retry_after_ms when the body
 * gives retry_after (left alone otherwise). Returns 1 if retryable: the
 * body's boolean "retryable" when present, except that MODERATION_FAILED and
 * INSUFFICIENT_BALANCE (402) never are; else by status and code. */
int hedra_classify_error(int status, const char *body, size_t len, const char **code,
                         int *moderation, long *retry_after_ms, char *msg, size_t msglen);

/* Everything one response means, and the storage that r points into. Do not
 * copy it (r.message points into msg). */
typedef struct {
  hedra_result r;
  cJSON *root;
  char msg[512];
} hedra_reply;

/* Reads resp (for the operation op) into rep->r. Free with hedra_reply_free. */
void hedra_reply_read(hedra_reply *rep, hedra_op op, const httpc_response *resp);
void hedra_reply_free(hedra_reply *rep);

#endif
