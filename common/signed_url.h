#ifndef GENQ_SIGNED_URL_H
#define GENQ_SIGNED_URL_H

#include <stddef.h>

/* Short-lived capability URLs for an upload's bytes.
 *
 * A provider can only fetch inputs from a public URL, while genq keeps
 * uploads in private storage. genq-worker signs
 *
 *   <base>/v1/uploads/<id>/content?expires=<unix>&sig=<hex>
 *
 * with sig = lowercase hex HMAC-SHA256(key, "upload:<id>:<expires>"), and
 * genq-api serves the bytes to whoever presents a valid one: the signature
 * is the capability, no bearer token. Both sides share the key
 * (GENQ_URL_SIGNING_KEY); the "upload:" prefix keeps these signatures apart
 * from anything else ever signed with it. */

#define SIGNED_URL_MIN_KEY 32        /* bytes of key, at least */
#define SIGNED_URL_MAX_AHEAD 86400LL /* 24 h: an expiry further ahead is refused */
#define SIGNED_URL_MAX_ID 64         /* upload ids: 1..64 of [A-Za-z0-9-] */

/* Writes the signed URL for upload_id, valid until expires_unix (inclusive),
 * into out. base is the public base URL of genq-api (a trailing '/' is
 * dropped). Returns 0, or -1 when key is shorter than SIGNED_URL_MIN_KEY,
 * base is empty, upload_id is not 1..SIGNED_URL_MAX_ID of [A-Za-z0-9-],
 * expires_unix is negative, or out is too small (out then holds ""). */
int signed_url_make(const char *key, const char *base, const char *upload_id,
                    long long expires_unix, char *out, size_t outlen);

/* 1 when sig is the signature of (upload_id, expires) under key, and the
 * URL is current: now_unix <= expires <= now_unix + SIGNED_URL_MAX_AHEAD.
 * expires must be canonical decimal (digits, no sign, no leading zero) and
 * sig 64 lowercase hex digits; the comparison takes the same time whatever
 * the bytes (CRYPTO_memcmp). Anything else, NULL arguments or a short key
 * included, is 0. */
int signed_url_check(const char *key, const char *upload_id, const char *expires, const char *sig,
                     long long now_unix);

#endif
