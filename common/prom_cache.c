/* prom_cache.c — exposition text from an outside source, read on scrape
 * at most once per max_age_ms, waited for at most wait_ms (prom_cache.h).
 *
 * One read at a time. A scrape that finds the text stale starts a read (or
 * joins the one in flight) and waits; the deadline timer, armed by the
 * first waiter, lets every waiter go with what there is when the read is
 * slow (PostgreSQL away: a statement may queue for seconds before it
 * fails). The cache is freed only once both its timer has closed and no
 * read is outstanding, so a read that answers after prom_cache_close
 * finds it still there. */
#include "prom_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  void (*ready)(void *arg);
  void *arg;
} waiter;

struct prom_cache {
  uv_loop_t *loop;
  uv_timer_t timer; /* the waiters' deadline */
  prom_cache_opts o;
  char *text; /* the last text a read gave, NULL before */
  size_t len;
  uint64_t loaded_at;  /* loop time of that read's end */
  uint64_t started_at; /* loop time the last read started */
  int reading, ever_read, up, closing, timer_closed;
  uint64_t reads, errors;
  unsigned nwait;
  waiter wait[PROM_CACHE_WAITERS];
};

int prom_cache_new(prom_cache **out, uv_loop_t *loop, const prom_cache_opts *o) {
  prom_cache *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->loop = loop;
  c->o = *o;
  if (!c->o.max_age_ms) c->o.max_age_ms = 1000;
  if (!c->o.wait_ms) c->o.wait_ms = 1000;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  *out = c;
  return 0;
}

static void maybe_free(prom_cache *c) {
  if (!c->closing || !c->timer_closed || c->reading) return;
  free(c->text);
  free(c);
}

/* Lets every waiter go. A ready callback may call prom_cache_get again
 * (it then waits for the next read, or goes at once). */
static void release(prom_cache *c) {
  waiter w[PROM_CACHE_WAITERS];
  unsigned n = c->nwait;
  memcpy(w, c->wait, n * sizeof w[0]);
  c->nwait = 0;
  uv_timer_stop(&c->timer);
  for (unsigned i = 0; i < n; i++)
    w[i].ready(w[i].arg);
}

static void deadline(uv_timer_t *t) {
  release(t->data);
}

void prom_cache_done(prom_cache *c, char *text, size_t len) {
  c->reading = 0;
  if (text) {
    free(c->text);
    c->text = text;
    c->len = len;
    c->loaded_at = uv_now(c->loop);
    c->ever_read = 1;
    c->up = 1;
  } else {
    c->errors++;
    c->up = 0;
  }
  if (c->closing) {
    maybe_free(c);
    return;
  }
  release(c);
}

static int fresh(const prom_cache *c, uint64_t now) {
  return c->ever_read && c->up && now - c->loaded_at < c->o.max_age_ms;
}

void prom_cache_get(prom_cache *c, void (*ready)(void *arg), void *arg) {
  uint64_t now = uv_now(c->loop);
  if (c->closing || fresh(c, now) || c->nwait == PROM_CACHE_WAITERS ||
      (!c->reading && c->reads && now - c->started_at < c->o.max_age_ms)) {
    ready(arg);
    return;
  }
  c->wait[c->nwait++] = (waiter){ready, arg};
  if (c->nwait == 1) uv_timer_start(&c->timer, deadline, c->o.wait_ms, 0);
  if (c->reading) return;
  c->reading = 1;
  c->reads++;
  c->started_at = now;
  c->o.read(c, c->o.arg); /* may end at once (prom_cache_done): the waiters go then */
}

void prom_cache_write(const prom_cache *c, prom_buf *b) {
  char name[128], help[256];
  if (c->text) prom_buf_append(b, c->text, c->len);
  snprintf(name, sizeof name, "%s_up", c->o.name);
  snprintf(help, sizeof help, "1 when the last read of %s succeeded, 0 when it failed.", c->o.what);
  prom_family(b, name, "gauge", help);
  prom_sample(b, name, NULL, c->up);
  if (c->ever_read) {
    snprintf(name, sizeof name, "%s_age_seconds", c->o.name);
    snprintf(help, sizeof help, "Age of the values read from %s.", c->o.what);
    prom_family(b, name, "gauge", help);
    prom_sample(b, name, NULL, (double)(uv_now(c->loop) - c->loaded_at) / 1000.0);
  }
  snprintf(name, sizeof name, "%s_reads_total", c->o.name);
  snprintf(help, sizeof help, "Reads of %s started by scrapes.", c->o.what);
  prom_family(b, name, "counter", help);
  prom_sample_u64(b, name, NULL, c->reads);
  snprintf(name, sizeof name, "%s_read_errors_total", c->o.name);
  snprintf(help, sizeof help, "Reads of %s that failed.", c->o.what);
  prom_family(b, name, "counter", help);
  prom_sample_u64(b, name, NULL, c->errors);
}

static void timer_closed(uv_handle_t *h) {
  prom_cache *c = h->data;
  c->timer_closed = 1;
  maybe_free(c);
}

void prom_cache_close(prom_cache *c) {
  release(c);
  c->closing = 1;
  uv_close((uv_handle_t *)&c->timer, timer_closed);
}
