/* secret_box.c — AES-256-GCM sealing of stored secrets through OpenSSL's
 * EVP AEAD interface, and the key ring read from the environment. */
#include "secret_box.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"

#define SB_CURRENT "GENQ_SECRETS_KEY"
#define SB_PREVIOUS "GENQ_SECRETS_KEY_PREVIOUS"

static int sb_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int sb_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* One key, s[0..len): "[kid:]base64". 0 or -1. */
static int sb_key_parse(const char *s, size_t len, secret_key *k) {
  memset(k, 0, sizeof *k);
  const char *colon = memchr(s, ':', len);
  const char *b = s;
  if (colon) {
    size_t il = (size_t)(colon - s);
    if (il == 0 || il > SECRET_KEY_ID_MAX) return -1;
    for (size_t i = 0; i < il; i++)
      if (!sb_id_char(s[i])) return -1;
    memcpy(k->id, s, il);
    b = colon + 1;
  }
  size_t bl = len - (size_t)(b - s);
  if (b64_decode(b, bl, k->key, sizeof k->key) != SECRET_KEY_BYTES) {
    OPENSSL_cleanse(k, sizeof *k);
    return -1;
  }
  if (!colon) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(k->key, sizeof k->key, d);
    snprintf(k->id, sizeof k->id, "%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
  }
  return 0;
}

static int sb_add(secret_keyring *kr, const char *s, size_t len, const char *var, char *err,
                  size_t errlen) {
  if (kr->n >= SECRET_KEYS_MAX)
    return sb_fail(err, errlen, "%s holds too many keys (at most %d in all)", var, SECRET_KEYS_MAX);
  secret_key *k = &kr->keys[kr->n];
  if (sb_key_parse(s, len, k) < 0)
    return sb_fail(err, errlen,
                   "%s must be [kid:]<base64 of %d bytes> (e.g. from openssl rand -base64 %d), "
                   "kid at most %d of A-Z a-z 0-9 _ -",
                   var, SECRET_KEY_BYTES, SECRET_KEY_BYTES, SECRET_KEY_ID_MAX);
  for (int i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].id, k->id) == 0) {
      OPENSSL_cleanse(k, sizeof *k);
      return sb_fail(err, errlen, "%s: two keys have the id '%s'", var, kr->keys[i].id);
    }
  kr->n++;
  return 0;
}

int secret_keyring_parse(secret_keyring *kr, const char *current, const char *previous, char *err,
                         size_t errlen) {
  memset(kr, 0, sizeof *kr);
  if (err && errlen) err[0] = '\0';
  if (!current || !*current) {
    if (previous && *previous)
      return sb_fail(err, errlen, "%s needs %s (the key that seals)", SB_PREVIOUS, SB_CURRENT);
    return sb_fail(err, errlen, "%s is not set", SB_CURRENT);
  }
  if (sb_add(kr, current, strlen(current), SB_CURRENT, err, errlen) < 0) goto fail;
  for (const char *p = previous; p && *p;) {
    size_t len = strcspn(p, ",");
    if (len && sb_add(kr, p, len, SB_PREVIOUS, err, errlen) < 0) goto fail;
    p += len;
    if (*p == ',') p++;
  }
  return 0;
fail:
  secret_keyring_wipe(kr);
  return -1;
}

void secret_keyring_wipe(secret_keyring *kr) {
  if (kr) OPENSSL_cleanse(kr, sizeof *kr);
}

/* The additional data: "<key id>\0<context>\0". n is its length. */
static int sb_aad(const char *key_id, const char *context, char *out, size_t outlen, int *n) {
  size_t il = strlen(key_id), cl = strlen(context);
  if (il + 1 + cl + 1 > outlen) return -1;
  memcpy(out, key_id, il + 1);
  memcpy(out + il + 1, context, cl + 1);
  *n = (int)(il + 1 + cl + 1);
  return 0;
}

int secret_box_seal(const secret_keyring *kr, const char *context, const unsigned char *pt,
                    size_t n, char *out, size_t outlen) {
  if (!kr || kr->n < 1 || !context || !pt || n == 0 || n > SECRET_PLAIN_MAX ||
      outlen < SECRET_SEALED_LEN(n))
    return -1;
  const secret_key *k = &kr->keys[0];
  unsigned char buf[SECRET_NONCE_BYTES + SECRET_PLAIN_MAX + SECRET_TAG_BYTES];
  char aad[SECRET_KEY_ID_MAX + 1 + 512];
  int aadn, outn = 0, fin = 0;
  if (sb_aad(k->id, context, aad, sizeof aad, &aadn) < 0 ||
      RAND_bytes(buf, SECRET_NONCE_BYTES) != 1)
    return -1;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_BYTES, NULL) == 1 &&
           EVP_EncryptInit_ex(c, NULL, NULL, k->key, buf) == 1 &&
           EVP_EncryptUpdate(c, NULL, &outn, (const unsigned char *)aad, aadn) == 1 &&
           EVP_EncryptUpdate(c, buf + SECRET_NONCE_BYTES, &outn, pt, (int)n) == 1 &&
           outn == (int)n && EVP_EncryptFinal_ex(c, buf + SECRET_NONCE_BYTES + n, &fin) == 1 &&
           fin == 0 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_BYTES,
                               buf + SECRET_NONCE_BYTES + n) == 1 &&
           b64_encode(buf, SECRET_NONCE_BYTES + n + SECRET_TAG_BYTES, out, outlen) > 0;
  EVP_CIPHER_CTX_free(c);
  OPENSSL_cleanse(buf, sizeof buf);
  return ok ? 0 : -1;
}

int secret_box_open(const secret_keyring *kr, const char *key_id, const char *context,
                    const char *sealed, unsigned char *pt, size_t ptcap) {
  if (!kr || !key_id || !context || !sealed || !pt) return SECRET_BOX_MALFORMED;
  const secret_key *k = NULL;
  for (int i = 0; i < kr->n && !k; i++)
    if (strcmp(kr->keys[i].id, key_id) == 0) k = &kr->keys[i];
  if (!k) return SECRET_BOX_UNKNOWN_KEY;
  unsigned char buf[SECRET_NONCE_BYTES + SECRET_PLAIN_MAX + SECRET_TAG_BYTES];
  long got = b64_decode(sealed, strlen(sealed), buf, sizeof buf);
  if (got <= SECRET_NONCE_BYTES + SECRET_TAG_BYTES) return SECRET_BOX_MALFORMED;
  size_t n = (size_t)got - SECRET_NONCE_BYTES - SECRET_TAG_BYTES;
  if (n > ptcap) return SECRET_BOX_MALFORMED;
  char aad[SECRET_KEY_ID_MAX + 1 + 512];
  int aadn, outn = 0, fin = 0;
  if (sb_aad(k->id, context, aad, sizeof aad, &aadn) < 0) return SECRET_BOX_MALFORMED;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int ok = c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_BYTES, NULL) == 1 &&
           EVP_DecryptInit_ex(c, NULL, NULL, k->key, buf) == 1 &&
           EVP_DecryptUpdate(c, NULL, &outn, (const unsigned char *)aad, aadn) == 1 &&
           EVP_DecryptUpdate(c, pt, &outn, buf + SECRET_NONCE_BYTES, (int)n) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_BYTES,
                               buf + SECRET_NONCE_BYTES + n) == 1 &&
           EVP_DecryptFinal_ex(c, pt + outn, &fin) == 1;
  EVP_CIPHER_CTX_free(c);
  OPENSSL_cleanse(buf, sizeof buf);
  if (!ok) {
    OPENSSL_cleanse(pt, n);
    return SECRET_BOX_FORGED;
  }
  return (int)n;
}
