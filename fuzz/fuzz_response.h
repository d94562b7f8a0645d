/* The input of the provider response targets (fuzz_openai.c, fuzz_luma.c,
 * fuzz_hedra.c): a first line "STATUS WORD [RETRY_AFTER_MS]", then the body
 * as the provider sent it, e.g.
 *
 *   200 get
 *   {"id":"…","state":"completed",…}
 *
 * STATUS is the HTTP status (0: the transfer failed), WORD what the target
 * says it is (an operation, a scene count). */
#ifndef GENQ_FUZZ_RESPONSE_H
#define GENQ_FUZZ_RESPONSE_H

#include <curl/curl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

/* The key the targets scrub from messages, as the clients scrub theirs:
 * shorter than "[redacted]", so that scrubbing makes a message longer. */
#define FUZZ_API_KEY "key-fz"

static long fuzz_number(const char **p, const char *end) {
  long v = 0;
  int digits = 0;
  while (*p < end && **p >= '0' && **p <= '9' && digits < 9) {
    v = v * 10 + (**p - '0');
    (*p)++;
    digits++;
  }
  return digits ? v : -1;
}

/* Fills resp from data; word gets the second field (NUL-terminated). The
 * body is a copy, NUL-terminated as httpc's are (free it with free()).
 * Returns -1 when the first line is not of that form. */
static int fuzz_response(const uint8_t *data, size_t size, httpc_response *resp, char *word,
                         size_t wordlen, char **body) {
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  if (!nl) return -1;
  memset(resp, 0, sizeof *resp);
  long status = fuzz_number(&p, nl);
  if (status < 0 || status > 999 || p == nl || *p++ != ' ') return -1;
  size_t w = 0;
  while (p < nl && *p != ' ' && *p != '\r' && w + 1 < wordlen)
    word[w++] = *p++;
  word[w] = '\0';
  resp->retry_after_ms = -1;
  if (p < nl && *p == ' ') {
    p++;
    resp->retry_after_ms = fuzz_number(&p, nl);
  }
  size_t blen = (size_t)(end - nl - 1);
  if (!(*body = malloc(blen + 1))) return -1;
  memcpy(*body, nl + 1, blen);
  (*body)[blen] = '\0';
  resp->status = (int)status;
  resp->curl_code = status == 0 ? CURLE_COULDNT_CONNECT : CURLE_OK;
  resp->body = *body;
  resp->body_len = blen;
  resp->request_id = "req-fuzz";
  return 0;
}

static int fuzz_one_of(const char *s, const char *const *list) {
  for (; s && *list; list++)
    if (strcmp(s, *list) == 0) return 1;
  return 0;
}

#endif
