/* Streamed responses: server-sent events (a head without a length, then
 * pieces written as they come, bounded by what may wait unsent) and large
 * bodies of a known length (written piece by piece, each after the last
 * drained); the end is the end of the connection. See http_server.h for the contract.
 *
 * Calls down into http_respond.c (the head, the writes), http_conn.c (read,
 * finish, close, release) and http_parse.c (request ids); nothing calls in
 * here but the handler (see http_internal.h). */

#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* Queues one write of a stream; closes the connection if it cannot. */
static int stream_send(http_conn *c, http_wreq *wr, size_t n) {
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
  if (http_wreq_write(c, wr, &b, 1) != 0) {
    free(wr);
    http_conn_close(c);
    return -1;
  }
  return 0;
}

static int stream_begin(http_request *r, int status, const char *content_type,
                        const char *const *extra_headers, size_t len) {
  http_conn *c = r->conn;
  if (!c || c->streaming || c->closing || c->failing || c->server->closing) return -1;
  if (c->eof) { /* a stream's client that stopped sending has left */
    http_conn_close(c);
    return -1;
  }
  http_request_assign_id(r);
  size_t n;
  http_wreq *wr = http_wreq_head(c, r, status, content_type, extra_headers, 1, 1, len, 0, &n);
  if (!wr) {
    http_conn_close(c);
    return -1;
  }
  c->streaming = 1;
  http_observe(c, r, status);
  /* Pipelined requests are never served: drop them, and read on (the
   * buffer may have been full) only to see the client leave. */
  c->rpos = c->rlen = 0;
  int rc = http_conn_read_start(c);
  if (rc != 0 && rc != UV_EALREADY) {
    free(wr);
    http_conn_close(c);
    return -1;
  }
  return stream_send(c, wr, n);
}

int http_stream_begin(http_request *r, int status, const char *content_type,
                      const char *const *extra_headers) {
  return stream_begin(r, status, content_type, extra_headers, 0);
}

int http_stream_begin_sized(http_request *r, int status, const char *content_type,
                            const char *const *extra_headers, size_t len) {
  return stream_begin(r, status, content_type, extra_headers, len);
}

void http_stream_on_drain(http_request *r, void (*cb)(http_request *r, void *arg), void *arg) {
  r->on_drain = cb;
  r->on_drain_arg = arg;
}

int http_stream_write(http_request *r, const char *data, size_t len) {
  http_conn *c = r->conn;
  if (!c || !c->streaming || c->closing || c->failing) return -1;
  if (len == 0 || r->is_head) return 0;
  size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (len > HTTP_STREAM_MAX_QUEUED || queued > HTTP_STREAM_MAX_QUEUED - len) {
    http_conn_close(c); /* a consumer this slow would make us buffer without bound */
    return -1;
  }
  http_wreq *wr = malloc(sizeof(*wr) + len);
  if (!wr) {
    http_conn_close(c);
    return -1;
  }
  wr->conn = c;
  wr->close_after = 1;
  wr->stream = 1;
  wr->owned = NULL;
  memcpy(wr->data, data, len);
  return stream_send(c, wr, len);
}

void http_stream_end(http_request *r) {
  http_conn_release(r);
}
