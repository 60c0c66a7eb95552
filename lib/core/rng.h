/* Seeded pseudo-random numbers (xoshiro256**), identical on every machine. */
#ifndef XFER_RNG_H
#define XFER_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double rng_uniform(Rng *r);
/* Fisher-Yates shuffle of n indices. */
void rng_shuffle_u32(Rng *r, uint32_t *a, uint32_t n);

#endif
