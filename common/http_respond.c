/* Responses: the status line and headers (Date, X-Request-Id, Connection,
 * Content-Length), the body copied or taken, the writes, and the plain
 * error writer the server uses by default for its own refusals.
 *
 * Calls down into http_conn.c (a written response hands the connection
 * back, a failed one closes it) and http_parse.c (request ids, freeing);
 * never into http_stream.c or http_server.c (see http_internal.h). */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

const char *http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 422:
    return "Unprocessable Entity";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* IMF-fixdate, formatted by hand so the locale cannot change it. */
static const char *server_date(http_server *s) {
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  if (now != s->date_sec || !s->date[0]) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(s->date, sizeof(s->date), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    s->date_sec = now;
  }
  return s->date;
}

static int header_safe(const char *h) {
  return h && !strpbrk(h, "\r\n");
}

static void write_cb(uv_write_t *w, int status) {
  http_wreq *wr = (http_wreq *)w;
  http_conn *c = wr->conn;
  int close_after = wr->close_after, stream = wr->stream;
  free(wr->owned);
  free(wr);
  c->wdone++;   /* progress, for the write watch */
  if (stream) { /* the stream's end is http_stream_end's business */
    if (status < 0 && !c->closing) http_conn_close(c);
    http_request *r = c->req;
    if (!c->closing && r && r->on_drain &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0)
      r->on_drain(r, r->on_drain_arg);
    return;
  }
  http_conn_written(c, close_after, status);
}

int http_wreq_write(http_conn *c, http_wreq *wr, const uv_buf_t *bufs, unsigned nbufs) {
  int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, nbufs, write_cb);
  if (rc == 0) http_conn_watch_write(c);
  return rc;
}

http_wreq *http_wreq_head(http_conn *c, http_request *r, int status, const char *content_type,
                          const char *const *extra_headers, int close_after, int stream, size_t len,
                          size_t room, size_t *head_len) {
  int no_body = status < 200 || status == 204 || status == 304;
  size_t cap = 256 + strlen(r->id);
  if (header_safe(content_type)) cap += strlen(content_type);
  for (const char *const *h = extra_headers; h && *h; h++)
    if (header_safe(*h)) cap += strlen(*h) + 2;
  /* uv_buf_t lengths are unsigned int; no sane response comes near that. */
  http_wreq *wr = room < INT32_MAX - cap ? malloc(sizeof(*wr) + cap + room) : NULL;
  if (!wr) return NULL;
  char *p = wr->data;
  size_t n = 0;
#define PUT(...) n += (size_t)snprintf(p + n, cap - n, __VA_ARGS__)
  PUT("HTTP/1.1 %d %s\r\n", status, http_status_text(status));
  if (header_safe(content_type)) PUT("Content-Type: %s\r\n", content_type);
  if (stream && !len)
    PUT("Cache-Control: no-cache\r\n");
  else if (!no_body)
    PUT("Content-Length: %zu\r\n", len);
  PUT("Date: %s\r\nX-Request-Id: %s\r\nConnection: %s\r\n", server_date(c->server), r->id,
      close_after ? "close" : "keep-alive");
  for (const char *const *h = extra_headers; h && *h; h++)
    if (header_safe(*h)) PUT("%s\r\n", *h);
  PUT("\r\n");
#undef PUT
  wr->conn = c;
  wr->close_after = close_after;
  wr->stream = stream;
  wr->owned = NULL;
  *head_len = n;
  return wr;
}

/* http_respond and http_respond_take: owned, when set, is body and is ours. */
static void respond(http_request *r, int status, const char *content_type,
                    const char *const *extra_headers, const char *body, char *owned, size_t len) {
  http_conn *c = r->conn;
  if (!body) len = 0;
  if (!c) {
    free(owned);
    http_request_free(r);
    return;
  }
  if (c->streaming) {
    free(owned);
    http_conn_release(r); /* acts as http_stream_end */
    return;
  }
  http_server *s = c->server;
  c->req = NULL;
  http_request_assign_id(r);
  http_observe(c, r, status);
  int close_after = !r->keep_alive || c->failing || s->closing || (c->eof && c->rpos == c->rlen);
  int no_body = status < 200 || status == 204 || status == 304;
  size_t send_len = (r->is_head || no_body) ? 0 : len;
  if (!send_len || send_len >= INT32_MAX) {
    free(owned);
    owned = NULL;
  }
  size_t n;
  http_wreq *wr = send_len < INT32_MAX
                      ? http_wreq_head(c, r, status, content_type, extra_headers, close_after, 0,
                                       len, owned ? 0 : send_len, &n)
                      : NULL;
  http_request_free(r);
  if (!wr) {
    free(owned);
    http_conn_close(c);
    return;
  }
  uv_buf_t b[2];
  unsigned nb = 1;
  if (owned) {
    wr->owned = owned;
    b[0] = uv_buf_init(wr->data, (unsigned)n);
    b[1] = uv_buf_init(owned, (unsigned)send_len);
    nb = 2;
  } else {
    if (send_len) memcpy(wr->data + n, body, send_len);
    b[0] = uv_buf_init(wr->data, (unsigned)(n + send_len));
  }
  c->writing = 1;
  if (http_wreq_write(c, wr, b, nb) != 0) {
    free(wr->owned);
    free(wr);
    c->writing = 0;
    http_conn_close(c);
  }
}

void http_respond(http_request *r, int status, const char *content_type,
                  const char *const *extra_headers, const char *body, size_t len) {
  respond(r, status, content_type, extra_headers, body, NULL, len);
}

void http_respond_take(http_request *r, int status, const char *content_type,
                       const char *const *extra_headers, char *body, size_t len) {
  respond(r, status, content_type, extra_headers, body, body, len);
}

void http_observe(http_conn *c, const http_request *r, int status) {
  http_server *s = c->server;
  if (!s->observer) return;
  uint64_t now = uv_hrtime();
  s->observer(r, status, r->t0 && now > r->t0 ? now - r->t0 : 0, s->observer_arg);
}

void http_plain_error(http_request *r, int status, const char *code, const char *message,
                      void *arg) {
  (void)code;
  (void)arg;
  http_respond(r, status, "text/plain; charset=utf-8", NULL, message, strlen(message));
}
