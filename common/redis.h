#ifndef GENQ_REDIS_H
#define GENQ_REDIS_H

#include <hiredis/hiredis.h>
#include <uv.h>

/* One asynchronous Redis connection on libuv (hiredis async + its libuv
 * adapter). Connects and reconnects by itself with exponential backoff
 * (100 ms doubling to 5 s), sending AUTH and SELECT from the URL first.
 * Open several for several roles (e.g. one for blocking XREADGROUP, one for
 * everything else): commands on one connection run in order. */

typedef struct rds rds;

/* Called exactly once per rds_command* that returned 0, on the loop thread.
 * On success reply is non-NULL (it may be a REDIS_REPLY_ERROR reply) and err
 * is NULL; when the connection failed before the reply, reply is NULL and
 * err says why. reply is valid only during the call. */
typedef void (*rds_cb)(redisReply *reply, const char *err, void *arg);

/* url: redis://[[user]:password@]host[:port][/db], or
 * redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]
 * [?sentinel_password=...] (common/redis_url.h). Returns 0 or -1 (bad URL,
 * with a message in err). The connection comes up asynchronously.
 *
 * With Sentinels, every (re)connect first asks them in turn (SENTINEL
 * get-master-addr-by-name, 1 s each) for the primary, connects there and
 * checks ROLE is "master" before the connection counts as up (3 s for
 * connect and setup); a READONLY answer (the primary was demoted) drops the
 * connection, so the next one follows the failover. No call blocks: the
 * Sentinels' answers are hiredis async replies like any other. */
int rds_open(rds **out, uv_loop_t *loop, const char *url, char *err, size_t errlen);
/* Returns 0, or -1 when not connected right now (cb never runs). cb may be
 * NULL (fire and forget). argvlen may be NULL (strlen of each argv). */
int rds_command(rds *r, rds_cb cb, void *arg, const char *fmt, ...);
int rds_command_argv(rds *r, rds_cb cb, void *arg, int argc, const char **argv,
                     const size_t *argvlen);
int rds_connected(const rds *r);
/* Called (if set) each time the connection comes up, e.g. to recreate
 * consumer groups after Redis lost its data. */
void rds_on_connect(rds *r, void (*cb)(rds *r, void *arg), void *arg);
/* Called (if set) each time a connection that was up goes away (not when
 * rds_close ends it). */
void rds_on_down(rds *r, void (*cb)(rds *r, void *arg), void *arg);
/* Pub/sub. Subscribes r to channel; on_message(channel, msg, len, arg)
 * runs on the loop thread for every message published there (msg is
 * binary: len bytes, NUL-terminated for convenience; both strings valid
 * only during the call). The subscription is sent now if r is up, and
 * again after every reconnect (before on_connect runs), until rds_close;
 * messages published while r was down are lost (Redis pub/sub keeps
 * nothing). Each time Redis confirms the subscription (after every
 * reconnect too), on_message runs once with msg NULL and len 0: from then
 * on nothing published there is missed until the next rds_on_down. A connection with a subscription
 * is used only for subscriptions: rds_command* on it return -1. Returns 0, or -1 (closing, out of
 * memory). */
typedef void (*rds_message_cb)(const char *channel, const char *msg, size_t len, void *arg);
int rds_subscribe(rds *r, const char *channel, rds_message_cb on_message, void *arg);
/* Fails pending commands (err "closed"), closes and frees r, then calls done. */
void rds_close(rds *r, void (*done)(void *arg), void *arg);

#endif
