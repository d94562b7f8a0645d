/* when.c — the shapes of an operator's instants (when.h). */
#include "when.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* digits of exactly n characters at s, as a number; -1 if not */
static int fixed_digits(const char *s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

int when_is_rfc3339(const char *s) {
  if (strlen(s) < 20 || strlen(s) > 40) return 0;
  int y = fixed_digits(s, 4), mo = fixed_digits(s + 5, 2), d = fixed_digits(s + 8, 2);
  int h = fixed_digits(s + 11, 2), mi = fixed_digits(s + 14, 2), se = fixed_digits(s + 17, 2);
  if (y < 1 || s[4] != '-' || mo < 1 || mo > 12 || s[7] != '-' || d < 1 || d > 31) return 0;
  if (!strchr("Tt ", s[10]) || h < 0 || h > 23 || s[13] != ':' || mi < 0 || mi > 59 ||
      s[16] != ':' || se < 0 || se > 60)
    return 0;
  const char *p = s + 19;
  if (*p == '.') {
    if (!isdigit((unsigned char)p[1])) return 0;
    for (p++; isdigit((unsigned char)*p); p++) {
    }
  }
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0') return 1;
  if (*p != '+' && *p != '-') return 0;
  int oh = fixed_digits(p + 1, 2), om = fixed_digits(p + 4, 2);
  return oh >= 0 && oh <= 23 && p[3] == ':' && om >= 0 && om <= 59 && p[6] == '\0';
}

int when_parse_duration(const char *s, char *out, size_t outlen) {
  long long total = 0;
  const long long cap = 100LL * 366 * 86400;
  if (!*s) return -1;
  while (*s) {
    long long v = 0;
    int digits = 0;
    for (; isdigit((unsigned char)*s); s++, digits++) {
      if (digits >= 10) return -1;
      v = v * 10 + (*s - '0');
    }
    if (!digits) return -1;
    const char *units = "smhdw";
    static const long long secs[] = {1, 60, 3600, 86400, 7LL * 86400};
    const char *u = *s ? strchr(units, *s) : NULL;
    if (!u) return -1;
    s++;
    total += v * secs[u - units];
    if (total > cap) return -1;
  }
  snprintf(out, outlen, "%lld", total);
  return 0;
}
