#ifndef GENQ_CALLBACK_URL_H
#define GENQ_CALLBACK_URL_H

#include <stddef.h>

/* Provider callbacks as wake-ups (PROVIDERS.md, Luma: "callbacks may be used
 * only as a wake-up, never trusted for state").
 *
 * genq-worker gives each Luma generation it creates
 *
 *   <GENQ_CALLBACK_URL>/v1/callbacks/luma/<job id>.<mac>
 *
 * with mac = the first 16 bytes, as lowercase hex, of HMAC-SHA256(key,
 * "luma-callback:<job id>") under GENQ_URL_SIGNING_KEY (the "luma-callback:"
 * prefix keeps these MACs apart from the signed upload URLs'). genq-api
 * accepts a POST there only with a valid token, reads nothing of the body,
 * and publishes the job id on QUEUE_WAKEUP_CHANNEL; the worker holding the
 * job polls its Luma steps soon (rate-bounded per step). A callback is
 * unsigned and may be forged or replayed by whoever saw the URL: the most it
 * can cause is an early poll, which reads the state from Luma itself. */

#define CALLBACK_URL_MAC_HEX 32                                /* 128 bits */
#define CALLBACK_URL_TOKEN_LEN (36 + 1 + CALLBACK_URL_MAC_HEX) /* "<uuid>.<mac>" */
#define CALLBACK_URL_LUMA_PATH "/v1/callbacks/luma/"

/* Writes "<base>/v1/callbacks/luma/<token>" into out (a trailing '/' of base
 * is dropped). Returns 0, or -1 when the key is shorter than
 * SIGNED_URL_MIN_KEY, base is empty, job_id is not a UUID, or out is too
 * small (out then holds ""). */
int callback_url_make(const char *key, const char *base, const char *job_id, char *out,
                      size_t outlen);

/* 1 when token is "<job id>.<mac>" with the MAC of that job id under key
 * (compared in constant time), and then job_id_out holds the job id; 0 for
 * anything else, NULL arguments and a short key included. */
int callback_url_check(const char *key, const char *token, char job_id_out[37]);

#endif
