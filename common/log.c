/* JSON-lines logger. One process-wide sink (stderr): the component and the
 * minimum level are set once at start, before any thread or loop runs. */
#include "log.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* A string value longer than this is cut, so one bad call cannot write a
 * megabyte line. */
#define LOG_VALUE_MAX 4096

static char log_component[32] = "genq";
static int log_min_level = LOG_INFO;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *component, int level) {
  if (component) snprintf(log_component, sizeof log_component, "%s", component);
  if (level >= LOG_DEBUG && level <= LOG_ERROR) log_min_level = level;
}

int log_level_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(name, log_level_names[i]) == 0) return i;
  return -1;
}

static int ci_contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0) return 1;
  return 0;
}

/* "key" alone would also match "keyframe_upload_id", so it counts only at
 * the end of a word: "key", "api_key", "apikey", "stripe-key". */
static int key_is_secret(const char *k) {
  static const char *const words[] = {"token", "authorization", "secret", "password", "cookie"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (ci_contains(k, words[i])) return 1;
  size_t n = strlen(k);
  for (size_t i = 0; i + 3 <= n; i++) {
    if (strncasecmp(k + i, "key", 3) != 0) continue;
    char next = k[i + 3];
    if (next == '\0' || !isalnum((unsigned char)next)) return 1;
  }
  return 0;
}

static void add_string(cJSON *o, const char *k, const char *v) {
  if (!v) {
    cJSON_AddNullToObject(o, k);
    return;
  }
  size_t n = strnlen(v, LOG_VALUE_MAX + 1);
  if (n <= LOG_VALUE_MAX) {
    cJSON_AddStringToObject(o, k, v);
    return;
  }
  char *cut = malloc(LOG_VALUE_MAX + 1);
  if (!cut) return;
  memcpy(cut, v, LOG_VALUE_MAX);
  cut[LOG_VALUE_MAX] = '\0';
  cJSON_AddStringToObject(o, k, cut);
  free(cut);
}

void log_emit(int level, const char *msg, const log_field *fields) {
  if (level < log_min_level) return;
  if (level < LOG_DEBUG || level > LOG_ERROR) level = LOG_ERROR;

  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[96];
  snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

  cJSON *o = cJSON_CreateObject();
  if (!o) return;
  cJSON_AddStringToObject(o, "ts", ts);
  cJSON_AddStringToObject(o, "level", log_level_names[level]);
  cJSON_AddStringToObject(o, "component", log_component);
  add_string(o, "msg", msg ? msg : "");
  for (const log_field *f = fields; f && f->key; f++) {
    if (key_is_secret(f->key)) {
      cJSON_AddStringToObject(o, f->key, "[redacted]");
      continue;
    }
    switch (f->type) {
    case 1:
      add_string(o, f->key, f->s);
      break;
    case 2:
      cJSON_AddNumberToObject(o, f->key, (double)f->i);
      break;
    case 3:
      cJSON_AddNumberToObject(o, f->key, f->d);
      break;
    default:
      break;
    }
  }

  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!line) return;
  size_t n = strlen(line);
  char *withnl = realloc(line, n + 2);
  if (!withnl) {
    free(line);
    return;
  }
  withnl[n] = '\n';
  withnl[n + 1] = '\0';
  fwrite(withnl, 1, n + 1, stderr);
  free(withnl);
}
