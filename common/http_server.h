#ifndef GENQ_HTTP_SERVER_H
#define GENQ_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* HTTP/1.1 server on libuv, parsing with llhttp.
 *
 * - Keep-alive; pipelined requests are answered in order: the next request
 *   of a connection is dispatched only after the previous one was answered.
 * - Limits: request line + headers over max_header_bytes → 431; a body over
 *   max_body_bytes → 413, refused on Content-Length before any body byte is
 *   read, and for a chunked body on the first chunk size that would pass
 *   it; headers not complete within header_timeout_ms → 408; a body that
 *   stalls (no byte for body_timeout_ms), or that arrives slower on average
 *   than body_min_rate bytes/s once body_timeout_ms have passed → 408 (so a
 *   large upload on a slow honest link completes, and a trickle does not
 *   hold a connection); malformed request → 400; an idle keep-alive
 *   connection is closed after idle_timeout_ms. The server answers these
 *   refusals itself, through its error writer (plain text unless the caller
 *   sets its own, http_server_set_error_writer), and closes the connection.
 * - Writes: a response (plain or streamed) whose bytes make no progress
 *   into the socket for write_timeout_ms — a client that stopped reading —
 *   has its connection reset; the request turns gone.
 * - Connections: at most max_connections, and at most max_per_ip from one
 *   peer address (0: no per-address cap); beyond, new connections are
 *   closed at once. Refusals and accept errors are counted
 *   (http_server_stats) and logged, at most once a second. (Out of file
 *   descriptors, libuv sheds the waiting connection with a descriptor it
 *   keeps in reserve and reports nothing; only when that fails does an
 *   accept error reach the count. Keep max_connections under
 *   RLIMIT_NOFILE with room to spare.)
 * - Every response carries X-Request-Id: the client's X-Request-Id when it is
 *   1..64 bytes of [A-Za-z0-9._-], else a fresh random id.
 * - max_body_bytes can be replaced per request (http_server_set_body_limit),
 *   e.g. a larger one for uploads.
 *
 * Callback contract: the handler is called once per complete request, on the
 * loop thread. It must release the request exactly once, with http_respond()
 * (or http_respond_take), or with http_stream_end() after
 * http_stream_begin(), either inside the handler or later from any callback
 * on the same loop. The request (and every string its accessors return)
 * stays valid until that call returns. If the client goes away first, the
 * request stays valid, http_req_gone() turns 1, the on_gone callback (if
 * set) runs once, and the releasing call just frees it. */

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef struct {
  size_t max_header_bytes;    /* default 16384 */
  size_t max_body_bytes;      /* default 1 MiB */
  unsigned header_timeout_ms; /* default 10000 */
  unsigned body_timeout_ms;   /* default 15000: the longest stall, and the grace before the rate */
  unsigned body_min_rate;     /* bytes/s, default 1024 */
  unsigned idle_timeout_ms;   /* default 60000 */
  unsigned write_timeout_ms;  /* default 30000 */
  unsigned max_connections;   /* default 10000; beyond, new connections are closed */
  unsigned max_per_ip;        /* default 0: no cap per peer address */
} http_limits;

/* What the server refused or failed to accept since it started. */
typedef struct {
  unsigned long long refused_full;   /* max_connections reached */
  unsigned long long refused_per_ip; /* max_per_ip reached */
  unsigned long long accept_errors;  /* accept failed (EMFILE, ENFILE, ENOMEM, ...) */
  unsigned long long write_timeouts; /* connections reset: a client that stopped reading */
  unsigned connections;              /* open now */
} http_server_stats_t;
void http_server_stats(const http_server *s, http_server_stats_t *out);

typedef void (*http_handler_cb)(http_request *req, void *arg);

/* limits may be NULL or have zero fields: defaults apply. Returns 0 or a
 * negative libuv error. */
int http_server_new(http_server **out, uv_loop_t *loop, const http_limits *limits,
                    http_handler_cb handler, void *arg);

/* Per-request body limit: fn is called once per request, as soon as its
 * headers are complete (method, path, query, headers and id readable; no
 * body yet), and its result replaces max_body_bytes for that request — the
 * Content-Length refusal before any body byte is read (413) and the running
 * count of a chunked body alike. 0 allows no body at all. fn must not keep
 * the request or call any other http_* function on it. NULL restores
 * max_body_bytes for every request. */
typedef size_t (*http_body_limit_cb)(const http_request *req, void *arg);
void http_server_set_body_limit(http_server *s, http_body_limit_cb fn, void *arg);
/* How the server words the refusals it answers itself, before or instead of
 * the handler: 400 (malformed), 408 (too slow), 413 (body too large), 431
 * (headers too large), 503 (out of memory). code names the refusal in
 * snake_case ("payload_too_large"), message says it in a few words ("request
 * body too large"); the request's id is set. fn must answer r with
 * http_respond or http_respond_take before it returns; the connection closes
 * after that answer, and a HEAD request gets the body too. The default
 * writer sends message as text/plain. NULL restores it. */
typedef void (*http_error_writer)(http_request *r, int status, const char *code,
                                  const char *message, void *arg);
void http_server_set_error_writer(http_server *s, http_error_writer fn, void *arg);
/* Told of each answer as its status line goes out: a plain response when
 * http_respond (or _take) sends it to a connected client, a stream when
 * http_stream_begin sends its head, a refusal the server answers itself
 * (route 0, as no handler saw it). elapsed_ns runs from the moment the
 * request was complete (handed to the handler; for a refusal, from the
 * refusal) to that answer. An answer to a client already gone is not
 * told. fn runs on the loop inside the answering call: it must be quick
 * and must not call any http_* function but the read-only accessors of
 * r. Without an observer (the default; NULL) the server takes no time
 * stamps at all. */
typedef void (*http_observer_cb)(const http_request *r, int status, uint64_t elapsed_ns, void *arg);
void http_server_set_observer(http_server *s, http_observer_cb fn, void *arg);
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
/* The peer address of the request's connection as text (IPv4 dotted, else
 * IPv6), into out; 0, or -1 when the connection is gone or has none. */
int http_req_peer(const http_request *r, char *out, size_t outlen);
int http_req_gone(const http_request *r);
/* A small number the handler gives the request (its route, as a label for
 * the observer); 0 until set. */
void http_req_set_route(http_request *r, unsigned route);
unsigned http_req_route(const http_request *r);
/* Handler-owned pointer carried with the request. */
void http_req_set_data(http_request *r, void *data);
void *http_req_data(const http_request *r);
/* Asks to be told when the client goes away while the handler still holds
 * r (a plain request not yet answered, or an open stream). cb runs at most
 * once, from the loop, never from inside an http_* call, after
 * http_req_gone(r) turned 1. r is still held then: the owner must release
 * it (http_stream_end or http_respond), in cb or later. Releasing r first
 * cancels the call. If http_req_gone(r) is already 1 when registering, cb
 * may never run: check it. Setting again replaces cb; NULL cancels. */
void http_req_on_gone(http_request *r, void (*cb)(http_request *r, void *arg), void *arg);

/* Releases the request and resets its connection (RST, no answer): for
 * simulating a network failure. */
void http_abort(http_request *r);

/* Sends the response and releases the request. extra_headers: NULL or an
 * array of "Name: value" strings (no CRLF) ended by NULL. content_type may be
 * NULL when len is 0. Content-Length, Connection, Date and X-Request-Id are
 * added by the server. The body is copied. */
void http_respond(http_request *r, int status, const char *content_type,
                  const char *const *extra_headers, const char *body, size_t len);

/* Like http_respond, but takes body, a malloc'd buffer, instead of copying
 * it: the server frees it once written (or at once if it is not sent, e.g.
 * a HEAD request or a client already gone). */
void http_respond_take(http_request *r, int status, const char *content_type,
                       const char *const *extra_headers, char *body, size_t len);

/* Streaming responses (server-sent events): a response without a length
 * that ends with the connection.
 *
 * http_stream_begin sends the status line and headers — content_type,
 * Cache-Control: no-cache, Connection: close, Date, X-Request-Id and
 * extra_headers (as in http_respond) — and keeps r held. Returns 0, or -1
 * when the client is gone (or the server is closing); r is held either
 * way. From then on nothing else is read from the connection: pipelined
 * requests behind this one are never served, and the client closing its
 * side (EOF) counts as gone. No server timeout ends a stream.
 *
 * http_stream_write queues a copy of data. Returns 0, or -1 when the client
 * is gone or when more than 1 MiB would wait unsent (a consumer that slow is
 * dropped: the connection closes and r turns gone). After -1 every later
 * write fails too; release r with http_stream_end. Writes to a HEAD request
 * are dropped.
 *
 * http_stream_begin_sized is http_stream_begin for a body of a known
 * length (len > 0): the head carries Content-Length: len instead of
 * Cache-Control,
 * still with Connection: close. The caller writes exactly len bytes (a
 * short body ends with the connection, which the client sees as truncated).
 *
 * http_stream_on_drain asks to be called each time every queued write of
 * the stream has gone into the socket: a sender of a large body writes a
 * piece, waits for the drain, writes the next, so that at most one piece
 * waits per connection. cb runs from the loop, never inside an http_* call;
 * it may write or end. A stream that stops draining for write_timeout_ms
 * is reset and turns gone (on_gone runs). NULL cancels.
 *
 * http_stream_end sends what is queued, then closes the connection, and
 * releases r (on a gone request it only frees it). Called on a request
 * whose stream was never begun, it closes the connection without an
 * answer. http_respond on a streaming request acts as http_stream_end. */
int http_stream_begin(http_request *r, int status, const char *content_type,
                      const char *const *extra_headers);
int http_stream_begin_sized(http_request *r, int status, const char *content_type,
                            const char *const *extra_headers, size_t len);
int http_stream_write(http_request *r, const char *data, size_t len);
void http_stream_on_drain(http_request *r, void (*cb)(http_request *r, void *arg), void *arg);
void http_stream_end(http_request *r);

/* Reason phrase for a status code ("Not Found"); "Unknown" if not known. */
const char *http_status_text(int status);

#endif
