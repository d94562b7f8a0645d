/* callback_url.c — the capability URLs of provider callbacks
 * (callback_url.h). The token's shape is checked before any MAC is
 * computed, so one job id has exactly one valid token. */
#include "callback_url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "signed_url.h"
#include "uuid.h"

/* Lowercase hex of the first 16 bytes of HMAC-SHA256(key,
 * "luma-callback:<job id>"). Returns 0 or -1. */
static int mac_hex(const char *key, const char *job_id, char hex[CALLBACK_URL_MAC_HEX + 1]) {
  char msg[64];
  int n = snprintf(msg, sizeof msg, "luma-callback:%s", job_id);
  if (n < 0 || (size_t)n >= sizeof msg) return -1;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, (size_t)n, mac,
            &maclen) ||
      maclen * 2 < CALLBACK_URL_MAC_HEX)
    return -1;
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < CALLBACK_URL_MAC_HEX / 2; i++) {
    hex[2 * i] = digits[mac[i] >> 4];
    hex[2 * i + 1] = digits[mac[i] & 15];
  }
  hex[CALLBACK_URL_MAC_HEX] = '\0';
  OPENSSL_cleanse(mac, sizeof mac);
  return 0;
}

static int key_ok(const char *key) {
  return key && strlen(key) >= SIGNED_URL_MIN_KEY;
}

int callback_url_make(const char *key, const char *base, const char *job_id, char *out,
                      size_t outlen) {
  if (!out || outlen == 0) return -1;
  out[0] = '\0';
  if (!key_ok(key) || !base || !job_id || !genq_is_uuid(job_id)) return -1;
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/')
    blen--;
  if (blen == 0 || blen > (size_t)1 << 20) return -1;
  char mac[CALLBACK_URL_MAC_HEX + 1];
  if (mac_hex(key, job_id, mac) != 0) return -1;
  int n =
      snprintf(out, outlen, "%.*s%s%s.%s", (int)blen, base, CALLBACK_URL_LUMA_PATH, job_id, mac);
  if (n < 0 || (size_t)n >= outlen) {
    out[0] = '\0';
    return -1;
  }
  return 0;
}

int callback_url_check(const char *key, const char *token, char job_id_out[37]) {
  if (!key_ok(key) || !token || !job_id_out || strlen(token) != CALLBACK_URL_TOKEN_LEN ||
      token[36] != '.')
    return 0;
  char id[37];
  memcpy(id, token, 36);
  id[36] = '\0';
  const char *sig = token + 37;
  for (size_t i = 0; i < CALLBACK_URL_MAC_HEX; i++)
    if (!((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f'))) return 0;
  if (!genq_is_uuid(id)) return 0;
  char want[CALLBACK_URL_MAC_HEX + 1];
  if (mac_hex(key, id, want) != 0) return 0;
  int same = CRYPTO_memcmp(want, sig, CALLBACK_URL_MAC_HEX) == 0;
  OPENSSL_cleanse(want, sizeof want);
  if (!same) return 0;
  memcpy(job_id_out, id, 37);
  return 1;
}
