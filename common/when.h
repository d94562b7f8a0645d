#ifndef GENQ_WHEN_H
#define GENQ_WHEN_H

#include <stddef.h>

/* The two ways an operator names an instant (genqctl's T, the admin API's
 * since): an RFC 3339 date-time, or a duration before (or after) now. Only
 * the shape is checked here; PostgreSQL parses and evaluates them with its
 * own clock, so a skewed operator machine cannot shift them. */

/* 1 when s is YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) ('T' also 't' or
 * ' '), its fields in range; else 0. */
int when_is_rfc3339(const char *s);
/* A duration: one or more <digits><unit>, unit s m h d w (1h30m), at most
 * 100 years. Writes its whole seconds as decimal text to out. 0, or -1
 * when s is not one (out unchanged). */
int when_parse_duration(const char *s, char *out, size_t outlen);

#endif
