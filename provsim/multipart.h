/* A multipart/form-data reader (RFC 7578) for genq-provsim's uploads: finds
 * one named field in a body held in memory. Nothing is copied or allocated:
 * a part's data points into the body. */
#ifndef GENQ_PROVSIM_MULTIPART_H
#define GENQ_PROVSIM_MULTIPART_H

#include <stddef.h>

typedef struct {
  char name[64];
  char filename[256];     /* "" when the part has none */
  char content_type[128]; /* the part's own type without parameters, or "" */
  const char *data;       /* into the body */
  size_t len;
} multipart_part;

/* Reads the header parameter `name` (e.g. boundary, filename) from the
 * ";"-separated list in v, unquoting. Returns 1 when found and it fits in
 * out, 0 when absent, -1 when malformed or too long. */
int multipart_param(const char *v, const char *name, char *out, size_t n);

/* Finds the single form field `field` of a multipart/form-data body framed
 * by boundary (at most 70 characters). Returns 0, or -1 with msg (a
 * malformed body, no such field or more than one). */
int multipart_field(const char *body, size_t blen, const char *boundary, const char *field,
                    multipart_part *part, char *msg, size_t n);

#endif
