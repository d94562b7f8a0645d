/* .genq/env: the stack configuration scripts/run writes (SPEC §2), read so
 * that genqctl works from a plain shell without `set -a; . .genq/env`. */
#include "ctl.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENVFILE_LINE_MAX 65536 /* a PEM key with \n escapes fits many times over */

static int envfile_valid_key(const char *k) {
  if (!(isalpha((unsigned char)*k) || *k == '_')) return 0;
  for (; *k; k++)
    if (!(isalnum((unsigned char)*k) || *k == '_')) return 0;
  return 1;
}

/* Parses one line in place. Returns 1 and sets *key and *val for an assignment,
 * 0 for a blank or comment line, -1 for anything else. */
static int envfile_parse_line(char *line, char **key, char **val) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || isspace((unsigned char)line[n - 1])))
    line[--n] = '\0';
  while (isspace((unsigned char)*line))
    line++;
  if (*line == '\0' || *line == '#') return 0;
  if (strncmp(line, "export ", 7) == 0) line += 7;
  char *eq = strchr(line, '=');
  if (!eq) return -1;
  *eq = '\0';
  if (!envfile_valid_key(line)) return -1;
  char *v = eq + 1;
  size_t vl = strlen(v);
  if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
    v[vl - 1] = '\0';
    v++;
  }
  *key = line;
  *val = v;
  return 1;
}

int ctl_envfile_load_path(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char *line = malloc(ENVFILE_LINE_MAX);
  if (!line) {
    fclose(f);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  int set = 0, lineno = 0, rc = 0;
  while (fgets(line, ENVFILE_LINE_MAX, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(err, errlen, "%s:%d: line longer than %d bytes", path, lineno, ENVFILE_LINE_MAX);
      rc = -1;
      break;
    }
    char *k, *v;
    int r = envfile_parse_line(line, &k, &v);
    if (r < 0) {
      snprintf(err, errlen, "%s:%d: not a KEY=value line", path, lineno);
      rc = -1;
      break;
    }
    if (r == 1 && !getenv(k)) {
      if (setenv(k, v, 0) != 0) {
        snprintf(err, errlen, "setenv %s: %s", k, strerror(errno));
        rc = -1;
        break;
      }
      set++;
    }
  }
  free(line);
  fclose(f);
  return rc < 0 ? -1 : set;
}

int ctl_envfile_load(char *err, size_t errlen) {
  if (access(".genq/env", F_OK) == 0) return ctl_envfile_load_path(".genq/env", err, errlen);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = '\0';
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/../.genq/env", dirname(exe));
  if (access(path, F_OK) != 0) return 0;
  return ctl_envfile_load_path(path, err, errlen);
}
