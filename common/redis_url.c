/* redis_url.c — GENQ_REDIS_URL: redis:// (one server) or redis-sentinel://
 * (Sentinels and the primary's name). See redis_url.h. */
#define _GNU_SOURCE /* memrchr */
#include "redis_url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int url_fail(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "redis url: %s", msg);
  return -1;
}

/* Percent-decodes [s, s+n) into dst (size dstlen). */
static int url_unescape(char *dst, size_t dstlen, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
        isxdigit((unsigned char)s[i + 2])) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      ch = (char)strtol(hex, NULL, 16);
      i += 2;
    }
    if (o + 1 >= dstlen) return -1;
    dst[o++] = ch;
  }
  dst[o] = '\0';
  return 0;
}

/* host[:port] or [ipv6][:port] in [p, end). */
static int url_hostport(rds_addr *a, const char *p, const char *end, int defport, char *err,
                        size_t errlen) {
  const char *portp = NULL, *hend = end;
  if (p < end && *p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) return url_fail(err, errlen, "bad host");
    if (rb + 1 < end) {
      if (rb[1] != ':') return url_fail(err, errlen, "bad host");
      portp = rb + 2;
    }
    p++;
    hend = rb;
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon) {
      portp = colon + 1;
      hend = colon;
    }
  }
  size_t hl = (size_t)(hend - p);
  if (hl == 0 || hl >= sizeof a->host) return url_fail(err, errlen, "bad host");
  for (size_t i = 0; i < hl; i++)
    if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f || p[i] == '@' || p[i] == ',')
      return url_fail(err, errlen, "bad host");
  memcpy(a->host, p, hl);
  a->host[hl] = '\0';
  a->port = defport;
  if (portp) {
    long v = 0;
    if (portp == end || end - portp > 5) return url_fail(err, errlen, "bad port");
    for (const char *d = portp; d < end; d++) {
      if (!isdigit((unsigned char)*d)) return url_fail(err, errlen, "bad port");
      v = v * 10 + (*d - '0');
    }
    if (v < 1 || v > 65535) return url_fail(err, errlen, "bad port");
    a->port = (int)v;
  }
  return 0;
}

static int url_db(int *db, const char *s, const char *end, char *err, size_t errlen) {
  long v = 0;
  if (s == end || end - s > 6) return url_fail(err, errlen, "bad db number");
  for (const char *d = s; d < end; d++) {
    if (!isdigit((unsigned char)*d)) return url_fail(err, errlen, "bad db number");
    v = v * 10 + (*d - '0');
  }
  if (v > 100000) return url_fail(err, errlen, "bad db number");
  *db = (int)v;
  return 0;
}

/* ?sentinel_password=... (the only parameter). */
static int url_query(rds_url *u, const char *q, char *err, size_t errlen) {
  while (*q) {
    const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
    const char *eq = memchr(q, '=', (size_t)(end - q));
    static const char key[] = "sentinel_password";
    if (!eq || (size_t)(eq - q) != sizeof key - 1 || memcmp(q, key, sizeof key - 1) != 0)
      return url_fail(err, errlen, "unknown parameter (only sentinel_password=)");
    if (url_unescape(u->sentinel_password, sizeof u->sentinel_password, eq + 1,
                     (size_t)(end - eq - 1)) != 0)
      return url_fail(err, errlen, "sentinel_password too long");
    u->has_sentinel_password = 1;
    q = amp ? amp + 1 : end;
  }
  return 0;
}

int rds_url_parse(rds_url *u, const char *url, char *err, size_t errlen) {
  static const char plain[] = "redis://", sent[] = "redis-sentinel://";
  memset(u, 0, sizeof *u);
  const char *p;
  if (url && strncmp(url, plain, sizeof plain - 1) == 0) {
    p = url + sizeof plain - 1;
  } else if (url && strncmp(url, sent, sizeof sent - 1) == 0) {
    p = url + sizeof sent - 1;
    u->sentinel = 1;
  } else {
    return url_fail(err, errlen, "scheme must be redis:// or redis-sentinel://");
  }
  const char *q = u->sentinel ? strchr(p, '?') : NULL;
  const char *stop = q ? q : p + strlen(p);
  const char *slash = memchr(p, '/', (size_t)(stop - p));
  const char *hostend = slash ? slash : stop;
  const char *at = memrchr(p, '@', (size_t)(hostend - p));
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) return url_fail(err, errlen, "credentials must be [user]:password@");
    if (url_unescape(u->user, sizeof u->user, p, (size_t)(colon - p)) != 0 ||
        url_unescape(u->password, sizeof u->password, colon + 1, (size_t)(at - colon - 1)) != 0)
      return url_fail(err, errlen, "credentials too long");
    u->has_password = 1;
    p = at + 1;
  }
  if (!u->sentinel) {
    if (url_hostport(&u->node, p, hostend, 6379, err, errlen) != 0) return -1;
    if (slash && slash + 1 < stop && url_db(&u->db, slash + 1, stop, err, errlen) != 0) return -1;
    return 0;
  }
  /* Sentinels: host[:port] separated by commas. */
  while (p < hostend) {
    const char *comma = memchr(p, ',', (size_t)(hostend - p));
    const char *e = comma ? comma : hostend;
    if (u->nsentinels == RDS_URL_MAX_SENTINELS)
      return url_fail(err, errlen, "too many sentinels (at most 16)");
    if (url_hostport(&u->sentinels[u->nsentinels++], p, e, 26379, err, errlen) != 0) return -1;
    p = comma ? comma + 1 : e;
    if (comma && p == hostend) return url_fail(err, errlen, "bad host");
  }
  if (u->nsentinels == 0) return url_fail(err, errlen, "no sentinel host");
  if (!slash || slash + 1 >= stop)
    return url_fail(err, errlen, "the primary's name is missing (redis-sentinel://hosts/master)");
  const char *name = slash + 1;
  const char *dbs = memchr(name, '/', (size_t)(stop - name));
  const char *nend = dbs ? dbs : stop;
  if (nend == name || url_unescape(u->master, sizeof u->master, name, (size_t)(nend - name)) != 0)
    return url_fail(err, errlen, "bad master name");
  for (const char *c = u->master; *c; c++)
    if ((unsigned char)*c <= 0x20 || *c == 0x7f) return url_fail(err, errlen, "bad master name");
  if (dbs && dbs + 1 < stop && url_db(&u->db, dbs + 1, stop, err, errlen) != 0) return -1;
  if (q && url_query(u, q + 1, err, errlen) != 0) return -1;
  return 0;
}

void rds_url_wipe(rds_url *u) {
  volatile char *a = u->password, *b = u->sentinel_password;
  for (size_t i = 0; i < sizeof u->password; i++)
    a[i] = 0;
  for (size_t i = 0; i < sizeof u->sentinel_password; i++)
    b[i] = 0;
}
