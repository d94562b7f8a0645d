/* signed_url.c — HMAC-signed, expiring URLs for upload bytes.
 *
 * Every part of a URL is checked for shape before any MAC is computed, so
 * the MAC input is always canonical: one (id, expires) pair has exactly one
 * valid spelling, and a URL that differs in any byte fails. */
#include "signed_url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define SIG_HEX 64            /* SHA-256 as hex */
#define EXPIRES_MAX_DIGITS 18 /* far beyond any sane time, far from overflow */

static int id_ok(const char *id) {
  if (!id) return 0;
  size_t n = strlen(id);
  if (n == 0 || n > SIGNED_URL_MAX_ID) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
      return 0;
  }
  return 1;
}

static int key_ok(const char *key) {
  return key && strlen(key) >= SIGNED_URL_MIN_KEY;
}

/* Lowercase hex HMAC-SHA256(key, "upload:<id>:<expires>") into hex.
 * Returns 0 or -1. */
static int sign(const char *key, const char *id, const char *expires, char hex[SIG_HEX + 1]) {
  char msg[16 + SIGNED_URL_MAX_ID + EXPIRES_MAX_DIGITS];
  int n = snprintf(msg, sizeof msg, "upload:%s:%s", id, expires);
  if (n < 0 || (size_t)n >= sizeof msg) return -1;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, (size_t)n, mac,
            &maclen) ||
      maclen * 2 != SIG_HEX)
    return -1;
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < maclen; i++) {
    hex[2 * i] = digits[mac[i] >> 4];
    hex[2 * i + 1] = digits[mac[i] & 15];
  }
  hex[SIG_HEX] = '\0';
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

int signed_url_make(const char *key, const char *base, const char *upload_id,
                    long long expires_unix, char *out, size_t outlen) {
  if (!out || outlen == 0) return -1;
  out[0] = '\0';
  if (!key_ok(key) || !base || !id_ok(upload_id) || expires_unix < 0) return -1;
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/')
    blen--;
  if (blen == 0 || blen > (size_t)1 << 20) return -1;
  char expires[EXPIRES_MAX_DIGITS + 2];
  int n = snprintf(expires, sizeof expires, "%lld", expires_unix);
  if (n < 0 || n > EXPIRES_MAX_DIGITS) return -1;
  char sig[SIG_HEX + 1];
  if (sign(key, upload_id, expires, sig) != 0) return -1;
  n = snprintf(out, outlen, "%.*s/v1/uploads/%s/content?expires=%s&sig=%s", (int)blen, base,
               upload_id, expires, sig);
  if (n < 0 || (size_t)n >= outlen) {
    out[0] = '\0';
    return -1;
  }
  return 0;
}

/* Canonical decimal: 1..EXPIRES_MAX_DIGITS digits, no leading zero. */
static int parse_expires(const char *s, long long *out) {
  size_t n = strlen(s);
  if (n == 0 || n > EXPIRES_MAX_DIGITS || (s[0] == '0' && n > 1)) return 0;
  long long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

static int sig_shape_ok(const char *sig) {
  if (strlen(sig) != SIG_HEX) return 0;
  for (size_t i = 0; i < SIG_HEX; i++)
    if (!((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f'))) return 0;
  return 1;
}

int signed_url_check(const char *key, const char *upload_id, const char *expires, const char *sig,
                     long long now_unix) {
  if (!key_ok(key) || !id_ok(upload_id) || !expires || !sig || !sig_shape_ok(sig) || now_unix < 0)
    return 0;
  long long exp = 0;
  if (!parse_expires(expires, &exp)) return 0;
  char want[SIG_HEX + 1];
  if (sign(key, upload_id, expires, want) != 0) return 0;
  /* the MAC first, whatever the times say: a forged URL costs the same */
  int same = CRYPTO_memcmp(want, sig, SIG_HEX) == 0;
  OPENSSL_cleanse(want, sizeof want);
  if (!same) return 0;
  if (exp < now_unix) return 0;                        /* expired */
  if (exp - now_unix > SIGNED_URL_MAX_AHEAD) return 0; /* nobody genuine signs that far ahead */
  return 1;
}
