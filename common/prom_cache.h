#ifndef GENQ_PROM_CACHE_H
#define GENQ_PROM_CACHE_H

#include <uv.h>

#include "prom.h"

/* prom_cache.h — exposition text made from an outside source (the fleet
 * in PostgreSQL, the provider limits in Redis) when a scrape asks for it,
 * read at most once per max_age_ms and never waited for longer than
 * wait_ms. A scrape storm costs the source at most one read per max_age_ms
 * per process; a scrape while the source is down still answers at once,
 * with the last text a read gave and the cache's own series saying how
 * stale it is:
 *
 *   <name>_up                 gauge    1 when the last read succeeded
 *   <name>_age_seconds        gauge    age of the text (absent before the first)
 *   <name>_reads_total        counter  reads started
 *   <name>_read_errors_total  counter  reads that failed
 *
 * Everything runs on the loop thread; nothing blocks. */

typedef struct prom_cache prom_cache;

/* Starts a read of the source. It must end with exactly one
 * prom_cache_done(c, ...), later from the loop or before it returns. */
typedef void (*prom_cache_read_fn)(prom_cache *c, void *arg);

typedef struct {
  const char *name;    /* prefix of the cache's own series, e.g. "genq_fleet" */
  const char *what;    /* the source, for their HELP text: "the fleet state in PostgreSQL" */
  unsigned max_age_ms; /* text younger than this is served as it is (default 1000) */
  unsigned wait_ms;    /* the longest a scrape waits for a read (default 1000) */
  prom_cache_read_fn read;
  void *arg;
} prom_cache_opts;

/* 0, or -1 when out of memory. name, what and arg must outlive the cache. */
int prom_cache_new(prom_cache **out, uv_loop_t *loop, const prom_cache_opts *o);

/* A read ended: text (malloc'd exposition text, taken by the cache) when
 * it succeeded, NULL when it failed (the last text is kept). */
void prom_cache_done(prom_cache *c, char *text, size_t len);

/* Calls ready(arg) exactly once: inside this call when the text is fresh,
 * or when a read failed within the last max_age_ms (it is not asked again
 * sooner); else once the read this starts (or the one in flight) ends, or
 * wait_ms after this call, whichever comes first — from the loop. At most
 * PROM_CACHE_WAITERS wait at once: beyond, ready runs at once with what
 * there is. */
#define PROM_CACHE_WAITERS 64
void prom_cache_get(prom_cache *c, void (*ready)(void *arg), void *arg);

/* Appends the last text a read gave (nothing before the first) and the
 * cache's own series. */
void prom_cache_write(const prom_cache *c, prom_buf *b);

/* Runs every waiter's ready (with what there is), then stops: its timer
 * closes, and the cache is freed once a read in flight has ended. No
 * other call after this one. */
void prom_cache_close(prom_cache *c);

#endif
