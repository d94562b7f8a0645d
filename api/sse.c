/* sse.c — the wire format of one server-sent event (the WHATWG HTML
 * standard's text/event-stream). Pure: no I/O, so the fuzzer drives it
 * (fuzz/fuzz_sse.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

char *api_sse_event(const char *event, const char *data, size_t len, unsigned long id,
                    size_t *out_len) {
  size_t elen = strlen(event);
  /* "event: " "\ndata: " "\nid: " <at most 20 digits> "\n\n" and a NUL */
  size_t fixed = 7 + elen + 7 + 5 + 20 + 2 + 1;
  if (len > SIZE_MAX - fixed) return NULL;
  char *msg = malloc(fixed + len);
  if (!msg) return NULL;
  size_t n = (size_t)snprintf(msg, fixed, "event: %s\ndata: ", event);
  memcpy(msg + n, data, len);
  /* A data line ends at a line break; in JSON text, raw ones can only be
   * whitespace between tokens (strings escape theirs). */
  for (size_t i = n; i < n + len; i++)
    if (msg[i] == '\n' || msg[i] == '\r') msg[i] = ' ';
  n += len;
  n += (size_t)snprintf(msg + n, fixed + len - n, "\nid: %lu\n\n", id);
  *out_len = n;
  return msg;
}
