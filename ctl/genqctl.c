/* genqctl: the operator and developer CLI (SPEC §8). Synchronous libpq: each
 * command is one or a few calls of the schema's functions. */
#include "config.h"
#include "ctl.h"
#include "migrations.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char usage_text[] =
    "usage: genqctl COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  migrate                                 apply pending schema migrations\n"
    "  token --user U [--admin] [--ttl SECS]   print a signed dev session token (default ttl "
    "3600)\n"
    "  credits grant U N [--key K] [--note T] [--json]\n"
    "                                          grant N credits to user U (once per key K)\n"
    "  credits show U [--json]                 print a user's balance, held and available\n"
    "  jobs show ID [--json]                   print a job (exit 1 when not found)\n"
    "  audit [--json]                          check the ledger invariants (exit 1 on violations)\n"
    "\n"
    "Configuration comes from the environment (GENQ_DATABASE_URL; for token\n"
    "GENQ_DEV_JWT_PRIVATE_KEY, CLERK_ISSUER, CLERK_AUTHORIZED_PARTIES); variables\n"
    "that are unset are read from .genq/env when it exists.\n"
    "Exit status: 0 ok, 1 failure, 2 usage error.\n";

/* The arguments after the command words: positionals and known options. */
typedef struct {
  const char *pos[4];
  int npos;
  const char *key, *note;
  int json;
  long long amount; /* credits grant: pos[1], parsed before connecting */
} ctl_args;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "genqctl: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(genqctl --help lists the commands)\n");
  return CTL_USAGE;
}

int ctl_random_hex(char *buf, size_t n) {
  unsigned char raw[64];
  if (n > sizeof raw || getrandom(raw, n, 0) != (ssize_t)n) return -1;
  for (size_t i = 0; i < n; i++)
    snprintf(buf + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

/* Parses argv (the words after the command). allow: which value options
 * are accepted ("k" --key, "n" --note, "j" --json). Returns 0 or CTL_USAGE. */
static int parse_args(int argc, char **argv, const char *allow, int maxpos, ctl_args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--json") == 0 && strchr(allow, 'j')) {
      a->json = 1;
    } else if (strcmp(s, "--key") == 0 && strchr(allow, 'k')) {
      if (i + 1 >= argc) return usage_error("%s needs a value", s);
      a->key = argv[++i];
    } else if (strcmp(s, "--note") == 0 && strchr(allow, 'n')) {
      if (i + 1 >= argc) return usage_error("%s needs a value", s);
      a->note = argv[++i];
    } else if (s[0] == '-' && s[1] != '\0' && !isdigit((unsigned char)s[1])) {
      return usage_error("unknown option '%s'", s);
    } else if (a->npos >= maxpos) {
      return usage_error("unexpected argument '%s'", s);
    } else {
      a->pos[a->npos++] = s;
    }
  }
  return 0;
}

static int parse_amount(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v <= 0 || v > 1000000000000LL) return -1;
  *out = v;
  return 0;
}

static PGconn *connect_db(void) {
  genq_config cfg;
  char err[512];
  if (config_load(&cfg, CONFIG_CTL, err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: %s\n", err);
    return NULL;
  }
  PGconn *c = PQconnectdb(cfg.database_url);
  config_free(&cfg);
  if (PQstatus(c) != CONNECTION_OK) {
    const char *m = PQerrorMessage(c);
    fprintf(stderr, "genqctl: cannot connect to GENQ_DATABASE_URL: %.*s\n", (int)strcspn(m, "\n"),
            m);
    PQfinish(c);
    return NULL;
  }
  return c;
}

static int run_db_command(const char *cmd, const char *sub, const ctl_args *a) {
  PGconn *c = connect_db();
  if (!c) return CTL_FAIL;
  int rc = CTL_FAIL;
  if (strcmp(cmd, "migrate") == 0) {
    char err[1024];
    int n = migrations_apply(c, stdout, err, sizeof err);
    if (n < 0) {
      fprintf(stderr, "genqctl migrate: %s\n", err);
    } else {
      if (n == 0) printf("schema up to date\n");
      rc = CTL_OK;
    }
  } else if (strcmp(cmd, "credits") == 0 && strcmp(sub, "grant") == 0) {
    char key[64] = "ctl:";
    if (!a->key && ctl_random_hex(key + 4, 16) < 0) {
      fprintf(stderr, "genqctl: no randomness\n");
    } else {
      rc = ctl_credits_grant(c, a->pos[0], a->amount, a->key ? a->key : key,
                             a->note ? a->note : "genqctl credits grant", a->json);
    }
  } else if (strcmp(cmd, "credits") == 0) {
    rc = ctl_credits_show(c, a->pos[0], a->json);
  } else if (strcmp(cmd, "jobs") == 0) {
    rc = ctl_jobs_show(c, a->pos[0], a->json);
  } else {
    rc = ctl_audit(c, a->json);
  }
  PQfinish(c);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("%s", "missing command");
  const char *cmd = argv[1];
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
        (i == 1 && strcmp(argv[i], "help") == 0)) {
      fputs(usage_text, stdout);
      return CTL_OK;
    }

  char err[512];
  if (ctl_envfile_load(err, sizeof err) < 0) {
    fprintf(stderr, "genqctl: .genq/env: %s\n", err);
    return CTL_FAIL;
  }

  ctl_args a;
  const char *sub = "";
  if (strcmp(cmd, "token") == 0) return ctl_token(argc - 2, argv + 2);
  if (strcmp(cmd, "migrate") == 0) {
    if (parse_args(argc - 2, argv + 2, "", 0, &a)) return CTL_USAGE;
  } else if (strcmp(cmd, "audit") == 0) {
    if (parse_args(argc - 2, argv + 2, "j", 0, &a)) return CTL_USAGE;
  } else if (strcmp(cmd, "credits") == 0 || strcmp(cmd, "jobs") == 0) {
    int credits = strcmp(cmd, "credits") == 0;
    if (argc < 3) return usage_error("%s needs a subcommand", cmd);
    sub = argv[2];
    if (credits && strcmp(sub, "grant") == 0) {
      if (parse_args(argc - 3, argv + 3, "knj", 2, &a)) return CTL_USAGE;
      if (a.npos < 2) return usage_error("%s", "credits grant needs a user and an amount");
      if (parse_amount(a.pos[1], &a.amount) < 0)
        return usage_error("amount '%s' is not a positive whole number of credits", a.pos[1]);
    } else if (strcmp(sub, "show") == 0) {
      if (parse_args(argc - 3, argv + 3, "j", 1, &a)) return CTL_USAGE;
      if (a.npos < 1)
        return usage_error("%s",
                           credits ? "credits show needs a user" : "jobs show needs a job id");
    } else {
      return usage_error("unknown subcommand '%s'", sub);
    }
    if (a.pos[0][0] == '\0') return usage_error("%s", "empty user or job id");
  } else {
    return usage_error("unknown command '%s'", cmd);
  }
  return run_db_command(cmd, sub, &a);
}
