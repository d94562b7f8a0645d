/* The server object: defaults for the limits, the hooks (handler, body
 * limit, error writer), listening, the bound port, and closing. See
 * http_server.h for the contract, and http_internal.h for how the files of
 * the server fit together.
 *
 * The top of those files: calls down into http_conn.c (accept, close, the
 * end of the server) and http_respond.c (the default error writer). */

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "http_internal.h"

int http_server_new(http_server **out, uv_loop_t *loop, const http_limits *limits,
                    http_handler_cb handler, void *arg) {
  http_server *s = calloc(1, sizeof(*s));
  if (!s) return UV_ENOMEM;
  if (limits) s->lim = *limits;
  if (!s->lim.max_header_bytes) s->lim.max_header_bytes = 16384;
  if (!s->lim.max_body_bytes) s->lim.max_body_bytes = 1 << 20;
  if (!s->lim.header_timeout_ms) s->lim.header_timeout_ms = 10000;
  if (!s->lim.body_timeout_ms) s->lim.body_timeout_ms = 15000;
  if (!s->lim.body_min_rate) s->lim.body_min_rate = 1024;
  if (!s->lim.idle_timeout_ms) s->lim.idle_timeout_ms = 60000;
  if (!s->lim.write_timeout_ms) s->lim.write_timeout_ms = 30000;
  if (!s->lim.max_connections) s->lim.max_connections = 10000;
  if (s->lim.max_per_ip && !(s->peers = calloc(HTTP_PEER_BUCKETS, sizeof(http_peer *)))) {
    free(s);
    return UV_ENOMEM;
  }
  s->loop = loop;
  s->handler = handler;
  s->arg = arg;
  s->error_writer = http_plain_error;
  int rc = uv_tcp_init(loop, &s->listener);
  if (rc < 0) {
    free(s->peers);
    free(s);
    return rc;
  }
  s->listener.data = s;
  s->listener_open = 1;
  *out = s;
  return 0;
}

void http_server_set_body_limit(http_server *s, http_body_limit_cb fn, void *arg) {
  s->body_limit = fn;
  s->body_limit_arg = arg;
}

void http_server_set_error_writer(http_server *s, http_error_writer fn, void *arg) {
  s->error_writer = fn ? fn : http_plain_error;
  s->error_arg = fn ? arg : NULL;
}

void http_server_set_observer(http_server *s, http_observer_cb fn, void *arg) {
  s->observer = fn;
  s->observer_arg = fn ? arg : NULL;
}

int http_server_listen(http_server *s, const char *host, int port) {
  struct sockaddr_storage ss;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc < 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  if (rc < 0) return rc;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc < 0) return rc;
  rc = uv_listen((uv_stream_t *)&s->listener, HTTP_BACKLOG, http_conn_accept_cb);
  if (rc < 0) return rc;
  s->listening = 1;
  return 0;
}

int http_server_port(const http_server *s) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) < 0) return -1;
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void http_server_stats(const http_server *s, http_server_stats_t *out) {
  *out = s->stats;
  out->connections = s->nconns;
}

static void listener_closed_cb(uv_handle_t *h) {
  http_server *s = h->data;
  s->listener_open = 0;
  http_server_maybe_done(s);
}

void http_server_close(http_server *s, void (*done)(void *arg), void *arg) {
  if (s->closing) return;
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  for (http_conn *c = s->conns; c; c = c->next)
    http_conn_close(c);
  uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}
