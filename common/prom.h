#ifndef GENQ_PROM_H
#define GENQ_PROM_H

#include <stddef.h>
#include <stdint.h>

/* prom.h — Prometheus metrics: the text exposition format 0.0.4 that a
 * scrape of GET /metrics answers, and the in-memory histograms and status
 * slots it is written from (docs/metrics.md lists every series).
 *
 * Counting is the hot path, formatting is not: a count is an array
 * increment and prom_hist_observe a comparison per bucket and two
 * additions — no allocation, no lock, no text. Text is made only on a
 * scrape, into a prom_buf.
 *
 * Writing a family: prom_family (its HELP and TYPE lines) once, then its
 * samples. A label set is a NULL-terminated array of name, value pairs,
 * e.g. {"kind", "video", "outcome", "succeeded", NULL}; NULL is no label.
 * Label values are escaped as the format says (backslash, double quote
 * and line feed as \\, \" and \n), HELP text too (backslash and line
 * feed). Metric and label names are the caller's constants, not checked. */

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the text ---- */

/* A growing text buffer with a ceiling: a write that would pass max bytes
 * (or finds no memory) marks it failed and every later write is dropped. */
typedef struct {
  char *data;
  size_t len, cap, max;
  int failed;
} prom_buf;

void prom_buf_init(prom_buf *b, size_t max);
void prom_buf_free(prom_buf *b);
/* The text written, NUL-terminated, and its length in *len: the caller
 * frees it. NULL when a write failed (nothing to free). b is empty after
 * either way. */
char *prom_buf_take(prom_buf *b, size_t *len);
/* Raw bytes: a piece of exposition text written earlier. */
void prom_buf_append(prom_buf *b, const char *s, size_t n);

/* "# HELP name help" and "# TYPE name type" (type: "counter", "gauge",
 * "histogram"). */
void prom_family(prom_buf *b, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. Integral values are written without a
 * fraction, others with the fewest digits that read back the same; NaN and
 * the infinities as NaN, +Inf, -Inf. */
void prom_sample(prom_buf *b, const char *name, const char *const *labels, double value);
/* One sample of an integer counter or gauge, exact to the last unit. */
void prom_sample_u64(prom_buf *b, const char *name, const char *const *labels, uint64_t value);

/* ---- histograms ---- */

#define PROM_HIST_MAX_BUCKETS 20

/* A histogram's bucket bounds: increasing upper bounds, +Inf not among
 * them (it is always the last bucket). Shared by every histogram of a
 * family. */
typedef struct {
  const double *bounds;
  unsigned n; /* at most PROM_HIST_MAX_BUCKETS */
} prom_buckets;

/* Observations per bucket (not cumulative: counts[i] holds those above
 * bounds[i-1] and at most bounds[i]; counts[n] those above every bound)
 * and their sum. Zeroed is empty. */
typedef struct {
  uint64_t counts[PROM_HIST_MAX_BUCKETS + 1];
  double sum;
} prom_hist;

void prom_hist_observe(prom_hist *h, const prom_buckets *bk, double value);
/* Observations in all. */
uint64_t prom_hist_count(const prom_hist *h, const prom_buckets *bk);
/* name_bucket{labels,le="<bound>"} for every bound and le="+Inf", each
 * counting every observation at most that bound (cumulative), then
 * name_sum{labels} and name_count{labels}. Call prom_family(name,
 * "histogram", ...) first. */
void prom_histogram(prom_buf *b, const char *name, const char *const *labels,
                    const prom_buckets *bk, const prom_hist *h);

/* ---- HTTP status codes as a bounded label ---- */

/* Slots of HTTP status codes: every code genq answers or a provider
 * commonly sends has its own; any other code falls into its class' slot
 * ("1xx" ... "5xx"), and a number outside 100..599 into "other". A label
 * of these never takes more than PROM_STATUS_SLOTS values. */
#define PROM_STATUS_SLOTS 40
int prom_status_slot(int status);
/* The label value of a slot ("404", "5xx", "other"). */
const char *prom_status_label(int slot);

/* ---- the process (prom_process.c) ---- */

/* The standard process_* series of this process, read on the spot from
 * getrusage, getrlimit and /proc/self: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds. A value
 * that cannot be read is left out. */
void prom_write_process(prom_buf *b);

#endif
