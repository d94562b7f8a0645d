/* fuzz_media — the media sniffer (common/media.c): the input is the first
 * bytes of an upload (POST /v1/uploads) or of a provider's download
 * (worker/output.c), and, read as text, a declared Content-Type.
 *
 * What must hold: a sniffed type is one genq knows, of a known class, and
 * matches its own bytes; it is the first type, in the sniffer's order, that
 * media_matches accepts; matching ignores the case of the type; a class
 * names the type's prefix. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "media.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

static const char *const types[] = {"image/png", "image/jpeg", "image/webp", "audio/mpeg",
                                    "audio/wav", "audio/mp4",  "video/mp4"};
/* The order in which media_sniff tries the signatures, and the same in
 * other cases. */
static const char *const order[] = {"image/png", "image/jpeg", "image/webp",
                                    "audio/wav", "video/mp4",  "audio/mpeg"};
static const char *const upper[] = {"IMAGE/PNG", "Image/Jpeg", "IMAGE/webp",
                                    "AUDIO/WAV", "VIDEO/mp4",  "Audio/MPEG"};

static int is(const char *a, const char *b) {
  return a && strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *sniffed = media_sniff(data, size);
  if (sniffed) {
    size_t i = 0;
    while (i < sizeof types / sizeof types[0] && strcmp(types[i], sniffed) != 0)
      i++;
    CHECK(i < sizeof types / sizeof types[0]);
    CHECK(media_matches(sniffed, data, size) == 1 && media_class(sniffed));
    CHECK(media_upload_type_allowed(sniffed) == !is(sniffed, "video/mp4"));
  }
  /* The sniffer's answer is the first type, in its order, whose signature
   * the bytes have (signatures overlap: "ftyp" may follow a JPEG's or a
   * RIFF's first bytes); MP4's brand says audio or video. */
  const char *first = NULL;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    int m = media_matches(order[i], data, size);
    CHECK(m == 0 || m == 1);
    CHECK(m == media_matches(upper[i], data, size));
    if (m && !first) first = order[i];
  }
  CHECK(media_matches("audio/mp4", data, size) == media_matches("video/mp4", data, size));
  if (is(first, "video/mp4"))
    CHECK(is(sniffed, "audio/mp4") || is(sniffed, "video/mp4"));
  else
    CHECK(first ? is(sniffed, first) : !sniffed);

  char ct[129];
  size_t n = size < sizeof ct - 1 ? size : sizeof ct - 1;
  memcpy(ct, data, n);
  ct[n] = '\0';
  const char *cls = media_class(ct);
  if (cls) {
    size_t cl = strlen(cls);
    CHECK(is(cls, "image") || is(cls, "audio") || is(cls, "video"));
    CHECK(strncasecmp(ct, cls, cl) == 0 && ct[cl] == '/' && ct[cl + 1]);
  }
  if (media_upload_type_allowed(ct)) CHECK(is(cls, "image") || is(cls, "audio"));
  return 0;
}
