/* auth.c — who is calling: a Clerk session JWT from the Authorization
 * header or Clerk's __session cookie. API keys (gq_…) come with the
 * operator work; until then they are refused like any bad token.
 *
 * A cookie travels with every request the browser makes to us, whichever
 * site made it, so a cookie-authenticated request that can change anything
 * (any method but GET, HEAD and OPTIONS) must show that our own frontend
 * sent it (SPEC §4): an Origin among CLERK_AUTHORIZED_PARTIES or the
 * origin of GENQ_PUBLIC_URL, or, from a browser that sends no Origin,
 * Sec-Fetch-Site: same-origin. Anything else is 403 cross_site_request and
 * changes nothing. A Bearer token is never sent by a browser on its own, so
 * it needs no such check. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "log.h"

#define TOKEN_MAX 8192

/* The value of cookie `name` in a Cookie header, copied into out. */
static int cookie_value(const char *header, const char *name, char *out, size_t outlen) {
  size_t nlen = strlen(name);
  const char *p = header;
  while (*p) {
    while (*p == ' ' || *p == ';')
      p++;
    const char *end = strchr(p, ';');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      size_t vlen = len - nlen - 1;
      if (vlen + 1 > outlen) return -1;
      memcpy(out, p + nlen + 1, vlen);
      out[vlen] = 0;
      return 1;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

/* 1 when origin (an Origin header: scheme://host[:port]) is the origin of
 * url (a base URL: scheme://host[:port][/path]), compared exactly. */
static int origin_of(const char *origin, const char *url, size_t url_len) {
  const char *scheme = memchr(url, ':', url_len);
  if (!scheme || url_len < (size_t)(scheme - url) + 3 || strncmp(scheme, "://", 3) != 0) return 0;
  const char *host = scheme + 3, *end = url + url_len;
  const char *slash = memchr(host, '/', (size_t)(end - host));
  size_t n = (size_t)((slash ? slash : end) - url);
  return strlen(origin) == n && strncasecmp(origin, url, n) == 0;
}

/* 1 when a cookie-authenticated request may do what its method does. */
static int origin_allowed(const api_ctx *ctx, const http_request *req) {
  const char *m = http_req_method(req);
  if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0) return 1;
  const char *origin = http_req_header(req, "origin");
  if (!origin) {
    const char *site = http_req_header(req, "sec-fetch-site");
    return site && strcmp(site, "same-origin") == 0;
  }
  const char *pub = ctx->cfg.public_url;
  if (pub && origin_of(origin, pub, strlen(pub))) return 1;
  for (const char *p = ctx->cfg.clerk_authorized_parties; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    while (n && *p == ' ')
      p++, n--;
    while (n && p[n - 1] == ' ')
      n--;
    if (n && origin_of(origin, p, n)) return 1;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

/* Answers 401 (or 429 when the address has had too many refusals:
 * limits.c); returns -1. */
static int unauthorized(api_ctx *ctx, http_request *req, const char *message) {
  static const char *const challenge[] = {"WWW-Authenticate: Bearer", NULL};
  api_ip_refuse(ctx, req, 401, "unauthorized", message, challenge);
  return -1;
}

/* The caller's identity, or NULL with why it was refused; *cookie is 1
 * when the token came from the __session cookie. Answers nothing. */
static const char *identify(api_ctx *ctx, const http_request *req, api_user *u, int *cookie) {
  char token[TOKEN_MAX + 1];
  const char *h = http_req_header(req, "authorization");
  size_t len;
  if (h) {
    if (strncasecmp(h, "Bearer ", 7) != 0) return "expected a Bearer token";
    h += 7;
    while (*h == ' ')
      h++;
    len = strlen(h);
    while (len && h[len - 1] == ' ')
      len--;
    if (len == 0 || len > TOKEN_MAX) return "invalid token";
    memcpy(token, h, len);
    token[len] = 0;
  } else {
    const char *c = http_req_header(req, "cookie");
    if (!c || cookie_value(c, "__session", token, sizeof(token)) != 1)
      return "authentication required";
    len = strlen(token);
    *cookie = 1;
  }
  jwt_claims claims;
  const char *why = NULL;
  if (jwt_cache_verify(ctx->tokens, ctx->jwt, token, len, time(NULL), &claims, &why) != 0) {
    log_info("token rejected", LS("request_id", http_req_id(req)),
             LS("reason", why ? why : "invalid"));
    return "invalid or expired token";
  }
  snprintf(u->user, sizeof(u->user), "%s", claims.sub);
  u->admin = strcmp(claims.role, "admin") == 0;
  u->exp = claims.exp;
  return NULL;
}

int api_authenticate(api_ctx *ctx, http_request *req, api_user *u) {
  int cookie = 0;
  const char *why = identify(ctx, req, u, &cookie);
  if (why) return unauthorized(ctx, req, why);
  if (cookie && !origin_allowed(ctx, req)) {
    const char *origin = http_req_header(req, "origin");
    log_warn("cross-site request refused", LS("request_id", http_req_id(req)),
             LS("method", http_req_method(req)), LS("origin", origin ? origin : "(none)"));
    api_reply_error(req, 403, "cross_site_request",
                    "a request authenticated by cookie must come from an allowed origin", NULL);
    return -1;
  }
  return 0;
}

int api_authenticated(api_ctx *ctx, const http_request *req) {
  api_user u;
  int cookie = 0;
  return identify(ctx, req, &u, &cookie) == NULL && (!cookie || origin_allowed(ctx, req));
}

void api_auth_user_deleted(api_ctx *ctx, const char *user) {
  (void)ctx;
  (void)user; /* the revocation set comes with API keys (in progress) */
}
