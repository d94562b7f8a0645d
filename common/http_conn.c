/* Connections: accept, the lifecycle of a connection (phases and their
 * timeouts, the read buffer, close, FIN and linger), the parse loop that
 * feeds llhttp and dispatches complete requests to the handler, keep-alive
 * after a written response, and the refusals the server answers itself.
 *
 * Calls down into http_parse.c only; up only through the server's hooks:
 * the handler, and the error writer for refusals (see http_internal.h). */

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http_internal.h"
#include "log.h"

/* ------------------------------------------------------------------------
 * Connection lifecycle
 * ------------------------------------------------------------------------ */

static void conn_feed(http_conn *c);
static void peer_drop(http_server *s, http_conn *c);

/* One log line per kind of refusal a second at most: an attack that hits
 * a cap thousands of times a second must not fill the disk. The counts
 * (http_server_stats) see every one. */
enum { LOG_ACCEPT, LOG_FULL, LOG_PER_IP, LOG_WRITE };
static int log_due(http_server *s, int kind) {
  uint64_t now = uv_now(s->loop);
  if (s->logged_at[kind] && now - s->logged_at[kind] < 1000) return 0;
  s->logged_at[kind] = now;
  return 1;
}

static void conn_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  if (--c->open_handles > 0) return;
  http_server *s = c->server;
  peer_drop(s, c);
  http_request *gone = c->gone_req;
  if (gone) gone->notify = NULL;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  free(c);
  if (gone && gone->on_gone) gone->on_gone(gone, gone->on_gone_arg);
  http_server_maybe_done(s);
}

void http_conn_close(http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->req) {
    if (c->phase == PH_WAIT) {
      c->req->conn = NULL;
      c->req->gone = 1;
      c->req->notify = c;
      c->gone_req = c->req;
    } else {
      http_request_free(c->req);
    }
    c->req = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_timer_cb(uv_timer_t *t);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

void http_conn_set_phase(http_conn *c, int phase) {
  http_limits *l = &c->server->lim;
  c->phase = phase;
  uv_timer_stop(&c->timer);
  unsigned ms = phase == PH_IDLE     ? l->idle_timeout_ms
                : phase == PH_HEAD   ? l->header_timeout_ms
                : phase == PH_BODY   ? l->body_timeout_ms
                : phase == PH_LINGER ? HTTP_LINGER_MS
                                     : 0;
  if (phase == PH_BODY) {
    c->body_start = c->body_seen = uv_now(c->server->loop);
    c->body_raw = 0;
  }
  if (ms) uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

void http_conn_watch_write(http_conn *c) {
  if (c->closing || c->phase != PH_WAIT || uv_is_active((uv_handle_t *)&c->timer)) return;
  size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (q == 0) return; /* all in the socket already: nothing to watch */
  c->wq_mark = q;
  c->wdone_mark = c->wdone;
  uv_timer_start(&c->timer, conn_timer_cb, c->server->lim.write_timeout_ms, 0);
}

/* Answers a request the server refuses itself, through the server's error
 * writer (status, a code naming the refusal, a message), then closes. */
static void conn_fail(http_conn *c, int status) {
  static const struct {
    int status;
    const char *code, *msg;
  } errs[] = {
      {400, "bad_request", "malformed HTTP request"},
      {408, "request_timeout", "request not received in time"},
      {413, "payload_too_large", "request body too large"},
      {431, "headers_too_large", "request headers too large"},
      {503, "unavailable", "out of memory"},
  };
  if (c->failing || c->closing) return;
  c->failing = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_timer_stop(&c->timer);
  if (!c->req && !(c->req = http_request_new(c))) {
    http_conn_close(c);
    return;
  }
  http_request *r = c->req;
  r->keep_alive = 0;
  r->is_head = 0;
  size_t i = 0;
  while (i < sizeof(errs) / sizeof(errs[0]) - 1 && errs[i].status != status)
    i++;
  c->phase = PH_WAIT;
  http_request_assign_id(r);
  r->route = 0; /* no handler saw it */
  if (c->server->observer) r->t0 = uv_hrtime();
  c->server->error_writer(r, status, errs[i].code, errs[i].msg, c->server->error_arg);
}

static void conn_shutdown_cb(uv_shutdown_t *sr, int status) {
  http_conn *c = sr->data;
  if (c->closing) return;
  if (status < 0) {
    http_conn_close(c);
    return;
  }
  /* Drain what the client still sends for a moment: closing with unread
   * data makes the kernel send RST, which can destroy our last response
   * before the client reads it. */
  c->rpos = c->rlen = 0;
  http_conn_set_phase(c, PH_LINGER);
  if (c->eof || http_conn_read_start(c) == UV_EINVAL) http_conn_close(c);
}

/* FIN first, then linger (see conn_shutdown_cb). */
void http_conn_finish(http_conn *c) {
  if (c->closing) return;
  c->failing = 1;
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) http_conn_close(c);
}

/* Resets the connection (RST): what is queued is dropped, not sent. */
static void conn_reset(http_conn *c) {
  uv_os_fd_t fd;
  struct linger l = {.l_onoff = 1, .l_linger = 0}; /* close() then sends RST, not FIN */
  if (!c->closing && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  http_conn_close(c);
}

/* A body must not stall for body_timeout_ms, and once that much time has
 * passed it must have come at body_min_rate on average: a large upload on
 * a slow link goes on, a trickle that only holds the connection does not. */
static void body_check(http_conn *c) {
  const http_limits *l = &c->server->lim;
  uint64_t now = uv_now(c->server->loop);
  uint64_t stall_at = c->body_seen + l->body_timeout_ms;
  uint64_t rate_at =
      c->body_start + l->body_timeout_ms + (uint64_t)c->body_raw * 1000 / l->body_min_rate;
  uint64_t at = stall_at < rate_at ? stall_at : rate_at;
  if (at <= now) {
    conn_fail(c, 408);
    return;
  }
  uv_timer_start(&c->timer, conn_timer_cb, at - now, 0);
}

/* A response with bytes waiting: progress is a completed write or a
 * shorter queue since the last check. None for write_timeout_ms means a
 * client that stopped reading; its connection is reset. */
static void write_check(http_conn *c) {
  http_server *s = c->server;
  size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (q == 0) return; /* drained: the next write that leaves bytes queued watches again */
  if (q < c->wq_mark || c->wdone != c->wdone_mark) {
    c->wq_mark = q;
    c->wdone_mark = c->wdone;
    uv_timer_start(&c->timer, conn_timer_cb, s->lim.write_timeout_ms, 0);
    return;
  }
  s->stats.write_timeouts++;
  if (log_due(s, LOG_WRITE))
    log_warn("http: a client stopped reading; connection reset", LI("queued_bytes", (long long)q),
             LI("write_timeouts", (long long)s->stats.write_timeouts));
  conn_reset(c);
}

static void conn_timer_cb(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->phase == PH_HEAD)
    conn_fail(c, 408);
  else if (c->phase == PH_BODY)
    body_check(c);
  else if (c->phase == PH_WAIT)
    write_check(c);
  else
    http_conn_close(c); /* idle keep-alive or linger over */
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  http_conn *c = h->data;
  (void)suggested;
  if (c->rpos == c->rlen) {
    c->rpos = c->rlen = 0;
  } else if (c->rpos > 0) {
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->rpos = 0;
  }
  buf->base = c->rbuf + c->rlen;
  buf->len = HTTP_RBUF_CAP - c->rlen;
}

static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  http_conn *c = st->data;
  (void)buf;
  if (c->closing) return;
  if (c->phase == PH_LINGER) {
    if (nread < 0) http_conn_close(c);
    c->rpos = c->rlen = 0;
    return;
  }
  if (c->streaming) {
    /* A stream's client only listens: what it sends is dropped, and its
     * end (EOF included) means it is gone. */
    c->rpos = c->rlen = 0;
    if (nread < 0) http_conn_close(c);
    return;
  }
  if (nread == UV_EOF) {
    /* A half-close may still expect the answer to a request already read. */
    c->eof = 1;
    uv_read_stop(st);
    if (c->phase != PH_WAIT && !c->writing && !c->failing) http_conn_close(c);
    return;
  }
  if (nread < 0) {
    http_conn_close(c);
    return;
  }
  c->rlen += (size_t)nread;
  if (c->phase == PH_BODY) {
    c->body_seen = uv_now(c->server->loop);
    c->body_raw += (size_t)nread;
  }
  if (c->phase == PH_WAIT || c->writing) {
    /* Pipelined bytes wait in the buffer; reading goes on only to notice
     * a client that goes away, and stops when the buffer is full. */
    if (c->rlen == HTTP_RBUF_CAP && c->rpos == 0) uv_read_stop(st);
    return;
  }
  conn_feed(c);
}

int http_conn_read_start(http_conn *c) {
  return uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
}

/* ------------------------------------------------------------------------
 * The parse loop
 * ------------------------------------------------------------------------ */

static void conn_dispatch(http_conn *c) {
  http_request *r = c->req;
  http_request_set_url(r);
  http_request_assign_id(r);
  http_conn_set_phase(c, PH_WAIT);
  if (c->server->observer) r->t0 = uv_hrtime();
  c->server->handler(r, c->server->arg);
}

/* Parses buffered bytes until a request is dispatched, the buffer is empty
 * or the connection fails. Never re-entered: a handler answering inside the
 * dispatch only starts a write, and parsing resumes from its callback. */
static void conn_feed(http_conn *c) {
  if (c->in_feed) return;
  c->in_feed = 1;
  while (!c->closing && !c->failing && !c->writing && c->phase != PH_WAIT && c->rpos < c->rlen) {
    const char *data = c->rbuf + c->rpos;
    size_t n = c->rlen - c->rpos;
    int phase = c->phase;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, n);
    /* The callbacks only record the phase they reached: arm its timer. */
    if (c->phase != phase) http_conn_set_phase(c, c->phase);
    size_t used = n;
    if (err == HPE_PAUSED) {
      used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    } else if (err != HPE_OK) {
      conn_fail(c, c->fail_status ? c->fail_status : 400);
      break;
    }
    c->rpos += used;
    if (c->phase == PH_HEAD) {
      c->raw_head += used;
      if (c->raw_head > c->server->lim.max_header_bytes) {
        conn_fail(c, 431);
        break;
      }
    }
    if (err == HPE_PAUSED) conn_dispatch(c);
  }
  c->in_feed = 0;
  if (!c->closing && !c->failing && !c->writing && c->phase != PH_WAIT && c->eof)
    http_conn_close(c);
}

/* ------------------------------------------------------------------------
 * After the answer: keep-alive, release, abort
 * ------------------------------------------------------------------------ */

void http_conn_written(http_conn *c, int close_after, int status) {
  c->writing = 0;
  if (c->closing) return;
  if (status < 0) {
    http_conn_close(c);
    return;
  }
  if (close_after || c->server->closing) {
    http_conn_finish(c);
    return;
  }
  /* Next request: the parser was paused at the end of the last one. */
  llhttp_resume(&c->parser);
  http_conn_set_phase(c, PH_IDLE);
  if (!c->eof) http_conn_read_start(c);
  conn_feed(c);
}

void http_conn_release(http_request *r) {
  http_conn *c = r->conn;
  http_request_free(r);
  if (!c) return;
  c->req = NULL;
  if (c->streaming)
    http_conn_finish(c); /* the shutdown waits for the queued writes */
  else
    http_conn_close(c);
}

void http_abort(http_request *r) {
  http_conn *c = r->conn;
  http_request_free(r);
  if (!c) return;
  c->req = NULL;
  conn_reset(c);
}

/* ------------------------------------------------------------------------
 * Accept, and the server's end
 * ------------------------------------------------------------------------ */

static void reject_closed_cb(uv_handle_t *h) {
  free(h);
}

/* The per-address count (max_per_ip): IPv4 as IPv4-mapped IPv6, so one
 * table holds both. */
static unsigned peer_hash(const unsigned char a[16]) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < 16; i++)
    h = (h ^ a[i]) * 16777619u;
  return h & (HTTP_PEER_BUCKETS - 1);
}

static void peer_drop(http_server *s, http_conn *c) {
  http_peer *p = c->peer;
  if (!p) return;
  c->peer = NULL;
  if (--p->count > 0) return;
  http_peer **pp = &s->peers[peer_hash(p->addr)];
  while (*pp != p)
    pp = &(*pp)->next;
  *pp = p->next;
  free(p);
}

/* Counts c against its address: 0, or -1 when the address is at its cap
 * (or its address cannot be read, or no memory). */
static int peer_add(http_server *s, http_conn *c, char *who, size_t wholen) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  unsigned char a[16] = {0};
  snprintf(who, wholen, "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return -1;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    a[10] = a[11] = 0xff;
    memcpy(a + 12, &in->sin_addr, 4);
    uv_ip4_name(in, who, wholen);
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    memcpy(a, &in6->sin6_addr, 16);
    uv_ip6_name(in6, who, wholen);
  } else {
    return -1;
  }
  http_peer **head = &s->peers[peer_hash(a)], *p = *head;
  while (p && memcmp(p->addr, a, 16) != 0)
    p = p->next;
  if (p && p->count >= s->lim.max_per_ip) return -1;
  if (!p) {
    if (!(p = calloc(1, sizeof(*p)))) return -1;
    memcpy(p->addr, a, 16);
    p->next = *head;
    *head = p;
  }
  p->count++;
  c->peer = p;
  return 0;
}

void http_conn_accept_cb(uv_stream_t *ls, int status) {
  http_server *s = ls->data;
  if (s->closing) return;
  if (status < 0) {
    /* libuv sheds a connection it cannot accept for want of descriptors
     * with one it keeps in reserve and says nothing; this is what is left:
     * that failing too, or another accept error. */
    s->stats.accept_errors++;
    if (log_due(s, LOG_ACCEPT))
      log_error("http: accept failed", LS("error", uv_strerror(status)),
                LI("connections", s->nconns),
                LI("accept_errors", (long long)s->stats.accept_errors));
    return;
  }
  if (s->nconns >= s->lim.max_connections) {
    s->stats.refused_full++;
    if (log_due(s, LOG_FULL))
      log_warn("http: connection limit reached; new connections closed",
               LI("max_connections", s->lim.max_connections),
               LI("refused", (long long)s->stats.refused_full));
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t) return;
    uv_tcp_init(s->loop, t);
    uv_accept(ls, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, reject_closed_cb);
    return;
  }
  http_conn *c = malloc(sizeof(*c));
  if (!c) return;
  memset(c, 0, offsetof(http_conn, rbuf));
  c->server = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  llhttp_init(&c->parser, HTTP_REQUEST, &http_parser_settings);
  c->parser.data = c;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    http_conn_close(c);
    return;
  }
  char who[INET6_ADDRSTRLEN];
  if (s->peers && peer_add(s, c, who, sizeof(who)) != 0) {
    s->stats.refused_per_ip++;
    if (log_due(s, LOG_PER_IP))
      log_warn("http: per-address connection limit reached; connection closed", LS("peer", who),
               LI("max_per_ip", s->lim.max_per_ip),
               LI("refused", (long long)s->stats.refused_per_ip));
    http_conn_close(c);
    return;
  }
  if (http_conn_read_start(c) != 0) {
    http_conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  http_conn_set_phase(c, PH_IDLE);
}

void http_server_maybe_done(http_server *s) {
  if (!s->closing || s->listener_open || s->conns) return;
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  free(s->peers); /* every entry went with its connection */
  free(s);
  if (done) done(arg);
}

int http_req_peer(const http_request *r, char *out, size_t outlen) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (outlen) out[0] = 0;
  if (!r->conn || uv_tcp_getpeername(&r->conn->tcp, (struct sockaddr *)&ss, &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return uv_ip4_name((const struct sockaddr_in *)&ss, out, outlen);
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(&in6->sin6_addr, mapped, 12) == 0) { /* IPv4-mapped: the IPv4 address */
      struct sockaddr_in in = {.sin_family = AF_INET};
      memcpy(&in.sin_addr, (const unsigned char *)&in6->sin6_addr + 12, 4);
      return uv_ip4_name(&in, out, outlen);
    }
    return uv_ip6_name(in6, out, outlen);
  }
  return -1;
}
