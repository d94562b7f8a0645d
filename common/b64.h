#ifndef GENQ_B64_H
#define GENQ_B64_H

#include <stddef.h>

/* Standard base64 (RFC 4648 §4, with padding), through OpenSSL's EVP
 * encoder: the alphabet of Standard Webhooks secrets and signatures and of
 * sealed secrets. (JWTs use base64url: jwt.h.) */

/* The encoded length of n bytes, without the NUL. */
#define B64_LEN(n) ((((n) + 2) / 3) * 4)

/* Writes the encoding of in[0..n) and a NUL into out. Returns its length,
 * or -1 when out (outlen bytes) is too small. */
long b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen);
/* Decodes the len characters at in: only the standard alphabet, a length
 * that is a multiple of 4, at most two '=' and only at the end. Returns the
 * number of bytes written to out, or -1 for bad input or an out (outcap
 * bytes) too small. */
long b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

#endif
