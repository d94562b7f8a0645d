/* reply.c — JSON answers, genq's error shape (SPEC §4), and the mapping of
 * storage errors to statuses. The HTTP server in common/ knows no error
 * shape: genq-api hands it api_server_error for the refusals it answers
 * itself, so those come in the same shape as every other error. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

void api_reply_error(http_request *req, int status, const char *code, const char *message,
                     const char *const *extra_headers) {
  if (http_req_gone(req)) { /* nobody to tell: just release it */
    http_respond(req, status, NULL, NULL, NULL, 0);
    return;
  }
  cJSON *root = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(root, "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "request_id", http_req_id(req));
  char *json = e ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  http_respond(req, status, "application/json", extra_headers, json ? json : "",
               json ? strlen(json) : 0);
  cJSON_free(json);
}

void api_server_error(http_request *req, int status, const char *code, const char *message,
                      void *arg) {
  (void)arg;
  api_reply_error(req, status, code, message, NULL);
}

void api_reply_json_text(http_request *req, int status, const char *json, size_t len) {
  static const char *const no_store[] = {"Cache-Control: no-store", NULL};
  http_respond(req, status, "application/json", no_store, json, len);
}

void api_reply_json(http_request *req, int status, cJSON *obj) {
  char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
  cJSON_Delete(obj);
  if (!text) {
    api_reply_error(req, 500, "internal", "out of memory", NULL);
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
    api_reply_error(req, 503, "unavailable",
                    "the database is unavailable; retry (with the same Idempotency-Key)", retry);
    return;
  }
  log_error("database error", LS("request_id", http_req_id(req)), LS("sqlstate", st),
            LS("error", r->error ? r->error : ""));
  api_reply_error(req, 500, "internal", "internal error", NULL);
}
