/* http_server's streamed responses, server-sent events
 * (common/http_stream.c): the head, the events, no server timeout, nothing
 * served after a stream, a client leaving, a slow consumer, the server
 * closing. */

#include "http_fixture.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stream_sends_its_head_then_events_then_closes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stream_outlives_the_server_timeouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_pipelined_after_a_stream_is_not_served, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_leaving_mid_stream_is_reported_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_slow_stream_consumer_is_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_close_ends_open_streams, setup, teardown_if_open),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
