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
 * it points to lives until r is freed.
 *
 * Sentinel mode (redis-sentinel://): a second, short-lived context (sac)
 * asks one Sentinel at a time for the primary's address before each
 * connect; see "Sentinel discovery" below. */
#include "redis.h"
#include "log.h"
#include "redis_url.h"

#include <errno.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
/* Sentinel mode: how long one Sentinel may take to name the primary, and
 * the primary to connect and answer the setup, before the next try. */
#define RDS_SENTINEL_TIMEOUT_MS 1000
#define RDS_NODE_TIMEOUT_MS 3000

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
  rds_url url;    /* GENQ_REDIS_URL */
  char host[256]; /* the server: the URL's, or the primary a Sentinel named */
  int port;

  redisAsyncContext *ac; /* NULL while waiting to reconnect */
  int up;                /* setup replies all in: commands allowed */
  int setup_pending;     /* AUTH/SELECT/PING (ROLE) replies still to come */
  unsigned backoff_ms;
  uv_timer_t timer;    /* reconnect; in Sentinel mode also "ask the next one" */
  uv_timer_t deadline; /* Sentinel mode: the current attempt's time limit */
  int timers_open;

  /* Sentinel mode: asking r->url.sentinels[sent_cur] (sac) during a round
   * (discovering) that has tried sent_tried of them. */
  redisAsyncContext *sac;
  int sent_cur, sent_tried, discovering;

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
static void rds_sentinel_ask(rds *r);

static int rds_fail(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  return -1;
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
  if (!r->closing || r->ac || r->sac || r->timers_open) return;
  void (*done)(void *) = r->done;
  void *arg = r->done_arg;
  while (r->subs) {
    rds_sub *next = r->subs->next;
    free(r->subs);
    r->subs = next;
  }
  rds_url_wipe(&r->url);
  free(r);
  if (done) done(arg);
}

static void rds_timer_closed(uv_handle_t *h) {
  rds *r = h->data;
  r->timers_open--;
  rds_maybe_free(r);
}

static void rds_on_timer(uv_timer_t *t) {
  rds *r = t->data;
  if (r->discovering)
    rds_sentinel_ask(r);
  else
    rds_connect(r);
}

static void rds_schedule_reconnect(rds *r) {
  if (r->closing) return;
  uv_timer_start(&r->timer, rds_on_timer, r->backoff_ms, 0);
  r->backoff_ms = r->backoff_ms * 2 > RDS_BACKOFF_MAX_MS ? RDS_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Gives up the server connection (a replica answering, no setup in time):
 * the next attempt asks the Sentinels again. Safe inside its callbacks (the
 * free is deferred until they return); a connected context reports its end
 * through rds_on_disconnect, which reconnects and runs on_down. */
static void rds_drop_node(rds *r, const char *why) {
  redisAsyncContext *ac = r->ac;
  if (!ac || (ac->c.flags & REDIS_FREEING)) return;
  log_warn("redis: leaving the server", LS("host", r->host), LI("port", r->port), LS("why", why));
  int connected = (ac->c.flags & REDIS_CONNECTED) != 0;
  int in_cb = (ac->c.flags & REDIS_IN_CALLBACK) != 0;
  redisAsyncFree(ac);
  if (!connected && !in_cb) {
    r->ac = NULL;
    r->up = 0;
    rds_schedule_reconnect(r);
  }
}

static void rds_on_disconnect(const redisAsyncContext *ac, int status) {
  rds *r = ac->data;
  if (!r) return;
  int was_up = r->up;
  r->ac = NULL;
  r->up = 0;
  uv_timer_stop(&r->deadline);
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
  uv_timer_stop(&r->deadline);
  if (r->closing)
    rds_maybe_free(r);
  else
    rds_schedule_reconnect(r);
}

static void rds_setup_ok(rds *r) {
  if (r->setup_pending <= 0 || --r->setup_pending > 0) return;
  r->up = 1;
  r->backoff_ms = RDS_BACKOFF_MIN_MS;
  uv_timer_stop(&r->deadline);
  log_info("redis connected", LS("host", r->host), LI("port", r->port), LI("db", r->url.db),
           LS("via", r->url.sentinel ? "sentinel" : "url"));
  for (rds_sub *sub = r->subs; sub; sub = sub->next)
    rds_sub_send(r, sub);
  if (r->on_connect) r->on_connect(r, r->on_connect_arg);
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
  rds_setup_ok(r);
}

/* Sentinel mode: the server a Sentinel named must say it is the primary
 * (ROLE: "master"); a stale answer during a failover names the old one. */
static void rds_role_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rds *r = privdata;
  redisReply *rep = reply;
  if (!rep || r->closing || ac != r->ac) return;
  if (rep->type == REDIS_REPLY_ERROR) {
    rds_setup_reply(ac, reply, privdata);
    return;
  }
  const redisReply *role =
      rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? rep->element[0] : NULL;
  if (!role || role->type != REDIS_REPLY_STRING || strcmp(role->str, "master") != 0) {
    r->setup_pending = -1;
    rds_drop_node(r, role && role->type == REDIS_REPLY_STRING ? role->str : "no ROLE");
    return;
  }
  rds_setup_ok(r);
}

static void rds_on_deadline(uv_timer_t *t);

static int rds_attach(rds *r, redisAsyncContext *ac) {
  if (redisLibuvAttach(ac, r->loop) != REDIS_OK) return -1;
  ac->ev.addRead = rds_add_read;
  ac->ev.delRead = rds_del_read;
  ac->ev.addWrite = rds_add_write;
  ac->ev.delWrite = rds_del_write;
  ac->data = r;
  return 0;
}

/* Connects to r->host:r->port and sends the setup (AUTH, SELECT, and ROLE in
 * Sentinel mode, else PING when there is nothing else). */
static void rds_connect_node(rds *r) {
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
  if (rds_attach(r, ac) != 0) {
    redisAsyncFree(ac);
    rds_schedule_reconnect(r);
    return;
  }
  /* A subscriber only listens: keepalive is how it notices a dead peer. */
  if (r->subs) redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, rds_on_connected);
  redisAsyncSetDisconnectCallback(ac, rds_on_disconnect);
  r->ac = ac;
  r->up = 0;
  /* Pipelined ahead of anything else this connection will carry. */
  r->setup_pending = 0;
  if (r->url.has_password) {
    if (r->url.user[0])
      redisAsyncCommand(ac, rds_setup_reply, r, "AUTH %s %s", r->url.user, r->url.password);
    else
      redisAsyncCommand(ac, rds_setup_reply, r, "AUTH %s", r->url.password);
    r->setup_pending++;
  }
  if (r->url.db != 0) {
    redisAsyncCommand(ac, rds_setup_reply, r, "SELECT %d", r->url.db);
    r->setup_pending++;
  }
  if (r->url.sentinel) {
    redisAsyncCommand(ac, rds_role_reply, r, "ROLE");
    r->setup_pending++;
    uv_timer_start(&r->deadline, rds_on_deadline, RDS_NODE_TIMEOUT_MS, 0);
  }
  if (r->setup_pending == 0) {
    redisAsyncCommand(ac, rds_setup_reply, r, "PING");
    r->setup_pending++;
  }
}

/* ---- Sentinel discovery ----
 * Before every (re)connect: ask the Sentinels in turn, starting with the one
 * that answered last, SENTINEL get-master-addr-by-name; the first address
 * named is connected to (and must answer ROLE "master"). A round in which
 * none answers waits the reconnect backoff and starts again. The Sentinel
 * connection (sac) carries only that; its context's data is cleared before
 * it is freed, so its late callbacks find nothing to do. */

static void rds_sentinel_free(rds *r) {
  redisAsyncContext *ac = r->sac;
  if (!ac) return;
  r->sac = NULL;
  ac->data = NULL;
  redisAsyncFree(ac); /* deferred when inside its callback */
}

/* The current Sentinel did not name the primary: the next one, or a pause. */
static void rds_sentinel_failed(rds *r, const char *why) {
  uv_timer_stop(&r->deadline);
  const rds_addr *s = &r->url.sentinels[r->sent_cur];
  if (r->closing) {
    rds_maybe_free(r);
    return;
  }
  log_warn("redis sentinel did not name the primary", LS("sentinel", s->host), LI("port", s->port),
           LS("master", r->url.master), LS("error", why));
  r->sent_cur = (r->sent_cur + 1) % r->url.nsentinels;
  if (++r->sent_tried < r->url.nsentinels) {
    uv_timer_start(&r->timer, rds_on_timer, 0, 0); /* out of hiredis' callback */
    return;
  }
  r->discovering = 0;
  rds_schedule_reconnect(r);
}

static void rds_sentinel_connected(const redisAsyncContext *ac, int status) {
  rds *r = ac->data;
  if (!r || status == REDIS_OK) return;
  r->sac = NULL; /* hiredis frees it after this returns */
  rds_sentinel_failed(r, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void rds_sentinel_disconnected(const redisAsyncContext *ac, int status) {
  (void)status;
  rds *r = ac->data;
  if (!r) return;
  r->sac = NULL;
  rds_sentinel_failed(r, ac->errstr[0] ? ac->errstr : "closed before answering");
}

static void rds_sentinel_auth_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)privdata;
  rds *r = ac->data;
  redisReply *rep = reply;
  if (!r || !rep || rep->type != REDIS_REPLY_ERROR) return;
  char why[160];
  snprintf(why, sizeof why, "AUTH: %.140s", rep->str);
  rds_sentinel_free(r);
  rds_sentinel_failed(r, why);
}

static void rds_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)privdata;
  rds *r = ac->data;
  redisReply *rep = reply;
  if (!r || !rep) return;
  char why[160] = "";
  long port = 0;
  if (rep->type == REDIS_REPLY_ERROR) {
    snprintf(why, sizeof why, "%.150s", rep->str);
  } else if (rep->type == REDIS_REPLY_NIL) {
    snprintf(why, sizeof why, "it does not know that primary");
  } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
             rep->element[0]->type != REDIS_REPLY_STRING ||
             rep->element[1]->type != REDIS_REPLY_STRING || rep->element[0]->len == 0 ||
             rep->element[0]->len >= sizeof r->host ||
             memchr(rep->element[0]->str, '\0', rep->element[0]->len)) {
    snprintf(why, sizeof why, "unexpected answer");
  } else {
    char *e;
    errno = 0;
    port = strtol(rep->element[1]->str, &e, 10);
    if (errno || *e || port < 1 || port > 65535) snprintf(why, sizeof why, "bad port in answer");
  }
  if (why[0]) {
    rds_sentinel_free(r);
    rds_sentinel_failed(r, why);
    return;
  }
  int changed = strcmp(r->host, rep->element[0]->str) != 0 || r->port != (int)port;
  snprintf(r->host, sizeof r->host, "%s", rep->element[0]->str);
  r->port = (int)port;
  const rds_addr *s = &r->url.sentinels[r->sent_cur];
  if (changed)
    log_info("redis sentinel named the primary", LS("sentinel", s->host),
             LI("sentinel_port", s->port), LS("master", r->url.master), LS("host", r->host),
             LI("port", r->port));
  rds_sentinel_free(r);
  uv_timer_stop(&r->deadline);
  r->discovering = 0;
  rds_connect_node(r);
}

static void rds_sentinel_ask(rds *r) {
  if (r->closing || r->sac || r->ac) return;
  const rds_addr *s = &r->url.sentinels[r->sent_cur];
  redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
  if (!ac || ac->err || rds_attach(r, ac) != 0) {
    char why[128];
    snprintf(why, sizeof why, "%s", ac && ac->err ? ac->errstr : "cannot connect");
    if (ac) redisAsyncFree(ac);
    rds_sentinel_failed(r, why);
    return;
  }
  redisAsyncSetConnectCallback(ac, rds_sentinel_connected);
  redisAsyncSetDisconnectCallback(ac, rds_sentinel_disconnected);
  r->sac = ac;
  if (r->url.has_sentinel_password)
    redisAsyncCommand(ac, rds_sentinel_auth_reply, NULL, "AUTH %s", r->url.sentinel_password);
  redisAsyncCommand(ac, rds_sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s",
                    r->url.master);
  uv_timer_start(&r->deadline, rds_on_deadline, RDS_SENTINEL_TIMEOUT_MS, 0);
}

/* Sentinel mode: a Sentinel or the server took too long. */
static void rds_on_deadline(uv_timer_t *t) {
  rds *r = t->data;
  if (r->closing) return;
  if (r->sac) {
    rds_sentinel_free(r);
    rds_sentinel_failed(r, "no answer in time");
  } else if (r->ac && !r->up) {
    rds_drop_node(r, "no answer in time");
  }
}

static void rds_connect(rds *r) {
  if (r->closing || r->ac || r->sac) return;
  if (r->url.sentinel) {
    r->discovering = 1;
    r->sent_tried = 0;
    rds_sentinel_ask(r);
    return;
  }
  rds_connect_node(r);
}

int rds_open(rds **out, uv_loop_t *loop, const char *url, char *err, size_t errlen) {
  *out = NULL;
  rds *r = calloc(1, sizeof *r);
  if (!r) return rds_fail(err, errlen, "out of memory");
  if (rds_url_parse(&r->url, url, err, errlen) != 0) {
    rds_url_wipe(&r->url);
    free(r);
    return -1;
  }
  if (!r->url.sentinel) {
    snprintf(r->host, sizeof r->host, "%s", r->url.node.host);
    r->port = r->url.node.port;
  }
  r->loop = loop;
  r->backoff_ms = RDS_BACKOFF_MIN_MS;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_init(loop, &r->deadline);
  r->deadline.data = r;
  r->timers_open = 2;
  *out = r;
  rds_connect(r);
  return 0;
}

/* ---- commands ---- */

static int rds_replica_error(const char *e) {
  return strncmp(e, "READONLY", 8) == 0 || strncmp(e, "MASTERDOWN", 10) == 0 ||
         (strncmp(e, "UNBLOCKED", 9) == 0 && strstr(e, "replica"));
}

static void rds_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  rds_pending *p = privdata;
  rds *r = p->r;
  const char *err = NULL;
  redisReply *rep = reply;
  if (!reply)
    err = r->closing ? "closed" : (ac->err && ac->errstr[0]) ? ac->errstr : "connection lost";
  /* Sentinel mode: a primary that became a replica refuses writes
   * (READONLY), ends blocking reads (UNBLOCKED ... master -> replica) or,
   * cut off from its own primary, everything (MASTERDOWN); the next
   * connection asks the Sentinels which server is the primary now. */
  else if (r->url.sentinel && ac == r->ac && rep->type == REDIS_REPLY_ERROR &&
           rds_replica_error(rep->str))
    rds_drop_node(r, rep->str[0] == 'R'   ? "READONLY: the server is a replica now"
                     : rep->str[0] == 'U' ? "UNBLOCKED: the server is a replica now"
                                          : "MASTERDOWN: the server is a replica");
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
  uv_timer_stop(&r->deadline);
  uv_close((uv_handle_t *)&r->deadline, rds_timer_closed);
  rds_sentinel_free(r);
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
