/* media.c — content types genq accepts, their signatures, digests and ids.
 *
 * A declared Content-Type is only a claim: the first bytes must say the
 * same, so a provider is never handed a text file that calls itself a PNG.
 * The checks read only the leading signature, never the whole file. */
#include "media.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const upload_types[] = {"image/png",  "image/jpeg", "image/webp",
                                           "audio/mpeg", "audio/wav",  "audio/mp4"};

int media_upload_type_allowed(const char *content_type) {
  if (!content_type) return 0;
  for (size_t i = 0; i < sizeof(upload_types) / sizeof(upload_types[0]); i++)
    if (strcasecmp(content_type, upload_types[i]) == 0) return 1;
  return 0;
}

/* ---- signatures ---- */

static int has(const unsigned char *d, size_t len, size_t off, const char *sig, size_t n) {
  return len >= off + n && memcmp(d + off, sig, n) == 0;
}

static int is_png(const unsigned char *d, size_t len) {
  return has(d, len, 0, "\x89PNG\r\n\x1a\n", 8);
}

static int is_jpeg(const unsigned char *d, size_t len) {
  return has(d, len, 0, "\xff\xd8\xff", 3);
}

/* RIFF container: "RIFF" <size> <form>. */
static int is_riff(const unsigned char *d, size_t len, const char *form) {
  return has(d, len, 0, "RIFF", 4) && has(d, len, 8, form, 4);
}

/* An MPEG audio frame header: 11 sync bits, and version, layer, bitrate and
 * sample rate fields that are not the reserved or "bad" values. This tells
 * MP3 from ADTS AAC (layer 00) and from JPEG (FF D8). */
static int is_mpeg_frame(const unsigned char *d, size_t len) {
  if (len < 4 || d[0] != 0xff || (d[1] & 0xe0) != 0xe0) return 0;
  unsigned version = (d[1] >> 3) & 3, layer = (d[1] >> 1) & 3;
  unsigned bitrate = d[2] >> 4, rate = (d[2] >> 2) & 3;
  return version != 1 && layer != 0 && bitrate != 0xf && rate != 3;
}

/* An ID3v2 tag (which precedes the frames): "ID3", major version 2..4, a
 * revision, flags, and a size of four 7-bit bytes. */
static int is_id3(const unsigned char *d, size_t len) {
  if (len < 10 || !has(d, len, 0, "ID3", 3)) return 0;
  if (d[3] < 2 || d[3] > 4 || d[4] == 0xff) return 0;
  return ((d[6] | d[7] | d[8] | d[9]) & 0x80) == 0;
}

static int is_mp3(const unsigned char *d, size_t len) {
  return is_id3(d, len) || is_mpeg_frame(d, len);
}

/* ISO base media file: an "ftyp" box first, with its major brand. HEIF and
 * AVIF images use the same box: their brands are not MP4 media. */
static const char *const image_brands[] = {"heic", "heix", "heim", "heis",
                                           "mif1", "msf1", "avif", "avis"};
static const char *const audio_brands[] = {"M4A ", "M4B ", "M4P "};

static int brand_in(const unsigned char *brand, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(brand, list[i], 4) == 0) return 1;
  return 0;
}

static int is_mp4(const unsigned char *d, size_t len) {
  if (!has(d, len, 4, "ftyp", 4) || len < 12) return 0;
  return !brand_in(d + 8, image_brands, sizeof(image_brands) / sizeof(image_brands[0]));
}

const char *media_sniff(const unsigned char *data, size_t len) {
  if (!data) return NULL;
  if (is_png(data, len)) return "image/png";
  if (is_jpeg(data, len)) return "image/jpeg";
  if (is_riff(data, len, "WEBP")) return "image/webp";
  if (is_riff(data, len, "WAVE")) return "audio/wav";
  if (is_mp4(data, len))
    return brand_in(data + 8, audio_brands, sizeof(audio_brands) / sizeof(audio_brands[0]))
               ? "audio/mp4"
               : "video/mp4";
  if (is_mp3(data, len)) return "audio/mpeg";
  return NULL;
}

int media_matches(const char *content_type, const unsigned char *data, size_t len) {
  if (!content_type || !data) return 0;
  if (strcasecmp(content_type, "image/png") == 0) return is_png(data, len);
  if (strcasecmp(content_type, "image/jpeg") == 0) return is_jpeg(data, len);
  if (strcasecmp(content_type, "image/webp") == 0) return is_riff(data, len, "WEBP");
  if (strcasecmp(content_type, "audio/wav") == 0) return is_riff(data, len, "WAVE");
  if (strcasecmp(content_type, "audio/mpeg") == 0) return is_mp3(data, len);
  if (strcasecmp(content_type, "audio/mp4") == 0 || strcasecmp(content_type, "video/mp4") == 0)
    return is_mp4(data, len);
  return 0;
}

/* The type must be "<class>/<subtype>" with a subtype of token characters
 * and no parameters. */
const char *media_class(const char *content_type) {
  static const char *const classes[] = {"image", "audio", "video"};
  if (!content_type) return NULL;
  for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
    size_t n = strlen(classes[i]);
    if (strncasecmp(content_type, classes[i], n) != 0 || content_type[n] != '/') continue;
    const char *sub = content_type + n + 1;
    if (!*sub) return NULL;
    for (const char *p = sub; *p; p++)
      if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p)) return NULL;
    return classes[i];
  }
  return NULL;
}

/* ---- digests and ids ---- */

void media_sha256_hex(const void *data, size_t len, char out[65]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(len ? data : (const void *)"", len, d); /* never a NULL pointer, even for 0 bytes */
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[64] = 0;
}

int media_uuid4(char out[37]) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) return -1;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return 0;
}
