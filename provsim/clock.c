/* The clocks of the simulator: wall and monotonic milliseconds, and the
 * timestamps the providers print. Calls no other file of provsim/, so that
 * every one of them may call it. */
#include "provsim.h"

#include <stdio.h>
#include <time.h>

long long sim_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long sim_mono_ms(void) {
  return (long long)(uv_hrtime() / 1000000u);
}

void sim_rfc3339(long long wall_ms, char out[32]) {
  time_t s = (time_t)(wall_ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(wall_ms % 1000));
}
