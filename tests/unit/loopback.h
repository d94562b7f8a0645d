/* The fixture of the provider-client tests (test_hedra.c, test_luma.c): a
 * real HTTP server on loopback (common/http_server, port chosen by the
 * kernel) that answers every request with what the test put in next and
 * records what it got, and an httpc client on the same uv loop. Included once
 * per test program (each is its own executable, linking genq_common).
 *
 * A test's fixture embeds a loopback; its result callback counts calls, which
 * loopback_run_until_called waits for. */
#ifndef GENQ_TEST_LOOPBACK_H
#define GENQ_TEST_LOOPBACK_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http_client.h"
#include "http_server.h"

typedef struct {
  int status;
  const char *body;     /* NULL or "": no body and no Content-Type */
  const char *extra[3]; /* "Name: value" headers, ended by NULL */
} loopback_answer;

typedef struct {
  uv_loop_t loop;
  httpc *h;
  http_server *srv;
  int port;
  loopback_answer next; /* what the server answers */
  /* the last request the server got */
  int requests;
  char method[16], path[256], auth[256], content_type[256];
  char *body; /* body_len bytes, NUL-terminated */
  size_t body_len;
  int calls; /* client callbacks, counted by the test's callback */
  int closed;
} loopback;

static inline void loopback_on_request(http_request *req, void *arg) {
  loopback *lb = arg;
  size_t len;
  const char *b = http_req_body(req, &len);
  const char *a = http_req_header(req, "authorization");
  const char *ct = http_req_header(req, "content-type");
  lb->requests++;
  snprintf(lb->method, sizeof lb->method, "%s", http_req_method(req));
  snprintf(lb->path, sizeof lb->path, "%s", http_req_path(req));
  snprintf(lb->auth, sizeof lb->auth, "%s", a ? a : "");
  snprintf(lb->content_type, sizeof lb->content_type, "%s", ct ? ct : "");
  free(lb->body);
  lb->body = malloc(len + 1);
  assert_non_null(lb->body);
  memcpy(lb->body, b, len);
  lb->body[len] = '\0';
  lb->body_len = len;
  const char *body = lb->next.body ? lb->next.body : "";
  http_respond(req, lb->next.status, *body ? "application/json" : NULL, lb->next.extra, body,
               strlen(body));
}

static inline void loopback_server_closed(void *arg) {
  ((loopback *)arg)->closed = 1;
}

/* Starts the loop, the client and the server (lim as http_server_new takes
 * it; NULL for the defaults). Returns 0, or -1 and leaves nothing open. */
static inline int loopback_open(loopback *lb, const http_limits *lim) {
  memset(lb, 0, sizeof *lb);
  if (uv_loop_init(&lb->loop) != 0) return -1;
  if (httpc_new(&lb->h, &lb->loop) != 0 ||
      http_server_new(&lb->srv, &lb->loop, lim, loopback_on_request, lb) != 0 ||
      http_server_listen(lb->srv, "127.0.0.1", 0) != 0) {
    if (lb->h) httpc_close(lb->h);
    if (lb->srv) http_server_close(lb->srv, loopback_server_closed, lb);
    uv_run(&lb->loop, UV_RUN_DEFAULT);
    uv_loop_close(&lb->loop);
    return -1;
  }
  lb->port = http_server_port(lb->srv);
  return 0;
}

/* Closes the client and the server and runs the loop dry; fails the test
 * unless every handle closed. */
static inline void loopback_close(loopback *lb) {
  httpc_close(lb->h);
  http_server_close(lb->srv, loopback_server_closed, lb);
  uv_run(&lb->loop, UV_RUN_DEFAULT);
  free(lb->body);
  lb->body = NULL;
  assert_true(lb->closed);
  assert_int_equal(uv_loop_close(&lb->loop), 0);
}

/* Runs the loop until the test's callback ran (10 s at most); fails unless
 * it ran exactly once, then resets the count. */
static inline void loopback_run_until_called(loopback *lb) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while (lb->calls == 0 && uv_hrtime() < deadline)
    uv_run(&lb->loop, UV_RUN_ONCE);
  assert_int_equal(lb->calls, 1);
  lb->calls = 0;
}

static inline void loopback_run_for_done(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Runs the loop for about ms: time enough for a request sent anyway to
 * reach the server, or a callback to run. */
static inline void loopback_run_for(loopback *lb, unsigned ms) {
  uv_timer_t t;
  int done = 0;
  uv_timer_init(&lb->loop, &t);
  t.data = &done;
  uv_timer_start(&t, loopback_run_for_done, ms, 0);
  while (!done)
    uv_run(&lb->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&lb->loop, UV_RUN_NOWAIT); /* the close completes before t goes */
}

#endif
