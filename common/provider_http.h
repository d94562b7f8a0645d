/* What the provider clients (worker/openai.c, luma.c, hedra.c) do alike over
 * HTTP: send one request to {base_url}{path} with the provider's key and
 * JSON headers; and, for Luma and Hedra, which share their error codes, read
 * what an answer means before its body is looked at: a failed transfer, an
 * oversized body, an error status. */
#ifndef GENQ_PROVIDER_HTTP_H
#define GENQ_PROVIDER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_client.h"
#include "prom.h"

/* A base URL longer than this (its trailing '/'s trimmed) is not used. */
#define PROVIDER_MAX_BASE_URL 2048

/* What one provider answered, for the worker's metrics (docs/metrics.md):
 * each answer by its status (prom_status_slot), each transfer that got
 * none by why, and how long each took. Zeroed is empty; counted on the
 * loop thread by the transfers of provider_send that name it. */
enum { PROVIDER_NO_ANSWER_TIMEOUT, PROVIDER_NO_ANSWER_NETWORK, PROVIDER_NO_ANSWER_CANCELED };
#define PROVIDER_NO_ANSWERS 3
typedef struct {
  uint64_t status[PROM_STATUS_SLOTS];
  uint64_t no_answer[PROVIDER_NO_ANSWERS];
  prom_hist seconds;
} provider_stats;
/* The buckets of provider_stats.seconds: from a fast status poll to a
 * storyboard of a minute and the 120 s timeout. */
extern const prom_buckets provider_seconds_buckets;
/* The code label of a transfer without an answer: "timeout", "network",
 * "canceled". */
const char *provider_no_answer_label(int i);

typedef struct {
  const char *base_url;    /* a trailing '/' is tolerated */
  const char *path;        /* "/..." appended to it, at most 255 bytes */
  const char *auth_scheme; /* "Authorization: <auth_scheme> <api_key>" */
  const char *api_key;     /* "" sends no Authorization header */
  provider_stats *stats;   /* NULL, or where its answer is counted */
} provider_target;

/* Sends req (method, body, multipart fields, timeout and body cap as the
 * caller set them) to t's URL with the Authorization header, "Accept:
 * application/json", and "Content-Type: application/json" when req has a
 * body that is not multipart (curl gives a multipart one its boundary); its
 * own url and headers are not used. With t->stats, the answer is counted
 * there before cb runs. Returns 0 as httpc_send does, or -1 when
 * the base URL is empty or too long, the path too long, or the request could
 * not be started (cb never runs). */
int provider_send(httpc *h, const provider_target *t, const httpc_request *req, httpc_cb cb,
                  void *arg, uint64_t *xfer);

/* 1 when resp says nothing of the provider: its body passed max bytes
 * (*code "provider_bad_response", msg "<who> <op>: response larger than
 * <max> bytes"), or the transfer failed ("provider_timeout",
 * "provider_canceled" or "provider_network", msg "<who> <op> failed:
 * <why>"). Either is retryable. 0 otherwise (nothing set). */
int provider_transfer_failed(const httpc_response *resp, const char *who, const char *op,
                             size_t max, const char **code, char *msg, size_t msglen);

/* The code of a status that is not 2xx: 429 "provider_rate_limited", 5xx
 * "provider_unavailable", 408 "provider_timeout", 401 and 403
 * "provider_auth", 404 "provider_not_found", other 4xx
 * "provider_invalid_request", 1xx and 3xx (where JSON was due)
 * "provider_bad_response". Returns 1 if asking again may help (429, 5xx,
 * 408, 1xx, 3xx), else 0. */
int provider_status_error(int status, const char **code);

#endif
