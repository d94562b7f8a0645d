/* prom.c — the Prometheus text exposition format 0.0.4: the bounded
 * buffer, escaping, numbers, samples, histograms and the status slots
 * (prom.h). */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer ---- */

void prom_buf_init(prom_buf *b, size_t max) {
  memset(b, 0, sizeof *b);
  b->max = max;
}

void prom_buf_free(prom_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

char *prom_buf_take(prom_buf *b, size_t *len) {
  char *out = NULL;
  if (b->failed)
    free(b->data);
  else
    out = b->data ? b->data : calloc(1, 1); /* nothing written: "" */
  *len = out ? b->len : 0;
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
  return out;
}

/* Room for n more bytes and a NUL; 0, or -1 (b failed). */
static int reserve(prom_buf *b, size_t n) {
  if (b->failed) return -1;
  if (n > b->max || b->len > b->max - n) {
    b->failed = 1;
    return -1;
  }
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void prom_buf_append(prom_buf *b, const char *s, size_t n) {
  if (reserve(b, n) != 0) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void put(prom_buf *b, const char *s) {
  prom_buf_append(b, s, strlen(s));
}

/* s with backslash and line feed escaped, and the double quote too when
 * quote (label values). */
static void put_escaped(prom_buf *b, const char *s, int quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : quote && *s == '"' ? "\\\"" : NULL;
    if (!esc) continue;
    prom_buf_append(b, run, (size_t)(s - run));
    put(b, esc);
    run = s + 1;
  }
  prom_buf_append(b, run, (size_t)(s - run));
}

/* A number as the format reads it: integral values without a fraction,
 * others with the fewest digits (15 to 17) that read back the same. */
static void format_value(char *out, size_t n, double v) {
  if (isnan(v)) {
    snprintf(out, n, "NaN");
  } else if (isinf(v)) {
    snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
  } else if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(out, n, "%.0f", v);
  } else {
    for (int digits = 15; digits <= 17; digits++) {
      snprintf(out, n, "%.*g", digits, v);
      if (strtod(out, NULL) == v) break;
    }
  }
}

static void put_value(prom_buf *b, double v) {
  char num[40];
  format_value(num, sizeof num, v);
  put(b, num);
}

void prom_family(prom_buf *b, const char *name, const char *type, const char *help) {
  put(b, "# HELP ");
  put(b, name);
  put(b, " ");
  put_escaped(b, help, 0);
  put(b, "\n# TYPE ");
  put(b, name);
  put(b, " ");
  put(b, type);
  put(b, "\n");
}

/* name{labels[,extra_name="extra_value"]} and a space. */
static void put_series(prom_buf *b, const char *name, const char *suffix, const char *const *labels,
                       const char *extra_name, const char *extra_value) {
  put(b, name);
  if (suffix) put(b, suffix);
  int any = 0;
  for (const char *const *l = labels; l && l[0] && l[1]; l += 2) {
    put(b, any ? "," : "{");
    put(b, l[0]);
    put(b, "=\"");
    put_escaped(b, l[1], 1);
    put(b, "\"");
    any = 1;
  }
  if (extra_name) {
    put(b, any ? "," : "{");
    put(b, extra_name);
    put(b, "=\"");
    put_escaped(b, extra_value, 1);
    put(b, "\"");
    any = 1;
  }
  put(b, any ? "} " : " ");
}

void prom_sample(prom_buf *b, const char *name, const char *const *labels, double value) {
  put_series(b, name, NULL, labels, NULL, NULL);
  put_value(b, value);
  put(b, "\n");
}

void prom_sample_u64(prom_buf *b, const char *name, const char *const *labels, uint64_t value) {
  char num[24];
  snprintf(num, sizeof num, "%llu", (unsigned long long)value);
  put_series(b, name, NULL, labels, NULL, NULL);
  put(b, num);
  put(b, "\n");
}

/* ---- histograms ---- */

void prom_hist_observe(prom_hist *h, const prom_buckets *bk, double value) {
  unsigned i = 0;
  while (i < bk->n && value > bk->bounds[i])
    i++;
  h->counts[i]++;
  h->sum += value;
}

uint64_t prom_hist_count(const prom_hist *h, const prom_buckets *bk) {
  uint64_t n = 0;
  for (unsigned i = 0; i <= bk->n; i++)
    n += h->counts[i];
  return n;
}

void prom_histogram(prom_buf *b, const char *name, const char *const *labels,
                    const prom_buckets *bk, const prom_hist *h) {
  char le[40], num[24];
  uint64_t cum = 0;
  for (unsigned i = 0; i <= bk->n; i++) {
    cum += h->counts[i];
    if (i < bk->n)
      format_value(le, sizeof le, bk->bounds[i]);
    else
      snprintf(le, sizeof le, "+Inf");
    put_series(b, name, "_bucket", labels, "le", le);
    snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
    put(b, num);
    put(b, "\n");
  }
  put_series(b, name, "_sum", labels, NULL, NULL);
  put_value(b, h->sum);
  put(b, "\n");
  put_series(b, name, "_count", labels, NULL, NULL);
  snprintf(num, sizeof num, "%llu", (unsigned long long)cum);
  put(b, num);
  put(b, "\n");
}

/* ---- status slots ---- */

/* The codes with a slot of their own, in increasing order; the class
 * slots and "other" follow them. */
static const short known_codes[] = {200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400,
                                    401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412,
                                    413, 415, 416, 422, 429, 431, 500, 501, 502, 503, 504};
static const char *const known_labels[] = {
    "200", "201", "202", "204", "206", "301", "302", "304", "307", "308", "400",
    "401", "402", "403", "404", "405", "406", "408", "409", "410", "411", "412",
    "413", "415", "416", "422", "429", "431", "500", "501", "502", "503", "504"};
#define NKNOWN ((int)(sizeof known_codes / sizeof known_codes[0]))
_Static_assert(sizeof known_labels / sizeof known_labels[0] == NKNOWN, "a label per code");
/* slots NKNOWN .. NKNOWN+4: 1xx .. 5xx; NKNOWN+5: other */
_Static_assert(NKNOWN + 6 <= PROM_STATUS_SLOTS, "PROM_STATUS_SLOTS too small");

int prom_status_slot(int status) {
  if (status < 100 || status > 599) return NKNOWN + 5;
  int lo = 0, hi = NKNOWN - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (known_codes[mid] == status) return mid;
    if (known_codes[mid] < status)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NKNOWN + status / 100 - 1;
}

const char *prom_status_label(int slot) {
  static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  if (slot >= 0 && slot < NKNOWN) return known_labels[slot];
  if (slot >= NKNOWN && slot < NKNOWN + 6) return classes[slot - NKNOWN];
  return "other";
}
