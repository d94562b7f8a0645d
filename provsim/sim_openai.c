/* Simulated OpenAI chat completions under /openai/v1 (see provsim.h and
 * PROVIDERS.md). Validates like the real service, answers structured output
 * from the sent schema, and offers test hooks in the last user message:
 *   provsim:refuse    200 with content null and a refusal
 *   provsim:error500  500 server_error
 *   provsim:length    finish_reason "length" with truncated content
 *   provsim:garbage   200 whose body is not JSON
 *   provsim:sleep=MS  answer after MS milliseconds (0..600000) instead of
 *                     PROVSIM_OPENAI_LATENCY_MS: a call that outlives a lease
 * Every validated request except provsim:error500 counts as a completion
 * (openai.chat_completions, and openai.by_prompt[sha256 of the last user
 * message]), as the real service would bill it. Fault injection (faults.c):
 * PROVSIM_OPENAI_MODERATION_RATE refuses as provsim:refuse does, and
 * PROVSIM_OPENAI_FAIL_RATE cuts the answer as provsim:length does. */
#include "provsim.h"

#include <stdarg.h>
#include <strings.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define OA_MAX_SLEEP_MS 600000
#define OA_RATE_LIMIT 10000
#define OA_REFUSAL "I can't help with that."

typedef struct {
  unsigned long long served;
} oa_state;

int sim_openai_init(provsim *ps, char *err, size_t errlen) {
  oa_state *os = calloc(1, sizeof *os);
  if (!os) return snprintf(err, errlen, "out of memory"), -1;
  if (simstats_declare(ps->stats, "openai", "chat_completions", 0) < 0 ||
      simstats_declare(ps->stats, "openai", "by_prompt", 1) < 0) {
    snprintf(err, errlen, "out of memory");
    free(os);
    return -1;
  }
  ps->openai = os;
  return 0;
}

void sim_openai_free(provsim *ps) {
  free(ps->openai);
  ps->openai = NULL;
}

/* OpenAI's error shape: {"error":{"message","type","param","code"}}, after
 * delay ms (< 0: the configured latency). */
static void oa_error(provsim *ps, http_request *req, int delay, int status, const char *type,
                     const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static void oa_error(provsim *ps, http_request *req, int delay, int status, const char *type,
                     const char *param, const char *code, const char *fmt, ...) {
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
  cJSON_AddStringToObject(e, "message", message);
  cJSON_AddStringToObject(e, "type", type);
  if (param)
    cJSON_AddStringToObject(e, "param", param);
  else
    cJSON_AddNullToObject(e, "param");
  if (code)
    cJSON_AddStringToObject(e, "code", code);
  else
    cJSON_AddNullToObject(e, "code");
  char *body = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!body) {
    provsim_error(req, 500, "internal", "out of memory", NULL);
    return;
  }
  provsim_reply(ps, req, delay, status, "application/json", NULL, body, strlen(body));
  cJSON_free(body);
}

#define BAD_REQUEST(param, code, ...)                                                              \
  oa_error(ps, req, -1, 400, "invalid_request_error", param, code, __VA_ARGS__)

static void random_id(char *out, size_t n) {
  static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char r[64];
  if (n > sizeof r) n = sizeof r;
  if (RAND_bytes(r, (int)n) != 1)
    for (size_t i = 0; i < n; i++)
      r[i] = (unsigned char)rand();
  for (size_t i = 0; i < n; i++)
    out[i] = alnum[r[i] % (sizeof alnum - 1)];
  out[n] = '\0';
}

static int valid_role(const char *r) {
  static const char *const roles[] = {"system", "developer", "user", "assistant", NULL};
  for (int i = 0; roles[i]; i++)
    if (!strcmp(r, roles[i])) return 1;
  return 0;
}

/* The text of a message content: a string, or an array of {type: "text",
 * text} parts joined. Returns a new string, or NULL when content has
 * neither shape. */
static char *content_text(const cJSON *content) {
  if (cJSON_IsString(content)) return strdup(content->valuestring);
  if (!cJSON_IsArray(content)) return NULL;
  size_t len = 1;
  const cJSON *p;
  cJSON_ArrayForEach(p, content) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
    if (!cJSON_IsString(t)) return NULL;
    len += strlen(t->valuestring);
  }
  char *s = malloc(len), *w = s;
  if (!s) return NULL;
  cJSON_ArrayForEach(p, content) w =
      stpcpy(w, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
  *w = '\0';
  return s;
}

static void sha256_hex(const char *s, char out[65]) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)s, strlen(s), d);
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

/* Checks model and messages; on success returns the last user message's
 * text (caller frees) and the prompt size; on failure answers and returns NULL. */
static char *check_messages(provsim *ps, http_request *req, const cJSON *root,
                            size_t *prompt_chars) {
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!model) {
    BAD_REQUEST("model", "missing_required_parameter", "Missing required parameter: 'model'.");
    return NULL;
  }
  if (!cJSON_IsString(model) || !model->valuestring[0]) {
    BAD_REQUEST("model", "invalid_type", "Invalid type for 'model': expected a non-empty string.");
    return NULL;
  }
  const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
  if (!messages) {
    BAD_REQUEST("messages", "missing_required_parameter",
                "Missing required parameter: 'messages'.");
    return NULL;
  }
  if (!cJSON_IsArray(messages)) {
    BAD_REQUEST("messages", "invalid_type",
                "Invalid type for 'messages': expected an array of objects.");
    return NULL;
  }
  if (!messages->child) {
    BAD_REQUEST("messages", "empty_array",
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.");
    return NULL;
  }
  char *last_user = NULL, param[64];
  int i = 0;
  *prompt_chars = 0;
  for (const cJSON *m = messages->child; m; m = m->next, i++) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    snprintf(param, sizeof param, "messages[%d].role", i);
    if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
      free(last_user);
      BAD_REQUEST(param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
      return NULL;
    }
    if (!valid_role(role->valuestring)) {
      free(last_user);
      BAD_REQUEST(param, "invalid_value",
                  "Invalid value: '%.40s'. Supported values are: 'system', 'assistant', 'user', "
                  "and 'developer'.",
                  role->valuestring);
      return NULL;
    }
    char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
    if (!text) {
      free(last_user);
      snprintf(param, sizeof param, "messages[%d].content", i);
      BAD_REQUEST(param, "invalid_type",
                  "Invalid type for '%s': expected a string or an array of text parts.", param);
      return NULL;
    }
    *prompt_chars += strlen(text);
    if (!strcmp(role->valuestring, "user")) {
      free(last_user);
      last_user = text;
    } else {
      free(text);
    }
  }
  return last_user ? last_user : strdup("");
}

/* Checks response_format; returns 0 with *schema (borrowed, may be NULL) and
 * *kind 0 text, 1 json_object, 2 json_schema; or -1 after answering. */
static int check_response_format(provsim *ps, http_request *req, const cJSON *root,
                                 const cJSON **schema, int *kind) {
  const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
  *schema = NULL;
  *kind = 0;
  if (!rf || cJSON_IsNull(rf)) return 0;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
  if (!cJSON_IsObject(rf) || !cJSON_IsString(type)) {
    BAD_REQUEST("response_format.type", "missing_required_parameter",
                "Missing required parameter: 'response_format.type'.");
    return -1;
  }
  if (!strcmp(type->valuestring, "text")) return 0;
  if (!strcmp(type->valuestring, "json_object")) return *kind = 1, 0;
  if (strcmp(type->valuestring, "json_schema") != 0) {
    BAD_REQUEST("response_format.type", "invalid_value",
                "Invalid value: '%.40s'. Supported values are: 'json_object', 'json_schema', and "
                "'text'.",
                type->valuestring);
    return -1;
  }
  const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
  if (!cJSON_IsObject(js)) {
    BAD_REQUEST("response_format.json_schema", "missing_required_parameter",
                "Missing required parameter: 'response_format.json_schema'.");
    return -1;
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");
  if (!cJSON_IsString(name)) {
    BAD_REQUEST("response_format.json_schema.name", "missing_required_parameter",
                "Missing required parameter: 'response_format.json_schema.name'.");
    return -1;
  }
  size_t nl = strlen(name->valuestring);
  if (nl == 0 || nl > 64 ||
      strspn(name->valuestring,
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != nl) {
    BAD_REQUEST("response_format.json_schema.name", "invalid_value",
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' (max 64).");
    return -1;
  }
  const cJSON *strict = cJSON_GetObjectItemCaseSensitive(js, "strict");
  *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
  if (*schema && !cJSON_IsObject(*schema)) {
    BAD_REQUEST("response_format.json_schema.schema", "invalid_type",
                "Invalid type for 'response_format.json_schema.schema': expected an object.");
    return -1;
  }
  char msg[512];
  if (cJSON_IsTrue(strict) &&
      schemafill_check_strict(*schema, name->valuestring, msg, sizeof msg)) {
    BAD_REQUEST("response_format", NULL, "%s", msg);
    return -1;
  }
  *kind = 2;
  return 0;
}

/* The assistant's text for the request: a document valid against the schema,
 * a small JSON object, or plain text. Caller frees (cJSON_free). */
static char *make_content(int kind, const cJSON *schema, const char *prompt) {
  if (kind == 2 && schema) {
    cJSON *doc = schemafill_generate(schema, prompt);
    char *s = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    return s;
  }
  char text[320];
  snprintf(text, sizeof text, "This is a simulated answer from genq-provsim to: %.200s", prompt);
  if (kind == 0) {
    size_t n = strlen(text) + 1;
    char *s = cJSON_malloc(n);
    return s ? memcpy(s, text, n) : NULL;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "response", text);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

static void chat_completions(provsim *ps, http_request *req) {
  oa_state *os = ps->openai;
  const char *auth = http_req_header(req, "authorization");
  const char *key = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : "";
  while (*key == ' ')
    key++;
  if (!*key) {
    oa_error(ps, req, -1, 401, "invalid_request_error", NULL, NULL,
             "You didn't provide an API key. You need to provide your API key in an Authorization "
             "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    return;
  }
  size_t blen;
  const char *body = http_req_body(req, &blen);
  cJSON *root = cJSON_ParseWithLength(body, blen);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    BAD_REQUEST(NULL, NULL,
                "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.");
    return;
  }
  size_t prompt_chars;
  const cJSON *schema;
  int kind;
  char *prompt = check_messages(ps, req, root, &prompt_chars), *content = NULL, *out = NULL;
  if (!prompt) goto done;
  if (check_response_format(ps, req, root, &schema, &kind) < 0) goto done;
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"))) {
    BAD_REQUEST("stream", "unsupported_value", "genq-provsim does not support streaming.");
    goto done;
  }

  int latency = -1; /* the configured one */
  const char *sleep_hook = strstr(prompt, "provsim:sleep=");
  if (sleep_hook) {
    unsigned long ms = strtoul(sleep_hook + strlen("provsim:sleep="), NULL, 10);
    latency = ms > OA_MAX_SLEEP_MS ? OA_MAX_SLEEP_MS : (int)ms;
  }
  if (strstr(prompt, "provsim:error500")) {
    oa_error(ps, req, latency, 500, "server_error", NULL, NULL,
             "The server had an error while processing your request. Sorry about that!");
    goto done;
  }
  char hex[65];
  sha256_hex(prompt, hex);
  simstats_incr(ps->stats, "openai", "chat_completions", NULL);
  simstats_incr(ps->stats, "openai", "by_prompt", hex);
  simfaults_created(ps, req, hex);
  os->served++;

  char proc_ms[48], remaining[64];
  snprintf(proc_ms, sizeof proc_ms, "openai-processing-ms: %u",
           latency >= 0 ? (unsigned)latency : simfaults_latency(ps, SIM_OPENAI));
  snprintf(remaining, sizeof remaining, "x-ratelimit-remaining-requests: %d", OA_RATE_LIMIT - 1);
  const char *headers[] = {
      proc_ms,   "openai-version: 2020-10-01",      "x-ratelimit-limit-requests: 10000",
      remaining, "x-ratelimit-reset-requests: 6ms", NULL};
  if (strstr(prompt, "provsim:garbage")) {
    static const char garbage[] = "<html><body>502 upstream garbage {\"id\": \"chatcmpl-";
    provsim_reply(ps, req, latency, 200, "application/json", headers, garbage, sizeof garbage - 1);
    goto done;
  }

  int refuse = strstr(prompt, "provsim:refuse") != NULL;
  int cut = strstr(prompt, "provsim:length") != NULL;
  if (!refuse && !cut) {
    simoutcome oc = simfaults_outcome(ps, SIM_OPENAI);
    refuse = oc == SIMOUTCOME_MODERATION;
    cut = oc == SIMOUTCOME_FAIL;
  }
  const char *finish = "stop";
  if (!refuse && !(content = make_content(kind, schema, prompt))) goto oom;
  size_t clen = content ? strlen(content) : strlen(OA_REFUSAL);
  const cJSON *mct = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
  if (!cJSON_IsNumber(mct)) mct = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
  size_t limit = cJSON_IsNumber(mct) && mct->valuedouble >= 1 ? (size_t)mct->valuedouble * 4 : 0;
  if (content && (cut || (limit && clen > limit))) {
    clen = limit && limit < clen / 2 ? limit : clen / 2; /* cut mid-document: not valid JSON */
    while (clen > 0 && ((unsigned char)content[clen] & 0xC0) == 0x80)
      clen--;
    content[clen] = '\0';
    finish = "length";
  }

  char id[40] = "chatcmpl-";
  random_id(id + 9, 29);
  cJSON *r = cJSON_CreateObject(), *choice, *msg, *usage;
  cJSON_AddStringToObject(r, "id", id);
  cJSON_AddStringToObject(r, "object", "chat.completion");
  cJSON_AddNumberToObject(r, "created", (double)time(NULL));
  cJSON_AddStringToObject(r, "model", cJSON_GetObjectItemCaseSensitive(root, "model")->valuestring);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "choices"), choice = cJSON_CreateObject());
  cJSON_AddNumberToObject(choice, "index", 0);
  msg = cJSON_AddObjectToObject(choice, "message");
  cJSON_AddStringToObject(msg, "role", "assistant");
  if (refuse) {
    cJSON_AddNullToObject(msg, "content");
    cJSON_AddStringToObject(msg, "refusal", OA_REFUSAL);
  } else {
    cJSON_AddStringToObject(msg, "content", content);
    cJSON_AddNullToObject(msg, "refusal");
  }
  cJSON_AddArrayToObject(msg, "annotations");
  cJSON_AddNullToObject(choice, "logprobs");
  cJSON_AddStringToObject(choice, "finish_reason", finish);
  long pt = (long)(prompt_chars / 4) + 8, ct = (long)(clen / 4) + 1;
  usage = cJSON_AddObjectToObject(r, "usage");
  cJSON_AddNumberToObject(usage, "prompt_tokens", (double)pt);
  cJSON_AddNumberToObject(usage, "completion_tokens", (double)ct);
  cJSON_AddNumberToObject(usage, "total_tokens", (double)(pt + ct));
  cJSON_AddStringToObject(r, "service_tier", "default");
  cJSON_AddStringToObject(r, "system_fingerprint", "fp_provsim1");
  out = cJSON_PrintUnformatted(r);
  cJSON_Delete(r);
  if (!out) goto oom;
  provsim_reply(ps, req, latency, 200, "application/json", headers, out, strlen(out));
  goto done;
oom:
  oa_error(ps, req, -1, 500, "server_error", NULL, NULL, "genq-provsim ran out of memory.");
done:
  cJSON_free(out);
  cJSON_free(content);
  free(prompt);
  cJSON_Delete(root);
}

void sim_openai_handle(provsim *ps, http_request *req, const char *path) {
  const char *method = http_req_method(req);
  if (!strcmp(path, "/v1/chat/completions")) {
    if (!strcmp(method, "POST"))
      chat_completions(ps, req);
    else
      oa_error(ps, req, -1, 405, "invalid_request_error", NULL, NULL,
               "Invalid method for URL (%.8s %.200s)", method, path);
    return;
  }
  oa_error(ps, req, -1, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%.8s %.200s)",
           method, path);
}
