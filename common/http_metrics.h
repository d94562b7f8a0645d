#ifndef GENQ_HTTP_METRICS_H
#define GENQ_HTTP_METRICS_H

#include "http_server.h"
#include "prom.h"

/* http_metrics.h — what an HTTP server answered, by route, method and
 * status, and how long each answer took (docs/metrics.md):
 *
 *   genq_http_requests_total{route,method,code}            counter
 *   genq_http_request_duration_seconds{route,method}       histogram
 *   genq_http_connections, genq_http_connections_refused_total{reason},
 *   genq_http_accept_errors_total, genq_http_write_timeouts_total
 *
 * kept in memory and written on a scrape. Counting is
 * http_metrics_observe, the server's observer (http_server_set_observer):
 * two array increments and a histogram's comparisons per answer — no
 * allocation, no lock, no text. Every label is bounded: a route is one of
 * the caller's templates (the number the handler gave the request with
 * http_req_set_route, never a raw path), a method one of GET, HEAD, POST,
 * PUT, DELETE, PATCH, OPTIONS or "other", a code one of prom_status_slot's. */

#define HTTP_METRICS_MAX_ROUTES 48

typedef struct http_metrics http_metrics;

/* routes: the label of each route number (e.g. "/v1/jobs/{id}"), n of
 * them (at most HTTP_METRICS_MAX_ROUTES); an answer whose route number is
 * n or more counts under route 0. Borrowed: the strings must outlive m.
 * NULL when out of memory. */
http_metrics *http_metrics_new(const char *const *routes, unsigned n);
void http_metrics_free(http_metrics *m);
/* An http_observer_cb: arg is the http_metrics. */
void http_metrics_observe(const http_request *r, int status, uint64_t elapsed_ns, void *arg);
/* Writes the request families, and the connection families of s when s
 * is not NULL. Only label sets that counted something are written. */
void http_metrics_write(const http_metrics *m, const http_server *s, prom_buf *b);

#endif
