/* cleanup.c — what ended jobs leave behind, deleted fire and forget,
 * detached from any wjob (it may already be gone).
 *
 * Provider work: generations still running at the provider for steps that
 * will never use them and that the user was not charged for (the job ended
 * failed, or a generation created but never checkpointed) are deleted at
 * Luma; Hedra has no cancel. A step canceled after its generation was
 * created captured its price (genq_job_cancel): Luma refunds only failed
 * generations, so that one is paid for and left alone.
 * genq_refs_to_release hands each out once, to the worker that ends the
 * job or to a sweep.
 * Result bytes: stored bytes whose asset row will never be written (the job
 * is not ours any more), or nothing would ever purge them. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

static void generation_deleted(const luma_result *r, void *arg) {
  char *ref = arg;
  if (!r->ok)
    log_warn("provider generation not deleted", LS("provider_ref", ref), LS("error", r->message));
  else
    log_info("provider generation deleted", LS("provider_ref", ref));
  free(ref);
}

void cleanup_delete_generation(worker *w, const char *provider, const char *ref) {
  if (strcmp(provider, "luma") != 0 || !w->http) return;
  char *id = strdup(ref);
  if (id && luma_delete(w->http, &w->luma, id, generation_deleted, id, NULL) != 0) free(id);
}

static void refs_listed(const db_result *r, void *arg) {
  worker *w = arg;
  if (!r->ok) {
    log_warn("provider clean-up failed", LS("error", r->error));
    return;
  }
  for (int i = 0; i < PQntuples(r->res); i++)
    cleanup_delete_generation(w, PQgetvalue(r->res, i, 2), PQgetvalue(r->res, i, 3));
}

void cleanup_release_provider_work(worker *w, const char *job_id) {
  const char *p[2] = {job_id, "100"};
  db_query(w->db, "select * from genq_refs_to_release($1::uuid, $2::int)", 2, p, refs_listed, w);
}

static void bytes_deleted(const char *err, void *arg) {
  char *key = arg;
  if (err) log_warn("uncommitted result bytes not deleted", LS("key", key), LS("error", err));
  free(key);
}

void cleanup_drop_asset_bytes(worker *w, const char *key) {
  char *k = key ? strdup(key) : NULL;
  if (k && (!w->storage || storage_delete(w->storage, k, bytes_deleted, k) != 0)) free(k);
}
