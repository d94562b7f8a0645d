/* Async PostgreSQL pool: libpq's non-blocking API driven by libuv polls.
 *
 * Each connection is DOWN (waiting to reconnect), CONNECTING, IDLE or BUSY
 * (one statement in flight). Statements wait in one FIFO until a connection
 * is IDLE. Handles: per connection a retry timer (embedded) and a poll
 * handle (allocated, since one is replaced while connecting); the pool is
 * freed only from the last close callback, after db_close. */
#include "db.h"
#include "log.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000
#define DB_TICK_MS 50
#define DB_ERR_MAX 512

enum { DB_DOWN, DB_CONNECTING, DB_IDLE, DB_BUSY };

typedef struct db_stmt {
  struct db_stmt *next;
  char *sql;
  int nparams;
  char **params;
  db_cb cb;
  void *arg;
  uint64_t enqueued_ms;
} db_stmt;

typedef struct {
  uv_poll_t poll;
  struct db_conn *conn;
} db_poll;

typedef struct db_conn {
  db *d;
  PGconn *pg;
  db_poll *poll; /* NULL when not watching */
  int state;
  unsigned backoff_ms;
  uv_timer_t retry;
  db_stmt *cur;
  PGresult *last;  /* last successful result of cur */
  PGresult *error; /* first error result of cur */
} db_conn;

struct db {
  uv_loop_t *loop;
  char *conninfo;
  db_conn *conns;
  int n;
  db_stmt *head, *tail;
  unsigned queued, max_queue, queue_timeout_ms;
  uv_timer_t tick;
  int handles; /* open uv handles */
  int closing;
  void (*done)(void *arg);
  void *done_arg;
};

static void db_conn_start(db_conn *c);
static void db_dispatch(db *d);

/* ---- helpers ---- */

static void db_trim(char *dst, size_t dstlen, const char *src) {
  if (!src) src = "";
  while (isspace((unsigned char)*src))
    src++;
  snprintf(dst, dstlen, "%s", src);
  size_t n = strlen(dst);
  while (n && isspace((unsigned char)dst[n - 1]))
    dst[--n] = '\0';
}

static void db_stmt_free(db_stmt *s) {
  for (int i = 0; i < s->nparams; i++)
    free(s->params[i]);
  free(s->params);
  free(s->sql);
  free(s);
}

static void db_fail_stmt(db_stmt *s, const char *sqlstate, const char *msg) {
  char buf[DB_ERR_MAX];
  db_trim(buf, sizeof buf, msg);
  db_result r = {.ok = 0, .sqlstate = sqlstate, .error = buf, .res = NULL};
  s->cb(&r, s->arg);
  db_stmt_free(s);
}

static db_stmt *db_pop(db *d) {
  db_stmt *s = d->head;
  if (!s) return NULL;
  d->head = s->next;
  if (!d->head) d->tail = NULL;
  d->queued--;
  return s;
}

static void db_maybe_free(db *d) {
  if (!d->closing || d->handles > 0) return;
  void (*done)(void *) = d->done;
  void *arg = d->done_arg;
  free(d->conns);
  free(d->conninfo);
  free(d);
  if (done) done(arg);
}

static void db_handle_closed(uv_handle_t *h) {
  db *d = h->data;
  d->handles--;
  db_maybe_free(d);
}

static void db_retry_closed(uv_handle_t *h) {
  db *d = ((db_conn *)h->data)->d;
  d->handles--;
  db_maybe_free(d);
}

static void db_poll_closed(uv_handle_t *h) {
  db_poll *p = h->data;
  db *d = p->conn->d;
  free(p);
  d->handles--;
  db_maybe_free(d);
}

static void db_unwatch(db_conn *c) {
  if (!c->poll) return;
  uv_poll_stop(&c->poll->poll);
  uv_close((uv_handle_t *)&c->poll->poll, db_poll_closed);
  c->poll = NULL;
}

static void db_on_poll(uv_poll_t *h, int status, int events);

/* Watches the connection's current socket. fresh: a new poll handle even if
 * the fd number is the same, because during connect libpq may have closed
 * the old socket and opened another under that number. */
static int db_watch(db_conn *c, int events, int fresh) {
  if (fresh) db_unwatch(c);
  if (!c->poll) {
    int fd = PQsocket(c->pg);
    if (fd < 0) return -1;
    db_poll *p = calloc(1, sizeof *p);
    if (!p) return -1;
    if (uv_poll_init(c->d->loop, &p->poll, fd) != 0) {
      free(p);
      return -1;
    }
    p->conn = c;
    p->poll.data = p;
    c->d->handles++;
    c->poll = p;
  }
  return uv_poll_start(&c->poll->poll, events, db_on_poll) == 0 ? 0 : -1;
}

/* Closes the socket side of c: no poll, no PGconn, nothing in flight. */
static void db_conn_teardown(db_conn *c) {
  db_unwatch(c); /* before PQfinish closes the fd under the poll */
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  PQclear(c->last);
  PQclear(c->error);
  c->last = c->error = NULL;
  c->state = DB_DOWN;
}

static void db_conn_close(db_conn *c) {
  db_conn_teardown(c);
  uv_timer_stop(&c->retry);
  if (!uv_is_closing((uv_handle_t *)&c->retry)) uv_close((uv_handle_t *)&c->retry, db_retry_closed);
}

static void db_on_retry(uv_timer_t *t) {
  db_conn_start(t->data);
}

static void db_schedule_retry(db_conn *c) {
  uv_timer_start(&c->retry, db_on_retry, c->backoff_ms, 0);
  c->backoff_ms = c->backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* The connection failed or went away: fail what ran on it, reconnect later. */
static void db_conn_lost(db_conn *c, const char *what) {
  char msg[DB_ERR_MAX];
  db_trim(msg, sizeof msg, c->pg ? PQerrorMessage(c->pg) : "");
  if (!msg[0]) snprintf(msg, sizeof msg, "connection lost");
  int was_connecting = c->state == DB_CONNECTING;
  db_stmt *s = c->cur;
  c->cur = NULL;
  db_conn_teardown(c);
  db *d = c->d;
  if (was_connecting)
    log_warn("db connect failed", LS("error", msg));
  else
    log_warn("db disconnected", LS("error", msg), LS("during", what));
  if (d->closing)
    db_conn_close(c);
  else
    db_schedule_retry(c);
  if (s) db_fail_stmt(s, "08006", msg);
}

/* ---- statements ---- */

static void db_flush(db_conn *c) {
  int f = PQflush(c->pg);
  if (f < 0 || db_watch(c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, 0) != 0)
    db_conn_lost(c, "send");
}

static void db_send(db_conn *c, db_stmt *s) {
  c->cur = s;
  c->state = DB_BUSY;
  if (!PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, (const char *const *)s->params, NULL,
                         NULL, 0)) {
    if (PQstatus(c->pg) == CONNECTION_BAD) {
      db_conn_lost(c, "send");
      return;
    }
    c->cur = NULL;
    c->state = DB_IDLE;
    db_fail_stmt(s, "08000", PQerrorMessage(c->pg));
    return;
  }
  db_flush(c);
}

static void db_dispatch(db *d) {
  for (int i = 0; i < d->n && d->head && !d->closing; i++) {
    db_conn *c = &d->conns[i];
    if (c->state == DB_IDLE) db_send(c, db_pop(d));
  }
}

/* cur finished (PQgetResult gave NULL): report it, then let c take more. */
static void db_complete(db_conn *c) {
  db_stmt *s = c->cur;
  PGresult *last = c->last, *err = c->error;
  c->cur = NULL;
  c->last = c->error = NULL;
  c->state = DB_IDLE;
  db_watch(c, UV_READABLE, 0);
  if (err) {
    const char *st = PQresultErrorField(err, PG_DIAG_SQLSTATE);
    char msg[DB_ERR_MAX];
    db_trim(msg, sizeof msg, PQresultErrorMessage(err));
    db_result r = {.ok = 0,
                   .sqlstate = st ? st : "XX000",
                   .error = msg,
                   .message = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY),
                   .column = PQresultErrorField(err, PG_DIAG_COLUMN_NAME)};
    s->cb(&r, s->arg);
  } else {
    db_result r = {.ok = 1, .res = last};
    s->cb(&r, s->arg);
  }
  PQclear(last);
  PQclear(err);
  db_stmt_free(s);
  /* The callback may have closed the pool or queued more. */
  db *d = c->d;
  if (d->closing) {
    if (c->state == DB_IDLE) db_conn_close(c);
    return;
  }
  db_dispatch(d);
}

static void db_on_readable(db_conn *c) {
  if (!PQconsumeInput(c->pg)) {
    db_conn_lost(c, c->state == DB_BUSY ? "query" : "idle");
    return;
  }
  PGnotify *nt;
  while ((nt = PQnotifies(c->pg)))
    PQfreemem(nt);
  if (c->state != DB_BUSY) {
    if (PQstatus(c->pg) == CONNECTION_BAD) db_conn_lost(c, "idle");
    return;
  }
  while (!PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      db_complete(c);
      return;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
      PQclear(c->last);
      c->last = r;
    } else if (!c->error) {
      c->error = r;
    } else {
      PQclear(r);
    }
  }
  if (PQstatus(c->pg) == CONNECTION_BAD) db_conn_lost(c, "query");
}

static void db_connect_step(db_conn *c, PostgresPollingStatusType st) {
  switch (st) {
  case PGRES_POLLING_READING:
  case PGRES_POLLING_WRITING:
    if (db_watch(c, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE, 1) != 0)
      db_conn_lost(c, "connect");
    return;
  case PGRES_POLLING_OK:
    if (PQsetnonblocking(c->pg, 1) != 0 || db_watch(c, UV_READABLE, 1) != 0) {
      db_conn_lost(c, "connect");
      return;
    }
    c->state = DB_IDLE;
    c->backoff_ms = DB_BACKOFF_MIN_MS;
    log_info("db connected", LI("connection", c - c->d->conns), LS("host", PQhost(c->pg)),
             LS("db", PQdb(c->pg)));
    if (c->d->closing)
      db_conn_close(c);
    else
      db_dispatch(c->d);
    return;
  default:
    db_conn_lost(c, "connect");
    return;
  }
}

static void db_on_poll(uv_poll_t *h, int status, int events) {
  db_poll *p = h->data;
  db_conn *c = p->conn;
  if (c->poll != p || !c->pg) return;
  if (c->state == DB_CONNECTING) {
    db_connect_step(c, PQconnectPoll(c->pg));
    return;
  }
  if (status < 0) {
    db_conn_lost(c, "poll");
    return;
  }
  if ((events & UV_WRITABLE) && c->state == DB_BUSY) {
    db_flush(c);
    if (c->poll != p) return;
  }
  if (events & UV_READABLE) db_on_readable(c);
}

/* Server notices go to the log, not to libpq's default (stderr). */
static void db_on_notice(void *arg, const char *message) {
  (void)arg;
  char msg[DB_ERR_MAX];
  db_trim(msg, sizeof msg, message);
  log_info("db notice", LS("message", msg));
}

static void db_conn_start(db_conn *c) {
  if (c->d->closing) return;
  c->pg = PQconnectStart(c->d->conninfo);
  c->state = DB_CONNECTING;
  if (c->pg) PQsetNoticeProcessor(c->pg, db_on_notice, NULL);
  if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
    db_conn_lost(c, "connect");
    return;
  }
  db_connect_step(c, PGRES_POLLING_WRITING);
}

/* ---- queue timeout ---- */

static void db_on_tick(uv_timer_t *t) {
  db *d = t->data;
  /* the clock, not the loop's cached time: a statement queued after a long
   * callback must still wait its full timeout */
  uint64_t now = uv_hrtime() / 1000000;
  /* FIFO: the oldest are at the head. */
  while (d->head && now - d->head->enqueued_ms >= d->queue_timeout_ms) {
    db_stmt *s = db_pop(d);
    db_fail_stmt(s, "08001", "no database connection available in time");
  }
}

/* ---- API ---- */

int db_open(db **out, uv_loop_t *loop, const db_options *o) {
  *out = NULL;
  if (!o || !o->conninfo || o->pool_size < 0) return -1;
  db *d = calloc(1, sizeof *d);
  if (!d) return -1;
  d->loop = loop;
  d->n = o->pool_size ? o->pool_size : 4;
  d->max_queue = o->max_queue ? o->max_queue : 10000;
  d->queue_timeout_ms = o->queue_timeout_ms ? o->queue_timeout_ms : 5000;
  d->conninfo = strdup(o->conninfo);
  d->conns = calloc((size_t)d->n, sizeof *d->conns);
  if (!d->conninfo || !d->conns) {
    free(d->conninfo);
    free(d->conns);
    free(d);
    return -1;
  }
  uv_timer_init(loop, &d->tick);
  d->tick.data = d;
  d->handles++;
  uv_timer_start(&d->tick, db_on_tick, DB_TICK_MS, DB_TICK_MS);
  for (int i = 0; i < d->n; i++) {
    db_conn *c = &d->conns[i];
    c->d = d;
    c->backoff_ms = DB_BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    d->handles++;
  }
  *out = d;
  for (int i = 0; i < d->n; i++)
    db_conn_start(&d->conns[i]);
  return 0;
}

int db_query(db *d, const char *sql, int nparams, const char *const *params, db_cb cb, void *arg) {
  if (d->closing || d->queued >= d->max_queue || !sql || !cb || nparams < 0) return -1;
  db_stmt *s = calloc(1, sizeof *s);
  if (!s) return -1;
  s->sql = strdup(sql);
  s->params = nparams ? calloc((size_t)nparams, sizeof *s->params) : NULL;
  if (!s->sql || (nparams && !s->params)) goto oom;
  s->nparams = nparams;
  for (int i = 0; i < nparams; i++) {
    if (params[i] && !(s->params[i] = strdup(params[i]))) goto oom;
  }
  s->cb = cb;
  s->arg = arg;
  s->enqueued_ms = uv_hrtime() / 1000000;
  if (d->tail)
    d->tail->next = s;
  else
    d->head = s;
  d->tail = s;
  d->queued++;
  db_dispatch(d);
  return 0;
oom:
  db_stmt_free(s);
  return -1;
}

int db_transient(const db_result *r) {
  const char *st = r->ok ? NULL : r->sqlstate;
  if (!st || strlen(st) != 5) return 0;
  return strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 ||
         (strncmp(st, "57P0", 4) == 0 && st[4] >= '1' && st[4] <= '3') ||
         strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0;
}

int db_fenced_ok(const db_result *r) {
  return r->ok && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0);
}

int db_idle(const db *d) {
  if (d->head || d->closing) return 0;
  int n = 0;
  for (int i = 0; i < d->n; i++)
    n += d->conns[i].state == DB_IDLE;
  return n;
}

char *db_array_literal(const char *const *vals, int n) {
  size_t len = 3;
  for (int i = 0; i < n; i++) {
    len += 5; /* quotes and comma, or NULL and comma */
    for (const char *c = vals[i]; c && *c; c++)
      len += (*c == '"' || *c == '\\') ? 2 : 1;
  }
  char *out = malloc(len), *o = out;
  if (!out) return NULL;
  *o++ = '{';
  for (int i = 0; i < n; i++) {
    if (i) *o++ = ',';
    if (!vals[i]) {
      memcpy(o, "NULL", 4);
      o += 4;
      continue;
    }
    *o++ = '"';
    for (const char *c = vals[i]; *c; c++) {
      if (*c == '"' || *c == '\\') *o++ = '\\';
      *o++ = *c;
    }
    *o++ = '"';
  }
  *o++ = '}';
  *o = '\0';
  return out;
}

int db_connected(const db *d) {
  int n = 0;
  for (int i = 0; i < d->n; i++)
    n += d->conns[i].state == DB_IDLE || d->conns[i].state == DB_BUSY;
  return n;
}

void db_close(db *d, void (*done)(void *arg), void *arg) {
  if (d->closing) return;
  d->closing = 1;
  d->done = done;
  d->done_arg = arg;
  uv_timer_stop(&d->tick);
  uv_close((uv_handle_t *)&d->tick, db_handle_closed);
  db_stmt *s;
  while ((s = db_pop(d)))
    db_fail_stmt(s, "57014", "canceled: database pool closing");
  /* Busy connections close when their statement ends (db_complete). */
  for (int i = 0; i < d->n; i++)
    if (d->conns[i].state != DB_BUSY) db_conn_close(&d->conns[i]);
}
