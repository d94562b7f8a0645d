/* The interface between storage.c (the public API of storage.h) and its
 * backends, storage_file.c and storage_s3.c. Private to those three files.
 *
 * storage.c checks a call's arguments, allocates an operation of the
 * backend's op_size whose head (storage_op) it fills in, and hands it to the
 * backend's start. From then on the backend owns it: it completes it once
 * (op_complete), unlinks and frees it, then calls storage_maybe_free for a
 * storage closed meanwhile. storage_close orphans every operation in flight
 * (op->s NULL) and gives it to the backend's cancel.
 *
 * Ownership: the caller's put bytes are read on the loop thread only. Work
 * handed to the threadpool (a file write, a hash) gets a copy of at most
 * STORAGE_CHUNK bytes owned by the operation, so that storage_close can end
 * an operation at once ("closed") while its last threadpool request is still
 * running: the orphan finishes that request, removes what it left (fd,
 * temporary file) and frees itself without calling anyone.
 *
 * The helpers below are static inline so that calls only go from storage.c
 * to a backend (through its vtable), never back. */
#ifndef GENQ_STORAGE_BACKEND_H
#define GENQ_STORAGE_BACKEND_H

#include <stdlib.h>
#include <string.h>

#include "storage.h"

#define STORAGE_KEY_MAX 200
#define STORAGE_CHUNK (1u << 20) /* bytes copied for one threadpool request */
#define STORAGE_ERR_MAX 320
#define STORAGE_CONTENT_TYPE_MAX 255

enum { OP_PUT, OP_GET, OP_DELETE };

typedef struct storage_op storage_op;

typedef struct storage_vtable {
  const char *name;   /* what storage_backend() answers */
  const char *scheme; /* the URL prefix it opens, e.g. "file://" */
  size_t op_size;     /* of the backend's operation, which starts with a storage_op */
  /* Parses the URL after the scheme into s->be. Returns 0, or -1 with err
   * (release then frees whatever was made). */
  int (*open)(storage *s, const char *rest, httpc *http, const char *access, const char *secret,
              char *err, size_t errlen);
  void (*release)(storage *s); /* frees s->be */
  /* Starts op; 0, or -1 with nothing started (op_free then frees it). */
  int (*start)(storage_op *op);
  void (*op_free)(storage_op *op);
  /* storage_take for op, the get whose callback runs. */
  char *(*take)(storage *s, storage_op *op);
  /* op was in flight on s and is orphaned now: end it, so that it is
   * completed ("closed") once and later frees itself. */
  void (*cancel)(storage *s, storage_op *op);
} storage_vtable;

extern const storage_vtable storage_file_vtable;
extern const storage_vtable storage_s3_vtable;

struct storage {
  uv_loop_t *loop;
  const storage_vtable *vt; /* NULL until the URL's scheme is known */
  void *be;                 /* the backend's own state */
  storage_op *ops;          /* in flight, doubly linked */
  storage_op *delivering;   /* the get whose callback runs (storage_take) */
  int depth;                /* user callbacks on the stack: a close inside one defers the free */
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
  const char *data; /* put: the caller's bytes (loop thread only) */
  size_t len;
  size_t max; /* get: the byte limit; a range: its length */
  int range;  /* a ranged get: max bytes from offset, fewer at the end */
  size_t offset;
  char content_type[STORAGE_CONTENT_TYPE_MAX + 1];
};

/* A header value: printable ASCII, no CR/LF. */
static inline int storage_printable(const char *v, size_t max) {
  size_t n = strlen(v);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return 0;
  return 1;
}

static inline void storage_maybe_free(storage *s) {
  if (!s->closed || s->depth > 0) return;
  if (s->vt) s->vt->release(s);
  free(s);
}

static inline void op_unlink(storage_op *op) {
  storage *s = op->s;
  if (!s || (!op->prev && s->ops != op)) return; /* orphaned, or not linked */
  if (op->prev)
    op->prev->next = op->next;
  else
    s->ops = op->next;
  if (op->next) op->next->prev = op->prev;
  op->prev = op->next = NULL;
}

/* Runs the caller's callback once. s is the storage it belongs to, or NULL
 * for an orphan (which only ever completes with an error). A get's data is
 * data/len; storage_take can claim it while the callback runs. */
static inline void op_complete(storage_op *op, storage *s, const char *data, size_t len) {
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

#endif
