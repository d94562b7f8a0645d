/* admin_page.c — GET|HEAD /admin, /admin/<file>: the dashboard (api/admin/,
 * compiled in; docs/admin.md). /admin and /admin/ are index.html. Every
 * answer carries a strict Content-Security-Policy: scripts, styles and
 * connections from this origin only, no inline script or style, no
 * framing, nothing from elsewhere (the page needs no CDN). The files hold
 * no data and need no token; the page calls /v1/admin with the token its
 * user pastes. */
#include <string.h>

#include "admin_assets.h"
#include "api.h"

#define ADMIN_CSP                                                                                  \
  "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "             \
  "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "                      \
  "frame-ancestors 'none'"

void api_admin_page(api_ctx *ctx, http_request *req) {
  (void)ctx;
  static const char csp[] = ADMIN_CSP;
  static const char *const headers[] = {csp,
                                        "X-Content-Type-Options: nosniff",
                                        "X-Frame-Options: DENY",
                                        "Referrer-Policy: no-referrer",
                                        "Cache-Control: no-cache",
                                        NULL};
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
    static const char *const allow[] = {"Allow: GET, HEAD", NULL};
    api_reply_error(req, 405, "method_not_allowed", "method not allowed", allow);
    return;
  }
  const char *p = http_req_path(req) + strlen("/admin");
  const char *name = !*p || !strcmp(p, "/") ? "index.html" : p + 1;
  for (const api_admin_asset *a = api_admin_assets; a->name; a++)
    if (!strcmp(a->name, name)) {
      http_respond(req, 200, a->content_type, headers, (const char *)a->data, a->len);
      return;
    }
  api_reply_error(req, 404, "not_found", "no such file", NULL);
}
