#ifndef GENQ_RAND_H
#define GENQ_RAND_H

#include <stdint.h>

/* One pseudo-random source for jitter and spreading (retry delays, poll
 * schedules): xorshift64*, seeded once from the clock and the pid, no system
 * call per draw. Not for secrets or ids that must not be guessed (those come
 * from uv_random). Not thread-safe: call it from the loop thread. */
uint64_t genq_rand64(void);

#endif
