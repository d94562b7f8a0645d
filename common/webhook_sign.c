/* webhook_sign.c — Standard Webhooks signatures: HMAC-SHA256 over
 * "<id>.<timestamp>.<body>" with OpenSSL's EVP_MAC (streamed: no copy of
 * the body), as "v1,<base64>". */
#include "webhook_sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

#include "b64.h"

int webhook_secret_encode(const unsigned char *key, size_t keylen, char *out, size_t outlen) {
  size_t p = sizeof WEBHOOK_SECRET_PREFIX - 1;
  if (keylen == 0 || keylen > WEBHOOK_KEY_MAX || outlen < p + B64_LEN(keylen) + 1) return -1;
  memcpy(out, WEBHOOK_SECRET_PREFIX, p);
  return b64_encode(key, keylen, out + p, outlen - p) < 0 ? -1 : 0;
}

int webhook_secret_decode(const char *secret, unsigned char key[WEBHOOK_KEY_MAX]) {
  size_t p = sizeof WEBHOOK_SECRET_PREFIX - 1;
  if (!secret || strncmp(secret, WEBHOOK_SECRET_PREFIX, p) != 0) return -1;
  const char *b = secret + p;
  long n = b64_decode(b, strlen(b), key, WEBHOOK_KEY_MAX);
  return n > 0 ? (int)n : -1;
}

int webhook_sign(const unsigned char *key, size_t keylen, const char *msg_id, long long timestamp,
                 const char *body, size_t body_len, char out[WEBHOOK_SIGNATURE_MAX]) {
  out[0] = '\0';
  if (!key || keylen == 0 || keylen > WEBHOOK_KEY_MAX || !msg_id || !*msg_id ||
      strchr(msg_id, '.') || timestamp < 0 || (!body && body_len))
    return -1;
  char ts[24];
  int tl = snprintf(ts, sizeof ts, "%lld", timestamp);
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t maclen = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *h = m ? EVP_MAC_CTX_new(m) : NULL;
  int ok = h && EVP_MAC_init(h, key, keylen, params) == 1 &&
           EVP_MAC_update(h, (const unsigned char *)msg_id, strlen(msg_id)) == 1 &&
           EVP_MAC_update(h, (const unsigned char *)".", 1) == 1 &&
           EVP_MAC_update(h, (const unsigned char *)ts, (size_t)tl) == 1 &&
           EVP_MAC_update(h, (const unsigned char *)".", 1) == 1 &&
           (body_len == 0 || EVP_MAC_update(h, (const unsigned char *)body, body_len) == 1) &&
           EVP_MAC_final(h, mac, &maclen, sizeof mac) == 1 && maclen == 32;
  EVP_MAC_CTX_free(h);
  EVP_MAC_free(m);
  if (!ok) return -1;
  memcpy(out, "v1,", 3);
  ok = b64_encode(mac, maclen, out + 3, WEBHOOK_SIGNATURE_MAX - 3) > 0;
  OPENSSL_cleanse(mac, sizeof mac);
  return ok ? 0 : -1;
}
