/* The HTTP server of the httpc tests (test_http_client.c): a tiny blocking
 * server on a thread of the test process (127.0.0.1, port chosen by the
 * kernel) that reads one request per connection, records it and answers
 * by path: /hello, /echo, /ratelimit-s, /ratelimit-ms, /big, /hang (kept
 * open, unanswered, until srv_stop), anything else 404. The includer
 * defines _GNU_SOURCE first (strcasestr). Included once per test program. */
#ifndef GENQ_TEST_BLOCKING_SERVER_H
#define GENQ_TEST_BLOCKING_SERVER_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int lfd;
  int port;
  volatile int stop;
  pthread_t th;
  int hung[256]; /* connections of /hang, closed at stop */
  int nhung;
  char last_body[8192];
  size_t last_body_len;
  char last_method[16];
  char last_head[8192]; /* request line and headers of the last request */
} srv;

static inline void srv_write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k <= 0) return;
    p += k;
    n -= (size_t)k;
  }
}

static inline void srv_reply(int fd, const char *status, const char *extra, const char *body,
                             size_t blen) {
  char head[1024];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                   blen, extra);
  srv_write_all(fd, head, (size_t)n);
  srv_write_all(fd, body, blen);
}

/* Returns 1 if the connection was kept open (hung), else 0 (closed). */
static inline int srv_handle(srv *s, int fd) {
  char req[16384];
  size_t len = 0;
  char *end = NULL;
  while (!end && len < sizeof req - 1) {
    ssize_t k = read(fd, req + len, sizeof req - 1 - len);
    if (k <= 0) return 0;
    len += (size_t)k;
    req[len] = '\0';
    end = strstr(req, "\r\n\r\n");
  }
  if (!end) return 0;
  char method[16] = "", path[256] = "";
  sscanf(req, "%15s %255s", method, path);
  size_t clen = 0;
  char *cl = strcasestr(req, "\r\ncontent-length:");
  if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
  size_t have = len - (size_t)(end + 4 - req);
  char *body = malloc(clen + 1);
  memcpy(body, end + 4, have < clen ? have : clen);
  while (have < clen) {
    ssize_t k = read(fd, body + have, clen - have);
    if (k <= 0) break;
    have += (size_t)k;
  }
  snprintf(s->last_method, sizeof s->last_method, "%s", method);
  snprintf(s->last_head, sizeof s->last_head, "%.*s", (int)(end + 2 - req), req);
  s->last_body_len = clen < sizeof s->last_body ? clen : sizeof s->last_body;
  memcpy(s->last_body, body, s->last_body_len);

  int kept = 0;
  if (strcmp(path, "/hello") == 0) {
    srv_reply(fd, "200 OK",
              "Content-Type:  text/plain; charset=utf-8 \r\nX-Request-Id: req-42\r\n"
              "Location: /elsewhere\r\n",
              "hello world", 11);
  } else if (strcmp(path, "/echo") == 0) {
    srv_reply(fd, "201 Created", "Content-Type: application/octet-stream\r\n", body, clen);
  } else if (strcmp(path, "/ratelimit-s") == 0) {
    srv_reply(fd, "429 Too Many Requests", "Retry-After: 3\r\n", "slow down", 9);
  } else if (strcmp(path, "/ratelimit-ms") == 0) {
    srv_reply(fd, "429 Too Many Requests", "retry-after-ms: 250\r\nRetry-After: 1\r\n", "", 0);
  } else if (strcmp(path, "/big") == 0) {
    size_t n = 100000;
    char *big = malloc(n);
    memset(big, 'x', n);
    srv_reply(fd, "200 OK", "", big, n);
    free(big);
  } else if (strcmp(path, "/hang") == 0) {
    if (s->nhung < 256) {
      s->hung[s->nhung++] = fd;
      kept = 1;
    }
  } else {
    srv_reply(fd, "404 Not Found", "", "", 0);
  }
  free(body);
  return kept;
}

static inline void *srv_main(void *arg) {
  srv *s = arg;
  while (!s->stop) {
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0) continue;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) continue;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!srv_handle(s, fd)) close(fd);
  }
  return NULL;
}

static inline srv *srv_start(void) {
  srv *s = calloc(1, sizeof *s);
  s->lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, 256), 0);
  socklen_t al = sizeof a;
  getsockname(s->lfd, (struct sockaddr *)&a, &al);
  s->port = ntohs(a.sin_port);
  pthread_create(&s->th, NULL, srv_main, s);
  return s;
}

static inline void srv_stop(srv *s) {
  s->stop = 1;
  pthread_join(s->th, NULL);
  for (int i = 0; i < s->nhung; i++)
    close(s->hung[i]);
  close(s->lfd);
  free(s);
}

#endif
