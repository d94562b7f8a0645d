/* fuzz_http — genq-api's HTTP request layer: the llhttp callbacks of
 * common/http_parse.c, driven as the server drives them. One connection is
 * built the way http_conn_accept_cb builds it (on a real http_server, with a
 * body limit like genq-api's), and the input, one connection's bytes, is fed
 * through llhttp the way the parse loop (conn_feed, http_conn.c) feeds it:
 * paused at the end of each message, the request dispatched (its accessors
 * read and checked, then freed as http_respond frees it), parsing resumed,
 * until the bytes end, a request without keep-alive was answered, or the
 * server would refuse the connection (its fail_status, or 400).
 *
 * Each input runs twice: as one read, and in reads of 1..16 bytes. Both must
 * dispatch the same requests and end the same way, except that the
 * fragmented run may stop earlier with 431: the header limit counts an
 * estimate of the head per read, which splitting can only make larger. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

#define MAX_HEADER 4096
#define MAX_BODY 2048
#define MAX_UPLOAD 8192 /* POST /v1/uploads, as genq-api raises it for uploads */
#define CHECKED_NAMES 32

typedef struct {
  char *p;
  size_t len, cap;
} rec;

typedef struct {
  rec reqs;   /* what every dispatched request looked like */
  int status; /* how it ended: 0 the bytes ran out, 1 closed after an answer, else the refusal */
  int phase;
} outcome;

static uv_loop_t loop;
static http_server *server;
static http_conn *conn;
static int limit_calls;

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

static void rec_add(rec *r, const void *d, size_t n) {
  if (r->len + n > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < r->len + n)
      cap *= 2;
    char *p = realloc(r->p, cap);
    CHECK(p);
    r->p = p;
    r->cap = cap;
  }
  memcpy(r->p + r->len, d, n);
  r->len += n;
}

static void rec_str(rec *r, const char *s) {
  rec_add(r, s, strlen(s) + 1);
}

static void unused_handler(http_request *r, void *arg) {
  (void)r;
  (void)arg;
}

/* The contract of http_body_limit_cb: called once per request, with its
 * method, path, headers and id readable. */
static size_t body_limit(const http_request *r, void *arg) {
  (void)arg;
  limit_calls++;
  CHECK(http_req_id(r)[0] != '\0');
  CHECK(strchr(http_req_path(r), '?') == NULL);
  return strcmp(http_req_method(r), "POST") == 0 && strcmp(http_req_path(r), "/v1/uploads") == 0
             ? MAX_UPLOAD
             : MAX_BODY;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  http_limits lim = {.max_header_bytes = MAX_HEADER, .max_body_bytes = MAX_BODY};
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(http_server_new(&server, &loop, &lim, unused_handler, NULL) == 0);
  http_server_set_body_limit(server, body_limit, NULL);
  /* As http_conn_accept_cb does, minus the accept: the socket has no fd,
   * so the 100-continue write fails quietly. */
  CHECK((conn = calloc(1, sizeof *conn)) != NULL);
  conn->server = server;
  CHECK(uv_tcp_init(&loop, &conn->tcp) == 0);
  conn->tcp.data = conn;
  return 0;
}

static void conn_reset(void) {
  http_conn *c = conn;
  c->req = NULL;
  c->phase = PH_IDLE;
  c->fail_status = 0;
  c->failing = 0;
  c->head_bytes = 0;
  c->raw_head = 0;
  llhttp_init(&c->parser, HTTP_REQUEST, &http_parser_settings);
  c->parser.data = c;
}

static int id_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '-';
}

/* What a handler sees; returns 1 when the connection closes after the answer. */
static int dispatch(http_request *r, rec *out) {
  http_request_set_url(r);
  http_request_assign_id(r);
  CHECK(limit_calls == 1);
  limit_calls = 0;
  CHECK(r->url_end > 0 && r->url_end <= r->hdr_end && r->hdr_end <= r->hlen);
  CHECK(r->hlen <= r->hcap && r->hcap <= MAX_HEADER + 1);
  CHECK(conn->head_bytes <= MAX_HEADER);
  CHECK(strlen(http_req_path(r)) < r->url_end);
  rec_str(out, http_req_method(r));
  rec_str(out, http_req_path(r));
  rec_str(out, http_req_query(r));

  size_t names = 0;
  for (size_t i = r->url_end; i < r->hdr_end; names++) {
    const char *n = r->hbuf + i;
    const char *v = n + strlen(n) + 1;
    CHECK((size_t)(v - r->hbuf) < r->hdr_end);
    rec_str(out, n);
    rec_str(out, v);
    if (names < CHECKED_NAMES) { /* the accessor finds the first of each name */
      const char *first = NULL;
      for (size_t j = r->url_end; !first;) {
        const char *m = r->hbuf + j;
        const char *w = m + strlen(m) + 1;
        if (strcasecmp(m, n) == 0) first = w;
        j = (size_t)(w + strlen(w) + 1 - r->hbuf);
      }
      CHECK(http_req_header(r, n) == first);
    }
    i = (size_t)(v + strlen(v) + 1 - r->hbuf);
  }
  CHECK(http_req_header(r, "\x01no such header") == NULL);

  const char *id = http_req_id(r), *cid = http_req_header(r, "X-Request-Id");
  size_t idlen = strlen(id);
  CHECK(idlen >= 1 && idlen <= HTTP_ID_MAX);
  for (size_t i = 0; i < idlen; i++)
    CHECK(id_char(id[i]));
  rec_str(out, cid && strcmp(cid, id) == 0 ? id : "(random id)");

  size_t blen;
  const char *body = http_req_body(r, &blen);
  CHECK(blen == r->blen && blen <= r->max_body && body[blen] == '\0');
  CHECK(r->max_body == MAX_BODY || r->max_body == MAX_UPLOAD);
  rec_add(out, &blen, sizeof blen);
  rec_add(out, body, blen);
  char flags[2] = {(char)r->keep_alive, (char)r->is_head};
  rec_add(out, flags, sizeof flags);
  return !r->keep_alive;
}

static void run(const uint8_t *data, size_t size, int fragmented, outcome *o) {
  http_conn *c = conn;
  uint32_t x = (uint32_t)size;
  size_t pos = 0, avail = 0;
  conn_reset();
  limit_calls = 0;
  o->status = 0;
  while (!o->status && pos < size) {
    size_t piece = HTTP_RBUF_CAP;
    if (fragmented) {
      x = x * 1103515245u + 12345u;
      piece = 1 + (x >> 16) % 16;
    }
    avail = size - avail < piece ? size : avail + piece; /* one read */
    while (!o->status && pos < avail) {                  /* conn_feed */
      const char *p = (const char *)data + pos;
      size_t n = avail - pos, used = n;
      llhttp_errno_t err = llhttp_execute(&c->parser, p, n);
      if (err == HPE_PAUSED) {
        used = (size_t)(llhttp_get_error_pos(&c->parser) - p);
      } else if (err != HPE_OK) {
        o->status = c->fail_status ? c->fail_status : 400;
        break;
      }
      pos += used;
      if (c->phase == PH_HEAD) {
        c->raw_head += used;
        if (c->raw_head > MAX_HEADER) {
          o->status = 431;
          break;
        }
      }
      if (err == HPE_PAUSED) {
        int close_after = dispatch(c->req, &o->reqs);
        http_request_free(c->req); /* as the handler's http_respond does */
        c->req = NULL;
        if (close_after) {
          o->status = 1;
          break;
        }
        llhttp_resume(&c->parser); /* http_conn_written */
        c->phase = PH_IDLE;
      }
    }
  }
  CHECK(o->status == 0 || o->status == 1 || o->status == 400 || o->status == 413 ||
        o->status == 431 || o->status == 503);
  o->phase = c->phase;
  if (c->req) {
    http_request_free(c->req);
    c->req = NULL;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  outcome whole = {0}, split = {0};
  run(data, size, 0, &whole);
  run(data, size, 1, &split);
  if (whole.status != split.status || whole.reqs.len != split.reqs.len ||
      (whole.status == 0 && whole.phase != split.phase) ||
      (whole.reqs.len && memcmp(whole.reqs.p, split.reqs.p, whole.reqs.len) != 0)) {
    /* The one difference allowed: the split run stopped earlier with 431
     * (and dispatched a prefix of the same requests). */
    CHECK(split.status == 431);
    CHECK(split.reqs.len <= whole.reqs.len);
    CHECK(split.reqs.len == 0 || memcmp(whole.reqs.p, split.reqs.p, split.reqs.len) == 0);
  }
  free(whole.reqs.p);
  free(split.reqs.p);
  return 0;
}
