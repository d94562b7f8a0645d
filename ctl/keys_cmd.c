/* genqctl keys create|list|revoke: API keys for server-to-server callers
 * (SPEC §4, README "API keys"). A key is gq_ and 43 base64url characters
 * (32 random bytes). genqctl prints it once; the database keeps only its
 * SHA-256 and its first 10 characters (schema/0019_api_keys.sql). A
 * revocation is announced to every genq-api process, which refuse the key
 * at once (within a second when Redis is away). */
#include "b64.h"
#include "ctl.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX_LEN 10 /* gq_ and 7 characters: enough to tell keys apart */

static const char keys_usage[] =
    "usage: genqctl keys create --user U [--name N] [--admin] [--json]\n"
    "       genqctl keys list --user U [--json]\n"
    "       genqctl keys revoke ID [--json]\n";

static int keys_usage_error(const char *msg) {
  fprintf(stderr, "genqctl keys: %s\n%s", msg, keys_usage);
  return CTL_USAGE;
}

static void keys_print(const cJSON *rows, long unused) {
  (void)unused;
  int n = cJSON_GetArraySize(rows);
  if (n == 0) {
    printf("no keys\n");
    return;
  }
  printf("%-36s %-10s %-5s %-20s %-27s %-27s %s\n", "id", "prefix", "admin", "name", "created_at",
         "last_used_at", "revoked_at");
  const cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    const cJSON *admin = cJSON_GetObjectItemCaseSensitive(r, "admin");
    printf("%-36s %-10s %-5s %-20.20s %-27s %-27s %s\n", ctl_str(r, "id"), ctl_str(r, "prefix"),
           cJSON_IsTrue(admin) ? "yes" : "no", *ctl_str(r, "name") ? ctl_str(r, "name") : "-",
           ctl_str(r, "created_at"), ctl_str(r, "last_used_at"), ctl_str(r, "revoked_at"));
  }
  printf("%d key%s\n", n, n == 1 ? "" : "s");
}

/* A new key into key (KEY_LEN + 1) and its SHA-256 as bytea text
 * ("\x" and 64 hex digits) into hash_text. 0, or -1 without randomness. */
static int make_key(char key[47], char hash_text[67]) {
  unsigned char raw[32], h[32];
  char b64[B64_LEN(32) + 1];
  if (RAND_bytes(raw, sizeof raw) != 1 || b64_encode(raw, sizeof raw, b64, sizeof b64) != 44)
    return -1;
  memcpy(key, "gq_", 3);
  for (int i = 0; i < 43; i++)
    key[3 + i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  key[46] = 0;
  OPENSSL_cleanse(raw, sizeof raw);
  OPENSSL_cleanse(b64, sizeof b64);
  if (EVP_Digest(key, 46, h, NULL, EVP_sha256(), NULL) != 1) return -1;
  snprintf(hash_text, 3, "\\x");
  for (size_t i = 0; i < 32; i++)
    snprintf(hash_text + 2 + 2 * i, 3, "%02x", h[i]);
  return 0;
}

static int keys_create(PGconn *c, const char *user, const char *name, int admin, int json) {
  char key[47], hash[67], prefix[KEY_PREFIX_LEN + 1];
  if (make_key(key, hash) != 0) {
    fprintf(stderr, "genqctl keys create: no randomness\n");
    return CTL_FAIL;
  }
  memcpy(prefix, key, KEY_PREFIX_LEN);
  prefix[KEY_PREFIX_LEN] = 0;
  const char *p[5] = {user, name ? name : "", admin ? "true" : "false", hash, prefix};
  PGresult *r = ctl_query(c, "keys create",
                          "SELECT genq_api_key_create($1, $2, $3::boolean, $4::bytea, $5)", 5, p);
  if (!r) return CTL_FAIL;
  cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (!o) {
    fprintf(stderr, "genqctl keys create: unexpected answer\n");
    return CTL_FAIL;
  }
  if (json) {
    cJSON_AddStringToObject(o, "key", key);
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
  } else {
    printf("%s\n", key);
    fprintf(stderr, "genqctl keys create: key %s for %s%s (shown once: genq keeps only its hash)\n",
            ctl_str(o, "id"), user, admin ? ", admin" : "");
  }
  cJSON_Delete(o);
  OPENSSL_cleanse(key, sizeof key);
  return CTL_OK;
}

static int keys_revoke(PGconn *c, const char *id, int json) {
  const char *p[1] = {id};
  PGresult *r = ctl_query(c, "keys revoke", "SELECT genq_api_key_revoke($1::uuid)", 1, p);
  if (!r) return CTL_FAIL;
  if (PQgetisnull(r, 0, 0)) {
    PQclear(r);
    fprintf(stderr, "genqctl keys revoke: no key %s\n", id);
    return CTL_FAIL;
  }
  ctl_announce_revoked(id);
  cJSON *o = cJSON_Parse(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (json) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    if (s) printf("%s\n", s);
    free(s);
  } else {
    printf("key %s of %s revoked at %s\n", id, ctl_str(o, "user"), ctl_str(o, "revoked_at"));
  }
  cJSON_Delete(o);
  return CTL_OK;
}

int ctl_keys(int argc, char **argv, PGconn *(*connect)(void)) {
  if (argc < 1) return keys_usage_error("needs a subcommand (create, list or revoke)");
  const char *sub = argv[0], *user = NULL, *name = NULL, *id = NULL;
  int json = 0, admin = 0;
  int create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0,
      revoke = strcmp(sub, "revoke") == 0;
  if (!create && !list && !revoke) return keys_usage_error("unknown subcommand");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (create && strcmp(argv[i], "--admin") == 0) {
      admin = 1;
    } else if (!revoke && strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
      user = argv[++i];
    } else if (create && strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
      name = argv[++i];
    } else if (revoke && !id && argv[i][0] != '-') {
      id = argv[i];
    } else {
      return keys_usage_error("unexpected argument");
    }
  }
  if (!revoke && (!user || !*user)) return keys_usage_error("needs --user U");
  if (name && strlen(name) > 100) return keys_usage_error("--name is at most 100 characters");
  if (revoke && !genq_is_uuid(id)) return keys_usage_error("revoke needs a key id (a UUID)");
  PGconn *c = connect();
  if (!c) return CTL_FAIL;
  int rc;
  if (create) {
    rc = keys_create(c, user, name, admin, json);
  } else if (list) {
    const char *p[1] = {user};
    rc = ctl_list(c, "keys list", "SELECT genq_api_keys_list($1)", 1, p, json, keys_print, 0);
  } else {
    rc = keys_revoke(c, id, json);
  }
  PQfinish(c);
  return rc;
}
