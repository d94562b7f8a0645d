/* rand.c — genq_rand64 (see rand.h). */
#include "rand.h"

#include <unistd.h>
#include <uv.h>

static uint64_t state;

uint64_t genq_rand64(void) {
  if (!state) state = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}
