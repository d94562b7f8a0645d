/* storage.h's interface over its two backends (storage_backend.h): parses
 * the URL's scheme, checks every call's arguments (keys, content types,
 * callbacks) so that a refused call starts nothing, allocates the operation
 * and hands it to the backend through its vtable. storage_close orphans what
 * is still in flight and lets each backend end it; nothing here is called
 * back by a backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_backend.h"

static const storage_vtable *const backends[] = {&storage_file_vtable, &storage_s3_vtable};

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

/* The backend's operation, its head filled in. */
static storage_op *op_new(storage *s, int type, const char *key) {
  storage_op *op = calloc(1, s->vt->op_size);
  if (!op) return NULL;
  op->s = s;
  op->loop = s->loop;
  op->type = type;
  snprintf(op->key, sizeof op->key, "%s", key);
  return op;
}

static void op_link(storage_op *op) {
  storage *s = op->s;
  op->next = s->ops;
  if (s->ops) s->ops->prev = op;
  s->ops = op;
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
  for (size_t i = 0; !s->vt && i < sizeof backends / sizeof backends[0]; i++)
    if (strncmp(url, backends[i]->scheme, strlen(backends[i]->scheme)) == 0) s->vt = backends[i];
  if (!s->vt) snprintf(err, errlen, "storage URL must start with file:// or s3://");
  if (!s->vt ||
      s->vt->open(s, url + strlen(s->vt->scheme), http, access_key, secret_key, err, errlen) != 0) {
    s->closed = 1;
    storage_maybe_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

static int storage_start(storage *s, storage_op *op) {
  if (s->vt->start(op) != 0) {
    s->vt->op_free(op);
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

int storage_get_range(storage *s, const char *key, size_t offset, size_t len, storage_get_cb cb,
                      void *arg) {
  if (!s || s->closed || !cb || !storage_key_ok(key) || len == 0) return -1;
  storage_op *op = op_new(s, OP_GET, key);
  if (!op) return -1;
  op->got = cb;
  op->arg = arg;
  op->max = len;
  op->range = 1;
  op->offset = offset;
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
  return s->vt->take(s, s->delivering);
}

const char *storage_backend(const storage *s) {
  return s->vt->name;
}

void storage_close(storage *s) {
  if (!s || s->closed) return;
  s->closed = 1;
  s->depth++; /* the callbacks below must not free s under us */
  while (s->ops) {
    storage_op *op = s->ops;
    op_unlink(op);
    op->s = NULL; /* orphaned: whatever completes later frees it quietly */
    s->vt->cancel(s, op);
  }
  s->depth--;
  storage_maybe_free(s);
}
