/* fuzz_multipart — genq-provsim's multipart/form-data reader
 * (provsim/multipart.c), driven as its Hedra upload handler drives it
 * (provsim/sim_hedra.c): the input's first line is the request's
 * Content-Type, the rest its body. The boundary comes from the header
 * (multipart_param), then the one "file" field from the body
 * (multipart_field).
 *
 * What must hold: parameters fit their buffer; a found part lies inside the
 * body, is named "file" and is followed by a delimiter; a refusal says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

#define CT_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t ctlen = nl ? (size_t)(nl - data) : size;
  if (ctlen > CT_MAX) return 0; /* longer than any header the server keeps */
  char ct[CT_MAX + 1], boundary[72], msg[200];
  memcpy(ct, data, ctlen);
  ct[ctlen] = '\0';
  if (ctlen && ct[ctlen - 1] == '\r') ct[ctlen - 1] = '\0';

  int r = multipart_param(ct, "boundary", boundary, sizeof boundary);
  CHECK(r >= -1 && r <= 1);
  if (r == 1) CHECK(strlen(boundary) < sizeof boundary);
  char other[64];
  r = multipart_param(ct, "charset", other, sizeof other);
  CHECK(r >= -1 && r <= 1);
  if (multipart_param(ct, "boundary", boundary, sizeof boundary) != 1 || !boundary[0]) return 0;

  /* The body in a buffer of its own size: no byte past it to lean on. */
  size_t blen = nl ? size - ctlen - 1 : 0;
  char *body = malloc(blen ? blen : 1);
  CHECK(body);
  if (blen) memcpy(body, nl + 1, blen);
  multipart_part part;
  msg[0] = '\0';
  if (multipart_field(body, blen, boundary, "file", &part, msg, sizeof msg) == 0) {
    CHECK(strcmp(part.name, "file") == 0);
    CHECK(memchr(part.filename, '\0', sizeof part.filename));
    CHECK(memchr(part.content_type, '\0', sizeof part.content_type));
    CHECK(part.data >= body && part.len <= blen && (size_t)(part.data - body) <= blen - part.len);
    size_t after = (size_t)(part.data - body) + part.len, bl = strlen(boundary);
    CHECK(blen - after >= bl + 4 && memcmp(body + after, "\r\n--", 4) == 0 &&
          memcmp(body + after + 4, boundary, bl) == 0);
  } else {
    CHECK(msg[0] && memchr(msg, '\0', sizeof msg));
  }
  free(body);
  return 0;
}
