/* fuzz_sse — the server-sent event writer of GET /v1/jobs/{id}/events
 * (api/sse.c, which api/events.c sends each job change with). The input is
 * the event's data, a job's JSON as PostgreSQL renders it; the event id comes
 * from its length.
 *
 * The output is read back as a browser's EventSource reads a stream (the
 * WHATWG HTML standard's event-stream interpretation): it must be exactly one
 * event, named "job", with that id, whose data is the input with each CR or
 * LF turned into a space. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

typedef struct {
  int events;
  char event[16];
  char id[32];
  const char *data; /* the data of the one event: a line of the stream */
  size_t data_len;
  int data_lines;
} sse_seen;

/* One line of the stream (without its end): a field, a comment or, when
 * empty, the dispatch of the event. */
static void sse_line(sse_seen *s, const char *l, size_t n) {
  if (n == 0) {
    s->events++;
    return;
  }
  if (l[0] == ':') return;
  const char *colon = memchr(l, ':', n);
  size_t nl = colon ? (size_t)(colon - l) : n;
  const char *v = colon ? colon + 1 : l + n;
  if (v < l + n && *v == ' ') v++;
  size_t vl = (size_t)(l + n - v);
  if (nl == 5 && memcmp(l, "event", 5) == 0) {
    CHECK(vl < sizeof s->event);
    memcpy(s->event, v, vl);
    s->event[vl] = '\0';
  } else if (nl == 4 && memcmp(l, "data", 4) == 0) {
    s->data = v;
    s->data_len = vl;
    s->data_lines++;
  } else if (nl == 2 && memcmp(l, "id", 2) == 0) {
    CHECK(vl < sizeof s->id);
    memcpy(s->id, v, vl);
    s->id[vl] = '\0';
  } else {
    CHECK(0); /* genq sends no other field */
  }
}

/* Lines end at CRLF, LF or CR. Returns 1 when the stream ends with a line end. */
static int sse_read(sse_seen *s, const char *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n' && p[i] != '\r') continue;
    sse_line(s, p + start, i - start);
    if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
    start = i + 1;
  }
  return start == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned long id = size % 3 == 0 ? (unsigned long)-1 : (unsigned long)size + 1;
  size_t n = 0;
  char *msg = api_sse_event("job", (const char *)data, size, id, &n);
  CHECK(msg && msg[n] == '\0');
  sse_seen s = {0};
  CHECK(sse_read(&s, msg, n));
  CHECK(s.events == 1 && s.data_lines == 1 && strcmp(s.event, "job") == 0);
  char want[32];
  snprintf(want, sizeof want, "%lu", id);
  CHECK(strcmp(s.id, want) == 0);
  CHECK(s.data_len == size);
  for (size_t i = 0; i < size; i++)
    CHECK(s.data[i] == (data[i] == '\n' || data[i] == '\r' ? ' ' : (char)data[i]));
  free(msg);
  return 0;
}
