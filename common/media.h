#ifndef GENQ_MEDIA_H
#define GENQ_MEDIA_H

#include <stddef.h>

/* What genq knows about media bytes: which content types it accepts, what
 * the first bytes of each look like, and the digests and ids it records for
 * stored bytes (uploads and assets). */

/* 1 for the content types POST /v1/uploads accepts (SPEC §4): image/png,
 * image/jpeg, image/webp, audio/mpeg, audio/wav, audio/mp4. Parameters after
 * ';' are not allowed. */
int media_upload_type_allowed(const char *content_type);
/* The content type the bytes' signature says (image/png, image/jpeg,
 * image/webp, audio/mpeg, audio/wav, audio/mp4, video/mp4 — MP4 audio and
 * video share a signature: "ftyp" at offset 4), or NULL when unknown. */
const char *media_sniff(const unsigned char *data, size_t len);
/* 1 when the bytes' signature fits the declared content type (audio/mp4 and
 * video/mp4 both accept an ftyp box; audio/mpeg accepts an ID3 tag or an
 * MPEG audio frame sync). */
int media_matches(const char *content_type, const unsigned char *data, size_t len);
/* "image", "audio" or "video" for a content type, NULL otherwise. */
const char *media_class(const char *content_type);
/* Lowercase hex SHA-256 (OpenSSL), NUL-terminated. */
void media_sha256_hex(const void *data, size_t len, char out[65]);
/* A random (version 4) UUID, canonical lowercase, NUL-terminated. Returns 0,
 * or -1 when the system has no randomness to give. */
int media_uuid4(char out[37]);

#endif
