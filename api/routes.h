#ifndef GENQ_API_ROUTES_H
#define GENQ_API_ROUTES_H

#include <stddef.h>

/* routes.h — genq-api's route table: every path template it serves, the
 * methods each allows, and the route id its handler is chosen by. One
 * definition: api_route_match() reads it, `genq-api --routes` prints it,
 * and tests/e2e/e2e_openapi.sh holds that print against api/openapi.yaml. */

/* A path parameter (a job id, a callback token) longer than this is none
 * genq ever gave. */
#define API_ROUTE_PARAM_MAX 80

typedef enum {
  API_ROUTE_NONE,
  API_ROUTE_HEALTHZ,
  API_ROUTE_READYZ,
  API_ROUTE_METRICS,
  API_ROUTE_JOBS,
  API_ROUTE_JOB,
  API_ROUTE_JOB_CANCEL,
  API_ROUTE_JOB_EVENTS,
  API_ROUTE_CREDITS,
  API_ROUTE_LEDGER,
  API_ROUTE_USAGE,
  API_ROUTE_UPLOADS,
  API_ROUTE_ASSET,
  API_ROUTE_UPLOAD_CONTENT,
  API_ROUTE_CALLBACK_LUMA,
  API_ROUTE_WEBHOOK_STRIPE,
  API_ROUTE_ME,
  API_ROUTE_ME_EXPORT,
  API_ROUTE_ADMIN,      /* every /v1/admin route: admin.c answers any method */
  API_ROUTE_ADMIN_PAGE, /* the dashboard's files (admin_page.c) */
} api_route_id;

/* One route. path is an OpenAPI path template: literal segments and at
 * most one parameter segment, "{name}", which matches one non-empty path
 * segment. methods is the Allow header's value ("GET, HEAD"). */
typedef struct {
  const char *path;
  const char *methods;
  api_route_id id;
} api_route;

/* The table, in match order (the first template that matches wins); at
 * most API_ROUTES_MAX rows (test_routes holds it to that). */
#define API_ROUTES_MAX 63
extern const api_route api_routes[];
extern const size_t api_routes_count;

/* The route of a raw request path (without its query), or NULL when no
 * template matches. The parameter segment, when the template has one, is
 * copied into param; one of API_ROUTE_PARAM_MAX bytes or more leaves param
 * empty (its handler answers 404 for it, as for any id genq never gave).
 * param is "" for a template without a parameter. */
const api_route *api_route_match(const char *path, char param[API_ROUTE_PARAM_MAX]);

/* 1 when method is one of methods' comma-separated names (exact, case
 * sensitive: HTTP methods are). */
int api_route_allows(const char *methods, const char *method);

#endif
