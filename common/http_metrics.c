/* http_metrics.c — requests by route, method and status, and their
 * latency, from the HTTP server's observer (http_metrics.h). */
#include "http_metrics.h"

#include <stdlib.h>
#include <string.h>

#define NMETHODS 8

static const char *const method_names[NMETHODS] = {"GET",    "HEAD",  "POST",    "PUT",
                                                   "DELETE", "PATCH", "OPTIONS", "other"};

/* Seconds: from a poll answered from the cache (well under a millisecond)
 * to an upload or an export of seconds. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const prom_buckets latency = {latency_bounds,
                                     sizeof latency_bounds / sizeof latency_bounds[0]};

struct http_metrics {
  const char *const *routes;
  unsigned nroutes;
  uint64_t count[HTTP_METRICS_MAX_ROUTES][NMETHODS][PROM_STATUS_SLOTS];
  prom_hist latency[HTTP_METRICS_MAX_ROUTES][NMETHODS];
};

http_metrics *http_metrics_new(const char *const *routes, unsigned n) {
  if (n == 0 || n > HTTP_METRICS_MAX_ROUTES) return NULL;
  http_metrics *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->routes = routes;
  m->nroutes = n;
  return m;
}

void http_metrics_free(http_metrics *m) {
  free(m);
}

/* The method's index: a switch on its first letter and length (llhttp's
 * method names are upper case). */
static unsigned method_index(const char *m) {
  size_t n = strlen(m);
  switch (m[0]) {
  case 'G':
    return n == 3 && !strcmp(m, "GET") ? 0 : 7;
  case 'H':
    return n == 4 && !strcmp(m, "HEAD") ? 1 : 7;
  case 'P':
    if (n == 4 && !strcmp(m, "POST")) return 2;
    if (n == 3 && !strcmp(m, "PUT")) return 3;
    return n == 5 && !strcmp(m, "PATCH") ? 5 : 7;
  case 'D':
    return n == 6 && !strcmp(m, "DELETE") ? 4 : 7;
  case 'O':
    return n == 7 && !strcmp(m, "OPTIONS") ? 6 : 7;
  default:
    return 7;
  }
}

void http_metrics_observe(const http_request *r, int status, uint64_t elapsed_ns, void *arg) {
  http_metrics *m = arg;
  unsigned route = http_req_route(r);
  if (route >= m->nroutes) route = 0;
  unsigned method = method_index(http_req_method(r));
  m->count[route][method][prom_status_slot(status)]++;
  prom_hist_observe(&m->latency[route][method], &latency, (double)elapsed_ns / 1e9);
}

static void write_connections(const http_server *s, prom_buf *b) {
  http_server_stats_t st;
  http_server_stats(s, &st);
  prom_family(b, "genq_http_connections", "gauge", "HTTP connections open now.");
  prom_sample_u64(b, "genq_http_connections", NULL, st.connections);
  prom_family(b, "genq_http_connections_refused_total", "counter",
              "HTTP connections closed at accept: the process' cap (max_connections) or the "
              "per-address cap (per_ip) was reached.");
  const char *const full[] = {"reason", "max_connections", NULL};
  const char *const per_ip[] = {"reason", "per_ip", NULL};
  prom_sample_u64(b, "genq_http_connections_refused_total", full, st.refused_full);
  prom_sample_u64(b, "genq_http_connections_refused_total", per_ip, st.refused_per_ip);
  prom_family(b, "genq_http_accept_errors_total", "counter",
              "Accepts that failed (out of file descriptors or memory).");
  prom_sample_u64(b, "genq_http_accept_errors_total", NULL, st.accept_errors);
  prom_family(b, "genq_http_write_timeouts_total", "counter",
              "Connections reset because the client stopped reading its answer.");
  prom_sample_u64(b, "genq_http_write_timeouts_total", NULL, st.write_timeouts);
}

void http_metrics_write(const http_metrics *m, const http_server *s, prom_buf *b) {
  prom_family(b, "genq_http_requests_total", "counter",
              "HTTP requests answered, by route template, method and status code.");
  for (unsigned r = 0; r < m->nroutes; r++)
    for (unsigned me = 0; me < NMETHODS; me++)
      for (int c = 0; c < PROM_STATUS_SLOTS; c++) {
        if (!m->count[r][me][c]) continue;
        const char *const labels[] = {"route", m->routes[r],         "method", method_names[me],
                                      "code",  prom_status_label(c), NULL};
        prom_sample_u64(b, "genq_http_requests_total", labels, m->count[r][me][c]);
      }
  prom_family(b, "genq_http_request_duration_seconds", "histogram",
              "Time from a complete HTTP request to its answer (a stream: its head), by route "
              "template and method.");
  for (unsigned r = 0; r < m->nroutes; r++)
    for (unsigned me = 0; me < NMETHODS; me++) {
      const prom_hist *h = &m->latency[r][me];
      if (!prom_hist_count(h, &latency)) continue;
      const char *const labels[] = {"route", m->routes[r], "method", method_names[me], NULL};
      prom_histogram(b, "genq_http_request_duration_seconds", labels, &latency, h);
    }
  if (s) write_connections(s, b);
}
