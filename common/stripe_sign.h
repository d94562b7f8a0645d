#ifndef GENQ_STRIPE_SIGN_H
#define GENQ_STRIPE_SIGN_H

#include <stddef.h>

/* Stripe's webhook signatures (https://docs.stripe.com/webhooks#verify-manually):
 *
 *   Stripe-Signature: t=<Unix seconds>,v1=<hex HMAC-SHA256>[,v1=…][,v0=…]
 *
 * the HMAC keyed with the endpoint secret ("whsec_…", its bytes as they
 * are) over "<t>.<raw body>". Any v1 may match (Stripe sends one per
 * active secret while a secret is rolled); v0 and unknown keys are
 * ignored. genq may hold several secrets too (STRIPE_WEBHOOK_SECRET,
 * comma-separated): any of them may have signed. */

#define STRIPE_SIGN_TOLERANCE_S 300 /* |now - t| at most this */
#define STRIPE_SIGN_HEX 64          /* a v1 value: 32 bytes in hex */
#define STRIPE_SIGN_MAX_SECRETS 8   /* secrets tried per request */

typedef enum {
  STRIPE_SIGN_OK = 0,
  STRIPE_SIGN_MALFORMED, /* no header, no t, a t that is not a number, or no v1 */
  STRIPE_SIGN_STALE,     /* t further than the tolerance from now */
  STRIPE_SIGN_MISMATCH,  /* no v1 matches any secret */
} stripe_sign_status;

/* Writes the lowercase hex HMAC-SHA256 of "<t>.<body>" keyed with secret
 * (secret_len bytes) and a NUL into out. Returns 0, or -1 on bad arguments
 * (an empty secret, t < 0). */
int stripe_sign_compute(const char *secret, size_t secret_len, long long t, const char *body,
                        size_t body_len, char out[STRIPE_SIGN_HEX + 1]);

/* Verifies header (the Stripe-Signature value; NULL counts as malformed)
 * against body with any of secrets (comma-separated, surrounding spaces
 * ignored, at most STRIPE_SIGN_MAX_SECRETS) at time now, tolerance seconds
 * either way. Every comparison is constant-time. Stores t in *t_out when
 * it is not NULL and the header had one. */
stripe_sign_status stripe_sign_verify(const char *header, const char *secrets, const char *body,
                                      size_t body_len, long long now, long long tolerance,
                                      long long *t_out);

/* "ok", "malformed", "stale", "mismatch". */
const char *stripe_sign_status_name(stripe_sign_status s);

#endif
