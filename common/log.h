#ifndef GENQ_LOG_H
#define GENQ_LOG_H

#include <stddef.h>

/* JSON-lines logging to stderr: one object per line with ts, level,
 * component, msg and the given fields. Values of fields whose key names a
 * secret (token, authorization, key, secret, password, cookie) are written as
 * "[redacted]", so a careless call cannot leak a credential. */

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

typedef struct {
  const char *key; /* NULL ends a field list */
  int type;        /* 1 string, 2 integer, 3 double */
  const char *s;
  long long i;
  double d;
} log_field;

#define LS(k, v) ((log_field){(k), 1, (v), 0, 0})
#define LI(k, v) ((log_field){(k), 2, NULL, (long long)(v), 0})
#define LD(k, v) ((log_field){(k), 3, NULL, 0, (double)(v)})
#define LOG_END ((log_field){NULL, 0, NULL, 0, 0})

/* component: "api", "worker", ... ; level: minimum level written.
 * level_name may be NULL; else one of debug, info, warn, error. */
void log_init(const char *component, int level);
int log_level_parse(const char *name); /* -1 if unknown */

/* fields: array ended by LOG_END. Never fails; drops the line on OOM. */
void log_emit(int level, const char *msg, const log_field *fields);

#define log_debug(msg, ...) log_emit(LOG_DEBUG, (msg), (const log_field[]){__VA_ARGS__, LOG_END})
#define log_info(msg, ...) log_emit(LOG_INFO, (msg), (const log_field[]){__VA_ARGS__, LOG_END})
#define log_warn(msg, ...) log_emit(LOG_WARN, (msg), (const log_field[]){__VA_ARGS__, LOG_END})
#define log_error(msg, ...) log_emit(LOG_ERROR, (msg), (const log_field[]){__VA_ARGS__, LOG_END})

#endif
