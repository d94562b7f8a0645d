#ifndef GENQ_STORAGE_H
#define GENQ_STORAGE_H

#include <stddef.h>
#include <uv.h>

#include "http_client.h"

/* Where genq keeps bytes: uploads (uploads/<id>) and generated results
 * (assets/<id>). One small asynchronous interface, two backends chosen by
 * GENQ_STORAGE:
 *   file:///abs/dir                      files under dir, written through a
 *                                        temporary file and rename (libuv fs,
 *                                        off the loop thread)
 *   s3://bucket?endpoint=URL&region=R    an S3-compatible bucket over HTTP,
 *                                        signed by libcurl's CURLOPT_AWS_SIGV4
 *                                        with GENQ_S3_ACCESS_KEY/SECRET_KEY;
 *                                        path-style URLs (endpoint/bucket/key)
 * Keys are [A-Za-z0-9/._-], 1..200 bytes, no "..": anything else is refused.
 * (Nor an empty or "." path segment: no leading, trailing or doubled '/'.)
 * Every callback runs exactly once, on the loop thread, for each call that
 * returned 0. A call returns -1 (and never calls back) for a refused key, a
 * NULL callback, a closed storage, max_bytes 0, a content type that is not
 * printable ASCII, or no memory. On S3, grant s3:ListBucket: without it S3
 * answers a missing key with 403, which is an error here, not not_found. */

typedef struct storage storage;

/* err is NULL on success. */
typedef void (*storage_done_cb)(const char *err, void *arg);
/* On success data/len are the bytes (valid during the call; the callee may
 * keep them with storage_take()), err NULL. not_found is 1 when the key does
 * not exist. */
typedef void (*storage_get_cb)(const char *data, size_t len, int not_found, const char *err,
                               void *arg);

/* http is the client the s3 backend uses (may be NULL for file://). access
 * and secret are the S3 credentials (ignored for file://). Returns 0, or -1
 * with a message naming what is wrong in err. */
int storage_open(storage **out, uv_loop_t *loop, httpc *http, const char *url,
                 const char *access_key, const char *secret_key, char *err, size_t errlen);
/* Stores len bytes under key (replacing). content_type is recorded where the
 * backend can (S3 Content-Type). The bytes are copied or sent before return
 * of the callback; the caller keeps ownership of data until cb runs. */
int storage_put(storage *s, const char *key, const char *data, size_t len, const char *content_type,
                storage_done_cb cb, void *arg);
/* Reads the whole object; more than max_bytes is an error. */
int storage_get(storage *s, const char *key, size_t max_bytes, storage_get_cb cb, void *arg);
/* Reads at most len bytes from offset: fewer at the end of the object, none
 * past it (data "" and len 0, not an error). For sending a large object
 * piece by piece without holding it whole. */
int storage_get_range(storage *s, const char *key, size_t offset, size_t len, storage_get_cb cb,
                      void *arg);
/* Inside a storage_get_cb only: takes ownership of the data buffer (free()
 * it), so a large object is not copied again. Returns NULL outside. */
char *storage_take(storage *s);
/* Deletes the object; deleting a missing key succeeds. */
int storage_delete(storage *s, const char *key, storage_done_cb cb, void *arg);
/* "file" or "s3". */
const char *storage_backend(const storage *s);
/* Frees s. Operations still in flight complete with err "closed" first. */
void storage_close(storage *s);

#endif
