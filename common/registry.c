/* registry.c — the worker registry's Redis side (registry.h): the beat,
 * the clean leave, the listing and the commands, each a short script or
 * command on an rds connection; nothing here blocks. */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* KEYS: the set, the record, the command key. ARGV: id, record, ttl ms.
 * The server's clock stamps the beat (effects replication: Redis 7 always,
 * earlier versions when asked). Entries that have not beaten for a day are
 * dropped here too, so a set nobody lists stays bounded. */
static const char beat_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)\n"
    "local cmd = redis.call('GET', KEYS[3])\n"
    "if cmd then redis.call('DEL', KEYS[3]) end\n"
    "return {now, cmd}\n";

/* KEYS: the set, the record, the command key. ARGV: id. */
static const char leave_lua[] = "redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                "redis.call('DEL', KEYS[2], KEYS[3])\n"
                                "return 0\n";

/* KEYS: the set. ARGV: how many. {now, {id, score, ...}} */
static const char list_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "return {now, redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')}\n";

/* KEYS: the set, then each id's record. ARGV: the ids. An id leaves the set
 * only if its record is still missing now (a worker that beat meanwhile
 * stays). */
static const char prune_lua[] =
    "for i = 1, #ARGV do\n"
    "  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('ZREM', KEYS[1], ARGV[i]) end\n"
    "end\n"
    "return 0\n";

/* KEYS: the record, the command key. ARGV: command, ttl ms, channel,
 * message. */
static const char send_lua[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                               "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n"
                               "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
                               "return 1\n";

static const char *const cmd_names[] = {
    [REGISTRY_CMD_NONE] = "", [REGISTRY_CMD_QUIET] = "quiet", [REGISTRY_CMD_STOP] = "stop"};

const char *registry_cmd_name(registry_cmd c) {
  return (unsigned)c < sizeof cmd_names / sizeof cmd_names[0] ? cmd_names[c] : "";
}

registry_cmd registry_cmd_parse(const char *s, size_t len) {
  if (!s) return REGISTRY_CMD_NONE;
  for (int c = REGISTRY_CMD_QUIET; c <= REGISTRY_CMD_STOP; c++)
    if (len == strlen(cmd_names[c]) && memcmp(s, cmd_names[c], len) == 0) return (registry_cmd)c;
  return REGISTRY_CMD_NONE;
}

registry_cmd registry_control_for(const char *msg, size_t len, const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (!msg || n == 0 || len <= n + 1 || memcmp(msg, id, n) != 0 || msg[n] != ' ')
    return REGISTRY_CMD_NONE;
  return registry_cmd_parse(msg + n + 1, len - n - 1);
}

int registry_id_ok(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n >= REGISTRY_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (id[i] <= ' ' || id[i] > '~') return 0;
  return 1;
}

static void key_of(char *buf, size_t len, const char *prefix, const char *id) {
  snprintf(buf, len, "%s%s", prefix, id);
}

#define KEY_MAX (sizeof(REGISTRY_COMMAND_PREFIX) + REGISTRY_ID_MAX)

/* The error a reply stands for, or NULL. */
static const char *reply_error(const redisReply *reply, const char *err) {
  if (!reply) return err ? err : "no reply";
  if (reply->type == REDIS_REPLY_ERROR) return reply->str ? reply->str : "error reply";
  return NULL;
}

/* ---- beat ---- */

typedef struct {
  registry_beat_cb cb;
  void *arg;
} beat_ctx;

static void beat_answered(redisReply *reply, const char *err, void *arg) {
  beat_ctx c = *(beat_ctx *)arg;
  free(arg);
  const char *e = reply_error(reply, err);
  if (!e && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
             reply->element[0]->type != REDIS_REPLY_INTEGER))
    e = "unexpected beat reply";
  if (e) {
    c.cb(0, REGISTRY_CMD_NONE, e, c.arg);
    return;
  }
  registry_cmd cmd = REGISTRY_CMD_NONE;
  if (reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_STRING)
    cmd = registry_cmd_parse(reply->element[1]->str, reply->element[1]->len);
  c.cb(reply->element[0]->integer, cmd, NULL, c.arg);
}

int registry_beat(rds *r, const char *id, const char *record, long ttl_ms, registry_beat_cb cb,
                  void *arg) {
  if (!registry_id_ok(id) || !record || ttl_ms <= 0 || !cb) return -1;
  char set[] = REGISTRY_WORKERS_KEY, rec[KEY_MAX], cmd[KEY_MAX], ttl[24];
  key_of(rec, sizeof rec, REGISTRY_RECORD_PREFIX, id);
  key_of(cmd, sizeof cmd, REGISTRY_COMMAND_PREFIX, id);
  snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
  const char *argv[] = {"EVAL", beat_lua, "3", set, rec, cmd, id, record, ttl};
  beat_ctx *c = malloc(sizeof *c);
  if (!c) return -1;
  *c = (beat_ctx){cb, arg};
  if (rds_command_argv(r, beat_answered, c, 9, argv, NULL) != 0) {
    free(c);
    return -1;
  }
  return 0;
}

int registry_leave(rds *r, const char *id) {
  if (!registry_id_ok(id)) return -1;
  char set[] = REGISTRY_WORKERS_KEY, rec[KEY_MAX], cmd[KEY_MAX];
  key_of(rec, sizeof rec, REGISTRY_RECORD_PREFIX, id);
  key_of(cmd, sizeof cmd, REGISTRY_COMMAND_PREFIX, id);
  const char *argv[] = {"EVAL", leave_lua, "3", set, rec, cmd, id};
  return rds_command_argv(r, NULL, NULL, 7, argv, NULL);
}

/* ---- send ---- */

typedef struct {
  registry_send_cb cb;
  void *arg;
} send_ctx;

static void sent(redisReply *reply, const char *err, void *arg) {
  send_ctx c = *(send_ctx *)arg;
  free(arg);
  const char *e = reply_error(reply, err);
  if (!e && reply->type != REDIS_REPLY_INTEGER) e = "unexpected reply";
  c.cb(e ? 0 : reply->integer == 1, e, c.arg);
}

int registry_send(rds *r, const char *id, registry_cmd cmd, registry_send_cb cb, void *arg) {
  if (!registry_id_ok(id) || cmd == REGISTRY_CMD_NONE || !cb) return -1;
  char rec[KEY_MAX], key[KEY_MAX], ttl[24], msg[REGISTRY_ID_MAX + 16];
  key_of(rec, sizeof rec, REGISTRY_RECORD_PREFIX, id);
  key_of(key, sizeof key, REGISTRY_COMMAND_PREFIX, id);
  snprintf(ttl, sizeof ttl, "%d", REGISTRY_COMMAND_TTL_MS);
  snprintf(msg, sizeof msg, "%s %s", id, registry_cmd_name(cmd));
  const char *argv[] = {
      "EVAL", send_lua, "2", rec, key, registry_cmd_name(cmd), ttl, REGISTRY_CONTROL_CHANNEL, msg};
  send_ctx *c = malloc(sizeof *c);
  if (!c) return -1;
  *c = (send_ctx){cb, arg};
  if (rds_command_argv(r, sent, c, 9, argv, NULL) != 0) {
    free(c);
    return -1;
  }
  return 0;
}

/* ---- list ---- */

typedef struct {
  rds *r;
  registry_list_cb cb;
  void *arg;
  long long now;
  size_t n;
  char **ids;
  long long *beats;
} list_ctx;

static void list_free(list_ctx *c) {
  for (size_t i = 0; c->ids && i < c->n; i++)
    free(c->ids[i]);
  free(c->ids);
  free(c->beats);
  free(c);
}

static void list_fail(list_ctx *c, const char *err) {
  c->cb(NULL, 0, err, c->arg);
  list_free(c);
}

typedef struct {
  const char *id;
  cJSON *rec;
} listed;

static int cmp_listed(const void *a, const void *b) {
  return strcmp(((const listed *)a)->id, ((const listed *)b)->id);
}

/* Drops from the set the ids whose record was missing (missing[i] != 0). */
static void prune(list_ctx *c, const char *missing, size_t nmissing) {
  if (nmissing == 0) return;
  size_t argc = 4 + 2 * nmissing, k = 0; /* EVAL script numkeys set, records, ids */
  const char **argv = calloc(argc, sizeof *argv);
  char **keys = calloc(nmissing, sizeof *keys);
  char nkeys[24];
  if (!argv || !keys) goto out;
  snprintf(nkeys, sizeof nkeys, "%zu", nmissing + 1);
  argv[0] = "EVAL";
  argv[1] = prune_lua;
  argv[2] = nkeys;
  argv[3] = REGISTRY_WORKERS_KEY;
  for (size_t i = 0; i < c->n; i++) {
    if (!missing[i]) continue;
    if (!(keys[k] = malloc(KEY_MAX))) goto out;
    key_of(keys[k], KEY_MAX, REGISTRY_RECORD_PREFIX, c->ids[i]);
    argv[4 + k] = keys[k];
    argv[4 + nmissing + k] = c->ids[i];
    k++;
  }
  rds_command_argv(c->r, NULL, NULL, (int)argc, argv, NULL);
out:
  for (size_t i = 0; keys && i < nmissing; i++)
    free(keys[i]);
  free(keys);
  free(argv);
}

static void records_read(redisReply *reply, const char *err, void *arg) {
  list_ctx *c = arg;
  const char *e = reply_error(reply, err);
  if (!e && (reply->type != REDIS_REPLY_ARRAY || reply->elements != c->n))
    e = "unexpected MGET reply";
  if (e) {
    list_fail(c, e);
    return;
  }
  listed *l = calloc(c->n ? c->n : 1, sizeof *l);
  char *missing = calloc(c->n ? c->n : 1, 1);
  cJSON *out = cJSON_CreateArray();
  if (!l || !missing || !out) {
    free(l);
    free(missing);
    cJSON_Delete(out);
    list_fail(c, "out of memory");
    return;
  }
  size_t nl = 0, nmissing = 0;
  for (size_t i = 0; i < c->n; i++) {
    const redisReply *e1 = reply->element[i];
    if (e1->type != REDIS_REPLY_STRING) {
      missing[i] = 1;
      nmissing++;
      continue;
    }
    cJSON *rec = cJSON_ParseWithLength(e1->str, e1->len);
    if (!cJSON_IsObject(rec)) { /* not a record genq wrote: shown nowhere */
      cJSON_Delete(rec);
      continue;
    }
    long long age = c->now - c->beats[i];
    cJSON *idv = cJSON_CreateString(c->ids[i]); /* the set's id is the one that counts */
    if (cJSON_HasObjectItem(rec, "id"))
      cJSON_ReplaceItemInObjectCaseSensitive(rec, "id", idv);
    else
      cJSON_AddItemToObject(rec, "id", idv);
    cJSON_AddNumberToObject(rec, "last_beat_ms", (double)c->beats[i]);
    cJSON_AddNumberToObject(rec, "last_beat_age_ms", (double)(age > 0 ? age : 0));
    l[nl].id = c->ids[i];
    l[nl++].rec = rec;
  }
  prune(c, missing, nmissing);
  qsort(l, nl, sizeof *l, cmp_listed);
  for (size_t i = 0; i < nl; i++)
    cJSON_AddItemToArray(out, l[i].rec);
  free(l);
  free(missing);
  c->cb(out, c->now, NULL, c->arg);
  cJSON_Delete(out);
  list_free(c);
}

static void set_read(redisReply *reply, const char *err, void *arg) {
  list_ctx *c = arg;
  const char *e = reply_error(reply, err);
  if (!e && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
             reply->element[0]->type != REDIS_REPLY_INTEGER ||
             reply->element[1]->type != REDIS_REPLY_ARRAY))
    e = "unexpected listing reply";
  if (e) {
    list_fail(c, e);
    return;
  }
  c->now = reply->element[0]->integer;
  const redisReply *z = reply->element[1];
  size_t n = z->elements / 2;
  if (n == 0) {
    cJSON *none = cJSON_CreateArray();
    c->cb(none, c->now, none ? NULL : "out of memory", c->arg);
    cJSON_Delete(none);
    list_free(c);
    return;
  }
  c->ids = calloc(n, sizeof *c->ids);
  c->beats = calloc(n, sizeof *c->beats);
  const char **argv = calloc(n + 1, sizeof *argv);
  char **keys = calloc(n, sizeof *keys);
  int ok = c->ids && c->beats && argv && keys;
  for (size_t i = 0; ok && i < n; i++) {
    const redisReply *id = z->element[2 * i], *score = z->element[2 * i + 1];
    if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING) {
      ok = 0;
      break;
    }
    c->ids[i] = strndup(id->str, id->len);
    keys[i] = malloc(KEY_MAX);
    c->n = i + 1;
    if (!c->ids[i] || !keys[i]) {
      ok = 0;
      break;
    }
    c->beats[i] = strtoll(score->str, NULL, 10);
    key_of(keys[i], KEY_MAX, REGISTRY_RECORD_PREFIX, c->ids[i]);
    argv[i + 1] = keys[i];
  }
  if (ok) argv[0] = "MGET";
  if (ok && rds_command_argv(c->r, records_read, c, (int)n + 1, argv, NULL) == 0) c = NULL;
  for (size_t i = 0; keys && i < n; i++)
    free(keys[i]);
  free(keys);
  free(argv);
  if (c) list_fail(c, ok ? "redis is not connected" : "unexpected listing reply");
}

int registry_list(rds *r, registry_list_cb cb, void *arg) {
  if (!cb) return -1;
  list_ctx *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->r = r;
  c->cb = cb;
  c->arg = arg;
  char max[24];
  snprintf(max, sizeof max, "%d", REGISTRY_LIST_MAX);
  const char *argv[] = {"EVAL", list_lua, "1", REGISTRY_WORKERS_KEY, max};
  if (rds_command_argv(r, set_read, c, 5, argv, NULL) != 0) {
    free(c);
    return -1;
  }
  return 0;
}
