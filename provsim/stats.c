/* Simulator counters behind GET /_sim/stats (see provsim.h). An open
 * addressing hash table keyed by "provider\x1fname\x1fkey", so counting a
 * create stays O(1) however many distinct prompts a benchmark sends. Gauges
 * are not stored: their callbacks are read when the JSON is made. */
#include "provsim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STATS_MAX_ENTRIES (1u << 20) /* beyond, new keys are not counted */
#define STATS_MAX_DECLS 64
#define STATS_MAX_KEY 8192 /* whole "provider\x1fname\x1fkey" string, NUL included */
#define SEP '\x1f'

typedef struct {
  char *k; /* NULL: free slot */
  long long n;
} stat_entry;

typedef struct {
  char provider[32];
  char name[32];
  int is_map;
  simstats_gauge_fn gauge; /* NULL: a counter or a map */
  void *gauge_arg;
} stat_decl;

struct simstats {
  stat_entry *slots;
  size_t cap, used;
  stat_decl decls[STATS_MAX_DECLS];
  int ndecls;
};

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

simstats *simstats_new(void) {
  simstats *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  st->cap = 256;
  if (!(st->slots = calloc(st->cap, sizeof *st->slots))) {
    free(st);
    return NULL;
  }
  return st;
}

static void clear(simstats *st) {
  for (size_t i = 0; i < st->cap; i++) {
    free(st->slots[i].k);
    st->slots[i] = (stat_entry){0};
  }
  st->used = 0;
}

void simstats_free(simstats *st) {
  if (!st) return;
  clear(st);
  free(st->slots);
  free(st);
}

void simstats_reset(simstats *st) {
  clear(st);
}

static stat_decl *add_decl(simstats *st, const char *provider, const char *name) {
  size_t plen = strlen(provider), nlen = strlen(name);
  if (st->ndecls == STATS_MAX_DECLS || plen >= sizeof st->decls[0].provider ||
      nlen >= sizeof st->decls[0].name)
    return NULL;
  stat_decl *d = &st->decls[st->ndecls++];
  *d = (stat_decl){0};
  memcpy(d->provider, provider, plen + 1);
  memcpy(d->name, name, nlen + 1);
  return d;
}

int simstats_declare(simstats *st, const char *provider, const char *name, int is_map) {
  stat_decl *d = add_decl(st, provider, name);
  if (!d) return -1;
  d->is_map = is_map;
  return 0;
}

int simstats_declare_gauge(simstats *st, const char *provider, const char *name,
                           simstats_gauge_fn fn, void *arg) {
  stat_decl *d = add_decl(st, provider, name);
  if (!d) return -1;
  d->gauge = fn;
  d->gauge_arg = arg;
  return 0;
}

static stat_entry *find(stat_entry *slots, size_t cap, const char *k) {
  size_t i = hash(k) & (cap - 1);
  while (slots[i].k && strcmp(slots[i].k, k) != 0)
    i = (i + 1) & (cap - 1);
  return &slots[i];
}

static int grow(simstats *st) {
  size_t ncap = st->cap * 2;
  stat_entry *ns = calloc(ncap, sizeof *ns);
  if (!ns) return -1;
  for (size_t i = 0; i < st->cap; i++)
    if (st->slots[i].k) *find(ns, ncap, st->slots[i].k) = st->slots[i];
  free(st->slots);
  st->slots = ns;
  st->cap = ncap;
  return 0;
}

long long simstats_incr(simstats *st, const char *provider, const char *name, const char *key) {
  size_t klen = key ? strlen(key) : 0;
  size_t len = strlen(provider) + strlen(name) + (key ? klen + 1 : 0) + 2;
  if (len > STATS_MAX_KEY) return -1; /* callers hash longer keys */
  char *k = malloc(len);
  if (!k) return -1;
  char *p = stpcpy(k, provider);
  *p++ = SEP;
  p = stpcpy(p, name);
  if (key) {
    *p++ = SEP;
    memcpy(p, key, klen + 1);
  }
  stat_entry *e = find(st->slots, st->cap, k);
  if (e->k) {
    free(k);
    return ++e->n;
  }
  if (st->used >= STATS_MAX_ENTRIES || ((st->used + 1) * 2 > st->cap && grow(st) < 0)) {
    free(k);
    return -1;
  }
  e = find(st->slots, st->cap, k);
  e->k = k;
  st->used++;
  return e->n = 1;
}

/* obj[name], created as an object when missing. */
static cJSON *child_object(cJSON *obj, const char *name) {
  cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, name);
  return c ? c : cJSON_AddObjectToObject(obj, name);
}

char *simstats_json(const simstats *st) {
  cJSON *root = cJSON_CreateObject();
  char *out = NULL;
  if (!root) return NULL;
  for (int i = 0; i < st->ndecls; i++) {
    const stat_decl *d = &st->decls[i];
    cJSON *prov = child_object(root, d->provider);
    if (!prov || cJSON_GetObjectItemCaseSensitive(prov, d->name)) continue;
    cJSON *v = d->is_map ? cJSON_AddObjectToObject(prov, d->name)
                         : cJSON_AddNumberToObject(prov, d->name,
                                                   d->gauge ? (double)d->gauge(d->gauge_arg) : 0);
    if (!v) goto done;
  }
  for (size_t i = 0; i < st->cap; i++) {
    const stat_entry *e = &st->slots[i];
    if (!e->k) continue;
    char buf[STATS_MAX_KEY];
    size_t kl = strlen(e->k);
    if (kl >= sizeof buf) continue;
    memcpy(buf, e->k, kl + 1);
    char *name = strchr(buf, SEP), *key;
    if (!name) continue;
    *name++ = '\0';
    if ((key = strchr(name, SEP))) *key++ = '\0';
    cJSON *prov = child_object(root, buf);
    if (!prov) goto done;
    if (key) {
      cJSON *map = child_object(prov, name);
      if (!map || !cJSON_AddNumberToObject(map, key, (double)e->n)) goto done;
    } else {
      cJSON *c = cJSON_GetObjectItemCaseSensitive(prov, name);
      if (c)
        cJSON_SetNumberValue(c, (double)e->n);
      else if (!cJSON_AddNumberToObject(prov, name, (double)e->n))
        goto done;
    }
  }
  out = cJSON_PrintUnformatted(root);
done:
  cJSON_Delete(root);
  return out;
}
