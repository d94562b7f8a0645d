/* genqctl token: a development Clerk-style session token for the local stack,
 * signed with the private half of the key the API verifies with. */
#include "ctl.h"
#include "jwt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int ctl_random_hex(char *buf, size_t n) {
  unsigned char raw[64];
  if (n > sizeof raw || getrandom(raw, n, 0) != (ssize_t)n) return -1;
  for (size_t i = 0; i < n; i++)
    snprintf(buf + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

enum { TOKEN_KEY_MAX = 64 * 1024 }; /* a PEM RSA key is a few KiB */
#define TOKEN_TTL_MAX (366LL * 24 * 3600)

static void token_usage(const char *why) {
  fprintf(stderr, "genqctl token: %s\nusage: genqctl token --user U [--admin] [--ttl SECONDS]\n",
          why);
}

/* Reads at most TOKEN_KEY_MAX bytes of path into a malloc'd string. */
static char *token_read_key(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "GENQ_DEV_JWT_PRIVATE_KEY: %s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(TOKEN_KEY_MAX + 1);
  size_t n = buf ? fread(buf, 1, TOKEN_KEY_MAX + 1, f) : 0;
  int bad = !buf || ferror(f) || n > TOKEN_KEY_MAX;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "GENQ_DEV_JWT_PRIVATE_KEY: %s: unreadable or larger than %d bytes", path,
             TOKEN_KEY_MAX);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* The first entry of a comma list, trimmed, into out ("" when none). */
static void token_first_party(const char *list, char *out, size_t outlen) {
  out[0] = '\0';
  if (!list) return;
  while (*list == ' ')
    list++;
  size_t n = strcspn(list, ",");
  while (n && list[n - 1] == ' ')
    n--;
  if (n >= outlen) n = outlen - 1;
  memcpy(out, list, n);
  out[n] = '\0';
}

int ctl_token(int argc, char **argv) {
  const char *user = NULL;
  int admin = 0;
  long long ttl = 3600;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
      user = argv[++i];
    } else if (strcmp(argv[i], "--admin") == 0) {
      admin = 1;
    } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      ttl = strtoll(argv[++i], &end, 10);
      if (errno || *end || end == argv[i] || ttl < 1 || ttl > TOKEN_TTL_MAX) {
        token_usage("--ttl must be a number of seconds between 1 and 31622400");
        return CTL_USAGE;
      }
    } else {
      char why[128];
      snprintf(why, sizeof why, "unexpected argument '%s'", argv[i]);
      token_usage(why);
      return CTL_USAGE;
    }
  }
  if (!user || !*user) {
    token_usage("--user is required");
    return CTL_USAGE;
  }
  const char *keypath = getenv("GENQ_DEV_JWT_PRIVATE_KEY");
  const char *issuer = getenv("CLERK_ISSUER");
  if (!keypath || !*keypath) {
    fprintf(stderr,
            "genqctl token: GENQ_DEV_JWT_PRIVATE_KEY is not set (a PEM private key file)\n");
    return CTL_FAIL;
  }
  if (!issuer || !*issuer) {
    fprintf(stderr, "genqctl token: CLERK_ISSUER is not set\n");
    return CTL_FAIL;
  }
  char err[512], azp[512], sid[2 * 12 + 6] = "sess_";
  char *pem = token_read_key(keypath, err, sizeof err);
  if (!pem) {
    fprintf(stderr, "genqctl token: %s\n", err);
    return CTL_FAIL;
  }
  token_first_party(getenv("CLERK_AUTHORIZED_PARTIES"), azp, sizeof azp);
  if (ctl_random_hex(sid + 5, 12) < 0) {
    free(pem);
    fprintf(stderr, "genqctl token: no randomness\n");
    return CTL_FAIL;
  }
  long long now = (long long)time(NULL);
  cJSON *claims = cJSON_CreateObject();
  cJSON_AddStringToObject(claims, "sub", user);
  cJSON_AddStringToObject(claims, "iss", issuer);
  if (*azp) cJSON_AddStringToObject(claims, "azp", azp);
  cJSON_AddNumberToObject(claims, "iat", (double)now);
  cJSON_AddNumberToObject(claims, "nbf", (double)now);
  cJSON_AddNumberToObject(claims, "exp", (double)(now + ttl));
  cJSON_AddStringToObject(claims, "sid", sid);
  if (admin) {
    cJSON *md = cJSON_AddObjectToObject(claims, "metadata");
    if (md) cJSON_AddStringToObject(md, "role", "admin");
  }
  char *json = cJSON_PrintUnformatted(claims);
  cJSON_Delete(claims);
  char *tok = NULL;
  int rc = json ? jwt_sign_rs256(pem, json, &tok, err, sizeof err) : -1;
  if (!json) snprintf(err, sizeof err, "out of memory");
  free(json);
  free(pem);
  if (rc < 0) {
    fprintf(stderr, "genqctl token: %s\n", err);
    return CTL_FAIL;
  }
  printf("%s\n", tok);
  free(tok);
  return CTL_OK;
}
