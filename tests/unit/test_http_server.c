/* http_server over real loopback TCP: the server runs its own uv loop on a
 * thread; the test talks raw HTTP/1.1 to it with blocking sockets. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_server.h"

/* Tiny limits so every refusal is quick to provoke. */
#define MAX_HEADER 1024
#define MAX_BODY 1024
#define HEADER_TIMEOUT_MS 300
#define BODY_TIMEOUT_MS 200
#define IDLE_TIMEOUT_MS 400

typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  http_server *srv;
  pthread_t thread;
  int port;
  atomic_int closed_done;
  atomic_int handled;
  atomic_int delayed_fired;
  atomic_int delayed_gone;
  atomic_int delayed_gone_cb;
  atomic_int limit_calls;
  atomic_int stream_ended;
  atomic_int stream_gone;
  atomic_int stream_write_failed;
} fixture;

/* ------------------------------------------------------------------------
 * Server side (loop thread)
 * ------------------------------------------------------------------------ */

typedef struct {
  uv_timer_t timer;
  http_request *req;
  fixture *f;
} delayed;

/* The error writer of these tests, in the shape genq-api gives its errors:
 * {"error":{"code","message","request_id"}} (no escaping needed here). */
static void json_error(http_request *r, int status, const char *code, const char *message,
                       void *arg) {
  char out[512];
  int n = snprintf(out, sizeof(out),
                   "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}", code,
                   message, http_req_id(r));
  (void)arg;
  http_respond(r, status, "application/json", NULL, out, (size_t)n);
}

static void echo(http_request *r, fixture *f) {
  size_t blen;
  const char *body = http_req_body(r, &blen);
  const char *hdr = http_req_header(r, "x-test");
  char out[2048];
  int n = snprintf(out, sizeof(out),
                   "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\",\"hdr\":\"%s\","
                   "\"body_len\":%zu,\"body\":\"%.64s\"}",
                   http_req_method(r), http_req_path(r), http_req_query(r), hdr ? hdr : "(none)",
                   blen, body);
  atomic_fetch_add(&f->handled, 1);
  const char *extra[] = {"X-Echo: yes", NULL};
  http_respond(r, 200, "application/json", extra, out, (size_t)n);
}

static void delayed_closed(uv_handle_t *h) {
  free(h->data);
}

static void delayed_on_gone(http_request *r, void *arg) {
  delayed *d = arg;
  atomic_fetch_add(&d->f->delayed_gone_cb, 1); /* the timer still answers (and frees) it */
}

static void delayed_fire(uv_timer_t *t) {
  delayed *d = t->data;
  if (http_req_gone(d->req)) atomic_fetch_add(&d->f->delayed_gone, 1);
  atomic_fetch_add(&d->f->delayed_fired, 1);
  echo(d->req, d->f);
  uv_close((uv_handle_t *)&d->timer, delayed_closed);
}

/* A query parameter as a number, or def. */
static unsigned long qnum(const http_request *r, const char *name, unsigned long def) {
  char key[32];
  snprintf(key, sizeof(key), "%s=", name);
  const char *q = http_req_query(r), *p = q;
  while ((p = strstr(p, key)) != NULL) {
    if (p == q || p[-1] == '&') return strtoul(p + strlen(key), NULL, 10);
    p++;
  }
  return def;
}

/* The byte at offset i of a /take body. */
static char take_byte(size_t i) {
  return (char)('a' + (i * 7) % 26);
}

/* /stream: n writes, one burst of `burst` writes every ms; each write is
 * "data: <seq>\n\n", or `size` bytes of 'x' when size is set. */
typedef struct {
  uv_timer_t timer;
  http_request *req;
  fixture *f;
  unsigned long left, seq, ms, size, burst;
  int done;
} streamer;

static char big[1 << 16];

static void streamer_closed(uv_handle_t *h) {
  free(h->data);
}

static void streamer_finish(streamer *s) {
  if (s->done) return;
  s->done = 1;
  http_stream_end(s->req);
  atomic_fetch_add(&s->f->stream_ended, 1);
  uv_close((uv_handle_t *)&s->timer, streamer_closed);
}

static void streamer_tick(uv_timer_t *t) {
  streamer *s = t->data;
  for (unsigned long i = 0; i < s->burst; i++) {
    char line[64];
    const char *data = line;
    size_t n;
    if (s->size) {
      data = big;
      n = s->size < sizeof(big) ? s->size : sizeof(big);
    } else {
      n = (size_t)snprintf(line, sizeof(line), "data: %lu\n\n", s->seq);
    }
    s->seq++;
    if (http_stream_write(s->req, data, n) != 0) {
      atomic_fetch_add(&s->f->stream_write_failed, 1);
      streamer_finish(s);
      return;
    }
    if (--s->left == 0) {
      streamer_finish(s);
      return;
    }
  }
}

static void streamer_gone(http_request *r, void *arg) {
  streamer *s = arg;
  atomic_fetch_add(&s->f->stream_gone, 1);
  streamer_finish(s);
}

static void start_stream(http_request *r, fixture *f) {
  streamer *s = calloc(1, sizeof(*s));
  if (!s) {
    json_error(r, 500, "internal", "out of memory", NULL);
    return;
  }
  memset(big, 'x', sizeof(big));
  s->req = r;
  s->f = f;
  s->left = qnum(r, "n", 3);
  s->ms = qnum(r, "ms", 10);
  s->size = qnum(r, "size", 0);
  s->burst = qnum(r, "burst", 1);
  uv_timer_init(&f->loop, &s->timer);
  s->timer.data = s;
  http_req_on_gone(r, streamer_gone, s);
  const char *extra[] = {"X-Stream: yes", NULL};
  if (http_stream_begin(r, 200, "text/event-stream", extra) != 0) {
    streamer_finish(s);
    return;
  }
  uv_timer_start(&s->timer, streamer_tick, s->ms, s->ms);
}

static void take(http_request *r) {
  size_t n = qnum(r, "n", 0);
  char *body = n ? malloc(n) : NULL;
  for (size_t i = 0; body && i < n; i++)
    body[i] = take_byte(i);
  if (n && !body) {
    json_error(r, 500, "internal", "out of memory", NULL);
    return;
  }
  http_respond_take(r, 200, "application/octet-stream", NULL, body, n);
}

/* /upload's limit is its X-Body-Limit header; every other request keeps
 * MAX_BODY. */
static size_t body_limit(const http_request *r, void *arg) {
  fixture *f = arg;
  atomic_fetch_add(&f->limit_calls, 1);
  const char *h = http_req_header(r, "x-body-limit");
  if (h && strcmp(http_req_method(r), "POST") == 0 && strcmp(http_req_path(r), "/upload") == 0)
    return strtoul(h, NULL, 10);
  return MAX_BODY;
}

/* /delay?ms=N answers N ms later from a timer; /take?n=N answers N bytes
 * without a copy; /stream streams; everything else is echoed at once. */
static void handler(http_request *r, void *arg) {
  fixture *f = arg;
  if (strcmp(http_req_path(r), "/stream") == 0) {
    start_stream(r, f);
    return;
  }
  if (strcmp(http_req_path(r), "/take") == 0) {
    take(r);
    return;
  }
  if (strcmp(http_req_path(r), "/delay") == 0) {
    delayed *d = calloc(1, sizeof(*d));
    if (!d) { /* no cmocka asserts off the test thread */
      json_error(r, 500, "internal", "out of memory", NULL);
      return;
    }
    d->req = r;
    d->f = f;
    http_req_on_gone(r, delayed_on_gone, d);
    uv_timer_init(&f->loop, &d->timer);
    d->timer.data = d;
    const char *ms = strstr(http_req_query(r), "ms=");
    uv_timer_start(&d->timer, delayed_fire, ms ? strtoul(ms + 3, NULL, 10) : 100, 0);
    return;
  }
  echo(r, f);
}

static void on_server_closed(void *arg) {
  fixture *f = arg;
  atomic_store(&f->closed_done, 1);
}

static void stop_cb(uv_async_t *a) {
  fixture *f = a->data;
  http_server_close(f->srv, on_server_closed, f);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg) {
  fixture *f = arg;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_server(void **state, unsigned max_connections, int with_body_limit,
                        int plain_errors) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  http_limits lim = {
      .max_header_bytes = MAX_HEADER,
      .max_body_bytes = MAX_BODY,
      .header_timeout_ms = HEADER_TIMEOUT_MS,
      .body_timeout_ms = BODY_TIMEOUT_MS,
      .idle_timeout_ms = IDLE_TIMEOUT_MS,
      .max_connections = max_connections,
  };
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(uv_async_init(&f->loop, &f->stop, stop_cb), 0);
  f->stop.data = f;
  assert_int_equal(http_server_new(&f->srv, &f->loop, &lim, handler, f), 0);
  if (with_body_limit) http_server_set_body_limit(f->srv, body_limit, f);
  if (!plain_errors) http_server_set_error_writer(f->srv, json_error, f);
  assert_int_equal(http_server_listen(f->srv, "127.0.0.1", 0), 0);
  f->port = http_server_port(f->srv);
  assert_true(f->port > 0);
  assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return start_server(state, 0, 0, 0);
}

static int setup_one_connection(void **state) {
  return start_server(state, 1, 0, 0);
}

static int setup_body_limit(void **state) {
  return start_server(state, 0, 1, 0);
}

/* No error writer set: the server's own, plain one. */
static int setup_plain_errors(void **state) {
  return start_server(state, 0, 0, 1);
}

/* The loop only returns once every handle is closed, so a clean
 * uv_loop_close proves http_server_close left nothing open. */
static int teardown(void **state) {
  fixture *f = *state;
  uv_async_send(&f->stop);
  pthread_join(f->thread, NULL);
  assert_int_equal(atomic_load(&f->closed_done), 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* ------------------------------------------------------------------------
 * Client side (test thread): blocking sockets, generous timeouts
 * ------------------------------------------------------------------------ */

typedef struct {
  int fd;
  size_t len;
  char buf[65536];
} client;

typedef struct {
  int status;
  char head[8192];
  char body[16384];
  size_t body_len;
} response;

static client *client_open(fixture *f) {
  client *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c->fd >= 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return c;
}

static void client_close(client *c) {
  close(c->fd);
  free(c);
}

static void send_str(client *c, const char *s) {
  size_t n = strlen(s), off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
    assert_true(w > 0);
    off += (size_t)w;
  }
}

/* recv into the client buffer; returns bytes read, 0 on EOF, -1 on error. */
static ssize_t client_fill(client *c) {
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
  if (n > 0) c->len += (size_t)n;
  c->buf[c->len] = '\0';
  return n;
}

/* Copies the value of a response header into out ("" when absent). */
static const char *resp_header(const response *r, const char *name, char *out, size_t cap) {
  out[0] = '\0';
  const char *p = r->head;
  size_t nl = strlen(name);
  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t n = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return out;
    }
  }
  return out;
}

/* Reads exactly one response (head + Content-Length body); keeps any bytes
 * of the next one buffered. Fails the test on timeout or early EOF. */
static void read_response(client *c, response *r) {
  char *end;
  while ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
    assert_true(client_fill(c) > 0);
  size_t hlen = (size_t)(end - c->buf) + 4;
  assert_true(hlen < sizeof(r->head));
  memcpy(r->head, c->buf, hlen);
  r->head[hlen] = '\0';
  r->status = 0;
  assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
  char cl[32];
  resp_header(r, "Content-Length", cl, sizeof(cl));
  r->body_len = cl[0] ? strtoul(cl, NULL, 10) : 0;
  assert_true(r->body_len < sizeof(r->body));
  while (c->len < hlen + r->body_len)
    assert_true(client_fill(c) > 0);
  memcpy(r->body, c->buf + hlen, r->body_len);
  r->body[r->body_len] = '\0';
  memmove(c->buf, c->buf + hlen + r->body_len, c->len - hlen - r->body_len + 1);
  c->len -= hlen + r->body_len;
}

/* The server closed: EOF (or a reset) arrives before the recv timeout. */
static void expect_closed(client *c) {
  char b[4096];
  ssize_t n;
  while ((n = recv(c->fd, b, sizeof(b), 0)) > 0) {
  }
  assert_true(n == 0 || errno == ECONNRESET);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int is_hex_id(const char *s) {
  if (strlen(s) != 32) return 0;
  for (; *s; s++)
    if (!strchr("0123456789abcdef", *s)) return 0;
  return 1;
}

static void expect_error(client *c, int status, const char *code) {
  response r;
  char want[128], id[80];
  read_response(c, &r);
  assert_int_equal(r.status, status);
  snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",", code);
  assert_non_null(strstr(r.body, want));
  resp_header(&r, "X-Request-Id", id, sizeof(id));
  assert_true(is_hex_id(id));
  snprintf(want, sizeof(want), "\"request_id\":\"%s\"}}", id);
  assert_non_null(strstr(r.body, want));
  resp_header(&r, "Connection", id, sizeof(id));
  assert_string_equal(id, "close");
  expect_closed(c);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void test_simple_get_answers_200_with_request_id_and_length(void **state) {
  client *c = client_open(*state);
  response r;
  char v[128];
  send_str(c, "GET /hello?x=1&y=2 HTTP/1.1\r\nHost: t\r\nX-Test: abc\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "HTTP/1.1 200 OK\r\n"));
  assert_string_equal(r.body, "{\"method\":\"GET\",\"path\":\"/hello\",\"query\":\"x=1&y=2\","
                              "\"hdr\":\"abc\",\"body_len\":0,\"body\":\"\"}");
  assert_true(is_hex_id(resp_header(&r, "X-Request-Id", v, sizeof(v))));
  assert_int_equal(strtoul(resp_header(&r, "Content-Length", v, sizeof(v)), NULL, 10),
                   strlen(r.body));
  assert_string_equal(resp_header(&r, "Content-Type", v, sizeof(v)), "application/json");
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "keep-alive");
  assert_string_equal(resp_header(&r, "X-Echo", v, sizeof(v)), "yes");
  assert_true(strlen(resp_header(&r, "Date", v, sizeof(v))) == 29);
  assert_non_null(strstr(v, " GMT"));
  client_close(c);
}

static void test_client_request_id_is_echoed_and_invalid_one_replaced(void **state) {
  client *c = client_open(*state);
  response r;
  char v[128];
  send_str(c, "GET / HTTP/1.1\r\nX-Request-Id: abc-123.X_y\r\n\r\n");
  read_response(c, &r);
  assert_string_equal(resp_header(&r, "X-Request-Id", v, sizeof(v)), "abc-123.X_y");

  send_str(c, "GET / HTTP/1.1\r\nX-Request-Id: bad id!\r\n\r\n");
  read_response(c, &r);
  assert_true(is_hex_id(resp_header(&r, "X-Request-Id", v, sizeof(v))));

  char req[256], id65[66];
  memset(id65, 'a', 65);
  id65[65] = '\0';
  snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Request-Id: %s\r\n\r\n", id65);
  send_str(c, req);
  read_response(c, &r);
  assert_true(is_hex_id(resp_header(&r, "X-Request-Id", v, sizeof(v))));

  id65[64] = '\0';
  snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Request-Id: %s\r\n\r\n", id65);
  send_str(c, req);
  read_response(c, &r);
  assert_string_equal(resp_header(&r, "X-Request-Id", v, sizeof(v)), id65);
  client_close(c);
}

static void test_fragmented_request_is_reassembled(void **state) {
  client *c = client_open(*state);
  response r;
  const char *req = "POST /frag?q=a%20b HTTP/1.1\r\nHost: t\r\nX-Empty:\r\nX-Test: split-value\r\n"
                    "Content-Length: 5\r\n\r\nfrags";
  /* Three bytes per send, with a pause so each lands in its own read. */
  for (size_t i = 0, n = strlen(req); i < n; i += 3) {
    char piece[4] = {0};
    memcpy(piece, req + i, n - i < 3 ? n - i : 3);
    send_str(c, piece);
    sleep_ms(1);
  }
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"method\":\"POST\",\"path\":\"/frag\",\"query\":\"q=a%20b\","
                              "\"hdr\":\"split-value\",\"body_len\":5,\"body\":\"frags\"}");
  client_close(c);
}

static void test_keep_alive_serves_two_requests_on_one_connection(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  send_str(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"path\":\"/one\""));
  send_str(c, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"path\":\"/two\""));
  assert_int_equal(atomic_load(&f->handled), 2);
  client_close(c);
}

static void test_pipelined_requests_are_answered_in_order(void **state) {
  client *c = client_open(*state);
  response r;
  send_str(c, "GET /delay?ms=150 HTTP/1.1\r\nHost: t\r\n\r\n"
              "POST /second HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
              "GET /third HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_non_null(strstr(r.body, "\"path\":\"/delay\""));
  read_response(c, &r);
  assert_non_null(strstr(r.body, "\"path\":\"/second\""));
  assert_non_null(strstr(r.body, "\"body\":\"abc\""));
  read_response(c, &r);
  assert_non_null(strstr(r.body, "\"path\":\"/third\""));
  client_close(c);
}

static void test_post_body_is_delivered(void **state) {
  client *c = client_open(*state);
  response r;
  send_str(c, "POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"method\":\"POST\""));
  assert_non_null(strstr(r.body, "\"body_len\":11,\"body\":\"hello world\""));

  send_str(c, "POST /jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"body_len\":11,\"body\":\"hello world\""));
  client_close(c);
}

static void test_head_request_gets_length_but_no_body(void **state) {
  client *c = client_open(*state);
  response r;
  char v[32];
  send_str(c, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
  /* read_response would wait for the advertised body: read the head only. */
  while (!strstr(c->buf, "\r\n\r\n"))
    assert_true(client_fill(c) > 0);
  char *end = strstr(c->buf, "\r\n\r\n") + 4;
  assert_int_equal(sscanf(c->buf, "HTTP/1.1 %d", &r.status), 1);
  assert_int_equal(r.status, 200);
  snprintf(r.head, sizeof(r.head), "%.*s", (int)(end - c->buf), c->buf);
  assert_true(strtoul(resp_header(&r, "Content-Length", v, sizeof(v)), NULL, 10) > 0);
  assert_int_equal(c->len, (size_t)(end - c->buf)); /* nothing after the head */
  c->len = 0;
  c->buf[0] = '\0';
  send_str(c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_non_null(strstr(r.body, "\"path\":\"/after\""));
  client_close(c);
}

static void test_connection_close_is_honoured(void **state) {
  client *c = client_open(*state);
  response r;
  char v[32];
  send_str(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
  expect_closed(c);
  client_close(c);
}

static void test_http10_without_keep_alive_closes(void **state) {
  client *c = client_open(*state);
  response r;
  char v[32];
  send_str(c, "GET /old HTTP/1.0\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
  expect_closed(c);
  client_close(c);
}

static void test_oversized_headers_get_431(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  char req[4096], pad[2001];
  memset(pad, 'p', 2000);
  pad[2000] = '\0';
  snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n", pad);
  send_str(c, req);
  expect_error(c, 431, "headers_too_large");
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

static void test_many_small_headers_over_limit_get_431(void **state) {
  client *c = client_open(*state);
  send_str(c, "GET / HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 200; i++)
    send_str(c, "A: b\r\n");
  send_str(c, "\r\n");
  expect_error(c, 431, "headers_too_large");
  client_close(c);
}

static void test_content_length_over_limit_gets_413_before_body(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  send_str(c, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
  expect_error(c, 413, "payload_too_large"); /* no body byte was ever sent */
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

static void test_chunked_body_over_limit_gets_413(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  char chunk[600];
  memset(chunk, 'z', 512);
  memcpy(chunk + 512, "\r\n", 3);
  send_str(c, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 3; i++) {
    send_str(c, "200\r\n");
    send_str(c, chunk);
  }
  send_str(c, "0\r\n\r\n");
  expect_error(c, 413, "payload_too_large");
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

static void test_content_length_lie_gets_408_after_body_timeout(void **state) {
  client *c = client_open(*state);
  send_str(c, "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
  expect_error(c, 408, "request_timeout");
  client_close(c);
}

static void test_slow_headers_get_408(void **state) {
  client *c = client_open(*state);
  const char *req =
      "GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "\r\n\r\n";
  /* One byte every 50 ms would take ~10 s; the 300 ms header timeout must
   * cut it off long before the headers complete. */
  size_t i = 0;
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  for (; req[i] && poll(&pfd, 1, 0) == 0; i++) {
    if (send(c->fd, req + i, 1, MSG_NOSIGNAL) != 1) break;
    sleep_ms(50);
  }
  assert_true(req[i] != '\0');
  expect_error(c, 408, "request_timeout");
  client_close(c);
}

static void test_garbage_request_line_gets_400(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  send_str(c, "HELLO\x01WORLD \r\n\r\n");
  expect_error(c, 400, "bad_request");
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

static void test_default_error_writer_answers_plain_text(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  char v[128];
  send_str(c, "HELLO\x01WORLD \r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.head, "HTTP/1.1 400 Bad Request\r\n"));
  assert_string_equal(resp_header(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=utf-8");
  assert_string_equal(r.body, "malformed HTTP request");
  assert_true(is_hex_id(resp_header(&r, "X-Request-Id", v, sizeof(v))));
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
  expect_closed(c);
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

static void test_idle_keep_alive_connection_is_closed_silently(void **state) {
  client *c = client_open(*state);
  response r;
  send_str(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  /* Nothing more is sent: after the idle timeout the server closes without
   * a response. */
  assert_int_equal(client_fill(c), 0);
  assert_int_equal(c->len, 0);
  client_close(c);
}

static void test_client_disconnect_while_request_pending_is_safe(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  send_str(c, "GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
  sleep_ms(50);
  struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* RST: the client is surely gone */
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  client_close(c);
  for (int i = 0; i < 100 && atomic_load(&f->delayed_fired) == 0; i++)
    sleep_ms(20);
  assert_int_equal(atomic_load(&f->delayed_fired), 1);
  assert_int_equal(atomic_load(&f->delayed_gone), 1);
  /* told once, from the connection's close, long before the timer fired */
  assert_int_equal(atomic_load(&f->delayed_gone_cb), 1);

  /* The server still serves. */
  client *c2 = client_open(f);
  response r;
  send_str(c2, "GET /still HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c2, &r);
  assert_int_equal(r.status, 200);
  client_close(c2);
}

static void test_server_close_with_open_connections_frees_everything(void **state) {
  fixture *f = *state;
  client *pending = client_open(f), *idle = client_open(f), *partial = client_open(f);
  response r;
  send_str(idle, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(idle, &r);
  send_str(pending, "GET /delay?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
  send_str(partial, "GET /part HTTP/1.1\r\nHo");
  sleep_ms(50);
  /* Teardown's clean uv_loop_close (and LeakSanitizer at exit) is the
   * check: close the server now, with all three still open. */
  uv_async_send(&f->stop);
  expect_closed(idle);
  expect_closed(partial);
  expect_closed(pending);
  pthread_join(f->thread, NULL);
  assert_int_equal(atomic_load(&f->closed_done), 1);
  assert_int_equal(atomic_load(&f->delayed_gone), 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  client_close(pending);
  client_close(idle);
  client_close(partial);
  free(f);
  *state = NULL;
}

static void test_connections_beyond_max_are_closed(void **state) {
  fixture *f = *state;
  client *first = client_open(f);
  response r;
  send_str(first, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(first, &r); /* the first connection is surely accepted */
  client *second = client_open(f);
  send(second->fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL);
  expect_closed(second);
  send_str(first, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(first, &r);
  assert_int_equal(r.status, 200);
  client_close(second);
  client_close(first);
}

static void test_status_text_names_known_codes(void **state) {
  assert_string_equal(http_status_text(404), "Not Found");
  assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
  assert_string_equal(http_status_text(799), "Unknown");
}

/* Waits (bounded) until *v reaches want. */
static void wait_atomic(atomic_int *v, int want) {
  for (int i = 0; i < 500 && atomic_load(v) < want; i++)
    sleep_ms(20);
  assert_int_equal(atomic_load(v), want);
}

/* Reads a response head into r (no body); leaves what follows buffered. */
static void read_head(client *c, response *r) {
  char *end;
  while ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
    assert_true(client_fill(c) > 0);
  size_t hlen = (size_t)(end - c->buf) + 4;
  assert_true(hlen < sizeof(r->head));
  memcpy(r->head, c->buf, hlen);
  r->head[hlen] = '\0';
  r->status = 0;
  assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
  memmove(c->buf, c->buf + hlen, c->len - hlen + 1);
  c->len -= hlen;
}

/* Reads until the server closes; what came after the head stays in c->buf. */
static void read_to_eof(client *c) {
  ssize_t n;
  while ((n = client_fill(c)) > 0)
    assert_true(c->len < sizeof(c->buf) - 1);
  assert_int_equal(n, 0);
}

static void test_body_limit_callback_raises_the_limit_of_one_request(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  char req[4096 + 256], body[3001];
  memset(body, 'u', 3000);
  body[3000] = '\0';
  snprintf(
      req, sizeof(req),
      "POST /upload HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 4096\r\nContent-Length: 3000\r\n\r\n%s",
      body);
  send_str(c, req);
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"path\":\"/upload\""));
  assert_non_null(strstr(r.body, "\"body_len\":3000,"));
  assert_int_equal(atomic_load(&f->limit_calls), 1);
  /* the next request of the connection has the default limit again */
  send_str(c, "POST /elsewhere HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 4096\r\n"
              "Content-Length: 3000\r\n\r\n");
  expect_error(c, 413, "payload_too_large");
  assert_int_equal(atomic_load(&f->handled), 1);
  client_close(c);
}

static void test_body_limit_callback_refuses_content_length_before_body(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  /* 100 is far below MAX_BODY: only the callback's 16 refuses it */
  send_str(c,
           "POST /upload HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 16\r\nContent-Length: 100\r\n\r\n");
  expect_error(c, 413, "payload_too_large"); /* no body byte was ever sent */
  assert_int_equal(atomic_load(&f->handled), 0);
  assert_int_equal(atomic_load(&f->limit_calls), 1);
  client_close(c);
}

static void test_body_limit_callback_bounds_a_chunked_body(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  /* within the limit; the query is not part of the path the callback sees */
  send_str(c, "POST /upload?x=1 HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 16\r\n"
              "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"body_len\":11,"));
  /* over it, by the second chunk */
  send_str(c, "POST /upload?x=1 HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 16\r\n"
              "Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
  expect_error(c, 413, "payload_too_large");
  assert_int_equal(atomic_load(&f->handled), 1);
  client_close(c);
}

static void test_respond_take_sends_the_body_and_frees_it(void **state) {
  client *c = client_open(*state);
  response r;
  char v[32];
  size_t n = 200000; /* more than a socket takes at once: written over several turns */
  send_str(c, "GET /take?n=200000 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(strtoul(resp_header(&r, "Content-Length", v, sizeof(v)), NULL, 10), n);
  size_t got = 0;
  while (got < n) {
    if (c->len == 0) assert_true(client_fill(c) > 0);
    size_t k = c->len < n - got ? c->len : n - got;
    for (size_t i = 0; i < k; i++)
      assert_int_equal(c->buf[i], take_byte(got + i));
    got += k;
    memmove(c->buf, c->buf + k, c->len - k + 1);
    c->len -= k;
  }
  /* HEAD: the taken body is not sent (and not leaked) */
  send_str(c, "HEAD /take?n=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Content-Length", v, sizeof(v)), "5000");
  send_str(c, "GET /take?n=0 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  client_close(c);
}

static void test_stream_sends_its_head_then_events_then_closes(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  char v[64];
  send_str(c, "GET /stream?n=5&ms=5 HTTP/1.1\r\nHost: t\r\nX-Request-Id: sse-1\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(resp_header(&r, "Content-Type", v, sizeof(v)), "text/event-stream");
  assert_string_equal(resp_header(&r, "Cache-Control", v, sizeof(v)), "no-cache");
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
  assert_string_equal(resp_header(&r, "X-Request-Id", v, sizeof(v)), "sse-1");
  assert_string_equal(resp_header(&r, "X-Stream", v, sizeof(v)), "yes");
  assert_string_equal(resp_header(&r, "Content-Length", v, sizeof(v)), "");
  read_to_eof(c);
  assert_string_equal(c->buf, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
  wait_atomic(&f->stream_ended, 1);
  assert_int_equal(atomic_load(&f->stream_gone), 0);
  assert_int_equal(atomic_load(&f->stream_write_failed), 0);
  client_close(c);
}

static void test_stream_outlives_the_server_timeouts(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  /* 8 events 100 ms apart: longer than the idle, header and body timeouts */
  send_str(c, "GET /stream?n=8&ms=100 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  read_to_eof(c);
  assert_string_equal(c->buf, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n"
                              "data: 4\n\ndata: 5\n\ndata: 6\n\ndata: 7\n\n");
  wait_atomic(&f->stream_ended, 1);
  assert_int_equal(atomic_load(&f->stream_gone), 0);
  client_close(c);
}

static void test_request_pipelined_after_a_stream_is_not_served(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  send_str(c, "GET /stream?n=2&ms=5 HTTP/1.1\r\nHost: t\r\n\r\n"
              "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  read_to_eof(c);
  assert_string_equal(c->buf, "data: 0\n\ndata: 1\n\n");
  wait_atomic(&f->stream_ended, 1);
  assert_int_equal(atomic_load(&f->handled), 0);
  client_close(c);
}

/* The client leaves while the stream runs: the owner hears it through
 * on_gone and releases the request; LeakSanitizer checks nothing is left. */
static void disconnect_mid_stream(fixture *f, int reset, int already) {
  client *c = client_open(f);
  response r;
  send_str(c, "GET /stream?n=1000000&ms=5 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  while (!strstr(c->buf, "data: 1\n\n"))
    assert_true(client_fill(c) > 0);
  if (reset) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  client_close(c);
  wait_atomic(&f->stream_gone, already + 1);
  wait_atomic(&f->stream_ended, already + 1);
  assert_int_equal(atomic_load(&f->stream_write_failed), 0);
}

static void test_client_leaving_mid_stream_is_reported_once(void **state) {
  fixture *f = *state;
  disconnect_mid_stream(f, 0, 0); /* FIN */
  disconnect_mid_stream(f, 1, 1); /* RST */
  client *c = client_open(f);     /* the server still serves */
  response r;
  send_str(c, "GET /still HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  client_close(c);
}

static void test_slow_stream_consumer_is_dropped(void **state) {
  fixture *f = *state;
  client *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  struct timeval tv = {.tv_sec = 5};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  /* 512 KiB a turn, and this client reads nothing */
  send_str(c, "GET /stream?n=100000&ms=1&size=65536&burst=8 HTTP/1.1\r\nHost: t\r\n\r\n");
  wait_atomic(&f->stream_write_failed, 1);
  wait_atomic(&f->stream_ended, 1);
  assert_int_equal(atomic_load(&f->stream_gone), 0); /* released before the notice was due */
  expect_closed(c);
  client_close(c);
}

static void test_server_close_ends_open_streams(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  response r;
  send_str(c, "GET /stream?n=1000000&ms=5 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  uv_async_send(&f->stop);
  expect_closed(c);
  pthread_join(f->thread, NULL);
  assert_int_equal(atomic_load(&f->closed_done), 1);
  assert_int_equal(atomic_load(&f->stream_gone), 1);
  assert_int_equal(atomic_load(&f->stream_ended), 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  client_close(c);
  free(f);
  *state = NULL;
}

static int teardown_if_open(void **state) {
  return *state ? teardown(state) : 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_simple_get_answers_200_with_request_id_and_length, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_request_id_is_echoed_and_invalid_one_replaced,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fragmented_request_is_reassembled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keep_alive_serves_two_requests_on_one_connection, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pipelined_requests_are_answered_in_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_post_body_is_delivered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_head_request_gets_length_but_no_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_close_is_honoured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http10_without_keep_alive_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversized_headers_get_431, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_small_headers_over_limit_get_431, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_length_over_limit_gets_413_before_body, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_chunked_body_over_limit_gets_413, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_length_lie_gets_408_after_body_timeout, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_slow_headers_get_408, setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage_request_line_gets_400, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_error_writer_answers_plain_text,
                                      setup_plain_errors, teardown),
      cmocka_unit_test_setup_teardown(test_idle_keep_alive_connection_is_closed_silently, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_disconnect_while_request_pending_is_safe, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_close_with_open_connections_frees_everything,
                                      setup, teardown_if_open),
      cmocka_unit_test_setup_teardown(test_connections_beyond_max_are_closed, setup_one_connection,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_raises_the_limit_of_one_request,
                                      setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_refuses_content_length_before_body,
                                      setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_bounds_a_chunked_body,
                                      setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_respond_take_sends_the_body_and_frees_it, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stream_sends_its_head_then_events_then_closes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stream_outlives_the_server_timeouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_pipelined_after_a_stream_is_not_served, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_leaving_mid_stream_is_reported_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_slow_stream_consumer_is_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_ends_open_streams, setup, teardown_if_open),
      cmocka_unit_test(test_status_text_names_known_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
