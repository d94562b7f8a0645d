/* The file:// backend of storage (storage_backend.h): objects are files
 * under one directory, <dir>/<key>. Every file system call is a libuv fs
 * request, run on the threadpool: a put writes <dir>/<key>.tmp.<random>
 * (making the parent directories on ENOENT), fsyncs, closes and renames it
 * over <dir>/<key>, so a reader sees the old bytes or the new ones, never a
 * part. A get opens, fstats (too large -> error before any read), reads and
 * closes. A delete unlinks. Its state (s->be) is the directory, without a
 * trailing '/'. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "storage_backend.h"

#define STORAGE_PATH_MAX 1024
#define STORAGE_FILE_MODE 0640
#define STORAGE_DIR_MODE 0750

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

typedef struct {
  storage_op op; /* first: storage.c allocates and fills it */
  uv_fs_t req;
  int stage;
  int busy; /* a uv_fs request is outstanding */
  uv_file fd;
  char *path, *tmp;
  int tmp_made;
  int mkdir_done;
  int mkdir_err; /* the last mkdir error other than EEXIST, or 0 */
  size_t mkpos;  /* next '/' of tmp to create a directory up to */
  size_t off;    /* put: bytes written so far */
  char *chunk;   /* put: the copy the threadpool writes */
  size_t chunk_len;
  char *buf; /* get: the object, NUL-terminated */
  size_t size, got_len;
} file_op;

static void fs_step(file_op *f);

static void file_fail(file_op *f, const char *what, int uverr) {
  if (f->op.err[0]) return; /* the first error is the one that counts */
  snprintf(f->op.err, sizeof f->op.err, "storage %s %s: %s", what, f->op.key, uv_strerror(uverr));
}

static void file_op_free(storage_op *op) {
  file_op *f = (file_op *)op;
  free(f->chunk);
  free(f->path);
  free(f->tmp);
  free(f->buf);
  free(f);
}

/* Ends a file operation: unlinks it, completes it, frees it (and s, when a
 * callback closed it). */
static void file_finish(file_op *f) {
  storage *s = f->op.s;
  op_unlink(&f->op);
  op_complete(&f->op, s, f->buf ? f->buf : "", f->got_len);
  file_op_free(&f->op);
  if (s) storage_maybe_free(s);
}

static void fs_cb(uv_fs_t *req) {
  file_op *f = req->data;
  f->busy = 0;
  fs_step(f);
}

/* Notes a started fs request (rc 0). One libuv refuses at once is handled
 * as if it had failed with that error. */
static void fs_submit(file_op *f, int rc) {
  if (rc == 0) {
    f->busy = 1;
    return;
  }
  /* Could not even be queued: report it as that request's result. */
  f->req.result = rc;
  f->req.data = f;
  fs_step(f);
}

/* Closes the fd (it is not ours any more, whatever the result). */
static void fs_close(file_op *f, int stage) {
  uv_file fd = f->fd;
  f->fd = -1;
  f->stage = stage;
  fs_submit(f, uv_fs_close(f->op.loop, &f->req, fd, fs_cb));
}

/* Closes the fd and removes the temporary file, whichever are left, then
 * finishes the operation with the error it recorded. */
static void fs_unwind(file_op *f) {
  if (f->fd >= 0) {
    fs_close(f, ST_UNWIND_CLOSE);
    return;
  }
  if (f->tmp_made) {
    f->stage = ST_UNWIND_UNLINK;
    f->tmp_made = 0;
    fs_submit(f, uv_fs_unlink(f->op.loop, &f->req, f->tmp, fs_cb));
    return;
  }
  file_finish(f);
}

static void fs_open_tmp(file_op *f) {
  f->stage = ST_OPEN;
  fs_submit(f, uv_fs_open(f->op.loop, &f->req, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                          STORAGE_FILE_MODE, fs_cb));
}

/* mkdir -p of the temporary file's directory, one component a request;
 * EEXIST is fine (another put may make the same directory). */
static void fs_mkdir_next(file_op *f) {
  const char *slash = strchr(f->tmp + f->mkpos + 1, '/');
  if (!slash) {
    f->mkdir_done = 1;
    fs_open_tmp(f);
    return;
  }
  f->mkpos = (size_t)(slash - f->tmp);
  char dir[STORAGE_PATH_MAX + STORAGE_KEY_MAX + 64];
  snprintf(dir, sizeof dir, "%.*s", (int)f->mkpos, f->tmp);
  f->stage = ST_MKDIR;
  fs_submit(f, uv_fs_mkdir(f->op.loop, &f->req, dir, STORAGE_DIR_MODE, fs_cb)); /* copies dir */
}

static void fs_write_next(file_op *f) {
  if (f->off == f->op.len) {
    f->stage = ST_FSYNC; /* the bytes are on disk before the name points at them */
    fs_submit(f, uv_fs_fsync(f->op.loop, &f->req, f->fd, fs_cb));
    return;
  }
  size_t n = f->op.len - f->off;
  if (n > STORAGE_CHUNK) n = STORAGE_CHUNK;
  memcpy(f->chunk, f->op.data + f->off, n);
  f->chunk_len = n;
  uv_buf_t b = uv_buf_init(f->chunk, (unsigned)n);
  f->stage = ST_WRITE;
  fs_submit(f, uv_fs_write(f->op.loop, &f->req, f->fd, &b, 1, -1, fs_cb));
}

static void fs_read_next(file_op *f) {
  if (f->got_len == f->size) {
    fs_close(f, ST_CLOSE);
    return;
  }
  size_t n = f->size - f->got_len;
  if (n > (1u << 30)) n = 1u << 30;
  uv_buf_t b = uv_buf_init(f->buf + f->got_len, (unsigned)n);
  f->stage = ST_READ;
  fs_submit(f, uv_fs_read(f->op.loop, &f->req, f->fd, &b, 1, (int64_t)(f->op.offset + f->got_len),
                          fs_cb));
}

/* The one continuation of every file request: f->req holds the result of
 * the request for f->stage. */
static void fs_step(file_op *f) {
  ssize_t r = f->req.result;
  uv_stat_t st = f->req.statbuf;
  uv_fs_req_cleanup(&f->req);
  int orphan = f->op.s == NULL;

  switch (f->stage) {
  case ST_OPEN:
    if (r >= 0) {
      f->fd = (uv_file)r;
      if (f->op.type == OP_PUT) f->tmp_made = 1;
    }
    if (orphan) break;
    if (f->op.type == OP_GET) {
      if (r == UV_ENOENT || r == UV_ENOTDIR) {
        f->op.not_found = 1;
        file_finish(f);
        return;
      }
      if (r < 0) {
        file_fail(f, "open", (int)r);
        break;
      }
      f->stage = ST_STAT;
      fs_submit(f, uv_fs_fstat(f->op.loop, &f->req, f->fd, fs_cb));
      return;
    }
    if (r == UV_ENOENT && !f->mkdir_done) {
      /* From the storage directory's own parents down. */
      f->mkpos = 0;
      fs_mkdir_next(f);
      return;
    }
    if (r < 0) {
      if (r == UV_ENOENT && f->mkdir_err)
        file_fail(f, "mkdir for", f->mkdir_err);
      else
        file_fail(f, "create", (int)r);
      break;
    }
    fs_write_next(f);
    return;

  case ST_MKDIR:
    if (orphan) break;
    /* Not fatal by itself (an ancestor of the storage directory may be
     * unwritable yet exist); kept to explain a second failed create. */
    if (r < 0 && r != UV_EEXIST) f->mkdir_err = (int)r;
    fs_mkdir_next(f);
    return;

  case ST_WRITE:
    if (orphan) break;
    if (r <= 0) {
      file_fail(f, "write", r < 0 ? (int)r : UV_EIO);
      break;
    }
    f->off += (size_t)r; /* a short write goes on from there */
    fs_write_next(f);
    return;

  case ST_FSYNC:
    if (orphan) break;
    if (r < 0) {
      file_fail(f, "fsync", (int)r);
      break;
    }
    fs_close(f, ST_CLOSE);
    return;

  case ST_CLOSE:
    if (orphan) break;
    if (r < 0) {
      file_fail(f, "close", (int)r);
      break;
    }
    if (f->op.type == OP_GET) {
      file_finish(f);
      return;
    }
    f->stage = ST_RENAME;
    fs_submit(f, uv_fs_rename(f->op.loop, &f->req, f->tmp, f->path, fs_cb));
    return;

  case ST_RENAME:
    if (r >= 0) f->tmp_made = 0; /* it is the object now */
    if (orphan) break;
    if (r < 0) {
      file_fail(f, "rename", (int)r);
      break;
    }
    file_finish(f);
    return;

  case ST_STAT:
    if (orphan) break;
    if (r < 0) {
      file_fail(f, "fstat", (int)r);
      break;
    }
    if ((st.st_mode & S_IFMT) == S_IFDIR) {
      f->op.not_found = 1; /* a key's prefix, not an object */
      break;
    }
    if ((st.st_mode & S_IFMT) != S_IFREG) {
      file_fail(f, "read", UV_EINVAL);
      break;
    }
    if (f->op.range) {
      size_t avail = (uint64_t)st.st_size > f->op.offset ? (size_t)st.st_size - f->op.offset : 0;
      f->size = avail < f->op.max ? avail : f->op.max;
    } else if (st.st_size > f->op.max) {
      snprintf(f->op.err, sizeof f->op.err, "storage get %s: %llu bytes, over the %zu-byte limit",
               f->op.key, (unsigned long long)st.st_size, f->op.max);
      break;
    } else {
      f->size = (size_t)st.st_size;
    }
    f->buf = malloc(f->size + 1);
    if (!f->buf) {
      file_fail(f, "read", UV_ENOMEM);
      break;
    }
    f->buf[0] = '\0';
    fs_read_next(f);
    return;

  case ST_READ:
    if (orphan) break;
    if (r < 0) {
      file_fail(f, "read", (int)r);
      break;
    }
    if (r == 0) f->size = f->got_len; /* shorter than fstat said: truncated meanwhile */
    f->got_len += (size_t)r;
    f->buf[f->got_len] = '\0';
    fs_read_next(f);
    return;

  case ST_UNLINK:
    /* Deleting what is not there (or is a key's prefix) succeeds. */
    if (!orphan && r < 0 && r != UV_ENOENT && r != UV_ENOTDIR && r != UV_EISDIR && r != UV_EPERM)
      file_fail(f, "delete", (int)r);
    file_finish(f);
    return;

  case ST_UNWIND_CLOSE:
    break;

  case ST_UNWIND_UNLINK:
    if (r < 0 && r != UV_ENOENT)
      log_warn("storage: a temporary file was left behind", LS("path", f->tmp),
               LS("error", uv_strerror((int)r)));
    break;
  }
  fs_unwind(f);
}

static int file_start(storage_op *op) {
  file_op *f = (file_op *)op;
  const char *dir = op->s->be;
  f->fd = -1;
  size_t plen = strlen(dir) + 1 + strlen(op->key) + 1;
  f->path = malloc(plen);
  if (!f->path) return -1;
  snprintf(f->path, plen, "%s/%s", dir, op->key);
  if (f->op.type == OP_PUT) {
    unsigned char rnd[8];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
      uint64_t t = uv_hrtime() ^ (uint64_t)(uintptr_t)f;
      memcpy(rnd, &t, sizeof rnd);
    }
    size_t tlen = plen + sizeof ".tmp." + 2 * sizeof rnd;
    f->tmp = malloc(tlen);
    f->chunk = malloc(f->op.len < STORAGE_CHUNK ? (f->op.len ? f->op.len : 1) : STORAGE_CHUNK);
    if (!f->tmp || !f->chunk) return -1;
    int n = snprintf(f->tmp, tlen, "%s.tmp.", f->path);
    for (size_t i = 0; i < sizeof rnd; i++)
      n += snprintf(f->tmp + n, tlen - (size_t)n, "%02x", rnd[i]);
  }
  f->req.data = f;
  int rc;
  if (f->op.type == OP_PUT) {
    f->stage = ST_OPEN;
    rc = uv_fs_open(f->op.loop, &f->req, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    STORAGE_FILE_MODE, fs_cb);
  } else if (f->op.type == OP_GET) {
    f->stage = ST_OPEN;
    rc = uv_fs_open(f->op.loop, &f->req, f->path, O_RDONLY | O_CLOEXEC, 0, fs_cb);
  } else {
    f->stage = ST_UNLINK;
    rc = uv_fs_unlink(f->op.loop, &f->req, f->path, fs_cb);
  }
  if (rc != 0) return -1;
  f->busy = 1;
  return 0;
}

static int file_open(storage *s, const char *rest, httpc *http, const char *access,
                     const char *secret, char *err, size_t errlen) {
  (void)http, (void)access, (void)secret;
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
  s->be = n == 1 ? strdup("") : strndup(rest, n);
  if (!s->be) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

static void file_release(storage *s) {
  free(s->be);
}

static char *file_take(storage *s, storage_op *op) {
  (void)s;
  file_op *f = (file_op *)op;
  char *b = f->buf;
  f->buf = NULL;
  return b;
}

static void file_cancel(storage *s, storage_op *op) {
  (void)s;
  file_op *f = (file_op *)op;
  /* When it is cleaning up after an error already, that error is the result. */
  if (f->stage != ST_UNWIND_CLOSE && f->stage != ST_UNWIND_UNLINK) {
    snprintf(op->err, sizeof op->err, "closed");
    op->not_found = 0;
  }
  /* A request is running or queued: try to cancel it; either way its
   * callback comes and cleans up. */
  if (f->busy) uv_cancel((uv_req_t *)&f->req);
  op_complete(op, NULL, NULL, 0);
}

const storage_vtable storage_file_vtable = {
    .name = "file",
    .scheme = "file://",
    .op_size = sizeof(file_op),
    .open = file_open,
    .release = file_release,
    .start = file_start,
    .op_free = file_op_free,
    .take = file_take,
    .cancel = file_cancel,
};
