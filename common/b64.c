/* b64.c — standard base64 on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock,
 * with the strictness EVP_DecodeBlock lacks (it skips blanks and counts
 * padding as zero bytes). */
#include "b64.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

long b64_encode(const unsigned char *in, size_t n, char *out, size_t outlen) {
  if (n > (size_t)1 << 28 || outlen < B64_LEN(n) + 1) return -1;
  return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

long b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap) {
  if (len % 4 != 0 || len > (size_t)1 << 28) return -1;
  size_t pad = 0;
  while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
    pad++;
  for (size_t i = 0; i < len - pad; i++)
    if (!b64_char((unsigned char)in[i])) return -1;
  size_t n = len / 4 * 3 - pad;
  if (n > outcap) return -1;
  if (len == 0) return 0;
  /* EVP_DecodeBlock writes whole groups of three, the padding's zero
   * bytes too: into out when it has room for them, else a copy */
  size_t full = len / 4 * 3;
  unsigned char *dst = outcap >= full ? out : malloc(full);
  if (!dst) return -1;
  int got = EVP_DecodeBlock(dst, (const unsigned char *)in, (int)len);
  if (dst != out) {
    if (got == (int)full) memcpy(out, dst, n);
    OPENSSL_cleanse(dst, full);
    free(dst);
  }
  if (got < 0 || (size_t)got != full) return -1;
  return (long)n;
}
