/* http_server's requests (common/http_parse.c): the request line, headers
 * and body as the accessors give them, fragments, chunked bodies, request
 * ids, and the refusals of malformed or oversized requests, including the
 * per-request body limit. */

#include "http_fixture.h"

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

/* A chunk that announces more than the limit is refused on its size line:
 * no byte of it is waited for (before, the server read on and answered
 * 408 when the bytes never came). */
static void test_chunk_size_over_limit_gets_413_at_once(void **state) {
  fixture *f = *state;
  client *c = client_open(f);
  send_str(c, "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "10\r\n0123456789abcdef\r\n"
              "40000000\r\n"); /* 1 GiB, against a 1 KiB limit */
  expect_error(c, 413, "payload_too_large");
  assert_int_equal(atomic_load(&f->handled), 0);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_request_id_is_echoed_and_invalid_one_replaced,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fragmented_request_is_reassembled, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_body_is_delivered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversized_headers_get_431, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_small_headers_over_limit_get_431, setup, teardown),
      cmocka_unit_test_setup_teardown(test_content_length_over_limit_gets_413_before_body, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_chunked_body_over_limit_gets_413, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chunk_size_over_limit_gets_413_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage_request_line_gets_400, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_raises_the_limit_of_one_request,
                                      setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_refuses_content_length_before_body,
                                      setup_body_limit, teardown),
      cmocka_unit_test_setup_teardown(test_body_limit_callback_bounds_a_chunked_body,
                                      setup_body_limit, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
