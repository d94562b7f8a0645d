/* http_server's responses (common/http_respond.c): a plain response's
 * head, HEAD requests, bodies handed over with http_respond_take, the
 * default error writer and the reason phrases. */

#include "http_fixture.h"

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

static void test_status_text_names_known_codes(void **state) {
  assert_string_equal(http_status_text(404), "Not Found");
  assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
  assert_string_equal(http_status_text(799), "Unknown");
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_simple_get_answers_200_with_request_id_and_length, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_head_request_gets_length_but_no_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_error_writer_answers_plain_text,
                                      setup_plain_errors, teardown),
      cmocka_unit_test_setup_teardown(test_respond_take_sends_the_body_and_frees_it, setup,
                                      teardown),
      cmocka_unit_test(test_status_text_names_known_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
