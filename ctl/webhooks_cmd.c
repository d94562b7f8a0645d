/* genqctl webhooks secret|list|replay, secrets rekey: completion webhooks
 * (SPEC §4, docs/webhooks.md). The deliveries and secrets live in
 * schema/functions/webhooks.sql; what needs GENQ_SECRETS_KEY (making a
 * secret, sealing it again under a new key) is done here, since the key
 * never reaches the database. A secret is printed once, when it is made,
 * and never logged. */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "secret_box.h"
#include "webhook_sign.h"

/* The key ring of GENQ_SECRETS_KEY and GENQ_SECRETS_KEY_PREVIOUS. */
static int wh_keys(secret_keyring *kr, const char *what) {
  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_CTL, err, sizeof err) < 0) {
    fprintf(stderr, "genqctl %s: %s\n", what, err);
    return -1;
  }
  int rc = secret_keyring_parse(kr, cfg.secrets_key, cfg.secrets_key_previous, err, sizeof err);
  config_free(&cfg);
  if (rc < 0) fprintf(stderr, "genqctl %s: %s\n", what, err);
  return rc;
}

/* The message of a failed statement, first line. */
static const char *wh_error(PGresult *r, PGconn *c, char *buf, size_t len) {
  const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (!m) m = PQerrorMessage(c);
  snprintf(buf, len, "%.*s", (int)strcspn(m, "\n"), m);
  return buf;
}

int ctl_webhooks_secret(PGconn *c, const char *user, const char *grace_secs, int json) {
  secret_keyring kr;
  if (wh_keys(&kr, "webhooks secret") < 0) return CTL_FAIL;
  unsigned char key[WEBHOOK_KEY_BYTES];
  char sealed[SECRET_SEALED_LEN(WEBHOOK_KEY_BYTES)], text[WEBHOOK_SECRET_TEXT_MAX];
  int ok = RAND_bytes(key, sizeof key) == 1 &&
           secret_box_seal(&kr, user, key, sizeof key, sealed, sizeof sealed) == 0 &&
           webhook_secret_encode(key, sizeof key, text, sizeof text) == 0;
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) {
    secret_keyring_wipe(&kr);
    fprintf(stderr, "genqctl webhooks secret: could not make a secret\n");
    return CTL_FAIL;
  }
  const char *p[4] = {user, kr.keys[0].id, sealed, grace_secs ? grace_secs : "86400"};
  PGresult *r = PQexecParams(c, "SELECT genq_ts(genq_webhook_secret_rotate($1, $2, $3, $4::int))",
                             4, NULL, p, NULL, NULL, 0);
  int rc = CTL_FAIL;
  char msg[512];
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    fprintf(stderr, "genqctl webhooks secret: %s\n", wh_error(r, c, msg, sizeof msg));
  } else {
    const char *until = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
    if (json) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "user", user);
      cJSON_AddStringToObject(o, "secret", text);
      cJSON_AddStringToObject(o, "key_id", kr.keys[0].id);
      if (until)
        cJSON_AddStringToObject(o, "previous_signs_until", until);
      else
        cJSON_AddNullToObject(o, "previous_signs_until");
      char *s = cJSON_PrintUnformatted(o);
      if (s) printf("%s\n", s);
      if (s) OPENSSL_cleanse(s, strlen(s));
      cJSON_free(s);
      cJSON_Delete(o);
    } else {
      printf("%s\n", text);
      fprintf(stderr,
              "the new webhook signing secret of %s, shown this once: give it to the receiver\n",
              user);
      if (until)
        fprintf(stderr, "deliveries are signed with the previous one too until %s\n", until);
    }
    rc = CTL_OK;
  }
  PQclear(r);
  OPENSSL_cleanse(text, sizeof text);
  OPENSSL_cleanse(sealed, sizeof sealed);
  secret_keyring_wipe(&kr);
  return rc;
}

static void wh_print_table(const cJSON *rows, long unused) {
  (void)unused;
  int n = cJSON_GetArraySize(rows);
  if (n == 0) {
    printf("no deliveries\n");
    return;
  }
  printf("%-36s %-13s %-10s %-8s %-6s %-24s %s\n", "webhook_id", "event", "state", "attempts",
         "status", "next_attempt_at", "error / delivered_at");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    char status[16] = "-";
    if (cJSON_IsNumber(cJSON_GetObjectItem(r, "last_status")))
      snprintf(status, sizeof status, "%d", (int)ctl_num(r, "last_status"));
    const char *state = ctl_str(r, "state");
    printf("%-36s %-13s %-10s %-8d %-6s %-24s %s\n", ctl_str(r, "webhook_id"), ctl_str(r, "event"),
           state, (int)ctl_num(r, "attempts"), status, ctl_str(r, "next_attempt_at"),
           strcmp(state, "delivered") == 0 ? ctl_str(r, "delivered_at") : ctl_str(r, "last_error"));
  }
  printf("%d deliver%s\n", n, n == 1 ? "y" : "ies");
}

int ctl_webhooks_list(PGconn *c, const char *job, int json) {
  if (!genq_is_uuid(job)) {
    fprintf(stderr, "genqctl webhooks list: '%s' is not a job id (a UUID)\n", job);
    return CTL_USAGE;
  }
  const char *p[1] = {job};
  return ctl_list(c, "webhooks list", "SELECT genq_webhooks_list($1::uuid)", 1, p, json,
                  wh_print_table, 0);
}

/* A delivery id, as a UUID or as its webhook-id ("msg_" and 32 hex
 * digits), into uuid (37 bytes). 0 or -1. */
static int wh_delivery_id(const char *s, char uuid[37]) {
  if (genq_is_uuid(s)) {
    snprintf(uuid, 37, "%s", s);
    return 0;
  }
  if (strncmp(s, "msg_", 4) != 0 || strlen(s) != 36) return -1;
  const char *h = s + 4;
  for (int i = 0; i < 32; i++)
    if (!isxdigit((unsigned char)h[i])) return -1;
  snprintf(uuid, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
  return genq_is_uuid(uuid) ? 0 : -1;
}

int ctl_webhooks_replay(PGconn *c, const char *id, int json) {
  char uuid[37];
  if (wh_delivery_id(id, uuid) < 0) {
    fprintf(stderr, "genqctl webhooks replay: '%s' is not a delivery id (a UUID or msg_...)\n", id);
    return CTL_USAGE;
  }
  const char *p[1] = {uuid};
  PGresult *r =
      PQexecParams(c, "SELECT genq_webhook_replay($1::uuid)::text", 1, NULL, p, NULL, NULL, 0);
  char msg[512];
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    fprintf(stderr, "genqctl webhooks replay: %s\n", wh_error(r, c, msg, sizeof msg));
    PQclear(r);
    return CTL_FAIL;
  }
  if (json) {
    printf("%s\n", PQgetvalue(r, 0, 0));
  } else {
    cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
    printf("replayed %s: pending, a worker delivers it within seconds\n", ctl_str(o, "webhook_id"));
    cJSON_Delete(o);
  }
  PQclear(r);
  return CTL_OK;
}

int ctl_secrets_rekey(PGconn *c, int json) {
  secret_keyring kr;
  if (wh_keys(&kr, "secrets rekey") < 0) return CTL_FAIL;
  const char *p[1] = {kr.keys[0].id};
  PGresult *rows = ctl_query(c, "secrets rekey",
                             "SELECT id, user_id, key_id, sealed FROM "
                             "genq_webhook_secrets_to_rekey($1)",
                             1, p);
  if (!rows) {
    secret_keyring_wipe(&kr);
    return CTL_FAIL;
  }
  int n = PQntuples(rows), done = 0, bad = 0;
  for (int i = 0; i < n; i++) {
    const char *id = PQgetvalue(rows, i, 0), *user = PQgetvalue(rows, i, 1);
    const char *kid = PQgetvalue(rows, i, 2);
    unsigned char pt[SECRET_PLAIN_MAX];
    char sealed[SECRET_SEALED_LEN(SECRET_PLAIN_MAX)];
    int len = secret_box_open(&kr, kid, user, PQgetvalue(rows, i, 3), pt, sizeof pt);
    int ok = len > 0 && secret_box_seal(&kr, user, pt, (size_t)len, sealed, sizeof sealed) == 0;
    OPENSSL_cleanse(pt, sizeof pt);
    if (!ok) {
      fprintf(stderr, "genqctl secrets rekey: secret %s of %s (key %s) does not open%s\n", id, user,
              kid,
              len == SECRET_BOX_UNKNOWN_KEY ? ": that key is in neither GENQ_SECRETS_KEY nor "
                                              "GENQ_SECRETS_KEY_PREVIOUS"
                                            : "");
      bad++;
      continue;
    }
    const char *q[4] = {id, kid, kr.keys[0].id, sealed};
    PGresult *r = PQexecParams(c, "SELECT genq_webhook_secret_reseal($1::bigint, $2, $3, $4)", 4,
                               NULL, q, NULL, NULL, 0);
    OPENSSL_cleanse(sealed, sizeof sealed);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0) done++;
    PQclear(r);
  }
  PQclear(rows);
  if (json)
    printf("{\"key_id\":\"%s\",\"resealed\":%d,\"failed\":%d}\n", kr.keys[0].id, done, bad);
  else
    printf("%d secret%s sealed again under key %s%s\n", done, done == 1 ? "" : "s", kr.keys[0].id,
           bad ? "; some could not be (above)" : "");
  secret_keyring_wipe(&kr);
  return bad ? CTL_FAIL : CTL_OK;
}
