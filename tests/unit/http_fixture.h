/* The fixture of the HTTP server tests (test_http_server.c,
 * test_http_parse.c, test_http_respond.c, test_http_stream.c):
 * http_server over real loopback TCP. The server runs its own uv loop on a
 * thread and answers by path (/delay, /take, /stream, else an echo of the
 * request); the test talks raw HTTP/1.1 to it with blocking sockets.
 * Included once per test program (each is its own executable). */
#ifndef GENQ_TEST_HTTP_FIXTURE_H
#define GENQ_TEST_HTTP_FIXTURE_H

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
#define WRITE_TIMEOUT_MS 300
#define BODY_MIN_RATE 400 /* bytes/s */

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
static inline void json_error(http_request *r, int status, const char *code, const char *message,
                              void *arg) {
  char out[512];
  int n = snprintf(out, sizeof(out),
                   "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}", code,
                   message, http_req_id(r));
  (void)arg;
  http_respond(r, status, "application/json", NULL, out, (size_t)n);
}

static inline void echo(http_request *r, fixture *f) {
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

static inline void delayed_closed(uv_handle_t *h) {
  free(h->data);
}

static inline void delayed_on_gone(http_request *r, void *arg) {
  delayed *d = arg;
  atomic_fetch_add(&d->f->delayed_gone_cb, 1); /* the timer still answers (and frees) it */
}

static inline void delayed_fire(uv_timer_t *t) {
  delayed *d = t->data;
  if (http_req_gone(d->req)) atomic_fetch_add(&d->f->delayed_gone, 1);
  atomic_fetch_add(&d->f->delayed_fired, 1);
  echo(d->req, d->f);
  uv_close((uv_handle_t *)&d->timer, delayed_closed);
}

/* A query parameter as a number, or def. */
static inline unsigned long qnum(const http_request *r, const char *name, unsigned long def) {
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
static inline char take_byte(size_t i) {
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

static inline void streamer_closed(uv_handle_t *h) {
  free(h->data);
}

static inline void streamer_finish(streamer *s) {
  if (s->done) return;
  s->done = 1;
  http_stream_end(s->req);
  atomic_fetch_add(&s->f->stream_ended, 1);
  uv_close((uv_handle_t *)&s->timer, streamer_closed);
}

static inline void streamer_tick(uv_timer_t *t) {
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

static inline void streamer_gone(http_request *r, void *arg) {
  streamer *s = arg;
  atomic_fetch_add(&s->f->stream_gone, 1);
  streamer_finish(s);
}

static inline void start_stream(http_request *r, fixture *f) {
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

static inline void take(http_request *r) {
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
static inline size_t body_limit(const http_request *r, void *arg) {
  fixture *f = arg;
  atomic_fetch_add(&f->limit_calls, 1);
  const char *h = http_req_header(r, "x-body-limit");
  if (h && strcmp(http_req_method(r), "POST") == 0 && strcmp(http_req_path(r), "/upload") == 0)
    return strtoul(h, NULL, 10);
  return MAX_BODY;
}

/* /sized?n=N&piece=P: N bytes of take_byte() as a sized stream, P bytes
 * at a time, each piece written once the last one drained. */
typedef struct {
  http_request *req;
  size_t n, off, piece;
} sized;

static inline void sized_next(http_request *r, void *arg) {
  sized *z = arg;
  char buf[4096];
  if (z->off == z->n) {
    http_stream_end(r);
    free(z);
    return;
  }
  size_t k = z->n - z->off < z->piece ? z->n - z->off : z->piece;
  if (k > sizeof(buf)) k = sizeof(buf);
  for (size_t i = 0; i < k; i++)
    buf[i] = take_byte(z->off + i);
  z->off += k;
  if (http_stream_write(r, buf, k) != 0) {
    http_stream_end(r);
    free(z);
  }
}

static inline void sized_gone(http_request *r, void *arg) {
  http_stream_end(r);
  free(arg);
}

static inline void start_sized(http_request *r) {
  sized *z = calloc(1, sizeof(*z));
  if (!z) {
    json_error(r, 500, "internal", "out of memory", NULL);
    return;
  }
  z->n = qnum(r, "n", 1);
  z->piece = qnum(r, "piece", 1000);
  http_req_on_gone(r, sized_gone, z);
  http_stream_on_drain(r, sized_next, z);
  if (http_stream_begin_sized(r, 200, "application/octet-stream", NULL, z->n) != 0)
    sized_gone(r, z);
}

/* /stats: the server's counts as JSON. */
static inline void stats(http_request *r, fixture *f) {
  http_server_stats_t st;
  char out[256];
  http_server_stats(f->srv, &st);
  int n = snprintf(out, sizeof(out),
                   "{\"refused_full\":%llu,\"refused_per_ip\":%llu,\"accept_errors\":%llu,"
                   "\"write_timeouts\":%llu,\"connections\":%u}",
                   st.refused_full, st.refused_per_ip, st.accept_errors, st.write_timeouts,
                   st.connections);
  http_respond(r, 200, "application/json", NULL, out, (size_t)n);
}

/* /delay?ms=N answers N ms later from a timer; /take?n=N answers N bytes
 * without a copy; /stream streams; /sized streams a sized body; /stats
 * answers the server's counts; everything else is echoed at once. Any of
 * them with ?route=N carries route N (http_req_set_route) for an observer. */
static inline void handler(http_request *r, void *arg) {
  fixture *f = arg;
  http_req_set_route(r, (unsigned)qnum(r, "route", 0));
  if (strcmp(http_req_path(r), "/sized") == 0) {
    start_sized(r);
    return;
  }
  if (strcmp(http_req_path(r), "/stats") == 0) {
    stats(r, f);
    return;
  }
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

static inline void on_server_closed(void *arg) {
  fixture *f = arg;
  atomic_store(&f->closed_done, 1);
}

static inline void stop_cb(uv_async_t *a) {
  fixture *f = a->data;
  http_server_close(f->srv, on_server_closed, f);
  uv_close((uv_handle_t *)a, NULL);
}

static inline void *loop_thread(void *arg) {
  fixture *f = arg;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return NULL;
}

static inline int start_server_per_ip(void **state, unsigned max_connections, int with_body_limit,
                                      int plain_errors, unsigned max_per_ip) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  http_limits lim = {
      .max_header_bytes = MAX_HEADER,
      .max_body_bytes = MAX_BODY,
      .header_timeout_ms = HEADER_TIMEOUT_MS,
      .body_timeout_ms = BODY_TIMEOUT_MS,
      .body_min_rate = BODY_MIN_RATE,
      .idle_timeout_ms = IDLE_TIMEOUT_MS,
      .write_timeout_ms = WRITE_TIMEOUT_MS,
      .max_connections = max_connections,
      .max_per_ip = max_per_ip,
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

static inline int start_server(void **state, unsigned max_connections, int with_body_limit,
                               int plain_errors) {
  return start_server_per_ip(state, max_connections, with_body_limit, plain_errors, 0);
}

static inline int setup(void **state) {
  return start_server(state, 0, 0, 0);
}

static inline int setup_one_connection(void **state) {
  return start_server(state, 1, 0, 0);
}

static inline int setup_body_limit(void **state) {
  return start_server(state, 0, 1, 0);
}

static inline int setup_two_per_ip(void **state) {
  return start_server_per_ip(state, 0, 0, 0, 2);
}

/* No error writer set: the server's own, plain one. */
static inline int setup_plain_errors(void **state) {
  return start_server(state, 0, 0, 1);
}

/* The loop only returns once every handle is closed, so a clean
 * uv_loop_close proves http_server_close left nothing open. */
static inline int teardown(void **state) {
  fixture *f = *state;
  uv_async_send(&f->stop);
  pthread_join(f->thread, NULL);
  assert_int_equal(atomic_load(&f->closed_done), 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* For the tests that close the server themselves (and set *state NULL). */
static inline int teardown_if_open(void **state) {
  return *state ? teardown(state) : 0;
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

static inline client *client_open(fixture *f) {
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

static inline void client_close(client *c) {
  close(c->fd);
  free(c);
}

static inline void send_str(client *c, const char *s) {
  size_t n = strlen(s), off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
    assert_true(w > 0);
    off += (size_t)w;
  }
}

/* recv into the client buffer; returns bytes read, 0 on EOF, -1 on error. */
static inline ssize_t client_fill(client *c) {
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
  if (n > 0) c->len += (size_t)n;
  c->buf[c->len] = '\0';
  return n;
}

/* Copies the value of a response header into out ("" when absent). */
static inline const char *resp_header(const response *r, const char *name, char *out, size_t cap) {
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
static inline void read_response(client *c, response *r) {
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
static inline void expect_closed(client *c) {
  char b[4096];
  ssize_t n;
  while ((n = recv(c->fd, b, sizeof(b), 0)) > 0) {
  }
  assert_true(n == 0 || errno == ECONNRESET);
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline int is_hex_id(const char *s) {
  if (strlen(s) != 32) return 0;
  for (; *s; s++)
    if (!strchr("0123456789abcdef", *s)) return 0;
  return 1;
}

static inline void expect_error(client *c, int status, const char *code) {
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

/* Waits (bounded) until *v reaches want. */
static inline void wait_atomic(atomic_int *v, int want) {
  for (int i = 0; i < 500 && atomic_load(v) < want; i++)
    sleep_ms(20);
  assert_int_equal(atomic_load(v), want);
}

/* Reads a response head into r (no body); leaves what follows buffered. */
static inline void read_head(client *c, response *r) {
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
static inline void read_to_eof(client *c) {
  ssize_t n;
  while ((n = client_fill(c)) > 0)
    assert_true(c->len < sizeof(c->buf) - 1);
  assert_int_equal(n, 0);
}

#endif
