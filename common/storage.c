/* Where genq keeps bytes, behind one asynchronous interface (storage.h).
 *
 * file://  Every file system call is a libuv fs request, run on the
 *          threadpool: a put writes <dir>/<key>.tmp.<random> (making the
 *          parent directories on ENOENT), fsyncs, closes and renames it over
 *          <dir>/<key>, so a reader sees the old bytes or the new ones,
 *          never a part. A get opens, fstats (too large → error before any
 *          read), reads and closes.
 * s3://    One HTTP request per call on the shared httpc, path-style
 *          (endpoint/bucket/key), signed by libcurl's AWS SigV4 with the
 *          payload's SHA-256 in x-amz-content-sha256 (S3 requires the header
 *          and checks it; curl 7.88 signs its value but does not compute it).
 *
 * Ownership: the caller's put bytes are read on the loop thread only. Work
 * handed to the threadpool (a file write, a hash) gets a copy of at most
 * STORAGE_CHUNK bytes owned by the operation, so that storage_close can end
 * an operation at once ("closed") while its last threadpool request is still
 * running: the operation is then orphaned (op->s NULL), finishes that
 * request, removes what it left (fd, temporary file) and frees itself
 * without calling anyone. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define STORAGE_KEY_MAX 200
#define STORAGE_PATH_MAX 1024
#define STORAGE_CHUNK (1u << 20)        /* bytes copied for one threadpool request */
#define STORAGE_HASH_INLINE (64u << 10) /* smaller payloads are hashed on the loop */
#define STORAGE_ERR_MAX 320
#define STORAGE_CONTENT_TYPE_MAX 255
#define STORAGE_S3_ERROR_BODY_MAX (64u << 10)
#define STORAGE_FILE_MODE 0640
#define STORAGE_DIR_MODE 0750
/* SHA-256 of nothing: the payload hash of a GET or DELETE. */
#define STORAGE_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum { STORAGE_FILE, STORAGE_S3 };
enum { OP_PUT, OP_GET, OP_DELETE };

/* Where a file operation is; the one fs callback dispatches on it. */
enum {
  ST_OPEN,
  ST_MKDIR,
  ST_WRITE,
  ST_FSYNC,
  ST_CLOSE,
  ST_RENAME,
  ST_STAT,
  ST_READ,
  ST_UNLINK,
  ST_UNWIND_CLOSE,
  ST_UNWIND_UNLINK
};

typedef struct storage_op storage_op;

struct storage {
  uv_loop_t *loop;
  int kind;
  char *dir;              /* file: absolute, without a trailing '/' */
  httpc *http;            /* s3 */
  char *base;             /* s3: "<endpoint>/<bucket>/" */
  char *bucket;           /* s3 */
  char *sigv4;            /* s3: "aws:amz:<region>:s3" */
  char *userpwd;          /* s3: "access:secret" */
  storage_op *ops;        /* in flight, doubly linked */
  storage_op *delivering; /* the get whose callback runs (storage_take) */
  int depth;              /* user callbacks on the stack: a close inside one defers the free */
  int closed;
};

struct storage_op {
  storage *s; /* NULL once orphaned by storage_close */
  uv_loop_t *loop;
  int type;
  storage_done_cb done;
  storage_get_cb got;
  void *arg;
  int completed; /* the caller's callback ran */
  storage_op *prev, *next;
  char key[STORAGE_KEY_MAX + 1];
  char err[STORAGE_ERR_MAX]; /* first error; "" while none */
  int not_found;

  /* put: the caller's bytes (loop thread only) and the copy a worker uses */
  const char *data;
  size_t len, off;
  char *chunk;
  size_t chunk_len;

  /* file */
  uv_fs_t req;
  int stage;
  int busy; /* a uv_fs or uv_work request is outstanding */
  uv_file fd;
  char *path, *tmp;
  int tmp_made;
  int mkdir_done;
  int mkdir_err; /* the last mkdir error other than EEXIST, or 0 */
  size_t mkpos;  /* next '/' of tmp to create a directory up to */
  char *buf;     /* get: the object, NUL-terminated */
  size_t size, got_len, max;

  /* s3 */
  uv_work_t work;
  EVP_MD_CTX *sha;
  int hash_failed;
  char sha_hex[65];
  uint64_t xfer;
  int in_http;
  char content_type[STORAGE_CONTENT_TYPE_MAX + 1];
};

static void fs_step(storage_op *op);
static void s3_hash_after(uv_work_t *w, int status);

/* ---- keys, errors, small helpers ---- */

/* [A-Za-z0-9/._-], 1..200 bytes, no ".."; and, so that a key is the same
 * object on both backends, no empty or "." path segment (no leading,
 * trailing or doubled '/'). */
static int storage_key_ok(const char *key) {
  if (!key) return 0;
  size_t n = strlen(key);
  if (n == 0 || n > STORAGE_KEY_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = key[i];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '/' || ch == '.' || ch == '_' || ch == '-';
    if (!ok) return 0;
  }
  if (strstr(key, "..") || strstr(key, "//") || key[0] == '/' || key[n - 1] == '/') return 0;
  for (const char *seg = key; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
    if (seg[0] == '.' && (seg[1] == '/' || seg[1] == '\0')) return 0;
  return 1;
}

/* A header value: printable ASCII, no CR/LF. */
static int storage_printable(const char *v, size_t max) {
  size_t n = strlen(v);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return 0;
  return 1;
}

static void op_fail(storage_op *op, const char *what, int uverr) {
  if (op->err[0]) return; /* the first error is the one that counts */
  snprintf(op->err, sizeof op->err, "storage %s %s: %s", what, op->key, uv_strerror(uverr));
}

static void storage_maybe_free(storage *s) {
  if (!s->closed || s->depth > 0) return;
  if (s->userpwd) memset(s->userpwd, 0, strlen(s->userpwd));
  free(s->userpwd);
  free(s->sigv4);
  free(s->base);
  free(s->bucket);
  free(s->dir);
  free(s);
}

static storage_op *op_new(storage *s, int type, const char *key) {
  storage_op *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->s = s;
  op->loop = s->loop;
  op->type = type;
  op->fd = -1;
  snprintf(op->key, sizeof op->key, "%s", key);
  return op;
}

static void op_link(storage_op *op) {
  storage *s = op->s;
  op->next = s->ops;
  if (s->ops) s->ops->prev = op;
  s->ops = op;
}

static void op_unlink(storage_op *op) {
  storage *s = op->s;
  if (!s || (!op->prev && s->ops != op)) return; /* orphaned, or not linked */
  if (op->prev)
    op->prev->next = op->next;
  else
    s->ops = op->next;
  if (op->next) op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

static void op_free(storage_op *op) {
  free(op->chunk);
  free(op->path);
  free(op->tmp);
  free(op->buf);
  EVP_MD_CTX_free(op->sha);
  free(op);
}

/* Runs the caller's callback once. s is the storage it belongs to, or NULL
 * for an orphan (which only ever completes with an error). A get's data is
 * data/len; storage_take can claim it while the callback runs. */
static void op_complete(storage_op *op, storage *s, const char *data, size_t len) {
  if (op->completed) return;
  op->completed = 1;
  const char *err = op->err[0] ? op->err : NULL;
  storage_op *outer = NULL;
  if (s) {
    s->depth++;
    outer = s->delivering;
    s->delivering = op->type == OP_GET && !err && !op->not_found ? op : NULL;
  }
  if (op->type == OP_GET)
    op->got(err || op->not_found ? NULL : data, err || op->not_found ? 0 : len, op->not_found, err,
            op->arg);
  else
    op->done(err, op->arg);
  if (s) {
    s->delivering = outer;
    s->depth--;
  }
}

/* Ends a file operation: unlinks it, completes it, frees it (and s, when a
 * callback closed it). */
static void op_finish(storage_op *op) {
  storage *s = op->s;
  op_unlink(op);
  op_complete(op, s, op->buf ? op->buf : "", op->got_len);
  op_free(op);
  if (s) storage_maybe_free(s);
}

/* ---- file:// ---- */

static void fs_cb(uv_fs_t *req) {
  storage_op *op = req->data;
  op->busy = 0;
  fs_step(op);
}

/* Notes a started fs request (rc 0). One libuv refuses at once is handled
 * as if it had failed with that error. */
static void fs_submit(storage_op *op, int rc) {
  if (rc == 0) {
    op->busy = 1;
    return;
  }
  /* Could not even be queued: report it as that request's result. */
  op->req.result = rc;
  op->req.data = op;
  fs_step(op);
}

/* Closes the fd and removes the temporary file, whichever are left, then
 * finishes the operation with the error it recorded. */
static void fs_unwind(storage_op *op) {
  if (op->fd >= 0) {
    op->stage = ST_UNWIND_CLOSE;
    uv_file fd = op->fd;
    op->fd = -1;
    fs_submit(op, uv_fs_close(op->loop, &op->req, fd, fs_cb));
    return;
  }
  if (op->tmp_made) {
    op->stage = ST_UNWIND_UNLINK;
    op->tmp_made = 0;
    fs_submit(op, uv_fs_unlink(op->loop, &op->req, op->tmp, fs_cb));
    return;
  }
  op_finish(op);
}

static void fs_open_tmp(storage_op *op) {
  op->stage = ST_OPEN;
  fs_submit(op, uv_fs_open(op->loop, &op->req, op->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                           STORAGE_FILE_MODE, fs_cb));
}

/* mkdir -p of the temporary file's directory, one component a request;
 * EEXIST is fine (another put may make the same directory). */
static void fs_mkdir_next(storage_op *op) {
  const char *slash = strchr(op->tmp + op->mkpos + 1, '/');
  if (!slash) {
    op->mkdir_done = 1;
    fs_open_tmp(op);
    return;
  }
  op->mkpos = (size_t)(slash - op->tmp);
  char dir[STORAGE_PATH_MAX + STORAGE_KEY_MAX + 64];
  snprintf(dir, sizeof dir, "%.*s", (int)op->mkpos, op->tmp);
  op->stage = ST_MKDIR;
  fs_submit(op, uv_fs_mkdir(op->loop, &op->req, dir, STORAGE_DIR_MODE, fs_cb)); /* copies dir */
}

static void fs_write_next(storage_op *op) {
  if (op->off == op->len) {
    op->stage = ST_FSYNC; /* the bytes are on disk before the name points at them */
    fs_submit(op, uv_fs_fsync(op->loop, &op->req, op->fd, fs_cb));
    return;
  }
  size_t n = op->len - op->off;
  if (n > STORAGE_CHUNK) n = STORAGE_CHUNK;
  memcpy(op->chunk, op->data + op->off, n);
  op->chunk_len = n;
  uv_buf_t b = uv_buf_init(op->chunk, (unsigned)n);
  op->stage = ST_WRITE;
  fs_submit(op, uv_fs_write(op->loop, &op->req, op->fd, &b, 1, -1, fs_cb));
}

static void fs_read_next(storage_op *op) {
  if (op->got_len == op->size) {
    op->stage = ST_CLOSE;
    uv_file fd = op->fd;
    op->fd = -1;
    fs_submit(op, uv_fs_close(op->loop, &op->req, fd, fs_cb));
    return;
  }
  size_t n = op->size - op->got_len;
  if (n > (1u << 30)) n = 1u << 30;
  uv_buf_t b = uv_buf_init(op->buf + op->got_len, (unsigned)n);
  op->stage = ST_READ;
  fs_submit(op, uv_fs_read(op->loop, &op->req, op->fd, &b, 1, (int64_t)op->got_len, fs_cb));
}

/* The one continuation of every file request: op->req holds the result of
 * the request for op->stage. */
static void fs_step(storage_op *op) {
  ssize_t r = op->req.result;
  uv_stat_t st = op->req.statbuf;
  uv_fs_req_cleanup(&op->req);
  int orphan = op->s == NULL;

  switch (op->stage) {
  case ST_OPEN:
    if (r >= 0) {
      op->fd = (uv_file)r;
      if (op->type == OP_PUT) op->tmp_made = 1;
    }
    if (orphan) break;
    if (op->type == OP_GET) {
      if (r == UV_ENOENT || r == UV_ENOTDIR) {
        op->not_found = 1;
        op_finish(op);
        return;
      }
      if (r < 0) {
        op_fail(op, "open", (int)r);
        break;
      }
      op->stage = ST_STAT;
      fs_submit(op, uv_fs_fstat(op->loop, &op->req, op->fd, fs_cb));
      return;
    }
    if (r == UV_ENOENT && !op->mkdir_done) {
      /* From the storage directory's own parents down. */
      op->mkpos = 0;
      fs_mkdir_next(op);
      return;
    }
    if (r < 0) {
      if (r == UV_ENOENT && op->mkdir_err)
        op_fail(op, "mkdir for", op->mkdir_err);
      else
        op_fail(op, "create", (int)r);
      break;
    }
    fs_write_next(op);
    return;

  case ST_MKDIR:
    if (orphan) break;
    /* Not fatal by itself (an ancestor of the storage directory may be
     * unwritable yet exist); kept to explain a second failed create. */
    if (r < 0 && r != UV_EEXIST) op->mkdir_err = (int)r;
    fs_mkdir_next(op);
    return;

  case ST_WRITE:
    if (orphan) break;
    if (r <= 0) {
      op_fail(op, "write", r < 0 ? (int)r : UV_EIO);
      break;
    }
    op->off += (size_t)r; /* a short write goes on from there */
    fs_write_next(op);
    return;

  case ST_FSYNC:
    if (orphan) break;
    if (r < 0) {
      op_fail(op, "fsync", (int)r);
      break;
    }
    op->stage = ST_CLOSE;
    {
      uv_file fd = op->fd;
      op->fd = -1;
      fs_submit(op, uv_fs_close(op->loop, &op->req, fd, fs_cb));
    }
    return;

  case ST_CLOSE:
    if (orphan) break;
    if (r < 0) {
      op_fail(op, "close", (int)r);
      break;
    }
    if (op->type == OP_GET) {
      op_finish(op);
      return;
    }
    op->stage = ST_RENAME;
    fs_submit(op, uv_fs_rename(op->loop, &op->req, op->tmp, op->path, fs_cb));
    return;

  case ST_RENAME:
    if (r >= 0) op->tmp_made = 0; /* it is the object now */
    if (orphan) break;
    if (r < 0) {
      op_fail(op, "rename", (int)r);
      break;
    }
    op_finish(op);
    return;

  case ST_STAT:
    if (orphan) break;
    if (r < 0) {
      op_fail(op, "fstat", (int)r);
      break;
    }
    if ((st.st_mode & S_IFMT) == S_IFDIR) {
      op->not_found = 1; /* a key's prefix, not an object */
      break;
    }
    if ((st.st_mode & S_IFMT) != S_IFREG) {
      op_fail(op, "read", UV_EINVAL);
      break;
    }
    if (st.st_size > op->max) {
      snprintf(op->err, sizeof op->err, "storage get %s: %llu bytes, over the %zu-byte limit",
               op->key, (unsigned long long)st.st_size, op->max);
      break;
    }
    op->size = (size_t)st.st_size;
    op->buf = malloc(op->size + 1);
    if (!op->buf) {
      op_fail(op, "read", UV_ENOMEM);
      break;
    }
    op->buf[0] = '\0';
    fs_read_next(op);
    return;

  case ST_READ:
    if (orphan) break;
    if (r < 0) {
      op_fail(op, "read", (int)r);
      break;
    }
    if (r == 0) op->size = op->got_len; /* shorter than fstat said: truncated meanwhile */
    op->got_len += (size_t)r;
    op->buf[op->got_len] = '\0';
    fs_read_next(op);
    return;

  case ST_UNLINK:
    /* Deleting what is not there (or is a key's prefix) succeeds. */
    if (!orphan && r < 0 && r != UV_ENOENT && r != UV_ENOTDIR && r != UV_EISDIR && r != UV_EPERM)
      op_fail(op, "delete", (int)r);
    op_finish(op);
    return;

  case ST_UNWIND_CLOSE:
    break;

  case ST_UNWIND_UNLINK:
    if (r < 0 && r != UV_ENOENT)
      log_warn("storage: a temporary file was left behind", LS("path", op->tmp),
               LS("error", uv_strerror((int)r)));
    break;
  }
  fs_unwind(op);
}

static int file_start(storage_op *op) {
  storage *s = op->s;
  size_t plen = strlen(s->dir) + 1 + strlen(op->key) + 1;
  op->path = malloc(plen);
  if (!op->path) return -1;
  snprintf(op->path, plen, "%s/%s", s->dir, op->key);
  if (op->type == OP_PUT) {
    unsigned char rnd[8];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
      uint64_t t = uv_hrtime() ^ (uint64_t)(uintptr_t)op;
      memcpy(rnd, &t, sizeof rnd);
    }
    size_t tlen = plen + sizeof ".tmp." + 2 * sizeof rnd;
    op->tmp = malloc(tlen);
    op->chunk = malloc(op->len < STORAGE_CHUNK ? (op->len ? op->len : 1) : STORAGE_CHUNK);
    if (!op->tmp || !op->chunk) return -1;
    int n = snprintf(op->tmp, tlen, "%s.tmp.", op->path);
    for (size_t i = 0; i < sizeof rnd; i++)
      n += snprintf(op->tmp + n, tlen - (size_t)n, "%02x", rnd[i]);
  }
  op->req.data = op;
  int rc;
  if (op->type == OP_PUT) {
    op->stage = ST_OPEN;
    rc = uv_fs_open(op->loop, &op->req, op->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    STORAGE_FILE_MODE, fs_cb);
  } else if (op->type == OP_GET) {
    op->stage = ST_OPEN;
    rc = uv_fs_open(op->loop, &op->req, op->path, O_RDONLY | O_CLOEXEC, 0, fs_cb);
  } else {
    op->stage = ST_UNLINK;
    rc = uv_fs_unlink(op->loop, &op->req, op->path, fs_cb);
  }
  if (rc != 0) return -1;
  op->busy = 1;
  return 0;
}

/* ---- s3:// ---- */

static char *s3_url(const storage *s, const char *key) {
  size_t n = strlen(s->base) + strlen(key) + 1;
  char *url = malloc(n);
  if (url) snprintf(url, n, "%s%s", s->base, key);
  return url;
}

/* "storage s3 PUT key: HTTP 403 AccessDenied: <message>", or the transport
 * error; a bit of the body, control bytes dropped. */
static void s3_fail(storage_op *op, const char *method, const httpc_response *r) {
  if (r->status == 0 || r->too_large) {
    snprintf(op->err, sizeof op->err, "storage s3 %s %s: %s", method, op->key,
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
  int n =
      snprintf(op->err, sizeof op->err, "storage s3 %s %s: HTTP %d", method, op->key, r->status);
  if (j && n > 0 && (size_t)n + 3 < sizeof op->err)
    snprintf(op->err + n, sizeof op->err - (size_t)n, ": %.*s",
             (int)(sizeof op->err - (size_t)n - 3), snippet);
}

static int s3_no_such_bucket(const httpc_response *r) {
  return r->body && strstr(r->body, "<Code>NoSuchBucket</Code>") != NULL;
}

static void s3_done(const httpc_response *r, void *arg) {
  storage_op *op = arg;
  storage *s = op->s;
  op->in_http = 0;
  op_unlink(op);
  if (!s) {
    /* storage_close canceled it. */
    snprintf(op->err, sizeof op->err, "closed");
  } else if (op->type == OP_PUT) {
    if (r->status < 200 || r->status > 299) s3_fail(op, "PUT", r);
  } else if (op->type == OP_DELETE) {
    int gone = r->status == 404 && !s3_no_such_bucket(r);
    if (!gone && (r->status < 200 || r->status > 299)) s3_fail(op, "DELETE", r);
  } else {
    if (r->status == 404 && !s3_no_such_bucket(r))
      op->not_found = 1;
    else if (r->status == 200 && r->body_len > op->max)
      snprintf(op->err, sizeof op->err, "storage get %s: %zu bytes, over the %zu-byte limit",
               op->key, r->body_len, op->max);
    else if (r->too_large)
      snprintf(op->err, sizeof op->err, "storage get %s: over the %zu-byte limit", op->key,
               op->max);
    else if (r->status != 200)
      s3_fail(op, "GET", r);
  }
  op_complete(op, s, r->body, r->body_len);
  op_free(op);
  if (s) storage_maybe_free(s);
}

static long s3_timeout_ms(size_t bytes) {
  /* A minute, plus a second for each MiB at 1 MiB/s: a slow link still
   * carries a large object; a dead one is still noticed. */
  return 60000L + (long)(bytes >> 20) * 1000L;
}

static int s3_send(storage_op *op) {
  storage *s = op->s;
  char *url = s3_url(s, op->key);
  if (!url) return -1;
  char ct[STORAGE_CONTENT_TYPE_MAX + 32];
  char sha[96];
  snprintf(ct, sizeof ct, "Content-Type: %s", op->content_type);
  snprintf(sha, sizeof sha, "x-amz-content-sha256: %s",
           op->type == OP_PUT ? op->sha_hex : STORAGE_EMPTY_SHA256);
  const char *put_headers[] = {ct, sha, NULL};
  const char *headers[] = {sha, NULL};
  httpc_request req = {.url = url, .aws_sigv4 = s->sigv4, .userpwd = s->userpwd};
  if (op->type == OP_PUT) {
    req.method = "PUT";
    req.headers = put_headers;
    req.body = op->data;
    req.body_len = op->len;
    req.body_borrowed = 1; /* the caller keeps it until the callback; close cancels first */
    req.timeout_ms = s3_timeout_ms(op->len);
    req.max_response_bytes = STORAGE_S3_ERROR_BODY_MAX;
  } else if (op->type == OP_GET) {
    req.method = "GET";
    req.headers = headers;
    req.timeout_ms = s3_timeout_ms(op->max);
    /* An error document must fit even under a small limit. */
    req.max_response_bytes =
        op->max > STORAGE_S3_ERROR_BODY_MAX ? op->max : STORAGE_S3_ERROR_BODY_MAX;
  } else {
    req.method = "DELETE";
    req.headers = headers;
    req.max_response_bytes = STORAGE_S3_ERROR_BODY_MAX;
  }
  int rc = httpc_send(s->http, &req, s3_done, op, &op->xfer);
  free(url);
  if (rc != 0) return -1;
  op->in_http = 1;
  return 0;
}

static void s3_hash_work(uv_work_t *w) {
  storage_op *op = w->data;
  if (EVP_DigestUpdate(op->sha, op->chunk, op->chunk_len) != 1) op->hash_failed = 1;
}

/* Queues the hash of the next chunk (a copy: the caller's bytes stay on the
 * loop thread). Returns 0, or -1 if it could not be queued. */
static int s3_hash_queue(storage_op *op) {
  size_t n = op->len - op->off;
  if (n > STORAGE_CHUNK) n = STORAGE_CHUNK;
  memcpy(op->chunk, op->data + op->off, n);
  op->chunk_len = n;
  op->work.data = op;
  if (uv_queue_work(op->loop, &op->work, s3_hash_work, s3_hash_after) != 0) return -1;
  op->busy = 1;
  return 0;
}

/* Finishes the hash into op->sha_hex and sends the PUT. */
static int s3_hash_done_send(storage_op *op) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (op->hash_failed || EVP_DigestFinal_ex(op->sha, md, &mdlen) != 1 || mdlen != 32) return -1;
  for (size_t i = 0; i < 32; i++)
    snprintf(op->sha_hex + 2 * i, 3, "%02x", md[i]);
  return s3_send(op);
}

static void s3_hash_after(uv_work_t *w, int status) {
  storage_op *op = w->data;
  storage *s = op->s;
  op->busy = 0;
  if (!s) {
    op_free(op); /* orphaned: completed with "closed" already */
    return;
  }
  if (status == 0 && !op->hash_failed) {
    op->off += op->chunk_len;
    if (op->off < op->len ? s3_hash_queue(op) == 0 : s3_hash_done_send(op) == 0) return;
  }
  snprintf(op->err, sizeof op->err, "storage s3 PUT %s: could not hash or send the object",
           op->key);
  op_unlink(op);
  op_complete(op, s, NULL, 0);
  op_free(op);
  storage_maybe_free(s);
}

static int s3_start(storage_op *op) {
  if (op->type != OP_PUT) return s3_send(op);
  op->sha = EVP_MD_CTX_new();
  if (!op->sha || EVP_DigestInit_ex(op->sha, EVP_sha256(), NULL) != 1) return -1;
  if (op->len > STORAGE_HASH_INLINE) {
    op->chunk = malloc(STORAGE_CHUNK);
    return op->chunk ? s3_hash_queue(op) : -1;
  }
  if (op->len && EVP_DigestUpdate(op->sha, op->data, op->len) != 1) return -1;
  op->off = op->len;
  return s3_hash_done_send(op);
}

/* ---- opening: parsing GENQ_STORAGE ---- */

static int open_file(storage *s, const char *rest, char *err, size_t errlen) {
  if (rest[0] != '/') {
    snprintf(err, errlen, "file:// storage needs an absolute path (file:///abs/dir)");
    return -1;
  }
  size_t n = strlen(rest);
  while (n > 1 && rest[n - 1] == '/')
    n--;
  if (n > STORAGE_PATH_MAX) {
    snprintf(err, errlen, "file:// storage path is longer than %d bytes", STORAGE_PATH_MAX);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)rest[i] < 0x20 || rest[i] == '?' || rest[i] == '#') {
      snprintf(err, errlen, "file:// storage path has a control character, '?' or '#'");
      return -1;
    }
  }
  if (strstr(rest, "/../") || (n >= 3 && strncmp(rest + n - 3, "/..", 3) == 0)) {
    snprintf(err, errlen, "file:// storage path must not contain \"..\"");
    return -1;
  }
  /* "/" alone keeps no trailing slash to add "/key" to. */
  s->dir = n == 1 ? strdup("") : strndup(rest, n);
  if (!s->dir) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->kind = STORAGE_FILE;
  return 0;
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

static int open_s3(storage *s, const char *rest, httpc *http, const char *access,
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
  s->base = malloc(n);
  s->bucket = strndup(rest, blen);
  s->userpwd = malloc(un);
  s->sigv4 = malloc(sn);
  if (!s->base || !s->bucket || !s->userpwd || !s->sigv4) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(s->base, n, "%s/%.*s/", endpoint, (int)blen, rest);
  snprintf(s->userpwd, un, "%s:%s", access, secret);
  snprintf(s->sigv4, sn, "aws:amz:%s:s3", region);
  s->http = http;
  s->kind = STORAGE_S3;
  return 0;
}

/* ---- the interface ---- */

int storage_open(storage **out, uv_loop_t *loop, httpc *http, const char *url,
                 const char *access_key, const char *secret_key, char *err, size_t errlen) {
  char dummy[8];
  if (!err || errlen == 0) err = dummy, errlen = sizeof dummy;
  err[0] = '\0';
  if (out) *out = NULL;
  if (!out || !loop || !url) {
    snprintf(err, errlen, "storage_open needs a loop and a URL");
    return -1;
  }
  storage *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->loop = loop;
  int rc;
  if (strncmp(url, "file://", 7) == 0) {
    rc = open_file(s, url + 7, err, errlen);
  } else if (strncmp(url, "s3://", 5) == 0) {
    rc = open_s3(s, url + 5, http, access_key, secret_key, err, errlen);
  } else {
    snprintf(err, errlen, "storage URL must start with file:// or s3://");
    rc = -1;
  }
  if (rc != 0) {
    s->closed = 1;
    storage_maybe_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

static int storage_start(storage *s, storage_op *op) {
  int rc = s->kind == STORAGE_FILE ? file_start(op) : s3_start(op);
  if (rc != 0) {
    op_free(op);
    return -1;
  }
  /* Linked only once started: a refused call leaves nothing behind. A hash
   * or request already running is then found by storage_close. */
  op_link(op);
  return 0;
}

int storage_put(storage *s, const char *key, const char *data, size_t len, const char *content_type,
                storage_done_cb cb, void *arg) {
  if (!s || s->closed || !cb || !storage_key_ok(key) || (!data && len)) return -1;
  if (!content_type) content_type = "application/octet-stream";
  if (!storage_printable(content_type, STORAGE_CONTENT_TYPE_MAX)) return -1;
  storage_op *op = op_new(s, OP_PUT, key);
  if (!op) return -1;
  op->done = cb;
  op->arg = arg;
  op->data = data ? data : "";
  op->len = len;
  snprintf(op->content_type, sizeof op->content_type, "%s", content_type);
  return storage_start(s, op);
}

int storage_get(storage *s, const char *key, size_t max_bytes, storage_get_cb cb, void *arg) {
  if (!s || s->closed || !cb || !storage_key_ok(key) || max_bytes == 0) return -1;
  storage_op *op = op_new(s, OP_GET, key);
  if (!op) return -1;
  op->got = cb;
  op->arg = arg;
  op->max = max_bytes;
  return storage_start(s, op);
}

int storage_delete(storage *s, const char *key, storage_done_cb cb, void *arg) {
  if (!s || s->closed || !cb || !storage_key_ok(key)) return -1;
  storage_op *op = op_new(s, OP_DELETE, key);
  if (!op) return -1;
  op->done = cb;
  op->arg = arg;
  return storage_start(s, op);
}

char *storage_take(storage *s) {
  if (!s || !s->delivering) return NULL;
  storage_op *op = s->delivering;
  if (s->kind == STORAGE_S3) return httpc_take_body(s->http);
  char *b = op->buf;
  op->buf = NULL;
  return b;
}

const char *storage_backend(const storage *s) {
  return s->kind == STORAGE_FILE ? "file" : "s3";
}

void storage_close(storage *s) {
  if (!s || s->closed) return;
  s->closed = 1;
  s->depth++; /* the callbacks below must not free s under us */
  while (s->ops) {
    storage_op *op = s->ops;
    op_unlink(op);
    op->s = NULL; /* orphaned: whatever completes later frees it quietly */
    if (op->in_http) {
      /* Runs s3_done at once, which completes it with "closed" and frees it. */
      httpc_cancel(s->http, op->xfer);
      continue;
    }
    /* A threadpool request is running or queued: try to cancel it; either
     * way its callback comes and cleans up. */
    if (op->stage == ST_UNWIND_CLOSE || op->stage == ST_UNWIND_UNLINK) {
      /* cleaning up after an error already: that error is the result */
    } else {
      snprintf(op->err, sizeof op->err, "closed");
      op->not_found = 0;
    }
    if (op->busy) uv_cancel(s->kind == STORAGE_S3 ? (uv_req_t *)&op->work : (uv_req_t *)&op->req);
    op_complete(op, NULL, NULL, 0);
  }
  s->depth--;
  storage_maybe_free(s);
}
