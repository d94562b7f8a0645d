/* queue.c — job dispatch through Redis Streams (see queue.h, docs/queue.md). */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define QUEUE_FETCH_MAX 1024 /* bounds what one reply may carry */
#define QUEUE_KINDS_MAX 16

void queue_key(const char *kind, char *buf) {
  snprintf(buf, QUEUE_KEY_MAX, "genq:{q}:jobs:%s", kind);
}

/* ---- completion callbacks ---- */

typedef struct {
  queue_done_cb cb;
  void *arg;
} done_ctx;

static void done_reply(redisReply *reply, const char *err, void *arg) {
  done_ctx *d = arg;
  const char *e = err;
  if (!e && reply && reply->type == REDIS_REPLY_ERROR) e = reply->str;
  if (d->cb) d->cb(e, d->arg);
  free(d);
}

int queue_dispatch(rds *r, const char *kind, const char *job_id, queue_done_cb cb, void *arg) {
  char key[QUEUE_KEY_MAX];
  done_ctx *d = malloc(sizeof(*d));
  if (!d) return -1;
  d->cb = cb;
  d->arg = arg;
  queue_key(kind, key);
  if (rds_command(r, done_reply, d, "XADD %s * job %s", key, job_id) != 0) {
    free(d);
    return -1;
  }
  return 0;
}

int queue_publish_change(rds *r, const char *job_id) {
  return rds_command(r, NULL, NULL, "PUBLISH %s %s", QUEUE_EVENTS_CHANNEL, job_id);
}

int queue_publish_cancel(rds *r, const char *job_id) {
  return rds_command(r, NULL, NULL, "PUBLISH %s %s", QUEUE_CANCEL_CHANNEL, job_id);
}

int queue_publish_wakeup(rds *r, const char *job_id) {
  return rds_command(r, NULL, NULL, "PUBLISH %s %s", QUEUE_WAKEUP_CHANNEL, job_id);
}

static void group_reply(redisReply *reply, const char *err, void *arg) {
  (void)arg;
  if (err) {
    log_warn("queue group create failed", LS("error", err));
  } else if (reply && reply->type == REDIS_REPLY_ERROR &&
             strncmp(reply->str, "BUSYGROUP", 9) != 0) {
    log_warn("queue group create failed", LS("error", reply->str));
  }
}

void queue_ensure_groups(rds *r, const char *const *kinds, int nkinds) {
  char key[QUEUE_KEY_MAX];
  for (int i = 0; i < nkinds; i++) {
    queue_key(kinds[i], key);
    rds_command(r, group_reply, NULL, "XGROUP CREATE %s " QUEUE_GROUP " 0 MKSTREAM", key);
  }
}

/* ---- reading ---- */

typedef struct {
  queue_fetch_cb cb;
  void *arg;
  rds *r;
  int nkinds;
  char kinds[QUEUE_KINDS_MAX][32];
  int autoclaim; /* reply shape of XAUTOCLAIM rather than XREADGROUP */
} fetch_ctx;

static const char *kind_of_key(const fetch_ctx *f, const char *key) {
  char want[QUEUE_KEY_MAX];
  for (int i = 0; i < f->nkinds; i++) {
    queue_key(f->kinds[i], want);
    if (strcmp(want, key) == 0) return f->kinds[i];
  }
  return NULL;
}

/* Appends the entries of one stream ([[id, [field, value, ...]], ...]). */
static int collect_entries(const redisReply *entries, const char *kind, queue_msg *out, int n) {
  if (!entries || entries->type != REDIS_REPLY_ARRAY) return n;
  for (size_t i = 0; i < entries->elements && n < QUEUE_FETCH_MAX; i++) {
    const redisReply *e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
      continue;
    const redisReply *fields = e->element[1];
    out[n].kind = kind;
    out[n].msg_id = e->element[0]->str;
    out[n].job_id = NULL;
    /* a deleted entry still pending shows up with nil fields */
    if (fields && fields->type == REDIS_REPLY_ARRAY) {
      for (size_t j = 0; j + 1 < fields->elements; j += 2) {
        const redisReply *k = fields->element[j], *v = fields->element[j + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, "job") == 0 && v->len == 36)
          out[n].job_id = v->str;
      }
    }
    n++;
  }
  return n;
}

static void fetch_reply(redisReply *reply, const char *err, void *arg) {
  fetch_ctx *f = arg;
  queue_msg *msgs = NULL;
  int n = 0;
  if (!err && reply && reply->type == REDIS_REPLY_ERROR) {
    err = reply->str;
    if (strncmp(reply->str, "NOGROUP", 7) == 0) {
      const char *kinds[QUEUE_KINDS_MAX];
      for (int i = 0; i < f->nkinds; i++)
        kinds[i] = f->kinds[i];
      queue_ensure_groups(f->r, kinds, f->nkinds);
    }
  }
  if (!err && reply && reply->type == REDIS_REPLY_ARRAY) {
    msgs = calloc(QUEUE_FETCH_MAX, sizeof(*msgs));
    if (!msgs) {
      err = "out of memory";
    } else if (f->autoclaim) {
      /* [next-start, [[id, fields]...], [deleted ids]] */
      if (reply->elements >= 2) n = collect_entries(reply->element[1], f->kinds[0], msgs, 0);
    } else {
      /* [[key, [[id, fields]...]], ...] */
      for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *s = reply->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
          continue;
        const char *kind = kind_of_key(f, s->element[0]->str);
        if (kind) n = collect_entries(s->element[1], kind, msgs, n);
      }
    }
  }
  f->cb(err ? NULL : msgs, err ? 0 : n, err, f->arg);
  free(msgs);
  free(f);
}

static fetch_ctx *fetch_ctx_new(rds *r, const char *const *kinds, int nkinds, queue_fetch_cb cb,
                                void *arg) {
  if (nkinds < 1 || nkinds > QUEUE_KINDS_MAX) return NULL;
  fetch_ctx *f = calloc(1, sizeof(*f));
  if (!f) return NULL;
  f->cb = cb;
  f->arg = arg;
  f->r = r;
  f->nkinds = nkinds;
  for (int i = 0; i < nkinds; i++)
    snprintf(f->kinds[i], sizeof(f->kinds[i]), "%s", kinds[i]);
  return f;
}

int queue_fetch(rds *r, const char *consumer, const char *const *kinds, int nkinds, int count,
                int block_ms, queue_fetch_cb cb, void *arg) {
  fetch_ctx *f = fetch_ctx_new(r, kinds, nkinds, cb, arg);
  if (!f) return -1;
  if (count < 1) count = 1;
  if (count > QUEUE_FETCH_MAX) count = QUEUE_FETCH_MAX;
  char countbuf[16], blockbuf[16];
  char keys[QUEUE_KINDS_MAX][QUEUE_KEY_MAX];
  const char *argv[8 + 2 * QUEUE_KINDS_MAX];
  int argc = 0;
  snprintf(countbuf, sizeof(countbuf), "%d", count);
  snprintf(blockbuf, sizeof(blockbuf), "%d", block_ms);
  argv[argc++] = "XREADGROUP";
  argv[argc++] = "GROUP";
  argv[argc++] = QUEUE_GROUP;
  argv[argc++] = consumer;
  argv[argc++] = "COUNT";
  argv[argc++] = countbuf;
  argv[argc++] = "BLOCK";
  argv[argc++] = blockbuf;
  argv[argc++] = "STREAMS";
  for (int i = 0; i < nkinds; i++) {
    queue_key(kinds[i], keys[i]);
    argv[argc++] = keys[i];
  }
  for (int i = 0; i < nkinds; i++)
    argv[argc++] = ">";
  if (rds_command_argv(r, fetch_reply, f, argc, argv, NULL) != 0) {
    free(f);
    return -1;
  }
  return 0;
}

int queue_reclaim(rds *r, const char *consumer, const char *kind, long min_idle_ms, int count,
                  queue_fetch_cb cb, void *arg) {
  fetch_ctx *f = fetch_ctx_new(r, &kind, 1, cb, arg);
  if (!f) return -1;
  f->autoclaim = 1;
  char key[QUEUE_KEY_MAX];
  queue_key(kind, key);
  if (rds_command(r, fetch_reply, f, "XAUTOCLAIM %s " QUEUE_GROUP " %s %ld 0-0 COUNT %d", key,
                  consumer, min_idle_ms, count) != 0) {
    free(f);
    return -1;
  }
  return 0;
}

int queue_touch(rds *r, const char *consumer, const char *kind, const char *const *msg_ids, int n) {
  if (n < 1) return 0;
  if (n > QUEUE_TOUCH_MAX) n = QUEUE_TOUCH_MAX;
  char key[QUEUE_KEY_MAX];
  queue_key(kind, key);
  const char *argv[QUEUE_TOUCH_MAX + 6];
  int argc = 0;
  argv[argc++] = "XCLAIM";
  argv[argc++] = key;
  argv[argc++] = QUEUE_GROUP;
  argv[argc++] = consumer;
  argv[argc++] = "0";
  for (int i = 0; i < n; i++)
    argv[argc++] = msg_ids[i];
  argv[argc++] = "JUSTID";
  return rds_command_argv(r, NULL, NULL, argc, argv, NULL);
}

int queue_done(rds *r, const char *kind, const char *msg_id, queue_done_cb cb, void *arg) {
  char key[QUEUE_KEY_MAX];
  queue_key(kind, key);
  /* XACK then XDEL on one connection run in order; only XDEL's reply is
   * reported (an XACK error would show on XDEL too: same key). */
  if (rds_command(r, NULL, NULL, "XACK %s " QUEUE_GROUP " %s", key, msg_id) != 0) return -1;
  done_ctx *d = malloc(sizeof(*d));
  if (!d) return -1;
  d->cb = cb;
  d->arg = arg;
  if (rds_command(r, done_reply, d, "XDEL %s %s", key, msg_id) != 0) {
    free(d);
    return -1;
  }
  return 0;
}
