/* auth.c — who is calling: a Clerk session JWT from the Authorization
 * header or Clerk's __session cookie. API keys (gq_…) come with the
 * operator work; until then they are refused like any bad token. */
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

static int unauthorized(http_request *req, const char *message) {
  static const char *const challenge[] = {"WWW-Authenticate: Bearer", NULL};
  api_reply_error(req, 401, "unauthorized", message, challenge);
  return -1;
}

/* The caller's identity, or NULL with why it was refused. Answers nothing. */
static const char *identify(api_ctx *ctx, const http_request *req, api_user *u) {
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
    const char *cookie = http_req_header(req, "cookie");
    if (!cookie || cookie_value(cookie, "__session", token, sizeof(token)) != 1)
      return "authentication required";
    len = strlen(token);
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
  return NULL;
}

int api_authenticate(api_ctx *ctx, http_request *req, api_user *u) {
  const char *why = identify(ctx, req, u);
  return why ? unauthorized(req, why) : 0;
}

int api_authenticated(api_ctx *ctx, const http_request *req) {
  api_user u;
  return identify(ctx, req, &u) == NULL;
}
