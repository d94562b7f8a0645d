#ifndef GENQ_SECRET_BOX_H
#define GENQ_SECRET_BOX_H

#include <stddef.h>

/* Secrets genq must read back to use (the webhook signing secrets), sealed
 * at rest with AES-256-GCM (OpenSSL EVP): a random 12-byte nonce, the
 * ciphertext and the 16-byte tag, stored as base64(nonce || ciphertext ||
 * tag) beside the id of the key that sealed it. The additional data binds a
 * sealed value to its key id and its context (the owner's user id): a value
 * moved to another user's row, or relabelled with another key id, does not
 * open.
 *
 * Keys come from the environment: GENQ_SECRETS_KEY seals and opens, each of
 * GENQ_SECRETS_KEY_PREVIOUS (a comma-separated list) only opens, so that a
 * key is rotated by making the old one previous, starting with a new one
 * and running `genqctl secrets rekey`. A key is "[kid:]<base64 of 32
 * bytes>"; its id is kid, or else the first 4 bytes of the SHA-256 of the
 * key as 8 hex digits. */

#define SECRET_KEY_BYTES 32
#define SECRET_KEY_ID_MAX 16 /* [A-Za-z0-9_-], at most this long */
#define SECRET_KEYS_MAX 8    /* the current key and up to 7 previous */
#define SECRET_NONCE_BYTES 12
#define SECRET_TAG_BYTES 16
#define SECRET_PLAIN_MAX 256 /* the longest value sealed */
/* the sealed text of n plaintext bytes, with its NUL */
#define SECRET_SEALED_LEN(n) ((((SECRET_NONCE_BYTES + (n) + SECRET_TAG_BYTES) + 2) / 3) * 4 + 1)

typedef struct {
  char id[SECRET_KEY_ID_MAX + 1];
  unsigned char key[SECRET_KEY_BYTES];
} secret_key;

/* keys[0] seals; every key opens what it sealed. */
typedef struct {
  secret_key keys[SECRET_KEYS_MAX];
  int n;
} secret_keyring;

/* Parses the current key and the previous ones (NULL or "" for none) into
 * kr. Returns 0, or -1 with a message naming GENQ_SECRETS_KEY or
 * GENQ_SECRETS_KEY_PREVIOUS (never echoing a key): current missing while
 * previous is set, a bad key, too many, two keys with one id. */
int secret_keyring_parse(secret_keyring *kr, const char *current, const char *previous, char *err,
                         size_t errlen);
/* Overwrites the keys held. */
void secret_keyring_wipe(secret_keyring *kr);

/* Seals pt[0..n) (at most SECRET_PLAIN_MAX bytes) under kr->keys[0] for
 * context; out (outlen bytes, SECRET_SEALED_LEN(n) suffice) gets the sealed
 * text. Returns 0, or -1 (bad arguments, no key, out too small, OpenSSL). */
int secret_box_seal(const secret_keyring *kr, const char *context, const unsigned char *pt,
                    size_t n, char *out, size_t outlen);

#define SECRET_BOX_UNKNOWN_KEY (-1) /* no key of the ring has that id */
#define SECRET_BOX_FORGED (-2)      /* does not authenticate: another key, context or tampered */
#define SECRET_BOX_MALFORMED (-3)   /* not a sealed text, or pt too small */
/* Opens sealed (sealed by the key named key_id, for context) into pt
 * (ptcap bytes). Returns the plaintext's length, or one of the codes
 * above; pt then holds nothing. */
int secret_box_open(const secret_keyring *kr, const char *key_id, const char *context,
                    const char *sealed, unsigned char *pt, size_t ptcap);

#endif
