/* stripe_sign.c — Stripe-Signature: parsing the header, HMAC-SHA256 over
 * "<t>.<body>" with OpenSSL's EVP_MAC (streamed: no copy of the body), and
 * a constant-time compare against every v1. */
#include "stripe_sign.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

#define V1_MAX 16 /* v1 values read from one header; more are ignored */

/* HMAC-SHA256 of "<t>.<body>" into mac (32 bytes). Returns 0 or -1. */
static int mac_of(const char *secret, size_t secret_len, long long t, const char *body,
                  size_t body_len, unsigned char mac[32]) {
  if (!secret || secret_len == 0 || t < 0 || (!body && body_len)) return -1;
  char ts[24];
  int tl = snprintf(ts, sizeof ts, "%lld.", t);
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t outlen = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *h = m ? EVP_MAC_CTX_new(m) : NULL;
  int ok = h && EVP_MAC_init(h, (const unsigned char *)secret, secret_len, params) == 1 &&
           EVP_MAC_update(h, (const unsigned char *)ts, (size_t)tl) == 1 &&
           (body_len == 0 || EVP_MAC_update(h, (const unsigned char *)body, body_len) == 1) &&
           EVP_MAC_final(h, out, &outlen, sizeof out) == 1 && outlen == 32;
  EVP_MAC_CTX_free(h);
  EVP_MAC_free(m);
  if (ok) memcpy(mac, out, 32);
  OPENSSL_cleanse(out, sizeof out);
  return ok ? 0 : -1;
}

int stripe_sign_compute(const char *secret, size_t secret_len, long long t, const char *body,
                        size_t body_len, char out[STRIPE_SIGN_HEX + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char mac[32];
  out[0] = '\0';
  if (mac_of(secret, secret_len, t, body, body_len, mac) != 0) return -1;
  for (size_t i = 0; i < 32; i++) {
    out[2 * i] = hex[mac[i] >> 4];
    out[2 * i + 1] = hex[mac[i] & 15];
  }
  out[STRIPE_SIGN_HEX] = '\0';
  return 0;
}

/* the value of one hex digit, or -1 */
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes exactly 64 hex digits (s, n bytes) into 32 bytes. 0 or -1. */
static int unhex(const char *s, size_t n, unsigned char out[32]) {
  if (n != STRIPE_SIGN_HEX) return -1;
  for (size_t i = 0; i < 32; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

stripe_sign_status stripe_sign_verify(const char *header, const char *secrets, const char *body,
                                      size_t body_len, long long now, long long tolerance,
                                      long long *t_out) {
  if (!header) return STRIPE_SIGN_MALFORMED;
  unsigned char v1[V1_MAX][32];
  int nv1 = 0, have_t = 0;
  long long t = 0;
  for (const char *p = header; *p;) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    if (eq) {
      const char *k = p;
      size_t klen = (size_t)(eq - p);
      const char *v = eq + 1;
      size_t vlen = len - klen - 1;
      while (klen && *k == ' ') { /* "t=1, v1=…": spaces after commas */
        k++;
        klen--;
      }
      if (klen == 1 && k[0] == 't') {
        if (have_t || vlen == 0 || vlen > 15) return STRIPE_SIGN_MALFORMED;
        t = 0;
        for (size_t i = 0; i < vlen; i++) {
          if (v[i] < '0' || v[i] > '9') return STRIPE_SIGN_MALFORMED;
          t = t * 10 + (v[i] - '0');
        }
        have_t = 1;
      } else if (klen == 2 && k[0] == 'v' && k[1] == '1' && nv1 < V1_MAX) {
        if (unhex(v, vlen, v1[nv1]) == 0) nv1++; /* not 64 hex digits: matches nothing */
      }
    }
    p += len;
    if (*p == ',') p++;
  }
  if (!have_t) return STRIPE_SIGN_MALFORMED;
  if (t_out) *t_out = t;
  if (nv1 == 0) return STRIPE_SIGN_MALFORMED;
  long long skew = now > t ? now - t : t - now;
  if (skew > tolerance) return STRIPE_SIGN_STALE;
  if (!secrets) return STRIPE_SIGN_MISMATCH;

  int match = 0, tried = 0;
  for (const char *s = secrets; *s && tried < STRIPE_SIGN_MAX_SECRETS;) {
    size_t len = strcspn(s, ",");
    const char *k = s;
    size_t klen = len;
    while (klen && *k == ' ') {
      k++;
      klen--;
    }
    while (klen && k[klen - 1] == ' ')
      klen--;
    s += len;
    if (*s == ',') s++;
    if (klen == 0) continue;
    tried++;
    unsigned char mac[32];
    if (mac_of(k, klen, t, body, body_len, mac) != 0) continue;
    for (int i = 0; i < nv1; i++) /* every one compared: no early exit to time */
      match |= CRYPTO_memcmp(mac, v1[i], 32) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
  }
  return match ? STRIPE_SIGN_OK : STRIPE_SIGN_MISMATCH;
}

const char *stripe_sign_status_name(stripe_sign_status s) {
  switch (s) {
  case STRIPE_SIGN_OK:
    return "ok";
  case STRIPE_SIGN_MALFORMED:
    return "malformed";
  case STRIPE_SIGN_STALE:
    return "stale";
  case STRIPE_SIGN_MISMATCH:
    return "mismatch";
  }
  return "unknown";
}
