/* common/http_metrics.c as the observer of a real http_server over
 * loopback (http_fixture.h): requests counted by the route the handler
 * gave them, method and status; the server's own refusals under route 0;
 * a route number out of range under route 0 too; streams at their head;
 * latency in the histogram's buckets; the connection counts. */
#include "http_fixture.h"

#include "http_metrics.h"

static const char *const routes[] = {"unmatched", "/v1/a", "/v1/b/{id}", "/slow", "/events"};

typedef struct {
  fixture *f;
  http_metrics *m;
} mfx;

static int msetup(void **state) {
  mfx *x = calloc(1, sizeof *x);
  assert_non_null(x);
  void *fs;
  start_server(&fs, 0, 0, 0);
  x->f = fs;
  x->m = http_metrics_new(routes, 5);
  assert_non_null(x->m);
  /* before any connection: the loop thread reads it only for a request */
  http_server_set_observer(x->f->srv, http_metrics_observe, x->m);
  *state = x;
  return 0;
}

static int mteardown(void **state) {
  mfx *x = *state;
  void *fs = x->f;
  teardown(&fs);
  http_metrics_free(x->m);
  free(x);
  return 0;
}

static char *metrics_text(mfx *x, const http_server *s) {
  prom_buf b;
  prom_buf_init(&b, 1 << 20);
  http_metrics_write(x->m, s, &b);
  size_t len;
  char *t = prom_buf_take(&b, &len);
  assert_non_null(t);
  return t;
}

static void get(fixture *f, const char *req, int want) {
  client *c = client_open(f);
  response r;
  send_str(c, req);
  read_response(c, &r);
  assert_int_equal(r.status, want);
  client_close(c);
}

static void requests_are_counted_by_route_method_and_code(void **state) {
  mfx *x = *state;
  get(x->f, "GET /v1/a?route=1 HTTP/1.1\r\nHost: t\r\n\r\n", 200);
  get(x->f, "GET /v1/a?route=1 HTTP/1.1\r\nHost: t\r\n\r\n", 200);
  get(x->f, "POST /v1/b/123?route=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 200);
  get(x->f, "DELETE /v1/b/456?route=2 HTTP/1.1\r\nHost: t\r\n\r\n", 200);
  get(x->f, "GET /nowhere?route=77 HTTP/1.1\r\nHost: t\r\n\r\n", 200); /* out of range */
  /* refused by the server itself (body too large): route 0, 413 */
  client *c = client_open(x->f);
  send_str(c, "POST /v1/a?route=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 999999\r\n\r\n");
  expect_error(c, 413, "payload_too_large");
  client_close(c);
  char *t = metrics_text(x, NULL);
  assert_non_null(strstr(t, "# TYPE genq_http_requests_total counter\n"));
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"/v1/a\",method=\"GET\",code=\"200\"} 2\n"));
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"/v1/b/{id}\",method=\"POST\",code=\"200\"} 1\n"));
  assert_non_null(strstr(
      t, "genq_http_requests_total{route=\"/v1/b/{id}\",method=\"DELETE\",code=\"200\"} 1\n"));
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"200\"} 1\n"));
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"unmatched\",method=\"POST\",code=\"413\"} 1\n"));
  /* no raw path ever becomes a label */
  assert_null(strstr(t, "123"));
  assert_null(strstr(t, "nowhere"));
  /* a histogram per route and method that answered */
  assert_non_null(strstr(t, "# TYPE genq_http_request_duration_seconds histogram\n"));
  assert_non_null(
      strstr(t, "genq_http_request_duration_seconds_count{route=\"/v1/a\",method=\"GET\"} 2\n"));
  assert_non_null(strstr(t, "genq_http_request_duration_seconds_bucket{route=\"/v1/a\","
                            "method=\"GET\",le=\"+Inf\"} 2\n"));
  /* nothing for a route that answered nothing */
  assert_null(strstr(t, "route=\"/slow\""));
  free(t);
}

static void latency_lands_in_its_bucket(void **state) {
  mfx *x = *state;
  get(x->f, "GET /delay?ms=120&route=3 HTTP/1.1\r\nHost: t\r\n\r\n", 200);
  char *t = metrics_text(x, NULL);
  const char *slow = "genq_http_request_duration_seconds_bucket{route=\"/slow\",method=\"GET\",";
  char line[256];
  snprintf(line, sizeof line, "%sle=\"0.1\"} 0\n", slow);
  assert_non_null(strstr(t, line));
  snprintf(line, sizeof line, "%sle=\"0.25\"} 1\n", slow);
  assert_non_null(strstr(t, line));
  const char *sum =
      strstr(t, "genq_http_request_duration_seconds_sum{route=\"/slow\",method=\"GET\"} ");
  assert_non_null(sum);
  double s = strtod(strchr(sum, '}') + 2, NULL);
  assert_true(s >= 0.119 && s < 1.0);
  free(t);
}

static void a_stream_counts_when_its_head_goes_out(void **state) {
  mfx *x = *state;
  client *c = client_open(x->f);
  response r;
  send_str(c, "GET /stream?n=2&ms=10&route=4 HTTP/1.1\r\nHost: t\r\n\r\n");
  read_head(c, &r);
  assert_int_equal(r.status, 200);
  char *t = metrics_text(x, NULL);
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"/events\",method=\"GET\",code=\"200\"} 1\n"));
  free(t);
  expect_closed(c);
  client_close(c);
  wait_atomic(&x->f->stream_ended, 1);
  t = metrics_text(x, NULL); /* its end is not a second answer */
  assert_non_null(
      strstr(t, "genq_http_requests_total{route=\"/events\",method=\"GET\",code=\"200\"} 1\n"));
  free(t);
}

static void connection_counts_come_with_the_server(void **state) {
  mfx *x = *state;
  char *t = metrics_text(x, x->f->srv);
  assert_non_null(strstr(t, "# TYPE genq_http_connections gauge\n"));
  assert_non_null(strstr(t, "genq_http_connections_refused_total{reason=\"max_connections\"} 0\n"));
  assert_non_null(strstr(t, "genq_http_connections_refused_total{reason=\"per_ip\"} 0\n"));
  assert_non_null(strstr(t, "genq_http_accept_errors_total 0\n"));
  assert_non_null(strstr(t, "genq_http_write_timeouts_total 0\n"));
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(requests_are_counted_by_route_method_and_code, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(latency_lands_in_its_bucket, msetup, mteardown),
      cmocka_unit_test_setup_teardown(a_stream_counts_when_its_head_goes_out, msetup, mteardown),
      cmocka_unit_test_setup_teardown(connection_counts_come_with_the_server, msetup, mteardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
