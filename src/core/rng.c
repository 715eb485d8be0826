/* rng.c - xoshiro256** generator seeded with splitmix64 (Blackman & Vigna). */
#include "recfuse/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rf_rng_seed(rf_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void rf_rng_stream(rf_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ 0x5851f42d4c957f2dull;
    uint64_t a = splitmix64(&x);
    uint64_t y = stream + 0x14057b7ef767814full;
    uint64_t b = splitmix64(&y);
    rf_rng_seed(r, a ^ (b * 0x9e3779b97f4a7c15ull));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rf_rng_next(rf_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rf_rng_uniform(rf_rng *r) { return (double)(rf_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t rf_rng_below(rf_rng *r, uint64_t n) {
    /* Lemire's nearly-divisionless method. */
    uint64_t x = rf_rng_next(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = rf_rng_next(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rf_rng_normal(rf_rng *r) {
    double u1 = rf_rng_uniform(r), u2 = rf_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double rf_rng_exp(rf_rng *r) { return -log(1.0 - rf_rng_uniform(r)); }

double rf_rng_gamma(rf_rng *r, double shape) {
    if (shape < 1.0) {
        double u = rf_rng_uniform(r);
        return rf_rng_gamma(r, shape + 1.0) * pow(u < 1e-300 ? 1e-300 : u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rf_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = rf_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

void rf_rng_shuffle_i32(rf_rng *r, int32_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rf_rng_below(r, (uint64_t)i + 1);
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
