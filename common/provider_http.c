/* provider_http.c — one request to a provider and the reading of its
 * transfer failures and error statuses (provider_http.h). */
#include "provider_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double seconds_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
const prom_buckets provider_seconds_buckets = {seconds_bounds,
                                               sizeof seconds_bounds / sizeof seconds_bounds[0]};

const char *provider_no_answer_label(int i) {
  static const char *const names[PROVIDER_NO_ANSWERS] = {"timeout", "network", "canceled"};
  return i >= 0 && i < PROVIDER_NO_ANSWERS ? names[i] : "network";
}

/* A transfer counted in its provider's stats before its caller hears. */
typedef struct {
  httpc_cb cb;
  void *arg;
  provider_stats *stats;
} counted_call;

static void counted(const httpc_response *resp, void *arg) {
  counted_call *c = arg;
  provider_stats *st = c->stats;
  if (resp->status != 0) /* an answer (a body cut for its size too) */
    st->status[prom_status_slot(resp->status)]++;
  else
    st->no_answer[resp->curl_code == CURLE_OPERATION_TIMEDOUT    ? PROVIDER_NO_ANSWER_TIMEOUT
                  : resp->curl_code == CURLE_ABORTED_BY_CALLBACK ? PROVIDER_NO_ANSWER_CANCELED
                                                                 : PROVIDER_NO_ANSWER_NETWORK]++;
  prom_hist_observe(&st->seconds, &provider_seconds_buckets, resp->total_ms / 1000.0);
  httpc_cb cb = c->cb;
  void *cb_arg = c->arg;
  free(c);
  cb(resp, cb_arg);
}

int provider_send(httpc *h, const provider_target *t, const httpc_request *req, httpc_cb cb,
                  void *arg, uint64_t *xfer) {
  size_t blen = strlen(t->base_url);
  while (blen && t->base_url[blen - 1] == '/')
    blen--;
  if (blen == 0 || blen > PROVIDER_MAX_BASE_URL) return -1;
  char url[PROVIDER_MAX_BASE_URL + 256];
  int n = snprintf(url, sizeof url, "%.*s%s", (int)blen, t->base_url, t->path);
  if (n < 0 || (size_t)n >= sizeof url) return -1;

  size_t alen = strlen(t->auth_scheme) + strlen(t->api_key) + sizeof "Authorization:  ";
  char *auth = malloc(alen);
  if (!auth) return -1;
  snprintf(auth, alen, "Authorization: %s %s", t->auth_scheme, t->api_key);
  const char *headers[4];
  size_t nh = 0;
  if (*t->api_key) headers[nh++] = auth;
  headers[nh++] = "Accept: application/json";
  if (req->body && !req->mime_field) headers[nh++] = "Content-Type: application/json";
  headers[nh] = NULL;
  httpc_request r = *req;
  r.url = url;
  r.headers = headers;
  counted_call *c = NULL;
  if (t->stats) {
    if (!(c = malloc(sizeof *c))) {
      free(auth);
      return -1;
    }
    *c = (counted_call){cb, arg, t->stats};
  }
  int rc =
      (c ? httpc_send(h, &r, counted, c, xfer) : httpc_send(h, &r, cb, arg, xfer)) == 0 ? 0 : -1;
  if (rc != 0) free(c);
  memset(auth, 0, alen); /* httpc_send copied it */
  free(auth);
  return rc;
}

int provider_transfer_failed(const httpc_response *resp, const char *who, const char *op,
                             size_t max, const char **code, char *msg, size_t msglen) {
  if (resp->too_large) {
    *code = "provider_bad_response";
    snprintf(msg, msglen, "%s %s: response larger than %zu bytes", who, op, max);
    return 1;
  }
  if (resp->curl_code == CURLE_OK && resp->status != 0) return 0;
  *code = resp->curl_code == CURLE_OPERATION_TIMEDOUT    ? "provider_timeout"
          : resp->curl_code == CURLE_ABORTED_BY_CALLBACK ? "provider_canceled"
                                                         : "provider_network";
  snprintf(msg, msglen, "%s %s failed: %.300s", who, op,
           resp->error ? resp->error : curl_easy_strerror((CURLcode)resp->curl_code));
  return 1;
}

int provider_status_error(int status, const char **code) {
  if (status == 429) {
    *code = "provider_rate_limited";
    return 1;
  }
  if (status >= 500) {
    *code = "provider_unavailable";
    return 1;
  }
  if (status == 408) {
    *code = "provider_timeout";
    return 1;
  }
  if (status >= 400) {
    *code = status == 401 || status == 403 ? "provider_auth"
            : status == 404                ? "provider_not_found"
                                           : "provider_invalid_request";
    return 0;
  }
  *code = "provider_bad_response";
  return 1;
}
