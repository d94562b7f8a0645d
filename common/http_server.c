/* HTTP/1.1 server: libuv streams, llhttp parsing, one request in flight per
 * connection. See http_server.h for the contract.
 *
 * A connection moves through phases: IDLE (between requests, idle timer),
 * HEAD (first byte seen, header timer), BODY (body timer), WAIT (the handler
 * owns the request, no timer), then back to IDLE once the response is
 * written. llhttp is paused at the end of every message so that pipelined
 * bytes stay in the read buffer until the previous answer is out; this is
 * what keeps responses in request order and the buffer bounded.
 *
 * A streamed response keeps the connection in WAIT until the handler ends
 * it; the connection then closes (FIN, linger) instead of going back to
 * IDLE. While it streams, input is read only to notice the client leaving.
 *
 * "Gone" notices: a connection that closes while its request is held keeps
 * a pointer to that request (gone_req, and the request a pointer back,
 * notify) and calls the request's on_gone from its last close callback —
 * always from the loop, never inside an http_* call of the handler, so the
 * handler may release the request there. Releasing the request first
 * unhooks it. */

#include "http_server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HTTP_BACKLOG 511
#define HTTP_RBUF_CAP 16384
#define HTTP_LINGER_MS 1000
#define HTTP_ID_MAX 64
#define HTTP_STREAM_MAX_QUEUED (1u << 20) /* unsent stream bytes before a client is dropped */

typedef struct http_conn http_conn;

enum { PH_IDLE, PH_HEAD, PH_BODY, PH_WAIT, PH_LINGER };

struct http_request {
  http_conn *conn; /* NULL once the connection is gone */
  const char *method;
  char *hbuf;        /* url\0 then name\0value\0 pairs */
  size_t hlen, hcap; /* hcap bounded by max_header_bytes */
  size_t url_end;    /* 0 until the URL is complete */
  size_t hdr_end;    /* end of the last complete name\0value\0 pair */
  int hstate;        /* 0 before headers, 1 in a name, 2 in a value */
  size_t qoff;       /* offset of the query in hbuf; 0 if none */
  const char *path, *query;
  char *body;
  size_t blen, bcap;
  size_t max_body; /* this request's body limit */
  int keep_alive, is_head, gone;
  void *data;
  void (*on_gone)(http_request *r, void *arg);
  void *on_gone_arg;
  http_conn *notify; /* the closed connection that will report it gone */
  char id[HTTP_ID_MAX + 1];
};

struct http_conn {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  uv_timer_t timer;
  uv_shutdown_t shut;
  http_server *server;
  http_conn *prev, *next;
  llhttp_t parser;
  http_request *req; /* being parsed, or owned by the handler (PH_WAIT) */
  int phase;
  int closing;      /* uv_close issued */
  int open_handles; /* freed when this drops to 0 */
  int failing;      /* an error response is on its way; parse nothing more */
  int writing;      /* a response write is in flight */
  int in_feed;
  int eof;
  int streaming;          /* the held request answers with a stream */
  http_request *gone_req; /* held when the connection closed: gets on_gone */
  int fail_status;        /* set by a parser callback that refuses the request */
  size_t head_bytes;      /* estimate of the request line + headers so far */
  size_t raw_head;        /* raw bytes consumed while headers were incomplete */
  size_t rpos, rlen;
  char rbuf[HTTP_RBUF_CAP];
};

struct http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  http_limits lim;
  http_handler_cb handler;
  void *arg;
  http_body_limit_cb body_limit;
  void *body_limit_arg;
  http_conn *conns;
  unsigned nconns;
  int listening, closing, listener_open;
  void (*done)(void *);
  void *done_arg;
  time_t date_sec;
  char date[40];
};

typedef struct {
  uv_write_t w;
  http_conn *conn;
  int close_after;
  int stream;  /* part of a streamed response: no next request follows */
  char *owned; /* a taken body, freed with this write */
  char data[];
} http_wreq;

static const llhttp_settings_t parser_settings;

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

static http_request *req_new(http_conn *c) {
  http_request *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->conn = c;
  r->method = "GET";
  r->path = "";
  r->query = "";
  return r;
}

static void req_free(http_request *r) {
  if (r->notify) r->notify->gone_req = NULL; /* released before its gone notice */
  free(r->hbuf);
  free(r->body);
  free(r);
}

/* Appends to the header buffer; -1 when that would pass the header limit. */
static int req_append(http_request *r, size_t limit, const char *at, size_t len) {
  size_t need = r->hlen + len + 1;
  if (need > limit + 1) return -1;
  if (need > r->hcap) {
    size_t cap = r->hcap ? r->hcap : 256;
    while (cap < need)
      cap *= 2;
    if (cap > limit + 1) cap = limit + 1;
    char *p = realloc(r->hbuf, cap);
    if (!p) return -1;
    r->hbuf = p;
    r->hcap = cap;
  }
  memcpy(r->hbuf + r->hlen, at, len);
  r->hlen += len;
  return 0;
}

static int id_valid(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char ch = s[n];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return n >= 1 && n <= HTTP_ID_MAX;
}

/* Falls back to a time-and-address mix only when the kernel's random source
 * fails, which would still make ids unique enough to correlate logs. */
static void random_id(char out[33]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  if (uv_random(NULL, NULL, b, sizeof(b), 0, NULL) != 0) {
    uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)out;
    for (size_t i = 0; i < sizeof(b); i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b[i] = (unsigned char)x;
    }
  }
  for (size_t i = 0; i < sizeof(b); i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[32] = '\0';
}

static void req_assign_id(http_request *r) {
  if (r->id[0]) return;
  const char *cid = http_req_header(r, "X-Request-Id");
  if (cid && id_valid(cid))
    memcpy(r->id, cid, strlen(cid) + 1);
  else
    random_id(r->id);
}

const char *http_req_method(const http_request *r) {
  return r->method;
}
const char *http_req_path(const http_request *r) {
  return r->path;
}
const char *http_req_query(const http_request *r) {
  return r->query;
}
const char *http_req_id(const http_request *r) {
  return r->id;
}
int http_req_gone(const http_request *r) {
  return r->gone;
}
void http_req_set_data(http_request *r, void *data) {
  r->data = data;
}
void *http_req_data(const http_request *r) {
  return r->data;
}
void http_req_on_gone(http_request *r, void (*cb)(http_request *r, void *arg), void *arg) {
  r->on_gone = cb;
  r->on_gone_arg = arg;
}

const char *http_req_body(const http_request *r, size_t *len) {
  if (len) *len = r->blen;
  return r->body ? r->body : "";
}

const char *http_req_header(const http_request *r, const char *name) {
  if (!r->url_end || !r->hbuf) return NULL; /* hbuf is set once the URL is complete */
  size_t i = r->url_end;
  while (i < r->hdr_end) {
    const char *n = r->hbuf + i;
    const char *v = n + strlen(n) + 1;
    if (strcasecmp(n, name) == 0) return v;
    i = (size_t)(v + strlen(v) + 1 - r->hbuf);
  }
  return NULL;
}

/* ------------------------------------------------------------------------
 * Connection lifecycle
 * ------------------------------------------------------------------------ */

static void server_maybe_done(http_server *s);
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
  server_maybe_done(s);
}

/* Idempotent. A request the handler still owns survives as "gone" (and is
 * told so from the last close callback); one still being parsed dies with
 * the connection. */
static void conn_close(http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->req) {
    if (c->phase == PH_WAIT) {
      c->req->conn = NULL;
      c->req->gone = 1;
      c->req->notify = c;
      c->gone_req = c->req;
    } else {
      req_free(c->req);
    }
    c->req = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_timer_cb(uv_timer_t *t);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_set_phase(http_conn *c, int phase) {
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

/* Answers a request the server refuses itself, then closes. */
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
  if (!c->req && !(c->req = req_new(c))) {
    conn_close(c);
    return;
  }
  http_request *r = c->req;
  r->keep_alive = 0;
  r->is_head = 0;
  size_t i = 0;
  while (i < sizeof(errs) / sizeof(errs[0]) - 1 && errs[i].status != status)
    i++;
  c->phase = PH_WAIT;
  req_assign_id(r);
  http_respond_error(r, status, errs[i].code, errs[i].msg, NULL);
}

static void conn_shutdown_cb(uv_shutdown_t *sr, int status) {
  http_conn *c = sr->data;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  /* Drain what the client still sends for a moment: closing with unread
   * data makes the kernel send RST, which can destroy our last response
   * before the client reads it. */
  c->rpos = c->rlen = 0;
  conn_set_phase(c, PH_LINGER);
  if (c->eof || uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == UV_EINVAL)
    conn_close(c);
}

/* Close after the last response: FIN first, then linger (see above). */
static void conn_finish(http_conn *c) {
  if (c->closing) return;
  c->failing = 1;
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) conn_close(c);
}

static void conn_timer_cb(uv_timer_t *t) {
  http_conn *c = t->data;
  if (c->phase == PH_HEAD || c->phase == PH_BODY)
    conn_fail(c, 408);
  else
    conn_close(c); /* idle keep-alive or linger over */
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
    if (nread < 0) conn_close(c);
    c->rpos = c->rlen = 0;
    return;
  }
  if (c->streaming) {
    /* A stream's client only listens: what it sends is dropped, and its
     * end (EOF included) means it is gone. */
    c->rpos = c->rlen = 0;
    if (nread < 0) conn_close(c);
    return;
  }
  if (nread == UV_EOF) {
    /* A half-close may still expect the answer to a request already read. */
    c->eof = 1;
    uv_read_stop(st);
    if (c->phase != PH_WAIT && !c->writing && !c->failing) conn_close(c);
    return;
  }
  if (nread < 0) {
    conn_close(c);
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

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

static http_conn *pconn(llhttp_t *p) {
  return p->data;
}

/* Counts toward the request line + headers limit; -1 refuses with 431. */
static int head_add(http_conn *c, size_t n) {
  c->head_bytes += n;
  if (c->head_bytes <= c->server->lim.max_header_bytes) return 0;
  c->fail_status = 431;
  return -1;
}

static int hdr_append(http_conn *c, const char *at, size_t len) {
  if (head_add(c, len) < 0) return -1;
  if (req_append(c->req, c->server->lim.max_header_bytes, at, len) == 0) return 0;
  c->fail_status = 431;
  return -1;
}

static int on_message_begin(llhttp_t *p) {
  http_conn *c = pconn(p);
  if (!c->req && !(c->req = req_new(c))) {
    c->fail_status = 503;
    return -1;
  }
  c->head_bytes = 0;
  c->raw_head = 0;
  conn_set_phase(c, PH_HEAD);
  return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len) {
  (void)at;
  return head_add(pconn(p), len + 1);
}

static int on_version(llhttp_t *p, const char *at, size_t len) {
  (void)at;
  return head_add(pconn(p), len + 2);
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  return hdr_append(pconn(p), at, len);
}

static int on_url_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  if (hdr_append(c, "", 1) < 0) return -1;
  c->req->url_end = c->req->hlen;
  c->req->hdr_end = c->req->hlen;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = pconn(p);
  if (c->req->hstate == 2) { /* previous value was empty and never reported */
    if (hdr_append(c, "", 1) < 0) return -1;
    c->req->hdr_end = c->req->hlen;
  }
  c->req->hstate = 1;
  return hdr_append(c, at, len);
}

static int on_header_field_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  c->req->hstate = 2;
  return hdr_append(c, "", 1) < 0 || head_add(c, 1) < 0 ? -1 : 0; /* ": " */
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  return hdr_append(pconn(p), at, len);
}

static int on_header_value_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  if (c->req->hstate != 2) return 0;
  c->req->hstate = 1;
  if (hdr_append(c, "", 1) < 0 || head_add(c, 1) < 0) return -1; /* CRLF */
  c->req->hdr_end = c->req->hlen;
  return 0;
}

/* Points path and query into hbuf; again at dispatch, since trailer fields
 * of a chunked body may move hbuf. */
static void req_set_url(http_request *r) {
  r->path = r->hbuf ? r->hbuf : "";
  r->query = r->hbuf && r->qoff ? r->hbuf + r->qoff : "";
}

static int on_headers_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  http_request *r = c->req;
  http_server *s = c->server;
  if (r->hstate == 2) {
    if (hdr_append(c, "", 1) < 0) return -1;
    r->hdr_end = r->hlen;
    r->hstate = 1;
  }
  if (head_add(c, 2) < 0) return -1;
  r->method = llhttp_method_name((llhttp_method_t)p->method);
  r->is_head = p->method == HTTP_HEAD;
  char *q = r->hbuf && r->url_end ? memchr(r->hbuf, '?', r->url_end - 1) : NULL;
  if (q) {
    *q = '\0';
    r->qoff = (size_t)(q + 1 - r->hbuf);
  }
  req_set_url(r);
  req_assign_id(r);
  r->max_body = s->body_limit ? s->body_limit(r, s->body_limit_arg) : s->lim.max_body_bytes;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->max_body) {
    c->fail_status = 413;
    return -1;
  }
  conn_set_phase(c, PH_BODY);
  const char *expect = http_req_header(r, "Expect");
  if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1) {
    static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort: clients time out */
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = pconn(p);
  http_request *r = c->req;
  size_t max = r->max_body;
  if (len > max - r->blen) {
    c->fail_status = 413;
    return -1;
  }
  if (r->blen + len + 1 > r->bcap) {
    size_t cap = r->bcap ? r->bcap : 1024;
    /* A known length is allocated at once (llhttp counts content_length
     * down to what is still to come): no copies for a large upload. */
    if (!r->bcap && (p->flags & F_CONTENT_LENGTH) && p->content_length < max)
      cap = len + (size_t)p->content_length + 1;
    while (cap < r->blen + len + 1)
      cap *= 2;
    if (cap > max + 1) cap = max + 1;
    char *b = realloc(r->body, cap);
    if (!b) {
      c->fail_status = 503;
      return -1;
    }
    r->body = b;
    r->bcap = cap;
  }
  memcpy(r->body + r->blen, at, len);
  r->blen += len;
  r->body[r->blen] = '\0';
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  c->req->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
  return HPE_PAUSED; /* see the file comment */
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_version = on_version,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_url_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

static void conn_dispatch(http_conn *c) {
  http_request *r = c->req;
  req_set_url(r);
  req_assign_id(r);
  conn_set_phase(c, PH_WAIT);
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
    llhttp_errno_t err = llhttp_execute(&c->parser, data, n);
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
  if (!c->closing && !c->failing && !c->writing && c->phase != PH_WAIT && c->eof) conn_close(c);
}

/* ------------------------------------------------------------------------
 * Responding
 * ------------------------------------------------------------------------ */

const char *http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 422:
    return "Unprocessable Entity";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* IMF-fixdate, formatted by hand so the locale cannot change it. */
static const char *server_date(http_server *s) {
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  if (now != s->date_sec || !s->date[0]) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(s->date, sizeof(s->date), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    s->date_sec = now;
  }
  return s->date;
}

static int header_safe(const char *h) {
  return h && !strpbrk(h, "\r\n");
}

static void conn_write_cb(uv_write_t *w, int status) {
  http_wreq *wr = (http_wreq *)w;
  http_conn *c = wr->conn;
  int close_after = wr->close_after, stream = wr->stream;
  free(wr->owned);
  free(wr);
  if (stream) { /* the stream's end is http_stream_end's business */
    if (status < 0 && !c->closing) conn_close(c);
    return;
  }
  c->writing = 0;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (close_after || c->server->closing) {
    conn_finish(c);
    return;
  }
  /* Next request: the parser was paused at the end of the last one. */
  llhttp_resume(&c->parser);
  conn_set_phase(c, PH_IDLE);
  if (!c->eof) uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
  conn_feed(c);
}

/* Allocates a write request holding the status line and headers, with room
 * for `room` more bytes after them; *head_len gets the head's length. A
 * stream's head has no Content-Length, and Cache-Control: no-cache. */
static http_wreq *head_build(http_conn *c, http_request *r, int status, const char *content_type,
                             const char *const *extra_headers, int close_after, int stream,
                             size_t len, size_t room, size_t *head_len) {
  int no_body = status < 200 || status == 204 || status == 304;
  size_t cap = 256 + strlen(r->id);
  if (header_safe(content_type)) cap += strlen(content_type);
  for (const char *const *h = extra_headers; h && *h; h++)
    if (header_safe(*h)) cap += strlen(*h) + 2;
  /* uv_buf_t lengths are unsigned int; no sane response comes near that. */
  http_wreq *wr = room < INT32_MAX - cap ? malloc(sizeof(*wr) + cap + room) : NULL;
  if (!wr) return NULL;
  char *p = wr->data;
  size_t n = 0;
#define PUT(...) n += (size_t)snprintf(p + n, cap - n, __VA_ARGS__)
  PUT("HTTP/1.1 %d %s\r\n", status, http_status_text(status));
  if (header_safe(content_type)) PUT("Content-Type: %s\r\n", content_type);
  if (stream)
    PUT("Cache-Control: no-cache\r\n");
  else if (!no_body)
    PUT("Content-Length: %zu\r\n", len);
  PUT("Date: %s\r\nX-Request-Id: %s\r\nConnection: %s\r\n", server_date(c->server), r->id,
      close_after ? "close" : "keep-alive");
  for (const char *const *h = extra_headers; h && *h; h++)
    if (header_safe(*h)) PUT("%s\r\n", *h);
  PUT("\r\n");
#undef PUT
  wr->conn = c;
  wr->close_after = close_after;
  wr->stream = stream;
  wr->owned = NULL;
  *head_len = n;
  return wr;
}

/* http_respond and http_respond_take: owned, when set, is body and is ours. */
static void respond(http_request *r, int status, const char *content_type,
                    const char *const *extra_headers, const char *body, char *owned, size_t len) {
  http_conn *c = r->conn;
  if (!body) len = 0;
  if (!c) {
    free(owned);
    req_free(r);
    return;
  }
  if (c->streaming) {
    free(owned);
    http_stream_end(r);
    return;
  }
  http_server *s = c->server;
  c->req = NULL;
  req_assign_id(r);
  int close_after = !r->keep_alive || c->failing || s->closing || (c->eof && c->rpos == c->rlen);
  int no_body = status < 200 || status == 204 || status == 304;
  size_t send_len = (r->is_head || no_body) ? 0 : len;
  if (!send_len || send_len >= INT32_MAX) {
    free(owned);
    owned = NULL;
  }
  size_t n;
  http_wreq *wr = send_len < INT32_MAX ? head_build(c, r, status, content_type, extra_headers,
                                                    close_after, 0, len, owned ? 0 : send_len, &n)
                                       : NULL;
  req_free(r);
  if (!wr) {
    free(owned);
    conn_close(c);
    return;
  }
  uv_buf_t b[2];
  unsigned nb = 1;
  if (owned) {
    wr->owned = owned;
    b[0] = uv_buf_init(wr->data, (unsigned)n);
    b[1] = uv_buf_init(owned, (unsigned)send_len);
    nb = 2;
  } else {
    if (send_len) memcpy(wr->data + n, body, send_len);
    b[0] = uv_buf_init(wr->data, (unsigned)(n + send_len));
  }
  c->writing = 1;
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, b, nb, conn_write_cb) != 0) {
    free(wr->owned);
    free(wr);
    c->writing = 0;
    conn_close(c);
  }
}

void http_respond(http_request *r, int status, const char *content_type,
                  const char *const *extra_headers, const char *body, size_t len) {
  respond(r, status, content_type, extra_headers, body, NULL, len);
}

void http_respond_take(http_request *r, int status, const char *content_type,
                       const char *const *extra_headers, char *body, size_t len) {
  respond(r, status, content_type, extra_headers, body, body, len);
}

/* ------------------------------------------------------------------------
 * Streaming
 * ------------------------------------------------------------------------ */

/* Queues one write of a stream; closes the connection if it cannot. */
static int stream_send(http_conn *c, http_wreq *wr, size_t n) {
  uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
    free(wr);
    conn_close(c);
    return -1;
  }
  return 0;
}

int http_stream_begin(http_request *r, int status, const char *content_type,
                      const char *const *extra_headers) {
  http_conn *c = r->conn;
  if (!c || c->streaming || c->closing || c->failing || c->server->closing) return -1;
  if (c->eof) { /* a stream's client that stopped sending has left */
    conn_close(c);
    return -1;
  }
  req_assign_id(r);
  size_t n;
  http_wreq *wr = head_build(c, r, status, content_type, extra_headers, 1, 1, 0, 0, &n);
  if (!wr) {
    conn_close(c);
    return -1;
  }
  c->streaming = 1;
  /* Pipelined requests are never served: drop them, and read on (the
   * buffer may have been full) only to see the client leave. */
  c->rpos = c->rlen = 0;
  int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb);
  if (rc != 0 && rc != UV_EALREADY) {
    free(wr);
    conn_close(c);
    return -1;
  }
  return stream_send(c, wr, n);
}

int http_stream_write(http_request *r, const char *data, size_t len) {
  http_conn *c = r->conn;
  if (!c || !c->streaming || c->closing || c->failing) return -1;
  if (len == 0 || r->is_head) return 0;
  size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  if (len > HTTP_STREAM_MAX_QUEUED || queued > HTTP_STREAM_MAX_QUEUED - len) {
    conn_close(c); /* a consumer this slow would make us buffer without bound */
    return -1;
  }
  http_wreq *wr = malloc(sizeof(*wr) + len);
  if (!wr) {
    conn_close(c);
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
  http_conn *c = r->conn;
  req_free(r);
  if (!c) return;
  c->req = NULL;
  if (c->streaming)
    conn_finish(c); /* the shutdown waits for the queued writes */
  else
    conn_close(c);
}

void http_abort(http_request *r) {
  http_conn *c = r->conn;
  uv_os_fd_t fd;
  struct linger l = {.l_onoff = 1, .l_linger = 0}; /* close() then sends RST, not FIN */
  if (c && !c->closing && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  req_free(r);
  if (!c) return;
  c->req = NULL;
  conn_close(c);
}

void http_respond_error(http_request *r, int status, const char *code, const char *message,
                        const char *const *extra_headers) {
  if (!r->conn) {
    req_free(r);
    return;
  }
  req_assign_id(r);
  cJSON *root = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(root, "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "request_id", r->id);
  char *json = e ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  http_respond(r, status, "application/json", extra_headers, json ? json : "",
               json ? strlen(json) : 0);
  cJSON_free(json);
}

/* ------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------ */

static void reject_closed_cb(uv_handle_t *h) {
  free(h);
}

static void server_connection_cb(uv_stream_t *ls, int status) {
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
  llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
  c->parser.data = c;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  conn_set_phase(c, PH_IDLE);
}

int http_server_new(http_server **out, uv_loop_t *loop, const http_limits *limits,
                    http_handler_cb handler, void *arg) {
  http_server *s = calloc(1, sizeof(*s));
  if (!s) return UV_ENOMEM;
  if (limits) s->lim = *limits;
  if (!s->lim.max_header_bytes) s->lim.max_header_bytes = 16384;
  if (!s->lim.max_body_bytes) s->lim.max_body_bytes = 1 << 20;
  if (!s->lim.header_timeout_ms) s->lim.header_timeout_ms = 10000;
  if (!s->lim.body_timeout_ms) s->lim.body_timeout_ms = 30000;
  if (!s->lim.idle_timeout_ms) s->lim.idle_timeout_ms = 60000;
  if (!s->lim.max_connections) s->lim.max_connections = 10000;
  s->loop = loop;
  s->handler = handler;
  s->arg = arg;
  int rc = uv_tcp_init(loop, &s->listener);
  if (rc < 0) {
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

int http_server_listen(http_server *s, const char *host, int port) {
  struct sockaddr_storage ss;
  int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc < 0) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  if (rc < 0) return rc;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc < 0) return rc;
  rc = uv_listen((uv_stream_t *)&s->listener, HTTP_BACKLOG, server_connection_cb);
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

static void server_maybe_done(http_server *s) {
  if (!s->closing || s->listener_open || s->conns) return;
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  free(s);
  if (done) done(arg);
}

static void listener_closed_cb(uv_handle_t *h) {
  http_server *s = h->data;
  s->listener_open = 0;
  server_maybe_done(s);
}

void http_server_close(http_server *s, void (*done)(void *arg), void *arg) {
  if (s->closing) return;
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  for (http_conn *c = s->conns; c; c = c->next)
    conn_close(c);
  uv_close((uv_handle_t *)&s->listener, listener_closed_cb);
}
