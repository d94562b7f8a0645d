/* http_server's server object and connections (common/http_server.c,
 * common/http_conn.c): keep-alive, pipelining in order, Connection: close
 * and HTTP/1.0, the header, body and idle timeouts, a client leaving while
 * its request is held, closing the server with connections open, the
 * connection limits (in all, per address, out of descriptors), a body's
 * stall and rate floor, a client that stops reading, and sized streams. */

#include "http_fixture.h"

#include <sys/resource.h>

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

/* A body that keeps coming above the rate floor completes however long it
 * takes: 2000 bytes over about a second, five times the stall timeout
 * (before, one deadline for the whole body answered 408). */
static void test_slow_steady_body_completes(void **state) {
  client *c = client_open(*state);
  response r;
  char piece[101];
  memset(piece, 'b', 100);
  piece[100] = '\0';
  send_str(c, "POST /upload HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 4096\r\n"
              "Content-Length: 2000\r\n\r\n");
  for (int i = 0; i < 20; i++) {
    sleep_ms(50); /* 2000 bytes/s, over the 400 bytes/s floor */
    send_str(c, piece);
  }
  read_response(c, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"body_len\":2000,"));
  client_close(c);
}

/* A trickle that never stalls for the timeout but stays under the rate
 * floor is cut off soon after the grace period. */
static void test_body_trickle_under_the_rate_gets_408(void **state) {
  client *c = client_open(*state);
  send_str(c, "POST /upload HTTP/1.1\r\nHost: t\r\nX-Body-Limit: 4096\r\n"
              "Content-Length: 2000\r\n\r\n");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int refused = 0;
  for (int i = 0; i < 40 && !refused; i++) { /* 5 bytes every 100 ms: 50 bytes/s */
    sleep_ms(100);
    refused = send(c->fd, "ttttt", 5, MSG_NOSIGNAL) != 5;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    refused = refused || poll(&p, 1, 0) == 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  expect_error(c, 408, "request_timeout");
  /* cut within a second or so, long before the 40 pieces (4 s) were sent */
  assert_true(t1.tv_sec - t0.tv_sec < 3);
  client_close(c);
}

/* A client that asks for a large answer and never reads it: once nothing
 * moves for the write timeout the connection is reset, and the bytes the
 * server held are freed (before, it held them for as long as the client
 * stayed connected, and a later read got all of them). */
static void test_client_that_never_reads_is_reset(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  int small = 4096;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  send_str(c, "GET /take?n=16000000 HTTP/1.1\r\nHost: t\r\n\r\n");
  sleep_ms(3 * WRITE_TIMEOUT_MS);
  size_t total = 0;
  char b[65536];
  ssize_t n;
  while ((n = recv(c->fd, b, sizeof(b), 0)) > 0)
    total += (size_t)n;
  assert_true(n == 0 || errno == ECONNRESET);
  assert_true(total < 16000000);
  client_close(c);
  client *q = client_open(f);
  response r;
  send_str(q, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(q, &r);
  assert_non_null(strstr(r.body, "\"write_timeouts\":1,"));
  client_close(q);
}

/* A large body written piece by piece, each after the last drained. */
static void test_sized_stream_sends_every_byte(void **state) {
  client *c = client_open(*state);
  response r;
  send_str(c, "GET /sized?n=300000&piece=4096 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  char v[64];
  assert_string_equal(resp_header(&r, "Content-Length", v, sizeof(v)), "300000");
  assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
  size_t got = 0;
  int ok = 1;
  for (;;) {
    for (size_t i = 0; i < c->len; i++)
      ok = ok && c->buf[i] == take_byte(got + i);
    got += c->len;
    c->len = 0;
    if (client_fill(c) <= 0) break;
  }
  assert_int_equal(got, 300000);
  assert_true(ok);
  client_close(c);
}

/* max_per_ip 2: a third connection from the same address is closed at
 * once, counted, and a slot comes back when one closes. */
static void test_connections_beyond_per_ip_cap_are_closed(void **state) {
  fixture *f = *state;
  response r;
  client *a = client_open(f), *b = client_open(f);
  send_str(a, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(a, &r);
  send_str(b, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(b, &r);
  client *third = client_open(f);
  send(third->fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL);
  expect_closed(third);
  client_close(third);
  client_close(b);
  sleep_ms(100);
  client *again = client_open(f);
  send_str(again, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(again, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"refused_per_ip\":1,"));
  assert_non_null(strstr(r.body, "\"connections\":2}"));
  client_close(again);
  client_close(a);
}

/* Out of file descriptors when a connection arrives: the waiting client
 * is not left hanging (libuv accepts and closes it with a descriptor it
 * keeps in reserve, and tells no one; only when that fails does the
 * accept callback see the error, which is counted and logged), and the
 * server serves again once descriptors are free. The process's own
 * descriptor table is filled to the last slot, which the test's socket
 * then takes, so the server's accept has none. genq-api keeps this from
 * happening by capping connections below RLIMIT_NOFILE. */
static void test_accept_without_descriptors_sheds_the_connection(void **state) {
  fixture *f = *state;
  struct rlimit old, low;
  getrlimit(RLIMIT_NOFILE, &old);
  int probe = dup(0);
  assert_true(probe >= 0);
  close(probe);
  low = old;
  low.rlim_cur = (rlim_t)probe + 64;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  int fill[80], nfill = 0, fd;
  while (nfill < 80 && (fd = dup(0)) >= 0)
    fill[nfill++] = fd;
  assert_int_equal(errno, EMFILE);
  close(fill[--nfill]); /* one slot: the client's socket */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char b[64];
  ssize_t n = recv(s, b, sizeof(b), 0); /* accepted and closed by libuv's reserve descriptor */
  int err = errno;
  close(s);
  while (nfill > 0)
    close(fill[--nfill]);
  setrlimit(RLIMIT_NOFILE, &old);
  assert_true(n == 0 || (n < 0 && err == ECONNRESET));
  /* Served again; a connection that arrives while libuv still sheds may
   * be shed too, so a few tries. */
  int status = 0;
  for (int i = 0; i < 5 && status != 200; i++) {
    sleep_ms(100);
    client *c = client_open(f);
    send_str(c, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[16] = {0};
    if (recv(c->fd, buf, sizeof(buf) - 1, 0) > 12) sscanf(buf, "HTTP/1.1 %d", &status);
    client_close(c);
  }
  assert_int_equal(status, 200);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_keep_alive_serves_two_requests_on_one_connection, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pipelined_requests_are_answered_in_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_connection_close_is_honoured, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http10_without_keep_alive_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_length_lie_gets_408_after_body_timeout, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_slow_headers_get_408, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_keep_alive_connection_is_closed_silently, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_disconnect_while_request_pending_is_safe, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_server_close_with_open_connections_frees_everything,
                                      setup, teardown_if_open),
      cmocka_unit_test_setup_teardown(test_connections_beyond_max_are_closed, setup_one_connection,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_slow_steady_body_completes, setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_body_trickle_under_the_rate_gets_408, setup_body_limit,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_that_never_reads_is_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sized_stream_sends_every_byte, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connections_beyond_per_ip_cap_are_closed,
                                      setup_two_per_ip, teardown),
      cmocka_unit_test_setup_teardown(test_accept_without_descriptors_sheds_the_connection, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
