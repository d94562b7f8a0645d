/* http_server's server object and connections (common/http_server.c,
 * common/http_conn.c): keep-alive, pipelining in order, Connection: close
 * and HTTP/1.0, the header, body and idle timeouts, a client leaving while
 * its request is held, closing the server with connections open, and the
 * connection limit. */

#include "http_fixture.h"

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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
