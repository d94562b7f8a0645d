#ifndef GENQ_HTTP_CLIENT_H
#define GENQ_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Outgoing HTTP on libcurl's multi-socket API driven by libuv (the pattern
 * of curl's docs/examples/multi-uv.c). Many transfers in flight, no thread,
 * no blocking. TLS is verified (curl's defaults are kept). Response bodies
 * are bounded: a body over max_response_bytes aborts the transfer. */

typedef struct httpc httpc;

typedef struct {
  const char *method; /* "GET", "POST", "DELETE"... */
  const char *url;
  const char *const *headers; /* NULL or "Name: value" strings ended by NULL */
  const char *body;           /* may be NULL */
  size_t body_len;
  long timeout_ms;           /* whole transfer; 0 → 60000 */
  long connect_timeout_ms;   /* 0 → 10000 */
  size_t max_response_bytes; /* 0 → 4 MiB */
  /* AWS Signature V4 (CURLOPT_AWS_SIGV4), e.g. "aws:amz:us-east-1:s3", with
   * userpwd "access:secret". curl signs every header in headers, so a
   * request signed this way goes without the "Expect:" suppression the
   * others get. The payload hash comes from an "x-amz-content-sha256" header
   * when the caller gives one (S3 requires it; curl 7.88 does not add it),
   * else curl hashes body (not a mime body: give the header then). */
  const char *aws_sigv4;
  const char *userpwd; /* NULL, or "user:password" (CURLOPT_USERPWD) */
  /* Non-NULL: body is sent as the one part, named mime_field, of a
   * multipart/form-data POST (curl_mime; curl sets the Content-Type with
   * the boundary). mime_filename and mime_type may be NULL. */
  const char *mime_field;
  const char *mime_filename;
  const char *mime_type;
  /* 0 (default): body is copied, the caller may free it once httpc_send
   * returns. 1: body is used in place and must stay valid and unchanged
   * until the callback runs (no copy of a large upload). A mime part's
   * bytes are always copied. */
  int body_borrowed;
  /* For a destination a user named (net_guard.h). resolve: NULL, or one
   * "host:port:address" entry (CURLOPT_RESOLVE; an IPv6 address in
   * brackets), so that curl connects to that checked address and resolves
   * nothing. protocols: NULL ("http,https"), or the schemes allowed
   * (CURLOPT_PROTOCOLS_STR). no_proxy: 1 to ignore any proxy from the
   * environment. addr_ok: NULL, or called with each address curl is about
   * to connect to; returning 0 refuses it (the transfer fails with
   * CURLE_COULDNT_CONNECT). Redirects are never followed, by any request. */
  const char *resolve;
  const char *protocols;
  int no_proxy;
  int (*addr_ok)(const struct sockaddr *addr, void *arg);
  void *addr_ok_arg;
  /* 1: a body past max_response_bytes is cut there instead of failing the
   * transfer: the response then has its status, too_large set, curl_code
   * CURLE_OK and the first max_response_bytes of the body. */
  int truncate_response;
} httpc_request;

typedef struct {
  int status;        /* HTTP status; 0 when the transfer failed */
  int curl_code;     /* CURLE_OK, or why the transfer failed */
  const char *error; /* NULL, or a message when curl_code != 0 or too_large */
  int too_large;     /* 1 if the body passed max_response_bytes (transfer aborted, or the body
                        cut with truncate_response) */
  const char *body;  /* NUL-terminated, never NULL */
  size_t body_len;
  long retry_after_ms;      /* from retry-after-ms or Retry-After (seconds), -1 if absent */
  const char *content_type; /* NULL if absent */
  const char *request_id;   /* x-request-id response header, NULL if absent */
  const char *location;     /* Location header, NULL if absent */
  double total_ms;          /* elapsed */
} httpc_response;

/* Called exactly once per httpc_send that returned 0, on the loop thread;
 * resp and everything it points to are valid only during the call (unless
 * the body is taken with httpc_take_body). */
typedef void (*httpc_cb)(const httpc_response *resp, void *arg);

int httpc_new(httpc **out, uv_loop_t *loop);
/* Copies what it needs from req. Returns 0 and sets *id (if id != NULL) to
 * an id usable with httpc_cancel, or a negative value (cb then never runs). */
int httpc_send(httpc *c, const httpc_request *req, httpc_cb cb, void *arg, uint64_t *id);
/* Aborts one transfer; its callback runs with curl_code CURLE_ABORTED_BY_CALLBACK
 * before httpc_cancel returns. Unknown ids are ignored. */
void httpc_cancel(httpc *c, uint64_t id);
size_t httpc_in_flight(const httpc *c);
/* Inside an httpc_cb only: hands the response body to the caller, who
 * free()s it; it is NUL-terminated and resp->body_len long, and resp->body
 * points into it for the rest of the call. Spares copying a large download.
 * Returns NULL outside a callback, when taken already, or when out of
 * memory. */
char *httpc_take_body(httpc *c);
/* Aborts all transfers (each callback runs once, as for httpc_cancel), then
 * frees the client once its handles are closed. */
void httpc_close(httpc *c);

#endif
