/* The s3:// backend of storage (storage_backend.h): objects in an
 * S3-compatible bucket. One HTTP request per call on the shared httpc,
 * path-style (endpoint/bucket/key), signed by libcurl's AWS SigV4
 * (CURLOPT_AWS_SIGV4) with the payload's SHA-256 in x-amz-content-sha256
 * (S3 requires the header and checks it; curl 7.88 signs its value but does
 * not compute it). A put's hash runs on the threadpool, a chunk at a time,
 * when the payload is larger than STORAGE_HASH_INLINE. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_backend.h"

#define STORAGE_HASH_INLINE (64u << 10) /* smaller payloads are hashed on the loop */
#define STORAGE_S3_ERROR_BODY_MAX (64u << 10)
/* SHA-256 of nothing: the payload hash of a GET or DELETE. */
#define STORAGE_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
  httpc *http;
  char *base;    /* "<endpoint>/<bucket>/" */
  char *sigv4;   /* "aws:amz:<region>:s3" */
  char *userpwd; /* "access:secret", wiped before it is freed */
} s3_conf;

typedef struct {
  storage_op op; /* first: storage.c allocates and fills it */
  uv_work_t work;
  int busy;    /* a hash is running or queued */
  size_t off;  /* bytes hashed so far */
  char *chunk; /* the copy the threadpool hashes */
  size_t chunk_len;
  EVP_MD_CTX *sha;
  int hash_failed;
  char sha_hex[65];
  uint64_t xfer;
  int in_http;
} s3_op;

static void s3_hash_after(uv_work_t *w, int status);

static char *s3_url(const s3_conf *c, const char *key) {
  size_t n = strlen(c->base) + strlen(key) + 1;
  char *url = malloc(n);
  if (url) snprintf(url, n, "%s%s", c->base, key);
  return url;
}

static void s3_op_free(storage_op *op) {
  s3_op *o = (s3_op *)op;
  free(o->chunk);
  EVP_MD_CTX_free(o->sha);
  free(o);
}

/* Ends an operation: unlinks it, completes it, frees it (and s, when a
 * callback closed it). */
static void s3_finish(s3_op *o, const char *data, size_t len) {
  storage *s = o->op.s;
  op_unlink(&o->op);
  op_complete(&o->op, s, data, len);
  s3_op_free(&o->op);
  if (s) storage_maybe_free(s);
}

/* "storage s3 PUT key: HTTP 403 AccessDenied: <message>", or the transport
 * error; a bit of the body, control bytes dropped. */
static void s3_fail(s3_op *o, const char *method, const httpc_response *r) {
  if (r->status == 0 || r->too_large) {
    snprintf(o->op.err, sizeof o->op.err, "storage s3 %s %s: %s", method, o->op.key,
             r->error ? r->error : "transfer failed");
    return;
  }
  char snippet[160];
  size_t j = 0;
  for (size_t i = 0; i < r->body_len && j + 1 < sizeof snippet; i++) {
    unsigned char ch = (unsigned char)r->body[i];
    if (ch >= 0x20 && ch < 0x7f) snippet[j++] = (char)ch;
  }
  snippet[j] = '\0';
  /* cut to fit: the snippet is the least important part */
  int n = snprintf(o->op.err, sizeof o->op.err, "storage s3 %s %s: HTTP %d", method, o->op.key,
                   r->status);
  if (j && n > 0 && (size_t)n + 3 < sizeof o->op.err)
    snprintf(o->op.err + n, sizeof o->op.err - (size_t)n, ": %.*s",
             (int)(sizeof o->op.err - (size_t)n - 3), snippet);
}

static int s3_no_such_bucket(const httpc_response *r) {
  return r->body && strstr(r->body, "<Code>NoSuchBucket</Code>") != NULL;
}

static void s3_done(const httpc_response *r, void *arg) {
  s3_op *o = arg;
  storage *s = o->op.s;
  o->in_http = 0;
  if (!s) {
    /* storage_close canceled it. */
    snprintf(o->op.err, sizeof o->op.err, "closed");
  } else if (o->op.type == OP_PUT) {
    if (r->status < 200 || r->status > 299) s3_fail(o, "PUT", r);
  } else if (o->op.type == OP_DELETE) {
    int gone = r->status == 404 && !s3_no_such_bucket(r);
    if (!gone && (r->status < 200 || r->status > 299)) s3_fail(o, "DELETE", r);
  } else {
    if (r->status == 404 && !s3_no_such_bucket(r))
      o->op.not_found = 1;
    else if (o->op.range && r->status == 416) /* past the end: nothing there */
      r = NULL;
    else if (o->op.range && r->status == 200 && o->op.offset > 0)
      snprintf(o->op.err, sizeof o->op.err, "storage get %s: the server ignored the Range",
               o->op.key);
    else if (o->op.range && r->status == 206 && r->body_len <= o->op.max) {
      /* the piece */
    } else if (r->status == 200 && r->body_len > o->op.max)
      snprintf(o->op.err, sizeof o->op.err, "storage get %s: %zu bytes, over the %zu-byte limit",
               o->op.key, r->body_len, o->op.max);
    else if (r->too_large)
      snprintf(o->op.err, sizeof o->op.err, "storage get %s: over the %zu-byte limit", o->op.key,
               o->op.max);
    else if (r->status != 200)
      s3_fail(o, "GET", r);
  }
  s3_finish(o, r ? r->body : "", r ? r->body_len : 0);
}

static long s3_timeout_ms(size_t bytes) {
  /* A minute, plus a second for each MiB at 1 MiB/s: a slow link still
   * carries a large object; a dead one is still noticed. */
  return 60000L + (long)(bytes >> 20) * 1000L;
}

static int s3_send(s3_op *o) {
  const s3_conf *c = o->op.s->be;
  char *url = s3_url(c, o->op.key);
  if (!url) return -1;
  char ct[STORAGE_CONTENT_TYPE_MAX + 32];
  char sha[96];
  snprintf(ct, sizeof ct, "Content-Type: %s", o->op.content_type);
  snprintf(sha, sizeof sha, "x-amz-content-sha256: %s",
           o->op.type == OP_PUT ? o->sha_hex : STORAGE_EMPTY_SHA256);
  const char *put_headers[] = {ct, sha, NULL};
  char range[80];
  snprintf(range, sizeof range, "Range: bytes=%zu-%zu", o->op.offset,
           o->op.offset + (o->op.max ? o->op.max - 1 : 0));
  const char *headers[] = {sha, NULL};
  const char *range_headers[] = {sha, range, NULL};
  httpc_request req = {.url = url, .aws_sigv4 = c->sigv4, .userpwd = c->userpwd};
  if (o->op.type == OP_PUT) {
    req.method = "PUT";
    req.headers = put_headers;
    req.body = o->op.data;
    req.body_len = o->op.len;
    req.body_borrowed = 1; /* the caller keeps it until the callback; close cancels first */
    req.timeout_ms = s3_timeout_ms(o->op.len);
    req.max_response_bytes = STORAGE_S3_ERROR_BODY_MAX;
  } else if (o->op.type == OP_GET) {
    req.method = "GET";
    req.headers = o->op.range ? range_headers : headers;
    req.timeout_ms = s3_timeout_ms(o->op.max);
    /* An error document must fit even under a small limit. */
    req.max_response_bytes =
        o->op.max > STORAGE_S3_ERROR_BODY_MAX ? o->op.max : STORAGE_S3_ERROR_BODY_MAX;
  } else {
    req.method = "DELETE";
    req.headers = headers;
    req.max_response_bytes = STORAGE_S3_ERROR_BODY_MAX;
  }
  int rc = httpc_send(c->http, &req, s3_done, o, &o->xfer);
  free(url);
  if (rc != 0) return -1;
  o->in_http = 1;
  return 0;
}

static void s3_hash_work(uv_work_t *w) {
  s3_op *o = w->data;
  if (EVP_DigestUpdate(o->sha, o->chunk, o->chunk_len) != 1) o->hash_failed = 1;
}

/* Queues the hash of the next chunk (a copy: the caller's bytes stay on the
 * loop thread). Returns 0, or -1 if it could not be queued. */
static int s3_hash_queue(s3_op *o) {
  size_t n = o->op.len - o->off;
  if (n > STORAGE_CHUNK) n = STORAGE_CHUNK;
  memcpy(o->chunk, o->op.data + o->off, n);
  o->chunk_len = n;
  o->work.data = o;
  if (uv_queue_work(o->op.loop, &o->work, s3_hash_work, s3_hash_after) != 0) return -1;
  o->busy = 1;
  return 0;
}

/* Finishes the hash into o->sha_hex and sends the PUT. */
static int s3_hash_done_send(s3_op *o) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (o->hash_failed || EVP_DigestFinal_ex(o->sha, md, &mdlen) != 1 || mdlen != 32) return -1;
  for (size_t i = 0; i < 32; i++)
    snprintf(o->sha_hex + 2 * i, 3, "%02x", md[i]);
  return s3_send(o);
}

static void s3_hash_after(uv_work_t *w, int status) {
  s3_op *o = w->data;
  storage *s = o->op.s;
  o->busy = 0;
  if (!s) {
    s3_op_free(&o->op); /* orphaned: completed with "closed" already */
    return;
  }
  if (status == 0 && !o->hash_failed) {
    o->off += o->chunk_len;
    if (o->off < o->op.len ? s3_hash_queue(o) == 0 : s3_hash_done_send(o) == 0) return;
  }
  snprintf(o->op.err, sizeof o->op.err, "storage s3 PUT %s: could not hash or send the object",
           o->op.key);
  s3_finish(o, NULL, 0);
}

static int s3_start(storage_op *op) {
  s3_op *o = (s3_op *)op;
  if (op->type != OP_PUT) return s3_send(o);
  o->sha = EVP_MD_CTX_new();
  if (!o->sha || EVP_DigestInit_ex(o->sha, EVP_sha256(), NULL) != 1) return -1;
  if (o->op.len > STORAGE_HASH_INLINE) {
    o->chunk = malloc(STORAGE_CHUNK);
    return o->chunk ? s3_hash_queue(o) : -1;
  }
  if (o->op.len && EVP_DigestUpdate(o->sha, o->op.data, o->op.len) != 1) return -1;
  o->off = o->op.len;
  return s3_hash_done_send(o);
}

static int bucket_ok(const char *b, size_t n) {
  if (n < 3 || n > 63) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = b[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-')) return 0;
  }
  return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

static int region_ok(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > 32) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-')) return 0;
  return 1;
}

static int endpoint_ok(const char *e) {
  if (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0) return 0;
  const char *host = e + (e[4] == 's' ? 8 : 7);
  if (!*host || *host == '/') return 0;
  size_t n = strlen(e);
  if (n > 512) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)e[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#' || ch == '@') return 0;
  }
  return 1;
}

static int s3_open(storage *s, const char *rest, httpc *http, const char *access,
                   const char *secret, char *err, size_t errlen) {
  const char *q = strchr(rest, '?');
  size_t blen = q ? (size_t)(q - rest) : strlen(rest);
  if (blen && rest[blen - 1] == '/') blen--; /* s3://bucket/?... */
  if (memchr(rest, '/', blen)) {
    snprintf(err, errlen, "s3:// storage takes a bucket, not a path (s3://bucket?endpoint=URL)");
    return -1;
  }
  if (!bucket_ok(rest, blen)) {
    snprintf(err, errlen,
             "s3:// bucket name must be 3..63 characters of a-z, 0-9, '.' and '-', "
             "starting and ending with a letter or digit");
    return -1;
  }
  char endpoint[520] = "", region[40] = "us-east-1";
  int have_endpoint = 0, have_region = 0;
  for (const char *p = q ? q + 1 : NULL; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t plen = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', plen);
    size_t klen = eq ? (size_t)(eq - p) : plen;
    const char *v = eq ? eq + 1 : p + plen;
    size_t vlen = eq ? plen - klen - 1 : 0;
    if (klen == 8 && strncmp(p, "endpoint", 8) == 0 && !have_endpoint && vlen < sizeof endpoint) {
      memcpy(endpoint, v, vlen);
      endpoint[vlen] = '\0';
      have_endpoint = 1;
    } else if (klen == 6 && strncmp(p, "region", 6) == 0 && !have_region && vlen < sizeof region) {
      memcpy(region, v, vlen);
      region[vlen] = '\0';
      have_region = 1;
    } else {
      snprintf(err, errlen,
               "s3:// storage: unexpected or repeated parameter \"%.*s\" (endpoint and region "
               "are known)",
               (int)(klen > 40 ? 40 : klen), p);
      return -1;
    }
    p = amp ? amp + 1 : NULL;
  }
  if (!region_ok(region)) {
    snprintf(err, errlen, "s3:// region must be 1..32 characters of a-z, 0-9 and '-'");
    return -1;
  }
  if (!have_endpoint) snprintf(endpoint, sizeof endpoint, "https://s3.%s.amazonaws.com", region);
  size_t elen = strlen(endpoint);
  while (elen && endpoint[elen - 1] == '/')
    endpoint[--elen] = '\0';
  if (!endpoint_ok(endpoint)) {
    snprintf(err, errlen,
             "s3:// endpoint must be an http:// or https:// URL without user, query or spaces");
    return -1;
  }
  if (!http) {
    snprintf(err, errlen, "s3:// storage needs an HTTP client");
    return -1;
  }
  if (!access || !secret || !*access || !*secret) {
    snprintf(err, errlen, "s3:// storage needs GENQ_S3_ACCESS_KEY and GENQ_S3_SECRET_KEY");
    return -1;
  }
  if (!storage_printable(access, 128) || strchr(access, ':')) {
    snprintf(err, errlen, "GENQ_S3_ACCESS_KEY must be 1..128 printable characters without ':'");
    return -1;
  }
  if (!storage_printable(secret, 256)) {
    snprintf(err, errlen, "GENQ_S3_SECRET_KEY must be 1..256 printable characters");
    return -1;
  }
  size_t n = elen + blen + 3;
  size_t un = strlen(access) + strlen(secret) + 2;
  size_t sn = strlen(region) + sizeof "aws:amz::s3";
  s3_conf *c = s->be = calloc(1, sizeof *c);
  if (c) {
    c->base = malloc(n);
    c->userpwd = malloc(un);
    c->sigv4 = malloc(sn);
  }
  if (!c || !c->base || !c->userpwd || !c->sigv4) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(c->base, n, "%s/%.*s/", endpoint, (int)blen, rest);
  snprintf(c->userpwd, un, "%s:%s", access, secret);
  snprintf(c->sigv4, sn, "aws:amz:%s:s3", region);
  c->http = http;
  return 0;
}

static void s3_release(storage *s) {
  s3_conf *c = s->be;
  if (!c) return;
  if (c->userpwd) memset(c->userpwd, 0, strlen(c->userpwd));
  free(c->userpwd);
  free(c->sigv4);
  free(c->base);
  free(c);
}

static char *s3_take(storage *s, storage_op *op) {
  (void)op;
  return httpc_take_body(((s3_conf *)s->be)->http);
}

static void s3_cancel(storage *s, storage_op *op) {
  s3_op *o = (s3_op *)op;
  if (o->in_http) {
    /* Runs s3_done at once, which completes it with "closed" and frees it. */
    httpc_cancel(((s3_conf *)s->be)->http, o->xfer);
    return;
  }
  /* A hash is running or queued: try to cancel it; either way its callback
   * comes and frees it. */
  snprintf(op->err, sizeof op->err, "closed");
  op->not_found = 0;
  if (o->busy) uv_cancel((uv_req_t *)&o->work);
  op_complete(op, NULL, NULL, 0);
}

const storage_vtable storage_s3_vtable = {
    .name = "s3",
    .scheme = "s3://",
    .op_size = sizeof(s3_op),
    .open = s3_open,
    .release = s3_release,
    .start = s3_start,
    .op_free = s3_op_free,
    .take = s3_take,
    .cancel = s3_cancel,
};
