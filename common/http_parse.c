/* Requests and their parsing: the llhttp callbacks that fill a request
 * (URL, headers, body), the header and body limits they enforce, request
 * ids, and the http_req_* accessors of http_server.h.
 *
 * Calls no other file of the server (see http_internal.h). A callback that
 * refuses the request sets c->fail_status and returns -1; the parse loop
 * (http_conn.c) answers it. A callback that moves the connection to another
 * phase only records it in c->phase; the parse loop arms its timer. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "rand.h"

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

http_request *http_request_new(http_conn *c) {
  http_request *r = calloc(1, sizeof(*r));
  if (!r) return NULL;
  r->conn = c;
  r->method = "GET";
  r->path = "";
  r->query = "";
  return r;
}

void http_request_free(http_request *r) {
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

/* Falls back to genq_rand64 only when the kernel's random source fails,
 * which would still make ids unique enough to correlate logs. */
static void random_id(char out[33]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  if (uv_random(NULL, NULL, b, sizeof(b), 0, NULL) != 0) {
    for (size_t i = 0; i < sizeof(b); i++)
      b[i] = (unsigned char)genq_rand64();
  }
  for (size_t i = 0; i < sizeof(b); i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[32] = '\0';
}

void http_request_assign_id(http_request *r) {
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
void http_req_set_route(http_request *r, unsigned route) {
  r->route = route;
}
unsigned http_req_route(const http_request *r) {
  return r->route;
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
  if (!c->req && !(c->req = http_request_new(c))) {
    c->fail_status = 503;
    return -1;
  }
  c->head_bytes = 0;
  c->raw_head = 0;
  c->phase = PH_HEAD; /* its timer: see the file comment */
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
void http_request_set_url(http_request *r) {
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
  http_request_set_url(r);
  http_request_assign_id(r);
  r->max_body = s->body_limit ? s->body_limit(r, s->body_limit_arg) : s->lim.max_body_bytes;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > r->max_body) {
    c->fail_status = 413;
    return -1;
  }
  c->phase = PH_BODY;
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

/* A chunk's size is known before its bytes: one that would pass the limit
 * is refused now, not after reading up to the limit. */
static int on_chunk_header(llhttp_t *p) {
  http_conn *c = pconn(p);
  http_request *r = c->req;
  if (p->content_length > r->max_body - r->blen) {
    c->fail_status = 413;
    return -1;
  }
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  http_conn *c = pconn(p);
  c->req->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
  return HPE_PAUSED; /* the next request waits: see http_internal.h */
}

const llhttp_settings_t http_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_version = on_version,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_url_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};
