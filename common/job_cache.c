/* job_cache.c — the job JSON read once and kept until it changes (see
 * job_cache.h for what "fresh" means here).
 *
 * An entry exists while it keeps a value or a read of it is on its way:
 *   kept     value holds "<user>\0<json>\0", the entry is on the LRU list;
 *   reading  a db_query is outstanding; waiting are its readers, later the
 *            readers that came after a notice (stale) and need the next read.
 * A kept entry is never reading: a reader that finds the value too old drops
 * it before it starts the read. pins keep an entry allocated while its
 * readers' callbacks run (they may call back into the cache). */
#include "job_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JC_ID_LEN 36
#define JC_SQL "select user_id, job from genq_job_read($1::uuid)"

typedef struct jc_waiter {
  struct jc_waiter *next;
  job_cache_cb cb;
  void *arg;
} jc_waiter;

typedef struct jc_entry {
  struct jc_entry *hnext;         /* bucket chain */
  struct jc_entry *older, *newer; /* LRU order, while kept */
  job_cache *c;
  char *value; /* while kept */
  size_t user_len, json_len;
  uint64_t expires_ms;
  jc_waiter *waiting, *later;
  int reading, stale, pins;
  char id[JC_ID_LEN + 1];
} jc_entry;

struct job_cache {
  uv_loop_t *loop;
  db *db;
  job_cache_options o;
  jc_entry **buckets;
  size_t nbuckets; /* a power of two */
  jc_entry *oldest, *newest;
  unsigned kept, entries;
  size_t bytes;
  int live, closing;
};

/* ---- table ---- */

static jc_entry **jc_bucket(job_cache *c, const char *id) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = id; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return &c->buckets[h & (c->nbuckets - 1)];
}

static jc_entry *jc_find(job_cache *c, const char *id) {
  for (jc_entry *e = *jc_bucket(c, id); e; e = e->hnext)
    if (memcmp(e->id, id, JC_ID_LEN + 1) == 0) return e;
  return NULL;
}

static void jc_unkeep(jc_entry *e) {
  job_cache *c = e->c;
  if (!e->value) return;
  if (e->older)
    e->older->newer = e->newer;
  else
    c->oldest = e->newer;
  if (e->newer)
    e->newer->older = e->older;
  else
    c->newest = e->older;
  e->older = e->newer = NULL;
  c->kept--;
  c->bytes -= e->user_len + e->json_len + 2;
  free(e->value);
  e->value = NULL;
}

static void jc_free_cache(job_cache *c) {
  free(c->buckets);
  free(c);
}

/* Frees e once nothing refers to it any more (and the cache, once closing
 * and empty). */
static void jc_maybe_free(jc_entry *e) {
  job_cache *c = e->c;
  if (e->value || e->reading || e->pins) return;
  jc_entry **p = jc_bucket(c, e->id);
  while (*p != e)
    p = &(*p)->hnext;
  *p = e->hnext;
  c->entries--;
  free(e);
  if (c->closing && c->entries == 0) jc_free_cache(c);
}

static void jc_touch(jc_entry *e) {
  job_cache *c = e->c;
  if (c->newest == e) return;
  if (e->older)
    e->older->newer = e->newer;
  else
    c->oldest = e->newer;
  e->newer->older = e->older; /* e is not the newest, so it has a newer one */
  e->older = c->newest;
  e->newer = NULL;
  c->newest->newer = e;
  c->newest = e;
}

static void jc_keep(jc_entry *e, const char *user, size_t ulen, const char *json, size_t jlen) {
  job_cache *c = e->c;
  size_t size = ulen + jlen + 2;
  if (size > c->o.max_bytes / 8) return; /* one job never crowds out the rest */
  while (c->oldest && (c->kept >= c->o.max_entries || c->bytes + size > c->o.max_bytes)) {
    jc_entry *old = c->oldest;
    jc_unkeep(old);
    jc_maybe_free(old);
  }
  char *v = malloc(size);
  if (!v) return;
  memcpy(v, user, ulen + 1);
  memcpy(v + ulen + 1, json, jlen + 1);
  e->value = v;
  e->user_len = ulen;
  e->json_len = jlen;
  e->expires_ms = uv_now(c->loop) + c->o.ttl_ms;
  e->older = c->newest;
  e->newer = NULL;
  if (c->newest)
    c->newest->newer = e;
  else
    c->oldest = e;
  c->newest = e;
  c->kept++;
  c->bytes += size;
}

/* ---- reading ---- */

static int jc_read(jc_entry *e);

static void jc_answer(jc_entry *e, jc_waiter *w, const job_cache_read *r) {
  e->pins++;
  while (w) {
    jc_waiter *next = w->next;
    w->cb(r, w->arg);
    free(w);
    w = next;
  }
  e->pins--;
}

static void jc_read_done(const db_result *r, void *arg) {
  jc_entry *e = arg;
  job_cache *c = e->c;
  jc_waiter *w = e->waiting;
  int stale = e->stale;
  e->waiting = NULL;
  e->reading = 0;
  e->stale = 0;
  job_cache_read out = {0};
  if (!r->ok) {
    out.failure = r;
  } else {
    out.ok = 1;
    if (PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0) && !PQgetisnull(r->res, 0, 1)) {
      out.user = PQgetvalue(r->res, 0, 0);
      out.json = PQgetvalue(r->res, 0, 1);
      out.len = (size_t)PQgetlength(r->res, 0, 1);
      if (!stale && c->live && !c->closing)
        jc_keep(e, out.user, (size_t)PQgetlength(r->res, 0, 0), out.json, out.len);
    }
  }
  /* the readers that came after a notice get a read of their own, begun
   * before anyone is answered (an answer may start reads of this job) */
  jc_waiter *lw = e->later;
  e->later = NULL;
  if (lw && !c->closing) {
    e->waiting = lw;
    if (jc_read(e) == 0)
      lw = NULL;
    else
      e->waiting = NULL;
  }
  jc_answer(e, w, &out);
  if (lw) {
    db_result busy = {.sqlstate = "08001", .error = "the database queue is full"};
    job_cache_read failed = {.failure = &busy};
    jc_answer(e, lw, &failed);
  }
  jc_maybe_free(e);
}

/* Starts the read for e->waiting. 0, or -1 (nothing started). */
static int jc_read(jc_entry *e) {
  const char *params[1] = {e->id};
  e->reading = 1;
  e->pins++; /* db_query may answer before it returns */
  int rc = db_query(e->c->db, JC_SQL, 1, params, jc_read_done, e);
  e->pins--;
  if (rc != 0) e->reading = 0;
  return rc;
}

/* ---- API ---- */

int job_cache_open(job_cache **out, uv_loop_t *loop, db *d, const job_cache_options *o) {
  job_cache *c = calloc(1, sizeof(*c));
  if (!c) return -1;
  c->loop = loop;
  c->db = d;
  if (o) c->o = *o;
  if (!c->o.max_entries) c->o.max_entries = 16384;
  if (!c->o.max_bytes) c->o.max_bytes = (size_t)32 << 20;
  if (!c->o.ttl_ms) c->o.ttl_ms = 5000;
  c->nbuckets = 1024;
  while (c->nbuckets < c->o.max_entries)
    c->nbuckets <<= 1;
  if (!(c->buckets = calloc(c->nbuckets, sizeof(jc_entry *)))) {
    free(c);
    return -1;
  }
  *out = c;
  return 0;
}

int job_cache_get(job_cache *c, const char *id, job_cache_cb cb, void *arg) {
  if (strlen(id) != JC_ID_LEN) {
    job_cache_read none = {.ok = 1};
    cb(&none, arg);
    return 0;
  }
  jc_entry *e = jc_find(c, id);
  if (e && e->value) {
    if (c->live && uv_now(c->loop) < e->expires_ms) {
      jc_touch(e);
      job_cache_read hit = {1, NULL, e->value, e->value + e->user_len + 1, e->json_len};
      e->pins++;
      cb(&hit, arg);
      e->pins--;
      jc_maybe_free(e);
      return 0;
    }
    jc_unkeep(e); /* too old: read it again */
  }
  jc_waiter *w = malloc(sizeof(*w));
  if (!w) return -1;
  *w = (jc_waiter){NULL, cb, arg};
  if (!e) {
    if (!(e = calloc(1, sizeof(*e)))) {
      free(w);
      return -1;
    }
    e->c = c;
    memcpy(e->id, id, JC_ID_LEN + 1);
    jc_entry **b = jc_bucket(c, id);
    e->hnext = *b;
    *b = e;
    c->entries++;
  }
  if (e->reading) {
    jc_waiter **tail = e->stale ? &e->later : &e->waiting;
    while (*tail)
      tail = &(*tail)->next;
    *tail = w;
    return 0;
  }
  e->waiting = w;
  if (jc_read(e) != 0) {
    e->waiting = NULL;
    free(w);
    jc_maybe_free(e);
    return -1;
  }
  return 0;
}

void job_cache_forget(job_cache *c, const char *id) {
  if (strlen(id) != JC_ID_LEN) return;
  jc_entry *e = jc_find(c, id);
  if (!e) return;
  jc_unkeep(e);
  if (e->reading) e->stale = 1;
  jc_maybe_free(e);
}

void job_cache_set_live(job_cache *c, int live) {
  c->live = live;
  for (size_t i = 0; i < c->nbuckets; i++) {
    jc_entry *e = c->buckets[i];
    while (e) {
      jc_entry *next = e->hnext;
      jc_unkeep(e);
      if (e->reading) e->stale = 1;
      jc_maybe_free(e);
      e = next;
    }
  }
}

unsigned job_cache_entries(const job_cache *c) {
  return c->kept;
}

size_t job_cache_bytes(const job_cache *c) {
  return c->bytes;
}

void job_cache_close(job_cache *c) {
  if (!c) return;
  c->closing = 1;
  c->entries++; /* held while emptying, so the walk cannot free c */
  job_cache_set_live(c, 0);
  if (--c->entries == 0) jc_free_cache(c);
}
