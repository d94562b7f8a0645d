/* One Redis connection: hiredis async on libuv, reconnecting by itself.
 *
 * Lifetimes: hiredis owns and frees the async context. It is freed after a
 * failed connect (connect callback with REDIS_ERR), after a lost connection
 * (disconnect callback) and on redisAsyncFree; r->ac is cleared at each of
 * those and never freed here otherwise. The connection counts as up only
 * once the AUTH/SELECT (or PING) sent first have answered, so user code
 * (commands, on_connect) always runs from a reply callback, where hiredis
 * tolerates redisAsyncFree (rds_close).
 *
 * Subscriptions live in r->subs, not in hiredis: each context starts
 * unsubscribed, so they are sent again every time the setup completes.
 * hiredis keeps a subscription's callback for the life of its context and
 * calls it once more with a NULL reply when the context goes; the rds_sub
 * it points to lives until r is freed. */
#define _GNU_SOURCE /* memrchr */
#include "redis.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000

typedef struct rds_sub rds_sub;
struct rds_sub {
  rds_sub *next;
  rds *r;
  rds_message_cb on_message;
  void *arg;
  char channel[];
};

struct rds {
  uv_loop_t *loop;
  char host[256];
  int port;
  int db;
  char user[128];
  char password[512];
  int has_password;

  redisAsyncContext *ac; /* NULL while waiting to reconnect */
  int up;                /* setup replies all in: commands allowed */
  int setup_pending;     /* AUTH/SELECT/PING replies still to come */
  unsigned backoff_ms;
  uv_timer_t timer; /* reconnect */
  int timer_closed;

  void (*on_connect)(rds *r, void *arg);
  void *on_connect_arg;
  void (*on_down)(rds *r, void *arg);
  void *on_down_arg;
  rds_sub *subs; /* in subscription order */

  int closing;
  void (*done)(void *arg);
  void *done_arg;
};

typedef struct {
  rds *r;
  rds_cb cb;
  void *arg;
} rds_pending;

static void rds_connect(rds *r);
static void rds_sub_send(rds *r, rds_sub *sub);

/* ---- URL ---- */

static int rds_fail(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  return -1;
}

/* Percent-decodes [s, s+n) into dst (size dstlen). */
static int rds_unescape(char *dst, size_t dstlen, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
        isxdigit((unsigned char)s[i + 2])) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      ch = (char)strtol(hex, NULL, 16);
      i += 2;
    }
    if (o + 1 >= dstlen) return -1;
    dst[o++] = ch;
  }
  dst[o] = '\0';
  return 0;
}

static int rds_parse_url(rds *r, const char *url, char *err, size_t errlen) {
  static const char scheme[] = "redis://";
  if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0)
    return rds_fail(err, errlen, "redis url: scheme must be redis://");
  const char *p = url + sizeof scheme - 1;
  const char *slash = strchr(p, '/');
  const char *hostend = slash ? slash : p + strlen(p);
  const char *at = memrchr(p, '@', (size_t)(hostend - p));
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) return rds_fail(err, errlen, "redis url: credentials must be [user]:password@");
    if (rds_unescape(r->user, sizeof r->user, p, (size_t)(colon - p)) != 0 ||
        rds_unescape(r->password, sizeof r->password, colon + 1, (size_t)(at - colon - 1)) != 0)
      return rds_fail(err, errlen, "redis url: credentials too long");
    r->has_password = 1;
    p = at + 1;
  }
  const char *portp = NULL;
  const char *hend = hostend;
  if (*p == '[') { /* [ipv6] */
    const char *rb = memchr(p, ']', (size_t)(hostend - p));
    if (!rb) return rds_fail(err, errlen, "redis url: bad host");
    if (rb + 1 < hostend) {
      if (rb[1] != ':') return rds_fail(err, errlen, "redis url: bad host");
      portp = rb + 2;
    }
    p++;
    hend = rb;
  } else {
    const char *colon = memchr(p, ':', (size_t)(hostend - p));
    if (colon) {
      portp = colon + 1;
      hend = colon;
    }
  }
  size_t hl = (size_t)(hend - p);
  if (hl == 0 || hl >= sizeof r->host) return rds_fail(err, errlen, "redis url: bad host");
  memcpy(r->host, p, hl);
  r->host[hl] = '\0';
  r->port = 6379;
  if (portp) {
    char *e;
    long v = strtol(portp, &e, 10);
    if (e == portp || e != hostend || !isdigit((unsigned char)*portp) || v < 1 || v > 65535)
      return rds_fail(err, errlen, "redis url: bad port");
    r->port = (int)v;
  }
  r->db = 0;
  if (slash && slash[1]) {
    char *e;
    long v = strtol(slash + 1, &e, 10);
    if (*e || !isdigit((unsigned char)slash[1]) || v < 0 || v > 100000)
      return rds_fail(err, errlen, "redis url: bad db number");
    r->db = (int)v;
  }
  return 0;
}

/* ---- poll glue ---- */

/* The hiredis 0.14 libuv adapter drops poll errors (libuv reports POLLERR,
 * e.g. a refused connect or a reset, as status < 0 and stops the handle), so
 * the connection would hang unnoticed. We keep its attach and cleanup but
 * route events through this callback, which lets hiredis read the error. */
static void rds_poll_cb(uv_poll_t *h, int status, int events) {
  redisLibuvEvents *p = h->data;
  if (status < 0) events = p->events ? p->events : UV_READABLE;
  if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void rds_poll_update(redisLibuvEvents *p) {
  if (p->events)
    uv_poll_start(&p->handle, p->events, rds_poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void rds_add_read(void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_READABLE;
  rds_poll_update(p);
}

static void rds_del_read(void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_READABLE;
  rds_poll_update(p);
}

static void rds_add_write(void *d) {
  redisLibuvEvents *p = d;
  p->events |= UV_WRITABLE;
  rds_poll_update(p);
}

static void rds_del_write(void *d) {
  redisLibuvEvents *p = d;
  p->events &= ~UV_WRITABLE;
  rds_poll_update(p);
}

/* ---- lifecycle ---- */

static void rds_maybe_free(rds *r) {
  if (!r->closing || r->ac || !r->timer_closed) return;
  void (*done)(void *) = r->done;
  void *arg = r->done_arg;
  while (r->subs) {
    rds_sub *next = r->subs->next;
    free(r->subs);
    r->subs = next;
  }
  free(r);
  if (done) done(arg);
}

static void rds_timer_closed(uv_handle_t *h) {
  rds *r = h->data;
  r->timer_closed = 1;
  rds_maybe_free(r);
}

static void rds_on_timer(uv_timer_t *t) {
  rds_connect(t->data);
}

static void rds_schedule_reconnect(rds *r) {
  if (r->closing) return;
  uv_timer_start(&r->timer, rds_on_timer, r->backoff_ms, 0);
  r->backoff_ms = r->backoff_ms * 2 > RDS_BACKOFF_MAX_MS ? RDS_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void rds_on_disconnect(const redisAsyncContext *ac, int status) {
  rds *r = ac->data;
  if (!r) return;
  int was_up = r->up;
  r->ac = NULL;
  r->up = 0;
  if (r->closing) {
    rds_maybe_free(r);
    return;
  }
  log_warn("redis disconnected", LS("host", r->host), LI("port", r->port),
           LS("error", status == REDIS_OK ? "closed" : ac->errstr), LI("was_up", was_up));
  rds_schedule_reconnect(r);
  if (was_up && r->on_down) r->on_down(r, r->on_down_arg);
}

static void rds_on_connected(const redisAsyncContext *ac, int status) {
  rds *r = ac->data;
  if (!r || status == REDIS_OK) return; /* up once the setup replies arrive */
  /* hiredis frees ac right after this returns; no user code runs here. */
  log_warn("redis connect failed", LS("host", r->host), LI("port", r->port),
           LS("error", ac->errstr));
  r->ac = NULL;
  r->up = 0;
  if (r->closing)
    rds_maybe_free(r);
  else
    rds_schedule_reconnect(r);
}

static void rds_setup_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rds *r = privdata;
  redisReply *rep = reply;
  if (!rep || r->closing || ac != r->ac) return; /* going away anyway */
  if (rep->type == REDIS_REPLY_ERROR) {
    log_error("redis setup command failed", LS("host", r->host), LS("error", rep->str));
    r->setup_pending = -1;
    redisAsyncDisconnect(ac); /* reconnects via rds_on_disconnect */
    return;
  }
  if (r->setup_pending <= 0 || --r->setup_pending > 0) return;
  r->up = 1;
  r->backoff_ms = RDS_BACKOFF_MIN_MS;
  log_info("redis connected", LS("host", r->host), LI("port", r->port), LI("db", r->db));
  for (rds_sub *sub = r->subs; sub; sub = sub->next)
    rds_sub_send(r, sub);
  if (r->on_connect) r->on_connect(r, r->on_connect_arg);
}

static void rds_connect(rds *r) {
  if (r->closing || r->ac) return;
  redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
  if (!ac) {
    rds_schedule_reconnect(r);
    return;
  }
  if (ac->err) {
    log_warn("redis connect failed", LS("host", r->host), LI("port", r->port),
             LS("error", ac->errstr));
    redisAsyncFree(ac);
    rds_schedule_reconnect(r);
    return;
  }
  if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    rds_schedule_reconnect(r);
    return;
  }
  ac->ev.addRead = rds_add_read;
  ac->ev.delRead = rds_del_read;
  ac->ev.addWrite = rds_add_write;
  ac->ev.delWrite = rds_del_write;
  ac->data = r;
  /* A subscriber only listens: keepalive is how it notices a dead peer. */
  if (r->subs) redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, rds_on_connected);
  redisAsyncSetDisconnectCallback(ac, rds_on_disconnect);
  r->ac = ac;
  r->up = 0;
  /* Pipelined ahead of anything else this connection will carry. */
  r->setup_pending = 0;
  if (r->has_password) {
    if (r->user[0])
      redisAsyncCommand(ac, rds_setup_reply, r, "AUTH %s %s", r->user, r->password);
    else
      redisAsyncCommand(ac, rds_setup_reply, r, "AUTH %s", r->password);
    r->setup_pending++;
  }
  if (r->db != 0) {
    redisAsyncCommand(ac, rds_setup_reply, r, "SELECT %d", r->db);
    r->setup_pending++;
  }
  if (r->setup_pending == 0) {
    redisAsyncCommand(ac, rds_setup_reply, r, "PING");
    r->setup_pending++;
  }
}

int rds_open(rds **out, uv_loop_t *loop, const char *url, char *err, size_t errlen) {
  *out = NULL;
  rds *r = calloc(1, sizeof *r);
  if (!r) return rds_fail(err, errlen, "out of memory");
  if (rds_parse_url(r, url, err, errlen) != 0) {
    free(r);
    return -1;
  }
  r->loop = loop;
  r->backoff_ms = RDS_BACKOFF_MIN_MS;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  *out = r;
  rds_connect(r);
  return 0;
}

/* ---- commands ---- */

static void rds_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rds_pending *p = privdata;
  rds *r = p->r;
  const char *err = NULL;
  if (!reply)
    err = r->closing ? "closed" : (ac->err && ac->errstr[0]) ? ac->errstr : "connection lost";
  if (p->cb) p->cb(reply, err, p->arg);
  free(p);
}

static rds_pending *rds_pending_new(rds *r, rds_cb cb, void *arg) {
  if (!r->up || !r->ac || r->closing || r->subs) return NULL;
  rds_pending *p = malloc(sizeof *p);
  if (!p) return NULL;
  *p = (rds_pending){r, cb, arg};
  return p;
}

int rds_command(rds *r, rds_cb cb, void *arg, const char *fmt, ...) {
  rds_pending *p = rds_pending_new(r, cb, arg);
  if (!p) return -1;
  va_list ap;
  va_start(ap, fmt);
  int rc = redisvAsyncCommand(r->ac, rds_reply, p, fmt, ap);
  va_end(ap);
  if (rc != REDIS_OK) {
    free(p);
    return -1;
  }
  return 0;
}

int rds_command_argv(rds *r, rds_cb cb, void *arg, int argc, const char **argv,
                     const size_t *argvlen) {
  rds_pending *p = rds_pending_new(r, cb, arg);
  if (!p) return -1;
  if (redisAsyncCommandArgv(r->ac, rds_reply, p, argc, argv, argvlen) != REDIS_OK) {
    free(p);
    return -1;
  }
  return 0;
}

/* ---- pub/sub ---- */

static int rds_reply_is(const redisReply *e, const char *s) {
  return e->type == REDIS_REPLY_STRING && e->len == strlen(s) && memcmp(e->str, s, e->len) == 0;
}

static void rds_sub_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rds_sub *sub = privdata;
  redisReply *rep = reply;
  (void)ac;
  if (!rep || sub->r->closing) return; /* context gone: resent on reconnect */
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) return;
  redisReply **e = rep->element;
  if (rds_reply_is(e[0], "message") && e[2]->type == REDIS_REPLY_STRING)
    sub->on_message(sub->channel, e[2]->str, e[2]->len, sub->arg);
  else if (rds_reply_is(e[0], "subscribe")) {
    log_info("redis subscribed", LS("channel", sub->channel), LS("host", sub->r->host));
    sub->on_message(sub->channel, NULL, 0, sub->arg);
  }
}

static void rds_sub_send(rds *r, rds_sub *sub) {
  if (redisAsyncCommand(r->ac, rds_sub_reply, sub, "SUBSCRIBE %b", sub->channel,
                        strlen(sub->channel)) != REDIS_OK)
    log_error("redis subscribe failed", LS("channel", sub->channel), LS("host", r->host));
}

int rds_subscribe(rds *r, const char *channel, rds_message_cb on_message, void *arg) {
  if (r->closing || !channel || !on_message) return -1;
  size_t n = strlen(channel);
  rds_sub *sub = malloc(sizeof *sub + n + 1);
  if (!sub) return -1;
  *sub = (rds_sub){NULL, r, on_message, arg};
  memcpy(sub->channel, channel, n + 1);
  rds_sub **tail = &r->subs;
  while (*tail)
    tail = &(*tail)->next;
  *tail = sub;
  if (r->ac) redisEnableKeepAlive(&r->ac->c);
  if (r->up && r->ac) rds_sub_send(r, sub);
  return 0;
}

int rds_connected(const rds *r) {
  return r->up;
}

void rds_on_connect(rds *r, void (*cb)(rds *r, void *arg), void *arg) {
  r->on_connect = cb;
  r->on_connect_arg = arg;
}

void rds_on_down(rds *r, void (*cb)(rds *r, void *arg), void *arg) {
  r->on_down = cb;
  r->on_down_arg = arg;
}

void rds_close(rds *r, void (*done)(void *arg), void *arg) {
  if (r->closing) return;
  r->closing = 1;
  r->done = done;
  r->done_arg = arg;
  r->up = 0;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, rds_timer_closed);
  redisAsyncContext *ac = r->ac;
  if (!ac) return;
  int connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  int in_cb = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
  /* Pending callbacks run with reply NULL ("closed"). Inside a hiredis
   * callback the free is deferred until it returns. A connected context
   * reports its end through rds_on_disconnect; an unconnected one does not. */
  redisAsyncFree(ac);
  if (!connected && !in_cb) r->ac = NULL;
}
