/* fuzz_stripe — Stripe-Signature verification (common/stripe_sign.c) as
 * POST /v1/webhooks/stripe (api/stripe.c) runs it: the input's first line
 * is the header, the rest the raw body, verified with two secrets
 * ("whsec_fuzz_a,whsec_fuzz_b") at a fixed time.
 *
 * What must hold: the answer is one of the four statuses; OK only when a
 * v1 of the header is the HMAC of "<t>.<body>" under one of the secrets
 * (recomputed here); a v0 or unknown key appended changes nothing; and for
 * the body, a header made by signing it verifies, under either secret and
 * beside a v1 of another secret, while a changed digit, a t 301 s away or
 * a secret nobody configured does not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_sign.h"

#define CHECK(x)                                                                                   \
  do {                                                                                             \
    if (!(x)) __builtin_trap();                                                                    \
  } while (0)

#define SECRETS "whsec_fuzz_a,whsec_fuzz_b"
#define NOW 1733180000LL
#define HEADER_MAX 4096

static stripe_sign_status verify(const char *h, const char *secrets, const char *body, size_t n) {
  return stripe_sign_verify(h, secrets, body, n, NOW, STRIPE_SIGN_TOLERANCE_S, NULL);
}

/* 1 when some v1=<hex> of header equals sig (a plain scan, independent of
 * the parser) */
static int header_has(const char *header, const char *sig) {
  for (const char *p = header; (p = strstr(p, "v1=")); p += 3)
    if (strncasecmp(p + 3, sig, STRIPE_SIGN_HEX) == 0) return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  const char *nl = memchr(in, '\n', size);
  size_t hlen = nl ? (size_t)(nl - in) : size;
  if (hlen >= HEADER_MAX) return 0;
  char header[HEADER_MAX + 32];
  memcpy(header, in, hlen);
  header[hlen] = 0;
  if (strlen(header) != hlen) return 0; /* a NUL: no HTTP header carries one */
  const char *body = nl ? nl + 1 : in + size;
  size_t blen = (size_t)(in + size - body);

  long long t = -1;
  stripe_sign_status s =
      stripe_sign_verify(header, SECRETS, body, blen, NOW, STRIPE_SIGN_TOLERANCE_S, &t);
  CHECK(s == STRIPE_SIGN_OK || s == STRIPE_SIGN_MALFORMED || s == STRIPE_SIGN_STALE ||
        s == STRIPE_SIGN_MISMATCH);
  if (s == STRIPE_SIGN_OK) {
    char a[STRIPE_SIGN_HEX + 1], b[STRIPE_SIGN_HEX + 1];
    CHECK(t >= NOW - STRIPE_SIGN_TOLERANCE_S && t <= NOW + STRIPE_SIGN_TOLERANCE_S);
    CHECK(stripe_sign_compute("whsec_fuzz_a", 12, t, body, blen, a) == 0);
    CHECK(stripe_sign_compute("whsec_fuzz_b", 12, t, body, blen, b) == 0);
    CHECK(header_has(header, a) || header_has(header, b));
  }
  /* ignored keys change nothing */
  char more[HEADER_MAX + 32];
  snprintf(more, sizeof more, "%s,v0=00,x=1", header);
  if (hlen > 0) CHECK(verify(more, SECRETS, body, blen) == s);

  /* the body signed as Stripe signs it */
  char sig[STRIPE_SIGN_HEX + 1], other[STRIPE_SIGN_HEX + 1], h[256];
  CHECK(stripe_sign_compute("whsec_fuzz_b", 12, NOW - 10, body, blen, sig) == 0);
  CHECK(stripe_sign_compute("whsec_retired", 13, NOW - 10, body, blen, other) == 0);
  snprintf(h, sizeof h, "t=%lld,v1=%s", NOW - 10, sig);
  CHECK(verify(h, SECRETS, body, blen) == STRIPE_SIGN_OK);
  CHECK(verify(h, "whsec_fuzz_a", body, blen) == STRIPE_SIGN_MISMATCH);
  snprintf(h, sizeof h, "t=%lld,v1=%s,v1=%s", NOW - 10, other, sig);
  CHECK(verify(h, SECRETS, body, blen) == STRIPE_SIGN_OK);
  snprintf(h, sizeof h, "t=%lld,v1=%s", NOW - 10, other);
  CHECK(verify(h, SECRETS, body, blen) == STRIPE_SIGN_MISMATCH);
  sig[blen % STRIPE_SIGN_HEX] = sig[blen % STRIPE_SIGN_HEX] == '0' ? '1' : '0';
  snprintf(h, sizeof h, "t=%lld,v1=%s", NOW - 10, sig);
  CHECK(verify(h, SECRETS, body, blen) == STRIPE_SIGN_MISMATCH);
  CHECK(stripe_sign_compute("whsec_fuzz_a", 12, NOW - 301, body, blen, sig) == 0);
  snprintf(h, sizeof h, "t=%lld,v1=%s", NOW - 301, sig);
  CHECK(verify(h, SECRETS, body, blen) == STRIPE_SIGN_STALE);
  return 0;
}
