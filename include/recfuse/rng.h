/* rng.h - seeded pseudo-random numbers (xoshiro256**, seeded by splitmix64).
 *
 * The same seed gives the same sequence on every machine. For parallel
 * work derive one independent stream per task with rf_rng_stream(). */
#ifndef RECFUSE_RNG_H
#define RECFUSE_RNG_H

#include <stdint.h>

typedef struct rf_rng {
    uint64_t s[4];
} rf_rng;

void rf_rng_seed(rf_rng *r, uint64_t seed);
/* Independent stream number `stream` of `seed` (e.g. one per user or thread). */
void rf_rng_stream(rf_rng *r, uint64_t seed, uint64_t stream);
uint64_t rf_rng_next(rf_rng *r);
/* Uniform double in [0, 1). */
double rf_rng_uniform(rf_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t rf_rng_below(rf_rng *r, uint64_t n);
/* Standard normal (Box-Muller, no cached state). */
double rf_rng_normal(rf_rng *r);
/* Exponential with rate 1. */
double rf_rng_exp(rf_rng *r);
/* Gamma(shape, 1) (Marsaglia-Tsang), shape > 0; used for Dirichlet draws. */
double rf_rng_gamma(rf_rng *r, double shape);
/* Fisher-Yates shuffle of n int32 values. */
void rf_rng_shuffle_i32(rf_rng *r, int32_t *a, int64_t n);

#endif
