/* util.c — small parsers for path ids and query strings. */
#include <string.h>

#include "api.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int api_query_param(const char *query, const char *name, char *out, size_t outlen) {
  size_t nlen = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *end = strchr(p, '&');
    size_t seglen = end ? (size_t)(end - p) : strlen(p);
    if (seglen >= nlen && strncmp(p, name, nlen) == 0 && (seglen == nlen || p[nlen] == '=')) {
      const char *v = seglen == nlen ? p + nlen : p + nlen + 1;
      const char *vend = p + seglen;
      size_t o = 0;
      while (v < vend) {
        int c = (unsigned char)*v;
        if (c == '%') {
          if (vend - v < 3 || hexval(v[1]) < 0 || hexval(v[2]) < 0) return -1;
          c = hexval(v[1]) * 16 + hexval(v[2]);
          v += 3;
        } else {
          if (c == '+') c = ' ';
          v++;
        }
        if (c == 0 || o + 1 >= outlen) return -1;
        out[o++] = (char)c;
      }
      out[o] = 0;
      return 1;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}
