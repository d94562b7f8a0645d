/* net_guard.c — the address ranges a webhook may not reach, the operator's
 * allowlist, and the check of a webhook URL (parsed by libcurl's URL API,
 * the parser the request is then made with). */
#include "net_guard.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  unsigned char addr[16];
  int prefix;
  const char *why;
} ng_range;

#define V4(a, b, c, d)                                                                             \
  { a, b, c, d }
static const ng_range ng_v4[] = {
    {V4(0, 0, 0, 0), 8, "unspecified (this network)"},
    {V4(10, 0, 0, 0), 8, "private"},
    {V4(100, 64, 0, 0), 10, "shared (carrier-grade NAT)"},
    {V4(127, 0, 0, 0), 8, "loopback"},
    {V4(169, 254, 0, 0), 16, "link-local (cloud metadata)"},
    {V4(172, 16, 0, 0), 12, "private"},
    {V4(192, 0, 0, 0), 24, "IETF protocol assignments"},
    {V4(192, 168, 0, 0), 16, "private"},
    {V4(198, 18, 0, 0), 15, "benchmarking"},
    {V4(224, 0, 0, 0), 4, "multicast"},
    {V4(255, 255, 255, 255), 32, "broadcast"},
    {V4(240, 0, 0, 0), 4, "reserved"},
};
static const ng_range ng_v6[] = {
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{0xfc}, 7, "unique-local (private)"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "site-local"},
    {{0xff}, 8, "multicast"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "NAT64 (local use)"},
    {{0x01, 0x00}, 64, "discard-only"},
};
/* IPv6 prefixes that carry an IPv4 address at byte `at` */
static const struct {
  unsigned char addr[16];
  int prefix, at;
} ng_v4_in_v6[] = {
    {{[10] = 0xff, [11] = 0xff}, 96, 12}, /* mapped */
    {{0}, 96, 12},                        /* compatible (deprecated) */
    {{0x00, 0x64, 0xff, 0x9b}, 96, 12},   /* NAT64 well-known prefix */
    {{0x20, 0x02}, 16, 2},                /* 6to4 */
};

static int ng_in(const unsigned char *a, const unsigned char *net, int prefix) {
  int full = prefix / 8, rest = prefix % 8;
  if (memcmp(a, net, (size_t)full) != 0) return 0;
  if (!rest) return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[full] & mask) == (net[full] & mask);
}

static int ng_allowed(int family, const unsigned char *a, const net_guard_nets *allow) {
  for (int i = 0; allow && i < allow->n; i++)
    if (allow->nets[i].family == family && ng_in(a, allow->nets[i].addr, allow->nets[i].prefix))
      return 1;
  return 0;
}

const char *net_guard_refused(int family, const unsigned char *addr, const net_guard_nets *allow) {
  if (!addr || (family != AF_INET && family != AF_INET6)) return "unsupported";
  if (ng_allowed(family, addr, allow)) return NULL;
  if (family == AF_INET) {
    for (size_t i = 0; i < sizeof ng_v4 / sizeof ng_v4[0]; i++)
      if (ng_in(addr, ng_v4[i].addr, ng_v4[i].prefix)) return ng_v4[i].why;
    return NULL;
  }
  for (size_t i = 0; i < 2; i++) /* :: and ::1 before the compatible form */
    if (ng_in(addr, ng_v6[i].addr, ng_v6[i].prefix)) return ng_v6[i].why;
  for (size_t i = 0; i < sizeof ng_v4_in_v6 / sizeof ng_v4_in_v6[0]; i++)
    if (ng_in(addr, ng_v4_in_v6[i].addr, ng_v4_in_v6[i].prefix))
      return net_guard_refused(AF_INET, addr + ng_v4_in_v6[i].at, allow);
  for (size_t i = 2; i < sizeof ng_v6 / sizeof ng_v6[0]; i++)
    if (ng_in(addr, ng_v6[i].addr, ng_v6[i].prefix)) return ng_v6[i].why;
  return NULL;
}

const char *net_guard_refused_sockaddr(const struct sockaddr *sa, const net_guard_nets *allow) {
  if (!sa) return "unsupported";
  if (sa->sa_family == AF_INET)
    return net_guard_refused(
        AF_INET, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, allow);
  if (sa->sa_family == AF_INET6)
    return net_guard_refused(
        AF_INET6, (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr, allow);
  return "unsupported";
}

static int ng_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

#define NG_NETS_VAR "GENQ_WEBHOOK_ALLOW_NETS"

/* One CIDR, s[0..len). */
static int ng_net_parse(const char *s, size_t len, net_guard_net *n) {
  char buf[64];
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *slash = strchr(buf, '/');
  if (slash) *slash = '\0';
  memset(n, 0, sizeof *n);
  int max;
  if (inet_pton(AF_INET, buf, n->addr) == 1) {
    n->family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
    n->family = AF_INET6;
    max = 128;
  } else {
    return -1;
  }
  n->prefix = max;
  if (slash) {
    const char *p = slash + 1;
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || *p == '-' || *p == '+' || v < 0 || v > max) return -1;
    n->prefix = (int)v;
  }
  /* exact: no bit set past the prefix */
  for (int bit = n->prefix; bit < max; bit++)
    if (n->addr[bit / 8] & (0x80 >> (bit % 8))) return -1;
  return 0;
}

int net_guard_nets_parse(const char *list, net_guard_nets *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  for (const char *p = list; p && *p;) {
    size_t len = strcspn(p, ",");
    if (len) {
      if (out->n >= NET_GUARD_NETS_MAX)
        return ng_fail(err, errlen, "%s holds more than %d networks", NG_NETS_VAR,
                       NET_GUARD_NETS_MAX);
      if (ng_net_parse(p, len, &out->nets[out->n]) < 0)
        return ng_fail(err, errlen,
                       "%s must be comma-separated CIDRs with no host bits past the prefix "
                       "(e.g. 127.0.0.1/32,10.1.0.0/16); \"%.*s\" is not one",
                       NG_NETS_VAR, (int)(len > 60 ? 60 : len), p);
      out->n++;
    }
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

/* Fills *out from a literal host (IPv6 without brackets). 1 when it is an
 * IP address, 0 when it is not. */
static int ng_literal(const char *host, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return 1;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    return 1;
  }
  return 0;
}

int net_guard_url_check(const char *url, int allow_http, const net_guard_nets *allow,
                        net_guard_url *out, char *msg, size_t msglen) {
  net_guard_url tmp;
  net_guard_url *u = out ? out : &tmp;
  memset(u, 0, sizeof *u);
  if (!url || !*url) return ng_fail(msg, msglen, "must be an https:// URL");
  CURLU *h = curl_url();
  if (!h) return ng_fail(msg, msglen, "could not be read (out of memory)");
  char *scheme = NULL, *user = NULL, *password = NULL, *host = NULL, *zone = NULL, *port = NULL;
  int rc = -1;
  if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    ng_fail(msg, msglen, "must be an https:// URL");
    goto done;
  }
  u->https = strcmp(scheme, "https") == 0;
  if (!u->https && !(allow_http && strcmp(scheme, "http") == 0)) {
    ng_fail(msg, msglen, "must be an https:// URL%s",
            strcmp(scheme, "http") == 0 ? " (http:// only where GENQ_WEBHOOK_ALLOW_HTTP=1)" : "");
    goto done;
  }
  if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
      curl_url_get(h, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
    ng_fail(msg, msglen, "must not carry a user name or password");
    goto done;
  }
  if (curl_url_get(h, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
    ng_fail(msg, msglen, "must not name an IPv6 zone");
    goto done;
  }
  if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0] ||
      curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
    ng_fail(msg, msglen, "must name a host");
    goto done;
  }
  size_t hl = strlen(host);
  const char *hs = host;
  if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') hs++, hl -= 2;
  if (hl >= sizeof u->host) {
    ng_fail(msg, msglen, "has a host name that is too long");
    goto done;
  }
  memcpy(u->host, hs, hl);
  u->host[hl] = '\0';
  u->port = atoi(port);
  if (u->port <= 0 || u->port > 65535) {
    ng_fail(msg, msglen, "has a bad port");
    goto done;
  }
  u->literal = ng_literal(u->host, u->port, &u->addr);
  if (u->literal) {
    const char *why = net_guard_refused_sockaddr((const struct sockaddr *)&u->addr, allow);
    if (why) {
      ng_fail(msg, msglen, "must not name a refused address: %s is %s", u->host, why);
      goto done;
    }
  }
  rc = 0;
done:
  curl_free(scheme);
  curl_free(user);
  curl_free(password);
  curl_free(host);
  curl_free(zone);
  curl_free(port);
  curl_url_cleanup(h);
  return rc;
}
