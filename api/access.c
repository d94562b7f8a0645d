/* access.c — who may still call: this process's copy of the live API keys
 * and of the deleted accounts (SPEC §4, §7).
 *
 * An API key is checked on every request it makes, a poll every second, so
 * its check must not wait for PostgreSQL: the process keeps every live key
 * (its SHA-256, id, user and admin flag; about 200 bytes each) and every
 * deleted account in memory. They come from genq_access_changes
 * (schema/functions/api_keys.sql): all of them once at start, then every
 * second what changed since (with a minute of overlap, so a row committed
 * late is still seen). A revocation or deletion is applied at once by the
 * process that made it and PUBLISHed on QUEUE_ACCESS_CHANNEL for the
 * others; the second's read covers a notice lost while Redis was away.
 *
 * What was revoked stays known (key ids and user ids, never removed), so a
 * read that started before a revocation and answers after it cannot bring
 * the key back. A key this copy does not hold yet (made a moment ago on
 * another host) is looked up by auth.c in PostgreSQL; that answer is not
 * added here — the next read adds it.
 *
 * Until the first read succeeded the process does not know who was
 * deleted: authenticated requests answer 503 and /readyz says not ready. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "queue.h"

#define ACCESS_POLL_MS 1000
#define ACCESS_TOUCH_MS 60000 /* last_used_at: at most once a minute per key */

/* ---- a small hash table: byte-string keys, chained ---- */

typedef struct access_node access_node;
struct access_node {
  access_node *next;
  void *value;
  size_t klen;
  unsigned char key[];
};

typedef struct {
  access_node **b;
  size_t nb, n;
} access_table;

static uint32_t fnv(const void *k, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++)
    h = (h ^ ((const unsigned char *)k)[i]) * 16777619u;
  return h;
}

static access_node **tbl_slot(access_table *t, const void *k, size_t len) {
  if (!t->nb) return NULL;
  access_node **p = &t->b[fnv(k, len) & (t->nb - 1)];
  while (*p && !((*p)->klen == len && memcmp((*p)->key, k, len) == 0))
    p = &(*p)->next;
  return p;
}

static access_node *tbl_get(access_table *t, const void *k, size_t len) {
  access_node **p = tbl_slot(t, k, len);
  return p ? *p : NULL;
}

static int tbl_grow(access_table *t) {
  size_t nb = t->nb ? t->nb * 2 : 256;
  access_node **b = calloc(nb, sizeof(access_node *));
  if (!b) return -1;
  for (size_t i = 0; i < t->nb; i++)
    for (access_node *e = t->b[i], *next; e; e = next) {
      next = e->next;
      access_node **to = &b[fnv(e->key, e->klen) & (nb - 1)];
      e->next = *to;
      *to = e;
    }
  free(t->b);
  t->b = b;
  t->nb = nb;
  return 0;
}

/* The node of k, added (value NULL) when missing (then *added is 1);
 * NULL when out of memory. */
static access_node *tbl_put(access_table *t, const void *k, size_t len, int *added) {
  access_node *e = tbl_get(t, k, len);
  *added = 0;
  if (e) return e;
  if (t->n >= t->nb && tbl_grow(t) != 0) return NULL;
  if (!(e = calloc(1, sizeof(*e) + len))) return NULL;
  memcpy(e->key, k, len);
  e->klen = len;
  access_node **p = &t->b[fnv(k, len) & (t->nb - 1)];
  e->next = *p;
  *p = e;
  t->n++;
  *added = 1;
  return e;
}

/* Removes k; returns its value (the caller frees it), or NULL. */
static void *tbl_del(access_table *t, const void *k, size_t len) {
  access_node **p = tbl_slot(t, k, len);
  if (!p || !*p) return NULL;
  access_node *e = *p;
  void *v = e->value;
  *p = e->next;
  free(e);
  t->n--;
  return v;
}

static void tbl_free(access_table *t, void (*free_value)(void *)) {
  for (size_t i = 0; i < t->nb; i++)
    for (access_node *e = t->b[i], *next; e; e = next) {
      next = e->next;
      if (free_value) free_value(e->value);
      free(e);
    }
  free(t->b);
  memset(t, 0, sizeof(*t));
}

/* ---- the copy ---- */

typedef struct {
  char id[API_KEY_ID_LEN];
  int admin;
  uint64_t touched_ms; /* loop time of the last use recorded, 0 never */
  char user[];
} access_key;

struct api_access {
  api_ctx *ctx;
  rds *sub;
  uv_timer_t poll;
  access_table keys;           /* SHA-256 → access_key */
  access_table revoked;        /* key ids ever revoked (no value) */
  access_table revoked_hashes; /* and the SHA-256 of those this copy held */
  access_table deleted;        /* user ids of deleted accounts (no value) */
  char since[64];              /* the database's time of the last read; "" before the first */
  int reading, ready, stopping;
};

/* A key revoked: gone from the copy, remembered as revoked, and the event
 * streams it opened end. */
static void revoke_key(struct api_access *a, const char *id) {
  int added;
  if (!tbl_put(&a->revoked, id, strlen(id), &added)) log_error("access: out of memory", LOG_END);
  if (!added) return;
  for (size_t i = 0; i < a->keys.nb; i++)
    for (access_node *e = a->keys.b[i]; e; e = e->next)
      if (strcmp(((access_key *)e->value)->id, id) == 0) {
        int dup;
        tbl_put(&a->revoked_hashes, e->key, e->klen, &dup);
        free(tbl_del(&a->keys, e->key, e->klen));
        i = a->keys.nb;
        break;
      }
  api_events_revoked(a->ctx, NULL, id);
}

/* An account deleted: refused from now on, its event streams end. */
static void delete_user(struct api_access *a, const char *user) {
  int added;
  if (!tbl_put(&a->deleted, user, strlen(user), &added))
    log_error("access: out of memory", LOG_END);
  if (added) api_events_revoked(a->ctx, user, NULL);
}

static int unhex(const char *s, unsigned char *out, size_t n) {
  if (strncmp(s, "\\x", 2) != 0 || strlen(s) != 2 + 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (int j = 0; j < 2; j++) {
      char c = s[2 + 2 * i + (size_t)j];
      v = v * 16 + (unsigned)(c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                     : 99);
    }
    if (v > 255) return -1;
    out[i] = (unsigned char)v;
  }
  return 0;
}

static void add_key(struct api_access *a, const char *id, const char *user, const char *hash_hex,
                    int admin) {
  unsigned char h[32];
  if (strlen(id) >= API_KEY_ID_LEN || unhex(hash_hex, h, sizeof h) != 0) return;
  if (tbl_get(&a->revoked, id, strlen(id)) || tbl_get(&a->keys, h, sizeof h)) return;
  size_t ulen = strlen(user);
  access_key *k = calloc(1, sizeof(*k) + ulen + 1);
  int added;
  access_node *e = k ? tbl_put(&a->keys, h, sizeof h, &added) : NULL;
  if (!e) {
    free(k);
    log_error("access: out of memory", LOG_END);
    return;
  }
  memcpy(k->id, id, strlen(id) + 1);
  memcpy(k->user, user, ulen + 1);
  k->admin = admin;
  e->value = k;
}

static void changes_read(const db_result *r, void *arg) {
  struct api_access *a = arg;
  a->reading = 0;
  if (a->stopping) {
    free(a);
    return;
  }
  if (!r->ok) {
    log_warn("access: cannot read revocations", LS("error", r->error));
    return;
  }
  int n = PQntuples(r->res);
  for (int i = 0; i < n; i++) {
    const char *kind = PQgetvalue(r->res, i, 0), *id = PQgetvalue(r->res, i, 1);
    if (strcmp(kind, "now") == 0) {
      snprintf(a->since, sizeof a->since, "%s", id);
    } else if (strcmp(kind, "user") == 0) {
      delete_user(a, id);
    } else if (strcmp(kind, "key") == 0) {
      if (strcmp(PQgetvalue(r->res, i, 5), "t") == 0)
        add_key(a, id, PQgetvalue(r->res, i, 2), PQgetvalue(r->res, i, 3),
                strcmp(PQgetvalue(r->res, i, 4), "t") == 0);
      else
        revoke_key(a, id);
    }
  }
  if (!a->ready)
    log_info("access: keys and deleted accounts loaded", LI("keys", (long long)a->keys.n),
             LI("deleted_accounts", (long long)a->deleted.n));
  a->ready = 1;
}

static void read_changes(struct api_access *a) {
  if (a->reading || a->stopping) return;
  const char *p[1] = {a->since[0] ? a->since : NULL};
  if (db_query(a->ctx->db,
               "select kind, id, user_id, hash, admin, live"
               " from genq_access_changes($1::timestamptz)",
               1, p, changes_read, a) == 0)
    a->reading = 1;
}

static void poll_tick(uv_timer_t *t) {
  read_changes(t->data);
}

static void on_notice(const char *channel, const char *msg, size_t len, void *arg) {
  (void)channel;
  struct api_access *a = arg;
  if (!msg) { /* subscribed (again): read what a gap may have hidden */
    read_changes(a);
    return;
  }
  if (len > 4 && strncmp(msg, "key ", 4) == 0)
    revoke_key(a, msg + 4);
  else if (len > 5 && strncmp(msg, "user ", 5) == 0)
    delete_user(a, msg + 5);
}

int api_access_start(api_ctx *ctx) {
  char err[256];
  struct api_access *a = calloc(1, sizeof(*a));
  if (!a) return -1;
  a->ctx = ctx;
  if (rds_open(&a->sub, ctx->loop, ctx->cfg.redis_url, err, sizeof err) != 0 ||
      rds_subscribe(a->sub, QUEUE_ACCESS_CHANNEL, on_notice, a) != 0) {
    log_error("access: cannot subscribe", LS("error", err));
    if (a->sub) rds_close(a->sub, NULL, NULL);
    free(a);
    return -1;
  }
  uv_timer_init(ctx->loop, &a->poll);
  a->poll.data = a;
  uv_timer_start(&a->poll, poll_tick, 0, ACCESS_POLL_MS);
  ctx->access = a;
  return 0;
}

static void free_key(void *v) {
  free(v);
}

static void poll_closed(uv_handle_t *h) {
  struct api_access *a = h->data;
  tbl_free(&a->keys, free_key);
  tbl_free(&a->revoked, NULL);
  tbl_free(&a->revoked_hashes, NULL);
  tbl_free(&a->deleted, NULL);
  if (a->reading)
    a->stopping = 1; /* freed by its read's callback (db_close fails it) */
  else
    free(a);
}

void api_access_stop(api_ctx *ctx) {
  struct api_access *a = ctx->access;
  if (!a) return;
  ctx->access = NULL;
  rds_close(a->sub, NULL, NULL);
  uv_close((uv_handle_t *)&a->poll, poll_closed);
}

int api_access_ready(const api_ctx *ctx) {
  return ctx->access && ctx->access->ready;
}

int api_access_user_deleted(const api_ctx *ctx, const char *user) {
  return ctx->access && tbl_get(&ctx->access->deleted, user, strlen(user)) != NULL;
}

int api_access_key_revoked(const api_ctx *ctx, const char *key_id) {
  return ctx->access && tbl_get(&ctx->access->revoked, key_id, strlen(key_id)) != NULL;
}

int api_access_key_hash_revoked(const api_ctx *ctx, const unsigned char hash[32]) {
  return ctx->access && tbl_get(&ctx->access->revoked_hashes, hash, 32) != NULL;
}

static void touched(const db_result *r, void *arg) {
  (void)arg;
  if (!r->ok) log_warn("access: last use not recorded", LS("error", r->error));
}

int api_access_key(api_ctx *ctx, const unsigned char hash[32], api_user *u) {
  struct api_access *a = ctx->access;
  access_node *e = a ? tbl_get(&a->keys, hash, 32) : NULL;
  if (!e) return 0;
  access_key *k = e->value;
  snprintf(u->user, sizeof u->user, "%s", k->user);
  snprintf(u->key_id, sizeof u->key_id, "%s", k->id);
  u->admin = k->admin;
  u->exp = 0;
  uint64_t now = uv_now(ctx->loop);
  if (!k->touched_ms || now - k->touched_ms >= ACCESS_TOUCH_MS) {
    const char *p[1] = {k->id};
    if (db_query(ctx->db, "select genq_api_key_touch($1::uuid)", 1, p, touched, NULL) == 0)
      k->touched_ms = now;
  }
  return 1;
}

static void publish(api_ctx *ctx, const char *what, const char *id) {
  char msg[320];
  snprintf(msg, sizeof msg, "%s %s", what, id);
  if (rds_command(ctx->redis, NULL, NULL, "PUBLISH %s %s", QUEUE_ACCESS_CHANNEL, msg) != 0)
    log_warn("access: revocation not announced (Redis down): others learn it within a second",
             LS("kind", what));
}

void api_auth_user_deleted(api_ctx *ctx, const char *user) {
  if (ctx->access)
    delete_user(ctx->access, user);
  else
    api_events_revoked(ctx, user, NULL);
  publish(ctx, "user", user);
}
