/* Connections: accept, the lifecycle of a connection (phases and their
 * timeouts, the read buffer, close, FIN and linger), the parse loop that
 * feeds llhttp and dispatches complete requests to the handler, keep-alive
 * after a written response, and the refusals the server answers itself.
 *
 * Calls down into http_parse.c only; up only through the server's hooks:
 * the handler, and the error writer for refusals (see http_internal.h). */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http_internal.h"

/* ------------------------------------------------------------------------
 * Connection lifecycle
 * ------------------------------------------------------------------------ */

static void conn_feed(http_conn *c);

static void conn_handle_closed(uv_handle_t *h) {
  http_conn *c = h->data;
  if (--c->open_handles > 0) return;
  http_server *s = c->server;
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
  if (ms) uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
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

static void conn_timer_cb(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->phase == PH_HEAD || c->phase == PH_BODY)
    conn_fail(c, 408);
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
  uv_os_fd_t fd;
  struct linger l = {.l_onoff = 1, .l_linger = 0}; /* close() then sends RST, not FIN */
  if (c && !c->closing && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  http_request_free(r);
  if (!c) return;
  c->req = NULL;
  http_conn_close(c);
}

/* ------------------------------------------------------------------------
 * Accept, and the server's end
 * ------------------------------------------------------------------------ */

static void reject_closed_cb(uv_handle_t *h) {
  free(h);
}

void http_conn_accept_cb(uv_stream_t *ls, int status) {
  http_server *s = ls->data;
  if (status < 0 || s->closing) return;
  if (s->nconns >= s->lim.max_connections) {
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
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 || http_conn_read_start(c) != 0) {
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
  free(s);
  if (done) done(arg);
}
