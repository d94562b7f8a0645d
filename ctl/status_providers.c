/* status_providers.c — the providers section of `genqctl status`: each
 * provider's window, slots in use, pause, rate and breaker (SPEC §5), as
 * `genqctl providers show` reads them from Redis (providers_cmd.c). */
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

int ctl_status_providers(ctl_redis *r, cJSON *status) {
  /* r: NULL when Redis could not be reached (already said): no section */
  cJSON *providers = r ? ctl_providers_state(getenv("GENQ_REDIS_URL")) : cJSON_CreateArray();
  if (!providers) return -1; /* ctl_providers_state said why */
  cJSON_AddItemToObject(status, "providers", providers);
  return 0;
}

void ctl_status_print_providers(const cJSON *providers) {
  printf("providers\n");
  if (cJSON_GetArraySize(providers) == 0) {
    printf("  (unknown: Redis could not be reached)\n");
    return;
  }
  ctl_providers_print(providers);
}
