/* status_providers.c — the providers section of `genqctl status`: each
 * provider's window, slots in use and breaker (SPEC §5, fleet-wide provider
 * limits).
 *
 * This is the one place where the fleet-wide provider limits report: read
 * their state from the Redis keys they keep (r, a connection of genqctl's;
 * ctl_redis_call runs a command) into status's "providers" array — one
 * object per provider, e.g. {provider, window, slots_in_use, paused_until,
 * breaker} — and print it below. Until those limits exist, the array is
 * empty and the table says so. */
#include <stdio.h>

#include "ctl.h"

int ctl_status_providers(ctl_redis *r, cJSON *status) {
  (void)r;
  cJSON *providers = cJSON_AddArrayToObject(status, "providers");
  if (!providers) {
    fprintf(stderr, "genqctl status: out of memory\n");
    return -1;
  }
  return 0;
}

void ctl_status_print_providers(const cJSON *providers) {
  printf("providers\n");
  if (cJSON_GetArraySize(providers) == 0) {
    printf("  (no fleet-wide provider limits: each worker limits its own requests)\n");
    return;
  }
  const cJSON *p;
  cJSON_ArrayForEach(p, providers) {
    char *s = cJSON_PrintUnformatted(p);
    printf("  %s\n", s ? s : "?");
    cJSON_free(s);
  }
}
