/* rng.c - xoshiro256** seeded by splitmix64 (Blackman & Vigna). */
#include "tnmtl/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tnmtl_rng_seed(tnmtl_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tnmtl_rng_u64(tnmtl_rng *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tnmtl_rng_uniform(tnmtl_rng *rng)
{
    return (double)(tnmtl_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double tnmtl_rng_normal(tnmtl_rng *rng)
{
    for (;;) {
        double u = 2.0 * tnmtl_rng_uniform(rng) - 1.0;
        double v = 2.0 * tnmtl_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0) return u * sqrt(-2.0 * log(s) / s);
    }
}

uint64_t tnmtl_rng_below(tnmtl_rng *rng, uint64_t n)
{
    /* Rejection on the top of the range keeps every residue equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = tnmtl_rng_u64(rng);
    while (x >= limit);
    return x % n;
}

void tnmtl_rng_shuffle(tnmtl_rng *rng, int *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tnmtl_rng_below(rng, i);
        int t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

tnmtl_rng tnmtl_rng_split(const tnmtl_rng *rng, uint64_t stream)
{
    tnmtl_rng out;
    uint64_t x = rng->s[0] ^ rotl(rng->s[1], 13) ^ rotl(rng->s[2], 29) ^ rotl(rng->s[3], 41);
    x ^= stream * 0xd1342543de82ef95ULL;
    for (int i = 0; i < 4; i++) out.s[i] = splitmix64(&x);
    return out;
}
