#define _GNU_SOURCE
/* httpc against a tiny blocking HTTP server on a thread of this process
 * (127.0.0.1, port chosen by the kernel) that answers by path
 * (blocking_server.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"

#include "blocking_server.h"

/* ---- helpers ---- */

typedef struct {
  int calls;
  int status, curl_code, too_large;
  long retry_after_ms;
  char body[200000];
  size_t body_len;
  char content_type[128], request_id[128], location[128], error[256];
  double total_ms;
} result;

static void on_resp(const httpc_response *r, void *arg) {
  result *res = arg;
  res->calls++;
  res->status = r->status;
  res->curl_code = r->curl_code;
  res->too_large = r->too_large;
  res->retry_after_ms = r->retry_after_ms;
  assert_non_null(r->body);
  res->body_len = r->body_len < sizeof res->body ? r->body_len : sizeof res->body - 1;
  memcpy(res->body, r->body, res->body_len);
  res->body[res->body_len] = '\0';
  snprintf(res->content_type, sizeof res->content_type, "%s",
           r->content_type ? r->content_type : "");
  snprintf(res->request_id, sizeof res->request_id, "%s", r->request_id ? r->request_id : "");
  snprintf(res->location, sizeof res->location, "%s", r->location ? r->location : "");
  snprintf(res->error, sizeof res->error, "%s", r->error ? r->error : "");
  res->total_ms = r->total_ms;
}

typedef struct {
  uv_loop_t loop;
  httpc *c;
  srv *s;
  char base[64];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  uv_loop_init(&f->loop);
  if (httpc_new(&f->c, &f->loop) != 0) return -1;
  f->s = srv_start();
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->s->port);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->c) httpc_close(f->c);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  srv_stop(f->s);
  free(f);
  return 0;
}

static void run_until(fixture *f, const int *flag, int want) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(*flag >= want);
}

static void send_req(fixture *f, const char *method, const char *path, result *res,
                     httpc_request *tmpl, uint64_t *id) {
  char url[128];
  snprintf(url, sizeof url, "%s%s", f->base, path);
  httpc_request req = tmpl ? *tmpl : (httpc_request){0};
  req.method = method;
  req.url = url;
  assert_int_equal(httpc_send(f->c, &req, on_resp, res, id), 0);
}

/* ---- tests ---- */

static void get_returns_status_body_and_captured_headers(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  send_req(f, "GET", "/hello", r, NULL, NULL);
  assert_int_equal(httpc_in_flight(f->c), 1);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->calls, 1);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->curl_code, CURLE_OK);
  assert_string_equal(r->body, "hello world");
  assert_int_equal(r->body_len, 11);
  assert_string_equal(r->content_type, "text/plain; charset=utf-8");
  assert_string_equal(r->request_id, "req-42");
  assert_string_equal(r->location, "/elsewhere");
  assert_int_equal(r->retry_after_ms, -1);
  assert_string_equal(r->error, "");
  assert_int_equal(httpc_in_flight(f->c), 0);
  free(r);
}

static void post_body_reaches_the_server_intact(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  char body[3000];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (char)(i * 7 + 1);
  body[10] = '\0'; /* binary-safe */
  const char *hdrs[] = {"Content-Type: application/octet-stream", "X-Test: 1", NULL};
  httpc_request t = {.headers = hdrs, .body = body, .body_len = sizeof body};
  send_req(f, "POST", "/echo", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  assert_int_equal(f->s->last_body_len, sizeof body);
  assert_memory_equal(f->s->last_body, body, sizeof body);
  assert_string_equal(f->s->last_method, "POST");
  assert_int_equal(r->body_len, sizeof body);
  assert_memory_equal(r->body, body, sizeof body);
  free(r);
}

static void custom_method_with_body_is_sent(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.body = "{\"a\":1}", .body_len = 7};
  send_req(f, "PUT", "/echo", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  assert_string_equal(f->s->last_method, "PUT");
  assert_string_equal(r->body, "{\"a\":1}");
  free(r);
}

static void retry_after_seconds_and_ms_are_parsed(void **state) {
  fixture *f = *state;
  result *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
  send_req(f, "GET", "/ratelimit-s", a, NULL, NULL);
  send_req(f, "GET", "/ratelimit-ms", b, NULL, NULL);
  run_until(f, &a->calls, 1);
  run_until(f, &b->calls, 1);
  assert_int_equal(a->status, 429);
  assert_int_equal(a->retry_after_ms, 3000);
  assert_string_equal(a->body, "slow down");
  assert_int_equal(b->status, 429);
  assert_int_equal(b->retry_after_ms, 250);
  free(a);
  free(b);
}

static void body_over_limit_aborts_as_too_large(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.max_response_bytes = 1000};
  send_req(f, "GET", "/big", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->too_large, 1);
  assert_int_not_equal(r->curl_code, CURLE_OK);
  assert_true(r->body_len <= 1000);
  assert_string_not_equal(r->error, "");
  /* Under the limit the same body passes. */
  result *ok = calloc(1, sizeof *ok);
  t.max_response_bytes = 100000;
  send_req(f, "GET", "/big", ok, &t, NULL);
  run_until(f, &ok->calls, 1);
  assert_int_equal(ok->too_large, 0);
  assert_int_equal(ok->status, 200);
  assert_int_equal(ok->body_len, 100000);
  free(r);
  free(ok);
}

static void truncated_body_keeps_its_status_and_first_bytes(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.max_response_bytes = 1000, .truncate_response = 1};
  send_req(f, "GET", "/big", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 200);
  assert_int_equal(r->curl_code, CURLE_OK);
  assert_int_equal(r->too_large, 1);
  assert_int_equal(r->body_len, 1000);
  assert_string_equal(r->error, "");
  free(r);
}

static void resolve_pins_a_name_to_the_given_address(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  char url[128], pin[128];
  /* .invalid never resolves: only the pinned entry can reach the server */
  snprintf(url, sizeof url, "http://genq-pinned.invalid:%d/hello", f->s->port);
  snprintf(pin, sizeof pin, "genq-pinned.invalid:%d:127.0.0.1", f->s->port);
  httpc_request req = {.method = "GET", .url = url, .resolve = pin, .no_proxy = 1};
  assert_int_equal(httpc_send(f->c, &req, on_resp, r, NULL), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->body, "hello world");
  free(r);
}

static int refuse_addr(const struct sockaddr *a, void *arg) {
  int *calls = arg;
  (*calls)++;
  assert_int_equal(a->sa_family, AF_INET);
  return 0;
}

static void addr_ok_refusing_an_address_fails_the_connect(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  int calls = 0;
  httpc_request t = {.addr_ok = refuse_addr, .addr_ok_arg = &calls};
  send_req(f, "GET", "/hello", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(calls, 1);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->curl_code, CURLE_COULDNT_CONNECT);
  free(r);
}

static void protocols_https_refuses_an_http_url(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.protocols = "https"};
  send_req(f, "GET", "/hello", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->curl_code, CURLE_UNSUPPORTED_PROTOCOL);
  free(r);
}

static void connection_refused_gives_status_0_and_curl_code(void **state) {
  fixture *f = *state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  close(fd); /* nothing listens there now */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
  result *r = calloc(1, sizeof *r);
  httpc_request req = {.method = "GET", .url = url};
  assert_int_equal(httpc_send(f->c, &req, on_resp, r, NULL), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->curl_code, CURLE_COULDNT_CONNECT);
  assert_string_not_equal(r->error, "");
  free(r);
}

static void unanswered_request_times_out(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.timeout_ms = 300};
  uint64_t t0 = uv_hrtime();
  send_req(f, "GET", "/hang", r, &t, NULL);
  run_until(f, &r->calls, 1);
  double ms = (double)(uv_hrtime() - t0) / 1e6;
  assert_int_equal(r->curl_code, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal(r->status, 0);
  assert_true(ms >= 250); /* the code above says why it ended; no upper bound on a loaded machine */
  free(r);
}

static void bad_scheme_is_refused(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request req = {.method = "GET", .url = "file:///etc/passwd"};
  assert_int_equal(httpc_send(f->c, &req, on_resp, r, NULL), 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->curl_code, CURLE_UNSUPPORTED_PROTOCOL);
  assert_int_equal(r->body_len, 0);
  free(r);
}

typedef struct {
  httpc *c;
  uint64_t id;
} cancel_ctx;

static void cancel_timer_cb(uv_timer_t *t) {
  cancel_ctx *cc = t->data;
  httpc_cancel(cc->c, cc->id);
  httpc_cancel(cc->c, cc->id); /* unknown now: ignored */
}

static void cancel_runs_callback_once_with_aborted(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  cancel_ctx cc = {.c = f->c};
  send_req(f, "GET", "/hang", r, NULL, &cc.id);
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  t.data = &cc;
  uv_timer_start(&t, cancel_timer_cb, 50, 0);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->curl_code, CURLE_ABORTED_BY_CALLBACK);
  assert_int_equal(r->status, 0);
  assert_int_equal(httpc_in_flight(f->c), 0);
  uv_close((uv_handle_t *)&t, NULL);
  /* Later loop turns do not call it again. */
  for (int i = 0; i < 5; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(r->calls, 1);
  free(r);
}

static void hundred_concurrent_requests_all_complete(void **state) {
  fixture *f = *state;
  enum { N = 100 };
  result *r = calloc(N, sizeof *r);
  for (int i = 0; i < N; i++)
    send_req(f, "GET", "/hello", &r[i], NULL, NULL);
  assert_int_equal(httpc_in_flight(f->c), N);
  uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
  while (httpc_in_flight(f->c) > 0 && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].status, 200);
    assert_string_equal(r[i].body, "hello world");
  }
  free(r);
}

static void close_timer_cb(uv_timer_t *t) {
  fixture *f = t->data;
  httpc_close(f->c);
  f->c = NULL;
  uv_close((uv_handle_t *)t, NULL);
}

static void close_with_transfers_in_flight_calls_each_once(void **state) {
  fixture *f = *state;
  enum { N = 5 };
  result *r = calloc(N, sizeof *r);
  for (int i = 0; i < N; i++)
    send_req(f, "GET", "/hang", &r[i], NULL, NULL);
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  t.data = f;
  uv_timer_start(&t, close_timer_cb, 50, 0);
  uv_run(&f->loop, UV_RUN_DEFAULT); /* returns once the client freed its handles */
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].curl_code, CURLE_ABORTED_BY_CALLBACK);
  }
  free(r);
}

/* ---- request bodies: PUT, multipart, borrowed; SigV4; taking the body ---- */

static void put_body_is_copied_and_sent_with_its_length(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  char *body = malloc(5000);
  for (int i = 0; i < 5000; i++)
    body[i] = (char)(i % 251);
  const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
  httpc_request t = {.headers = hdrs, .body = body, .body_len = 5000};
  send_req(f, "PUT", "/echo", r, &t, NULL);
  /* The client copied it: scribbling over (and freeing) ours changes nothing. */
  char expect[5000];
  memcpy(expect, body, sizeof expect);
  memset(body, 'z', 5000);
  free(body);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  assert_string_equal(f->s->last_method, "PUT");
  assert_non_null(strcasestr(f->s->last_head, "\r\nContent-Length: 5000\r\n"));
  assert_non_null(strcasestr(f->s->last_head, "\r\nContent-Type: application/octet-stream\r\n"));
  assert_null(strcasestr(f->s->last_head, "\r\nExpect:"));
  assert_int_equal(f->s->last_body_len, 5000);
  assert_memory_equal(f->s->last_body, expect, 5000);
  free(r);
}

static void borrowed_body_is_sent_from_the_callers_buffer(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  static const char body[] = "borrowed\0bytes";
  httpc_request t = {.body = body, .body_len = sizeof body, .body_borrowed = 1};
  send_req(f, "PUT", "/echo", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  assert_int_equal(f->s->last_body_len, sizeof body);
  assert_memory_equal(f->s->last_body, body, sizeof body);
  free(r);
}

/* The boundary from the request's Content-Type into out; 0 if none. */
static int mime_boundary(const char *head, char *out, size_t outlen) {
  const char *ct = strcasestr(head, "\r\nContent-Type: multipart/form-data; boundary=");
  if (!ct) return 0;
  ct += strlen("\r\nContent-Type: multipart/form-data; boundary=");
  size_t n = strcspn(ct, "\r\n");
  if (n == 0 || n >= outlen) return 0;
  memcpy(out, ct, n);
  out[n] = '\0';
  return 1;
}

static void mime_body_is_one_form_data_part(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  char *data = malloc(700);
  for (int i = 0; i < 700; i++)
    data[i] = (char)(255 - i % 256); /* binary, NUL and CR/LF bytes included */
  httpc_request t = {.body = data,
                     .body_len = 700,
                     .mime_field = "file",
                     .mime_filename = "face.png",
                     .mime_type = "image/png"};
  send_req(f, "POST", "/echo", r, &t, NULL);
  char expect[700];
  memcpy(expect, data, sizeof expect);
  free(data); /* the part's bytes were copied */
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  assert_string_equal(f->s->last_method, "POST");

  char boundary[200];
  assert_true(mime_boundary(f->s->last_head, boundary, sizeof boundary));
  char head[512];
  int hn = snprintf(head, sizeof head,
                    "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"face.png\""
                    "\r\nContent-Type: image/png\r\n\r\n",
                    boundary);
  char tail[256];
  int tn = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
  const char *b = f->s->last_body;
  size_t blen = f->s->last_body_len;
  assert_int_equal(blen, (size_t)hn + 700 + (size_t)tn);
  assert_memory_equal(b, head, (size_t)hn);
  assert_memory_equal(b + hn, expect, 700);
  assert_memory_equal(b + hn + 700, tail, (size_t)tn);
  free(r);
}

static void mime_part_without_filename_or_type_has_only_its_name(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.body = "v", .body_len = 1, .mime_field = "note"};
  send_req(f, "POST", "/echo", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  char boundary[200], want[512];
  assert_true(mime_boundary(f->s->last_head, boundary, sizeof boundary));
  int n = snprintf(want, sizeof want,
                   "--%s\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nv\r\n--%s--\r\n",
                   boundary, boundary);
  assert_int_equal(f->s->last_body_len, (size_t)n);
  assert_memory_equal(f->s->last_body, want, (size_t)n);
  free(r);
}

static void sigv4_request_carries_an_aws4_authorization(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  const char *hdrs[] = {"Content-Type: text/plain", "x-amz-content-sha256: UNSIGNED-PAYLOAD", NULL};
  httpc_request t = {.headers = hdrs,
                     .body = "hello",
                     .body_len = 5,
                     .aws_sigv4 = "aws:amz:eu-west-3:s3",
                     .userpwd = "AKIDGENQ:secret"};
  send_req(f, "PUT", "/echo", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->status, 201);
  const char *h = f->s->last_head;
  const char *auth = strcasestr(h, "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDGENQ/");
  assert_non_null(auth);
  char line[512];
  snprintf(line, sizeof line, "%.*s", (int)strcspn(auth + 2, "\r"), auth + 2);
  /* Credential=AKIDGENQ/YYYYMMDD/eu-west-3/s3/aws4_request */
  const char *scope = strstr(line, "Credential=AKIDGENQ/") + strlen("Credential=AKIDGENQ/");
  for (int i = 0; i < 8; i++)
    assert_true(scope[i] >= '0' && scope[i] <= '9');
  assert_memory_equal(scope + 8, "/eu-west-3/s3/aws4_request, ", 28);
  /* Every header we gave is signed; the "Expect:" suppression is not among them. */
  assert_non_null(
      strstr(line, "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="));
  const char *sig = strstr(line, "Signature=") + strlen("Signature=");
  assert_int_equal(strlen(sig), 64);
  assert_int_equal(strspn(sig, "0123456789abcdef"), 64);
  assert_non_null(strcasestr(h, "\r\nX-Amz-Date: "));
  assert_null(strstr(h, "secret"));
  assert_string_equal(f->s->last_method, "PUT");
  assert_int_equal(f->s->last_body_len, 5);
  free(r);
}

typedef struct {
  fixture *f;
  int calls;
  char *taken, *again;
  const char *resp_body;
  size_t len;
} take_ctx;

static void on_take(const httpc_response *resp, void *arg) {
  take_ctx *t = arg;
  t->calls++;
  t->taken = httpc_take_body(t->f->c);
  t->again = httpc_take_body(t->f->c);
  t->resp_body = resp->body;
  t->len = resp->body_len;
}

static void taken_body_belongs_to_the_callback_owner(void **state) {
  fixture *f = *state;
  take_ctx t = {.f = f};
  assert_null(httpc_take_body(f->c)); /* outside a callback */
  char url[128];
  snprintf(url, sizeof url, "%s/big", f->base);
  httpc_request req = {.method = "GET", .url = url, .max_response_bytes = 100000};
  assert_int_equal(httpc_send(f->c, &req, on_take, &t, NULL), 0);
  run_until(f, &t.calls, 1);
  assert_non_null(t.taken);
  assert_null(t.again);
  assert_ptr_equal(t.taken, t.resp_body); /* handed over, not copied */
  assert_int_equal(t.len, 100000);
  for (size_t i = 0; i < t.len; i++)
    assert_int_equal(t.taken[i], 'x');
  assert_int_equal(t.taken[t.len], '\0');
  free(t.taken);
  assert_null(httpc_take_body(f->c));

  /* An empty body is still a buffer of its own. */
  take_ctx e = {.f = f};
  snprintf(url, sizeof url, "%s/ratelimit-ms", f->base);
  req.url = url;
  assert_int_equal(httpc_send(f->c, &req, on_take, &e, NULL), 0);
  run_until(f, &e.calls, 1);
  assert_int_equal(e.len, 0);
  assert_non_null(e.taken);
  assert_string_equal(e.taken, "");
  assert_null(e.again);
  free(e.taken);
}

/* Finished transfers are reused for the next requests: one after another,
 * each must be exactly what it was asked to be, whatever the one before
 * set (a body, a method, a cap that it overran, a cancel). */
static void reused_transfers_forget_the_previous_request(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  for (int round = 0; round < 40; round++) {
    memset(r, 0, sizeof *r);
    switch (round % 4) {
    case 0: { /* a POST with a body */
      httpc_request t = {.body = "posted", .body_len = 6};
      send_req(f, "POST", "/echo", r, &t, NULL);
      run_until(f, &r->calls, 1);
      assert_int_equal(r->status, 201);
      assert_string_equal(f->s->last_method, "POST");
      assert_string_equal(r->body, "posted");
      break;
    }
    case 1: /* then a GET: no body, no POST left over */
      send_req(f, "GET", "/hello", r, NULL, NULL);
      run_until(f, &r->calls, 1);
      assert_int_equal(r->status, 200);
      assert_string_equal(f->s->last_method, "GET");
      assert_int_equal(f->s->last_body_len, 0);
      assert_string_equal(r->body, "hello world");
      assert_string_equal(r->request_id, "req-42");
      break;
    case 2: { /* a custom method, and a cap the answer overruns */
      httpc_request t = {.max_response_bytes = 4};
      send_req(f, "DELETE", "/hello", r, &t, NULL);
      run_until(f, &r->calls, 1);
      assert_int_equal(r->too_large, 1);
      assert_string_equal(f->s->last_method, "DELETE");
      break;
    }
    default: { /* canceled before it ran */
      uint64_t id = 0;
      send_req(f, "GET", "/hello", r, NULL, &id);
      httpc_cancel(f->c, id);
      assert_int_equal(r->calls, 1);
      assert_int_equal(r->curl_code, CURLE_ABORTED_BY_CALLBACK);
      break;
    }
    }
    assert_int_equal(httpc_in_flight(f->c), 0);
  }
  free(r);
}

static void declared_length_over_limit_is_refused_before_the_body(void **state) {
  fixture *f = *state;
  result *r = calloc(1, sizeof *r);
  httpc_request t = {.max_response_bytes = 99999};
  send_req(f, "GET", "/big", r, &t, NULL);
  run_until(f, &r->calls, 1);
  assert_int_equal(r->too_large, 1);
  assert_int_equal(r->body_len, 0); /* Content-Length said 100000: nothing kept */
  free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(get_returns_status_body_and_captured_headers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(post_body_reaches_the_server_intact, setup, teardown),
      cmocka_unit_test_setup_teardown(custom_method_with_body_is_sent, setup, teardown),
      cmocka_unit_test_setup_teardown(retry_after_seconds_and_ms_are_parsed, setup, teardown),
      cmocka_unit_test_setup_teardown(body_over_limit_aborts_as_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(truncated_body_keeps_its_status_and_first_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(resolve_pins_a_name_to_the_given_address, setup, teardown),
      cmocka_unit_test_setup_teardown(addr_ok_refusing_an_address_fails_the_connect, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(protocols_https_refuses_an_http_url, setup, teardown),
      cmocka_unit_test_setup_teardown(connection_refused_gives_status_0_and_curl_code, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(unanswered_request_times_out, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_scheme_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(cancel_runs_callback_once_with_aborted, setup, teardown),
      cmocka_unit_test_setup_teardown(hundred_concurrent_requests_all_complete, setup, teardown),
      cmocka_unit_test_setup_teardown(close_with_transfers_in_flight_calls_each_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(put_body_is_copied_and_sent_with_its_length, setup, teardown),
      cmocka_unit_test_setup_teardown(borrowed_body_is_sent_from_the_callers_buffer, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(mime_body_is_one_form_data_part, setup, teardown),
      cmocka_unit_test_setup_teardown(mime_part_without_filename_or_type_has_only_its_name, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(sigv4_request_carries_an_aws4_authorization, setup, teardown),
      cmocka_unit_test_setup_teardown(taken_body_belongs_to_the_callback_owner, setup, teardown),
      cmocka_unit_test_setup_teardown(reused_transfers_forget_the_previous_request, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(declared_length_over_limit_is_refused_before_the_body, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
