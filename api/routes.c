/* routes.c — genq-api's route table and the matcher that walks it (see
 * routes.h). A new endpoint is one row here, its id in routes.h, its case
 * in main.c's dispatch, and its operation in api/openapi.yaml (the e2e
 * route walk fails until all four agree). */
#include <string.h>

#include "routes.h"

const api_route api_routes[] = {
    {"/healthz", "GET", API_ROUTE_HEALTHZ},
    {"/readyz", "GET", API_ROUTE_READYZ},
    {"/metrics", "GET", API_ROUTE_METRICS},
    {"/v1/jobs", "GET, POST", API_ROUTE_JOBS},
    {"/v1/jobs/{id}", "GET", API_ROUTE_JOB},
    {"/v1/jobs/{id}/cancel", "POST", API_ROUTE_JOB_CANCEL},
    {"/v1/jobs/{id}/events", "GET", API_ROUTE_JOB_EVENTS},
    {"/v1/credits", "GET", API_ROUTE_CREDITS},
    {"/v1/credits/ledger", "GET", API_ROUTE_LEDGER},
    {"/v1/usage", "GET", API_ROUTE_USAGE},
    {"/v1/uploads", "POST", API_ROUTE_UPLOADS},
    {"/v1/uploads/{id}/content", "GET, HEAD", API_ROUTE_UPLOAD_CONTENT},
    {"/v1/assets/{id}", "GET", API_ROUTE_ASSET},
    {"/v1/callbacks/luma/{token}", "POST", API_ROUTE_CALLBACK_LUMA},
    {"/v1/webhooks/stripe", "POST", API_ROUTE_WEBHOOK_STRIPE},
    {"/v1/me", "DELETE", API_ROUTE_ME},
    {"/v1/me/export", "GET", API_ROUTE_ME_EXPORT},
    {"/v1/admin/stats", "GET", API_ROUTE_ADMIN},
    {"/v1/admin/workers", "GET", API_ROUTE_ADMIN},
    {"/v1/admin/workers/{id}/quiet", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/workers/{id}/stop", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/providers", "GET", API_ROUTE_ADMIN},
    {"/v1/admin/jobs", "GET", API_ROUTE_ADMIN},
    {"/v1/admin/jobs/retry", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/jobs/{id}/retry", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/jobs/{id}/cancel", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/credits/grant", "POST", API_ROUTE_ADMIN},
    {"/v1/admin/actions", "GET", API_ROUTE_ADMIN},
    {"/v1/admin/events", "GET", API_ROUTE_ADMIN},
    {"/admin", "GET, HEAD", API_ROUTE_ADMIN_PAGE},
    {"/admin/{file}", "GET, HEAD", API_ROUTE_ADMIN_PAGE},
};
const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);

/* Matches one template against the path, segment by segment. */
static int template_match(const char *t, const char *p, char param[API_ROUTE_PARAM_MAX]) {
  param[0] = 0;
  while (*t && *p) {
    if (*t != '/' || *p != '/') return 0;
    t++;
    p++;
    size_t tl = strcspn(t, "/"), pl = strcspn(p, "/");
    if (tl >= 2 && t[0] == '{' && t[tl - 1] == '}') {
      if (pl == 0) return 0; /* a parameter is never empty */
      if (pl < API_ROUTE_PARAM_MAX) {
        memcpy(param, p, pl);
        param[pl] = 0;
      }
    } else if (tl != pl || strncmp(t, p, tl) != 0) {
      return 0;
    }
    t += tl;
    p += pl;
  }
  return !*t && !*p;
}

const api_route *api_route_match(const char *path, char param[API_ROUTE_PARAM_MAX]) {
  for (size_t i = 0; i < api_routes_count; i++)
    if (template_match(api_routes[i].path, path, param)) return &api_routes[i];
  param[0] = 0;
  return NULL;
}

int api_route_allows(const char *methods, const char *method) {
  size_t n = strlen(method);
  for (const char *a = methods; *a;) {
    size_t len = strcspn(a, ",");
    if (len == n && strncmp(a, method, n) == 0) return 1;
    a += len;
    while (*a == ',' || *a == ' ')
      a++;
  }
  return 0;
}
