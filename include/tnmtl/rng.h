/* tnmtl/rng.h - a seeded, portable random generator (xoshiro256**).
 *
 * The same seed gives the same stream on every platform: integers and
 * uniforms use only integer arithmetic and one exact conversion, so
 * initialisations built from tnmtl_rng_uniform are bit-identical everywhere.
 * The state is plain data: it can be saved in a checkpoint and restored.
 */
#ifndef TNMTL_RNG_H
#define TNMTL_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnmtl_rng {
    uint64_t s[4];
} tnmtl_rng;

void tnmtl_rng_seed(tnmtl_rng *rng, uint64_t seed);   /* splitmix64 expansion */
uint64_t tnmtl_rng_u64(tnmtl_rng *rng);
double tnmtl_rng_uniform(tnmtl_rng *rng);             /* [0, 1), 53 bits      */
double tnmtl_rng_normal(tnmtl_rng *rng);              /* N(0, 1), polar method */
uint64_t tnmtl_rng_below(tnmtl_rng *rng, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
void tnmtl_rng_shuffle(tnmtl_rng *rng, int *a, size_t n); /* Fisher-Yates */
/* An independent stream derived from this one (for per-task or per-rank use). */
tnmtl_rng tnmtl_rng_split(const tnmtl_rng *rng, uint64_t stream);

#ifdef __cplusplus
}
#endif
#endif
