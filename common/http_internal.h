#ifndef GENQ_HTTP_INTERNAL_H
#define GENQ_HTTP_INTERNAL_H

/* Private to the files of the HTTP server; callers include http_server.h
 * only. The structures those files share, and the calls between them.
 *
 * The files, top to bottom; each calls only into the files below it, never
 * up:
 *
 *   http_server.c   the server object: new, hooks, listen, port, close
 *   http_stream.c   streamed responses (server-sent events)
 *   http_respond.c  building and writing responses; the plain error writer
 *   http_conn.c     accept, connection phases and timeouts, reading, the
 *                   parse loop, dispatch, keep-alive, close and linger
 *   http_parse.c    requests: llhttp callbacks, headers, body and its
 *                   limit, request ids, the http_req_* accessors
 *
 *   server -> stream -> respond -> conn -> parse, and the shortcuts down
 *   that order: server -> respond, server -> conn; stream -> conn,
 *   stream -> parse; respond -> parse. Nothing calls server.c but the
 *   caller, and parse.c calls none of them.
 *
 * The only calls up go through the function pointers the server holds: the
 * handler (from conn), the body limit (from parse), and the error writer
 * (from conn, for the requests the server refuses itself). The parser's
 * callbacks only record the phase a request reached (c->phase); the parse
 * loop in http_conn.c arms that phase's timer.
 *
 * A connection moves through phases: IDLE (between requests, idle timer),
 * HEAD (first byte seen, header timer), BODY (body timer: a stall or a
 * rate below the floor), WAIT (the handler owns the request; the timer
 * only watches a write that left bytes queued, for progress), then back to
 * IDLE once the response is written. llhttp is paused at the end of every message so that pipelined
 * bytes stay in the read buffer until the previous answer is out; this is
 * what keeps responses in request order and the buffer bounded.
 *
 * A streamed response keeps the connection in WAIT until the handler ends
 * it; the connection then closes (FIN, linger) instead of going back to
 * IDLE. While it streams, input is read only to notice the client leaving.
 *
 * "Gone" notices: a connection that closes while its request is held keeps
 * a pointer to that request (gone_req, and the request a pointer back,
 * notify) and calls the request's on_gone from its last close callback —
 * always from the loop, never inside an http_* call of the handler, so the
 * handler may release the request there. Releasing the request first
 * unhooks it. */

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "http_server.h"

#define HTTP_BACKLOG 511
#define HTTP_RBUF_CAP 16384
#define HTTP_LINGER_MS 1000
#define HTTP_ID_MAX 64
#define HTTP_STREAM_MAX_QUEUED (1u << 20) /* unsent stream bytes before a client is dropped */

typedef struct http_conn http_conn;

/* Open connections from one peer address (max_per_ip). */
typedef struct http_peer {
  struct http_peer *next;
  unsigned count;
  unsigned char addr[16]; /* IPv4 as IPv4-mapped IPv6 */
} http_peer;
#define HTTP_PEER_BUCKETS 4096

enum { PH_IDLE, PH_HEAD, PH_BODY, PH_WAIT, PH_LINGER };

struct http_request {
  http_conn *conn; /* NULL once the connection is gone */
  const char *method;
  char *hbuf;        /* url\0 then name\0value\0 pairs */
  size_t hlen, hcap; /* hcap bounded by max_header_bytes */
  size_t url_end;    /* 0 until the URL is complete */
  size_t hdr_end;    /* end of the last complete name\0value\0 pair */
  int hstate;        /* 0 before headers, 1 in a name, 2 in a value */
  size_t qoff;       /* offset of the query in hbuf; 0 if none */
  const char *path, *query;
  char *body;
  size_t blen, bcap;
  size_t max_body; /* this request's body limit */
  int keep_alive, is_head, gone;
  void *data;
  void (*on_gone)(http_request *r, void *arg);
  void *on_gone_arg;
  void (*on_drain)(http_request *r, void *arg);
  void *on_drain_arg;
  http_conn *notify; /* the closed connection that will report it gone */
  unsigned route;    /* http_req_set_route */
  uint64_t t0;       /* uv_hrtime when it was complete, for the observer; 0 without one */
  char id[HTTP_ID_MAX + 1];
};

struct http_conn {
  uv_tcp_t tcp; /* first: the handle's address is the connection's */
  uv_timer_t timer;
  uv_shutdown_t shut;
  http_server *server;
  http_conn *prev, *next;
  llhttp_t parser;
  http_request *req; /* being parsed, or owned by the handler (PH_WAIT) */
  int phase;
  int closing;      /* uv_close issued */
  int open_handles; /* freed when this drops to 0 */
  int failing;      /* an error response is on its way; parse nothing more */
  int writing;      /* a response write is in flight */
  int in_feed;
  int eof;
  int streaming;              /* the held request answers with a stream */
  http_request *gone_req;     /* held when the connection closed: gets on_gone */
  int fail_status;            /* set by a parser callback that refuses the request */
  size_t head_bytes;          /* estimate of the request line + headers so far */
  size_t raw_head;            /* raw bytes consumed while headers were incomplete */
  uint64_t body_start;        /* loop time (ms) the body phase began */
  uint64_t body_seen;         /* loop time of the last body byte */
  size_t body_raw;            /* raw bytes consumed in the body phase */
  size_t wq_mark;             /* write queue size at the last write-progress check */
  unsigned wdone, wdone_mark; /* writes completed; and at that check */
  http_peer *peer;            /* this connection's entry in the per-address count */
  size_t rpos, rlen;
  char rbuf[HTTP_RBUF_CAP];
};

struct http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  http_limits lim;
  http_handler_cb handler;
  void *arg;
  http_body_limit_cb body_limit;
  void *body_limit_arg;
  http_error_writer error_writer; /* never NULL */
  void *error_arg;
  http_observer_cb observer; /* NULL: none */
  void *observer_arg;
  http_conn *conns;
  unsigned nconns;
  http_peer **peers; /* HTTP_PEER_BUCKETS chains; NULL without max_per_ip */
  http_server_stats_t stats;
  uint64_t logged_at[4]; /* loop time of the last refusal log, per kind */
  int listening, closing, listener_open;
  void (*done)(void *);
  void *done_arg;
  time_t date_sec;
  char date[40];
};

/* One write: a response's head (and copied body), or a piece of a stream. */
typedef struct {
  uv_write_t w;
  http_conn *conn;
  int close_after;
  int stream;  /* part of a streamed response: no next request follows */
  char *owned; /* a taken body, freed with this write */
  char data[];
} http_wreq;

/* ---- http_parse.c ---- */

extern const llhttp_settings_t http_parser_settings;
/* A request of c with method GET and empty path and query; NULL on OOM. */
http_request *http_request_new(http_conn *c);
/* Frees r, and unhooks it from a pending gone notice. */
void http_request_free(http_request *r);
/* Gives r its id, once: the client's valid X-Request-Id, else a random one. */
void http_request_assign_id(http_request *r);
/* Points path and query into hbuf; again at dispatch, since trailer fields
 * of a chunked body may move hbuf. */
void http_request_set_url(http_request *r);

/* ---- http_conn.c ---- */

/* Idempotent. A request the handler still owns survives as "gone" (and is
 * told so from the last close callback); one still being parsed dies with
 * the connection. */
void http_conn_close(http_conn *c);
/* Close after the last response: FIN first, then linger. */
void http_conn_finish(http_conn *c);
/* Enters phase and (re)arms its timer. */
void http_conn_set_phase(http_conn *c, int phase);
/* uv_read_start with the connection's read callbacks; its result. */
int http_conn_read_start(http_conn *c);
/* A plain response's write has completed with status: the next request of
 * a keep-alive connection, or the end of the connection. */
void http_conn_written(http_conn *c, int close_after, int status);
/* Releases r without an answer: a begun stream ends (queued writes first,
 * then FIN), any other connection of a held request closes. */
void http_conn_release(http_request *r);
/* The listener's connection callback. */
void http_conn_accept_cb(uv_stream_t *listener, int status);
/* After a write was queued on c: watches it for progress (write_timeout_ms)
 * when bytes are left waiting in the socket's queue. */
void http_conn_watch_write(http_conn *c);
/* Frees the server once it is closing and its listener and every
 * connection are closed; then calls its done. */
void http_server_maybe_done(http_server *s);

/* ---- http_respond.c ---- */

/* Allocates a write request holding the status line and headers, with room
 * for `room` more bytes after them; *head_len gets the head's length. A
 * stream's head has Content-Length: len when len is not 0 (a sized
 * stream), else none, and Cache-Control: no-cache. */
http_wreq *http_wreq_head(http_conn *c, http_request *r, int status, const char *content_type,
                          const char *const *extra_headers, int close_after, int stream, size_t len,
                          size_t room, size_t *head_len);
/* uv_write of wr on c's socket; its completion frees wr and, for a plain
 * response, hands the connection back (http_conn_written). Returns
 * uv_write's result: on failure wr is still the caller's. */
int http_wreq_write(http_conn *c, http_wreq *wr, const uv_buf_t *bufs, unsigned nbufs);
/* Tells the server's observer, if any, that r is answered with status. */
void http_observe(http_conn *c, const http_request *r, int status);
/* The default error writer: message as text/plain. */
void http_plain_error(http_request *r, int status, const char *code, const char *message,
                      void *arg);

#endif
