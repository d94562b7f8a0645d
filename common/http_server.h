#ifndef GENQ_HTTP_SERVER_H
#define GENQ_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

/* HTTP/1.1 server on libuv, parsing with llhttp.
 *
 * - Keep-alive; pipelined requests are answered in order: the next request
 *   of a connection is dispatched only after the previous one was answered.
 * - Limits: request line + headers over max_header_bytes → 431; a body over
 *   max_body_bytes → 413, refused on Content-Length before any body byte is
 *   read; headers not complete within header_timeout_ms, or a body not
 *   complete within body_timeout_ms (e.g. Content-Length larger than what is
 *   sent) → 408; malformed request → 400; an idle keep-alive connection is
 *   closed after idle_timeout_ms. Errors the server answers itself use the
 *   JSON error shape {"error":{"code","message","request_id"}} and close the
 *   connection.
 * - Every response carries X-Request-Id: the client's X-Request-Id when it is
 *   1..64 bytes of [A-Za-z0-9._-], else a fresh random id.
 *
 * Callback contract: the handler is called once per complete request, on the
 * loop thread. It must call http_respond() exactly once for that request,
 * either inside the handler or later from any callback on the same loop. The
 * request (and every string its accessors return) stays valid until
 * http_respond() returns. If the client goes away first, the request stays
 * valid, http_req_gone() turns 1, and http_respond() just frees it. */

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef struct {
  size_t max_header_bytes;    /* default 16384 */
  size_t max_body_bytes;      /* default 1 MiB */
  unsigned header_timeout_ms; /* default 10000 */
  unsigned body_timeout_ms;   /* default 30000 */
  unsigned idle_timeout_ms;   /* default 60000 */
  unsigned max_connections;   /* default 10000; beyond, new connections are closed */
} http_limits;

typedef void (*http_handler_cb)(http_request *req, void *arg);

/* limits may be NULL or have zero fields: defaults apply. Returns 0 or a
 * negative libuv error. */
int http_server_new(http_server **out, uv_loop_t *loop, const http_limits *limits,
                    http_handler_cb handler, void *arg);
/* host is an IPv4 or IPv6 literal; port 0 picks a free port. */
int http_server_listen(http_server *s, const char *host, int port);
int http_server_port(const http_server *s);
/* Stops accepting, closes every connection (pending requests become gone),
 * and frees the server once all handles are closed; then calls done. */
void http_server_close(http_server *s, void (*done)(void *arg), void *arg);

const char *http_req_method(const http_request *r); /* "GET", "POST", ... */
const char *http_req_path(const http_request *r);   /* decoded? no: raw path, without query */
const char *http_req_query(const http_request *r);  /* raw query without '?', "" if none */
/* Case-insensitive; the first header of that name, or NULL. */
const char *http_req_header(const http_request *r, const char *name);
const char *http_req_body(const http_request *r, size_t *len); /* NUL-terminated; "" if none */
const char *http_req_id(const http_request *r);
int http_req_gone(const http_request *r);
/* Handler-owned pointer carried with the request. */
void http_req_set_data(http_request *r, void *data);
void *http_req_data(const http_request *r);

/* Sends the response and releases the request. extra_headers: NULL or an
 * array of "Name: value" strings (no CRLF) ended by NULL. content_type may be
 * NULL when len is 0. Content-Length, Connection, Date and X-Request-Id are
 * added by the server. The body is copied. */
void http_respond(http_request *r, int status, const char *content_type,
                  const char *const *extra_headers, const char *body, size_t len);

/* Answers with the JSON error shape of SPEC §4: {"error":{"code","message","request_id"}}. */
void http_respond_error(http_request *r, int status, const char *code, const char *message,
                        const char *const *extra_headers);

/* Reason phrase for a status code ("Not Found"); "Unknown" if not known. */
const char *http_status_text(int status);

#endif
