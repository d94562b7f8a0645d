#ifndef GENQ_WEBHOOK_SIGN_H
#define GENQ_WEBHOOK_SIGN_H

#include <stddef.h>

/* Standard Webhooks signatures (https://www.standardwebhooks.com, the
 * scheme of Svix): a secret "whsec_<base64 key>", and for each message
 *
 *   webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
 *
 * with id the webhook-id header and timestamp the webhook-timestamp header
 * (Unix seconds). Several signatures, space-separated, let a receiver verify
 * with either of two secrets while one is being rotated. */

#define WEBHOOK_SECRET_PREFIX "whsec_"
#define WEBHOOK_KEY_BYTES 32 /* the secrets genq makes */
#define WEBHOOK_KEY_MAX 64   /* the longest key accepted */
/* "whsec_" + base64 of WEBHOOK_KEY_MAX bytes + NUL */
#define WEBHOOK_SECRET_TEXT_MAX (6 + ((WEBHOOK_KEY_MAX + 2) / 3) * 4 + 1)
/* "v1," + base64 of 32 bytes + NUL */
#define WEBHOOK_SIGNATURE_MAX (3 + 44 + 1)

/* Writes "whsec_<base64 key>" into out. Returns 0, or -1 when keylen is 0
 * or over WEBHOOK_KEY_MAX or out is too small. */
int webhook_secret_encode(const unsigned char *key, size_t keylen, char *out, size_t outlen);
/* Reads "whsec_<base64>" into key (WEBHOOK_KEY_MAX bytes). Returns the
 * key's length, or -1 for anything else. */
int webhook_secret_decode(const char *secret, unsigned char key[WEBHOOK_KEY_MAX]);

/* Writes "v1,<base64 signature>" of the message into out
 * (WEBHOOK_SIGNATURE_MAX bytes). Returns 0, or -1 on bad arguments (an
 * empty key, an id with a '.', a negative timestamp). */
int webhook_sign(const unsigned char *key, size_t keylen, const char *msg_id, long long timestamp,
                 const char *body, size_t body_len, char out[WEBHOOK_SIGNATURE_MAX]);

#endif
