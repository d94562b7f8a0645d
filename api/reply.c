/* reply.c — JSON answers and the mapping of storage errors to statuses. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

void api_reply_json_text(http_request *req, int status, const char *json, size_t len) {
  static const char *const no_store[] = {"Cache-Control: no-store", NULL};
  http_respond(req, status, "application/json", no_store, json, len);
}

void api_reply_json(http_request *req, int status, cJSON *obj) {
  char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
  cJSON_Delete(obj);
  if (!text) {
    http_respond_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  api_reply_json_text(req, status, text, strlen(text));
  free(text);
}

/* Class 08 is connection trouble and 57P0x an administrator shutdown or a
 * crash: the dependency is down, the statement did not commit. Anything
 * else is ours: log it, never show SQL to the client. */
void api_reply_db_error(http_request *req, const db_result *r) {
  const char *st = r->sqlstate ? r->sqlstate : "";
  if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strcmp(st, "57014") == 0) {
    static const char *const retry[] = {"Retry-After: 1", NULL};
    http_respond_error(req, 503, "unavailable",
                       "the database is unavailable; retry (with the same Idempotency-Key)", retry);
    return;
  }
  log_error("database error", LS("request_id", http_req_id(req)), LS("sqlstate", st),
            LS("error", r->error ? r->error : ""));
  http_respond_error(req, 500, "internal", "internal error", NULL);
}
