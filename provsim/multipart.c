/* multipart.h: reads a multipart/form-data body in memory, one part at a
 * time (delimiter, header block, data up to the next delimiter), and keeps
 * the one field asked for. The part headers read are Content-Disposition
 * (form-data, name, filename) and Content-Type; others are skipped. */
#include "multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Where needle first occurs in hay, or NULL. */
static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen) {
  const char *end = hay + hlen, *p = hay;
  while ((size_t)(end - p) >= nlen) {
    p = memchr(p, needle[0], (size_t)(end - p) - nlen + 1);
    if (!p) return NULL;
    if (!memcmp(p, needle, nlen)) return p;
    p++;
  }
  return NULL;
}

int multipart_param(const char *v, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  for (const char *p = strchr(v, ';'); p; p = strchr(p, ';')) {
    p++;
    while (*p == ' ' || *p == '\t')
      p++;
    if (strncasecmp(p, name, nl) != 0 || p[nl] != '=') continue;
    p += nl + 1;
    size_t w = 0;
    if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        if (w + 1 >= n) return -1;
        out[w++] = *p;
      }
      if (*p != '"') return -1;
    } else {
      for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
        if (w + 1 >= n) return -1;
        out[w++] = *p;
      }
    }
    out[w] = '\0';
    return 1;
  }
  return 0;
}

/* Parses one part's header block [h, end) into part. Returns 0, or -1 with msg. */
static int part_headers(const char *h, const char *end, multipart_part *part, char *msg, size_t n) {
  *part = (multipart_part){0};
  int disposition = 0;
  while (h < end) {
    const char *eol = find(h, (size_t)(end - h), "\r\n", 2);
    if (!eol) eol = end;
    char line[1024];
    size_t ll = (size_t)(eol - h);
    if (ll >= sizeof line) return snprintf(msg, n, "multipart part header too long"), -1;
    memcpy(line, h, ll);
    line[ll] = '\0';
    h = eol + 2;
    char *colon = strchr(line, ':'), *v;
    if (!colon) return snprintf(msg, n, "malformed multipart part header"), -1;
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
      ;
    if (!strcasecmp(line, "Content-Disposition")) {
      if (strncasecmp(v, "form-data", 9) != 0 || (v[9] && v[9] != ';' && v[9] != ' '))
        return snprintf(msg, n, "multipart part is not form-data"), -1;
      if (multipart_param(v, "name", part->name, sizeof part->name) != 1)
        return snprintf(msg, n, "multipart part has no usable name"), -1;
      if (multipart_param(v, "filename", part->filename, sizeof part->filename) < 0)
        return snprintf(msg, n, "multipart part has a malformed filename"), -1;
      disposition = 1;
    } else if (!strcasecmp(line, "Content-Type")) {
      size_t vl = strcspn(v, "; \t");
      if (vl == 0 || vl >= sizeof part->content_type)
        return snprintf(msg, n, "multipart part has a malformed Content-Type"), -1;
      memcpy(part->content_type, v, vl);
      part->content_type[vl] = '\0';
    }
  }
  if (!disposition) return snprintf(msg, n, "multipart part has no Content-Disposition"), -1;
  return 0;
}

int multipart_field(const char *body, size_t blen, const char *boundary, const char *field,
                    multipart_part *part, char *msg, size_t n) {
  char delim[80];
  size_t dl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", boundary);
  if (dl >= sizeof delim) return snprintf(msg, n, "multipart boundary over 70 characters"), -1;
  const char *end = body + blen, *p;
  /* The first delimiter may open the body (no CRLF before it) or follow a
   * preamble. */
  if (blen >= dl - 2 && !memcmp(body, delim + 2, dl - 2))
    p = body + dl - 2;
  else if ((p = find(body, blen, delim, dl)))
    p += dl;
  else
    return snprintf(msg, n, "multipart body has no part delimited by its boundary"), -1;
  int found = 0;
  for (;;) {
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* close delimiter */
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return snprintf(msg, n, "multipart delimiter not followed by CRLF"), -1;
    p += 2;
    const char *hend, *data;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') { /* no headers */
      hend = p;
      data = p + 2;
    } else {
      size_t window = (size_t)(end - p) < 16384 ? (size_t)(end - p) : 16384;
      if (!(hend = find(p, window, "\r\n\r\n", 4)))
        return snprintf(msg, n, "multipart part headers not terminated"), -1;
      data = hend + 4;
    }
    const char *dend = find(data, (size_t)(end - data), delim, dl);
    if (!dend) return snprintf(msg, n, "multipart body ends inside a part"), -1;
    multipart_part one;
    if (part_headers(p, hend, &one, msg, n) < 0) return -1;
    if (!strcmp(one.name, field)) {
      if (found) return snprintf(msg, n, "more than one '%s' field", field), -1;
      *part = one;
      part->data = data;
      part->len = (size_t)(dend - data);
      found = 1;
    }
    p = dend + dl;
  }
  if (!found) return snprintf(msg, n, "the form has no '%s' field", field), -1;
  return 0;
}
