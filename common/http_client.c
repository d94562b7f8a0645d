/* Outgoing HTTP: libcurl's multi-socket API on libuv, after curl's
 * docs/examples/multi-uv.c. curl tells us which sockets to watch
 * (socket_cb) and when to wake it (timer_cb); we tell curl what happened
 * (curl_multi_socket_action) and collect finished transfers
 * (curl_multi_info_read). */
#include "http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HTTPC_DEFAULT_TIMEOUT_MS 60000L
#define HTTPC_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define HTTPC_DEFAULT_MAX_BODY (4u << 20)
/* Captured response header values longer than this are cut. */
#define HTTPC_HEADER_VALUE_MAX 512
/* Finished transfers kept, with their curl easy handle, for the next
 * requests: setting up a handle is most of a small request's CPU (a curl
 * easy handle is tens of KiB of allocations, and their churn fragments the
 * heap of a process that holds thousands of waiting jobs). At most this
 * many are idle at once. */
#define HTTPC_POOL_MAX 32
/* Idle connections the multi keeps for reuse. curl's default is four per
 * easy handle added at the moment a transfer ends: after a burst of status
 * polls (polls due together fire together) the last ones to finish find a
 * cache of four and close the rest, and the next burst connects again (a
 * tenth of the polls of 10,000 waiting steps paid socket, connect and close). */
#define HTTPC_MAX_IDLE_CONNS 128

typedef struct httpc_xfer {
  httpc *c;
  CURL *easy;
  uint64_t id;
  httpc_cb cb;
  void *arg;
  struct curl_slist *headers;
  struct curl_slist *resolve; /* the CURLOPT_RESOLVE entry, or NULL */
  curl_mime *mime;            /* multipart body, or NULL */
  int (*addr_ok)(const struct sockaddr *addr, void *arg);
  void *addr_ok_arg;
  int truncate;
  char *buf; /* response body, NUL-terminated; bounded by max */
  size_t len, cap, max;
  int too_large;
  int taken; /* the body went to the callback's owner (httpc_take_body) */
  long retry_after_ms;
  long retry_after_s_ms; /* from Retry-After; retry-after-ms wins when both come */
  char content_type[HTTPC_HEADER_VALUE_MAX];
  char request_id[HTTPC_HEADER_VALUE_MAX];
  char location[HTTPC_HEADER_VALUE_MAX * 4];
  char errbuf[CURL_ERROR_SIZE];
  uint64_t start_ns;
  struct httpc_xfer *prev, *next;
} httpc_xfer;

/* One watched socket; freed in its handle's close callback. */
typedef struct {
  uv_poll_t poll;
  curl_socket_t fd;
  httpc *c;
} httpc_sock;

struct httpc {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  httpc_xfer *xfers; /* in flight, doubly linked */
  size_t n;
  uint64_t next_id;
  int handles; /* open uv handles; c is freed when closing and this reaches 0 */
  int closing;
  httpc_xfer *in_cb; /* the transfer whose callback is running (httpc_take_body) */
  httpc_xfer *pool;  /* idle transfers with a reset easy handle, linked by next */
  int npool;
};

static pthread_once_t httpc_global_once = PTHREAD_ONCE_INIT;
static int httpc_global_rc;

static void httpc_global_init(void) {
  httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Frees x's header list, wiping the copies (an Authorization among them). */
static void httpc_headers_free(httpc_xfer *x) {
  for (struct curl_slist *l = x->headers; l; l = l->next)
    if (l->data) memset(l->data, 0, strlen(l->data));
  curl_slist_free_all(x->headers);
  x->headers = NULL;
}

static void httpc_pool_drain(httpc *c) {
  while (c->pool) {
    httpc_xfer *x = c->pool;
    c->pool = x->next;
    curl_easy_cleanup(x->easy);
    httpc_headers_free(x);
    free(x);
  }
  c->npool = 0;
}

static void httpc_maybe_free(httpc *c) {
  if (c->closing && c->handles == 0) free(c);
}

/* Releases what x holds for its request; keeps x and its easy handle for
 * the next request when the pool has room (and the client is open), else
 * frees them. The easy handle must already be out of the multi. */
static void httpc_xfer_release(httpc *c, httpc_xfer *x) {
  int keep = x->easy && !c->closing && c->npool < HTTPC_POOL_MAX;
  if (keep)
    curl_easy_reset(x->easy); /* options only: the multi keeps the connections */
  else if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_mime_free(x->mime); /* after the handle is reset or freed: it uses it */
  x->mime = NULL;
  curl_slist_free_all(x->resolve);
  x->resolve = NULL;
  free(x->buf);
  x->buf = NULL;
  if (!keep) {
    httpc_headers_free(x);
    free(x);
    return;
  }
  /* the header list stays with the idle transfer: the next request (a
   * status poll of the same provider, mostly) sends the same headers */
  x->next = c->pool;
  c->pool = x;
  c->npool++;
}

/* A transfer for a new request: from the pool (its easy handle reset), or
 * new. Everything but the easy handle is zero. NULL when out of memory. */
static httpc_xfer *httpc_xfer_get(httpc *c) {
  httpc_xfer *x = c->pool;
  if (x) {
    c->pool = x->next;
    c->npool--;
    CURL *easy = x->easy;
    struct curl_slist *headers = x->headers;
    memset(x, 0, sizeof *x);
    x->easy = easy;
    x->headers = headers;
    return x;
  }
  x = calloc(1, sizeof *x);
  if (!x) return NULL;
  x->easy = curl_easy_init();
  if (!x->easy) {
    free(x);
    return NULL;
  }
  return x;
}

static void httpc_handle_closed(uv_handle_t *h) {
  httpc *c = h->data;
  c->handles--;
  httpc_maybe_free(c);
}

static void httpc_sock_closed(uv_handle_t *h) {
  httpc_sock *s = h->data;
  httpc *c = s->c;
  free(s);
  c->handles--;
  httpc_maybe_free(c);
}

/* Unlinks x, runs its callback with what was collected, frees it. The easy
 * handle must already be out of the multi. */
static void httpc_finish(httpc_xfer *x, CURLcode code, const char *why) {
  httpc *c = x->c;
  if (x->prev)
    x->prev->next = x->next;
  else
    c->xfers = x->next;
  if (x->next) x->next->prev = x->prev;
  c->n--;

  httpc_response r = {0};
  long status = 0;
  if (x->truncate && x->too_large && code == CURLE_WRITE_ERROR) code = CURLE_OK; /* cut, asked */
  if (code == CURLE_OK) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  r.status = (int)status;
  r.curl_code = (int)code;
  r.too_large = x->too_large;
  if (x->too_large && !x->truncate)
    r.error = "response body too large";
  else if (why)
    r.error = why;
  else if (code != CURLE_OK)
    r.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
  r.body = x->buf ? x->buf : "";
  r.body_len = x->len;
  r.retry_after_ms = x->retry_after_ms >= 0 ? x->retry_after_ms : x->retry_after_s_ms;
  r.content_type = x->content_type[0] ? x->content_type : NULL;
  r.request_id = x->request_id[0] ? x->request_id : NULL;
  r.location = x->location[0] ? x->location : NULL;
  r.total_ms = (double)(uv_hrtime() - x->start_ns) / 1e6;
  /* A callback may cancel another transfer, whose callback then nests. */
  httpc_xfer *outer = c->in_cb;
  c->in_cb = x;
  x->cb(&r, x->arg);
  c->in_cb = outer;
  httpc_xfer_release(c, x);
}

char *httpc_take_body(httpc *c) {
  httpc_xfer *x = c->in_cb;
  if (!x || x->taken) return NULL;
  /* Nothing received: an empty body of its own, so the caller can always free(). */
  char *b = x->buf ? x->buf : calloc(1, 1);
  if (!b) return NULL;
  x->buf = NULL;
  x->taken = 1;
  return b;
}

static void httpc_check_done(httpc *c) {
  CURLMsg *m;
  int left;
  /* c->multi goes NULL if a callback closed the client. */
  while (c->multi && (m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode code = m->data.result;
    httpc_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(c->multi, easy);
    httpc_finish(x, code, NULL);
  }
}

static void httpc_on_poll(uv_poll_t *h, int status, int events) {
  httpc_sock *s = h->data;
  httpc *c = s->c;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  httpc_check_done(c);
}

static void httpc_on_timer(uv_timer_t *t) {
  httpc *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  httpc_check_done(c);
}

static int httpc_socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp) {
  (void)easy;
  httpc *c = userp;
  httpc_sock *s = socketp;
  if (action == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, httpc_sock_closed);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->c = c;
    s->poll.data = s;
    c->handles++;
    curl_multi_assign(c->multi, fd, s);
  }
  int ev = 0;
  if (action == CURL_POLL_IN || action == CURL_POLL_INOUT) ev |= UV_READABLE;
  if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT) ev |= UV_WRITABLE;
  uv_poll_start(&s->poll, ev, httpc_on_poll);
  return 0;
}

static int httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  httpc *c = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, httpc_on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

int httpc_new(httpc **out, uv_loop_t *loop) {
  *out = NULL;
  pthread_once(&httpc_global_once, httpc_global_init);
  if (httpc_global_rc != 0) return -1;
  httpc *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->loop = loop;
  c->next_id = 1;
  c->multi = curl_multi_init();
  if (!c->multi) {
    free(c);
    return -1;
  }
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)HTTPC_MAX_IDLE_CONNS);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles = 1;
  *out = c;
  return 0;
}

static size_t httpc_write_cb(char *p, size_t size, size_t n, void *userp) {
  httpc_xfer *x = userp;
  size_t k = size * n;
  if (k > x->max - x->len) {
    x->too_large = 1;
    if (!x->truncate) return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    k = x->max - x->len;        /* keep what fits, then abort it the same way */
    if (!k) return 0;
  }
  size_t need = x->len + k + 1;
  if (need > x->cap) {
    size_t cap = x->cap;
    if (!cap) {
      /* A declared length is refused, or reserved, at once: a large
       * download is then neither received in vain nor copied as it grows. */
      curl_off_t cl = -1;
      curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
      if (cl > 0 && (uint64_t)cl > x->max && !x->truncate) {
        x->too_large = 1;
        return 0;
      }
      cap = cl > 0 ? (size_t)cl + 1 : 4096;
    }
    while (cap < need)
      cap *= 2;
    if (cap > x->max + 1) cap = x->max + 1;
    char *nb = realloc(x->buf, cap);
    if (!nb) return 0;
    x->buf = nb;
    x->cap = cap;
  }
  memcpy(x->buf + x->len, p, k);
  x->len += k;
  x->buf[x->len] = '\0';
  return x->too_large ? 0 : k;
}

static curl_socket_t httpc_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a) {
  httpc_xfer *x = arg;
  (void)purpose;
  if (x->addr_ok && !x->addr_ok(&a->addr, x->addr_ok_arg)) return CURL_SOCKET_BAD;
  return socket(a->family, a->socktype, a->protocol);
}

/* Copies the trimmed value into dst (cut to its size). */
static void httpc_copy_value(char *dst, size_t dstlen, const char *v, size_t vlen) {
  while (vlen && isspace((unsigned char)*v))
    v++, vlen--;
  while (vlen && isspace((unsigned char)v[vlen - 1]))
    vlen--;
  if (vlen >= dstlen) vlen = dstlen - 1;
  memcpy(dst, v, vlen);
  dst[vlen] = '\0';
}

static size_t httpc_header_cb(char *p, size_t size, size_t n, void *userp) {
  httpc_xfer *x = userp;
  size_t k = size * n;
  if (k >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    /* A new response (after 1xx): forget what the previous one said. */
    x->retry_after_ms = x->retry_after_s_ms = -1;
    x->content_type[0] = x->request_id[0] = x->location[0] = '\0';
    return k;
  }
  const char *colon = memchr(p, ':', k);
  if (!colon) return k;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1;
  size_t vlen = k - nlen - 1;
  char tmp[HTTPC_HEADER_VALUE_MAX];
#define HTTPC_IS(name) (nlen == sizeof(name) - 1 && strncasecmp(p, name, nlen) == 0)
  if (HTTPC_IS("content-type")) {
    httpc_copy_value(x->content_type, sizeof x->content_type, v, vlen);
  } else if (HTTPC_IS("x-request-id")) {
    httpc_copy_value(x->request_id, sizeof x->request_id, v, vlen);
  } else if (HTTPC_IS("location")) {
    httpc_copy_value(x->location, sizeof x->location, v, vlen);
  } else if (HTTPC_IS("retry-after-ms")) {
    httpc_copy_value(tmp, sizeof tmp, v, vlen);
    char *end;
    long ms = strtol(tmp, &end, 10);
    if (end != tmp && *end == '\0' && ms >= 0) x->retry_after_ms = ms;
  } else if (HTTPC_IS("retry-after")) {
    httpc_copy_value(tmp, sizeof tmp, v, vlen);
    char *end;
    long s = strtol(tmp, &end, 10);
    if (end != tmp && *end == '\0' && s >= 0) {
      x->retry_after_s_ms = s > 86400 ? 86400000L : s * 1000;
    } else {
      time_t t = curl_getdate(tmp, NULL); /* an HTTP-date */
      if (t != -1) {
        double d = difftime(t, time(NULL));
        x->retry_after_s_ms = d <= 0 ? 0 : d > 86400 ? 86400000L : (long)d * 1000;
      }
    }
  }
#undef HTTPC_IS
  return k;
}

/* No "Expect: 100-continue" round trip on large bodies; but curl 7.88
 * signs every listed header for AWS SigV4, this empty one too, which is
 * then never sent and breaks the signature. */
#define HTTPC_NO_EXPECT "Expect:"

/* 1 when list is what req's headers make (its headers, then "Expect:"
 * unless signed): a pooled transfer's list is then sent as it is. */
static int httpc_headers_same(const struct curl_slist *list, const httpc_request *req) {
  const struct curl_slist *l = list;
  for (const char *const *h = req->headers; h && *h; h++, l = l->next)
    if (!l || strcmp(l->data, *h) != 0) return 0;
  if (!req->aws_sigv4) {
    if (!l || strcmp(l->data, HTTPC_NO_EXPECT) != 0) return 0;
    l = l->next;
  }
  return l == NULL && list != NULL;
}

int httpc_send(httpc *c, const httpc_request *req, httpc_cb cb, void *arg, uint64_t *id) {
  if (c->closing || !req || !req->url || !cb) return -1;
  httpc_xfer *x = httpc_xfer_get(c);
  if (!x) return -1;
  x->c = c;
  x->cb = cb;
  x->arg = arg;
  x->retry_after_ms = x->retry_after_s_ms = -1;
  x->max = req->max_response_bytes ? req->max_response_bytes : HTTPC_DEFAULT_MAX_BODY;
  if (!httpc_headers_same(x->headers, req)) {
    httpc_headers_free(x);
    for (const char *const *h = req->headers; h && *h; h++) {
      struct curl_slist *l = curl_slist_append(x->headers, *h); /* copies */
      if (!l) goto fail;
      x->headers = l;
    }
    if (!req->aws_sigv4) {
      struct curl_slist *l = curl_slist_append(x->headers, HTTPC_NO_EXPECT);
      if (!l) goto fail;
      x->headers = l;
    }
  }

  CURL *e = x->easy;
  const char *method = req->method ? req->method : "GET";
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, req->protocols ? req->protocols : "http,https") !=
      CURLE_OK)
    goto fail;
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  x->truncate = req->truncate_response;
  if (req->no_proxy) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  if (req->resolve) {
    if (!(x->resolve = curl_slist_append(NULL, req->resolve)) ||
        curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve) != CURLE_OK)
      goto fail;
  }
  if (req->addr_ok) {
    x->addr_ok = req->addr_ok;
    x->addr_ok_arg = req->addr_ok_arg;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, httpc_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
  }
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpc_write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, httpc_header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                               : HTTPC_DEFAULT_CONNECT_TIMEOUT_MS);
  if (req->aws_sigv4 && curl_easy_setopt(e, CURLOPT_AWS_SIGV4, req->aws_sigv4) != CURLE_OK)
    goto fail;
  if (req->userpwd && curl_easy_setopt(e, CURLOPT_USERPWD, req->userpwd) != CURLE_OK) goto fail;
  const char *body = req->body ? req->body : "";
  size_t body_len = req->body ? req->body_len : 0;
  if (req->mime_field) {
    curl_mimepart *part = (x->mime = curl_mime_init(e)) ? curl_mime_addpart(x->mime) : NULL;
    if (!part || curl_mime_name(part, req->mime_field) != CURLE_OK ||
        curl_mime_data(part, body, body_len) != CURLE_OK || /* copies */
        (req->mime_filename && curl_mime_filename(part, req->mime_filename) != CURLE_OK) ||
        (req->mime_type && curl_mime_type(part, req->mime_type) != CURLE_OK))
      goto fail;
    curl_easy_setopt(e, CURLOPT_MIMEPOST, x->mime);
  } else if (req->body || strcmp(method, "POST") == 0) {
    /* POSTFIELDS, with CUSTOMREQUEST for PUT and the rest, rather than
     * UPLOAD with a read callback: curl's SigV4 can hash only POSTFIELDS. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    CURLcode rc = req->body_borrowed ? curl_easy_setopt(e, CURLOPT_POSTFIELDS, body)
                                     : curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (rc != CURLE_OK) goto fail;
  }
  if (strcmp(method, "GET") == 0 && !req->body && !req->mime_field)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);

  x->id = c->next_id++;
  x->start_ns = uv_hrtime();
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK) goto fail;
  x->next = c->xfers;
  if (c->xfers) c->xfers->prev = x;
  c->xfers = x;
  c->n++;
  if (id) *id = x->id;
  return 0;
fail:
  httpc_xfer_release(c, x);
  return -1;
}

void httpc_cancel(httpc *c, uint64_t id) {
  for (httpc_xfer *x = c->xfers; x; x = x->next) {
    if (x->id != id) continue;
    curl_multi_remove_handle(c->multi, x->easy);
    httpc_finish(x, CURLE_ABORTED_BY_CALLBACK, "canceled");
    return;
  }
}

size_t httpc_in_flight(const httpc *c) {
  return c->n;
}

void httpc_close(httpc *c) {
  if (c->closing) return;
  c->closing = 1;
  while (c->xfers)
    httpc_cancel(c, c->xfers->id);
  httpc_pool_drain(c);
  /* Cleanup may still report sockets to remove; the timer is closed after. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  uv_close((uv_handle_t *)&c->timer, httpc_handle_closed);
}
