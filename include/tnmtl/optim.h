/* tnmtl/optim.h - optimisers over one flat parameter buffer.
 *
 * Parameters, gradients and optimiser moments share one layout (a flat
 * float array of n entries), so a step is one loop and a checkpoint is a
 * copy of m and v.  An optimiser may instead hold the state of some ranges
 * of the parameters only (tnmtl_optim_set_ranges): a process of a
 * distributed run keeps the moments of the parameters it steps (tnmtl/mtl.h,
 * tnmtl_mtl_own_optim), the ranges' state stored one after another.  Semantics follow PyTorch's torch.optim.SGD (momentum,
 * dampening 0, no Nesterov) and torch.optim.Adam (bias-corrected, eps added
 * to sqrt(v_hat)), so reference runs compare step by step.
 */
#ifndef TNMTL_OPTIM_H
#define TNMTL_OPTIM_H

#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnmtl_optim_kind { TNMTL_OPTIM_SGD, TNMTL_OPTIM_ADAM } tnmtl_optim_kind;

typedef struct tnmtl_optim_config {
    tnmtl_optim_kind kind;
    double lr;
    double momentum;          /* SGD: 0 for plain SGD                        */
    double beta1, beta2, eps; /* Adam: 0.9, 0.999, 1e-8 by default           */
} tnmtl_optim_config;

typedef struct tnmtl_optim {
    tnmtl_optim_config cfg;
    int64_t n;                /* number of parameters (the flat layout)      */
    int64_t step;             /* steps taken                                 */
    float *m;                 /* [n_held] SGD velocity / Adam first moment   */
    float *v;                 /* [n_held] Adam second moment (NULL for SGD)  */
    /* The state held.  ranges NULL (the default, after tnmtl_optim_init):
     * all of it, n_held = n, m[i] and v[i] belong to parameter i.  Else
     * (tnmtl_optim_set_ranges) the parameters [ranges[2r], ranges[2r+1]) for
     * r < n_ranges, ascending, disjoint and non-empty; their state lies one
     * range after another in m and v (tnmtl_optim_index), n_held = the sum
     * of the ranges' lengths. */
    int64_t n_held;
    int n_ranges;
    int64_t *ranges;          /* [2 n_ranges] or NULL                        */
} tnmtl_optim;

/* Fills cfg with the defaults for kind (lr 1e-3 Adam, 1e-2 SGD momentum 0.9). */
void tnmtl_optim_defaults(tnmtl_optim_kind kind, tnmtl_optim_config *cfg);
/* An optimiser of n parameters holding all of their state (zero). */
tnmtl_status tnmtl_optim_init(tnmtl_optim *opt, const tnmtl_optim_config *cfg, int64_t n,
                              tnmtl_error *err);
/* Makes opt hold the state of the parameters [ranges[2r], ranges[2r+1]) for
 * r < n_ranges only (ascending and disjoint, within [0, n); empty ranges are
 * dropped, adjacent ones merged); ranges NULL (or one range [0, n)): all of
 * them.  The state of a parameter held before and after is kept; one held
 * only now starts at 0 (process 0 receives the rest in
 * tnmtl_mtl_dist_sync); the step count is kept.  m and v are reallocated
 * (opt->n_held floats each; the old and new ones coexist briefly).  On
 * failure opt is unchanged. */
tnmtl_status tnmtl_optim_set_ranges(tnmtl_optim *opt, const int64_t *ranges, int n_ranges, tnmtl_error *err);
/* Where parameter i's state lies in m and v: i when all is held, else its
 * position in the held ranges; -1 when opt does not hold it. */
int64_t tnmtl_optim_index(const tnmtl_optim *opt, int64_t i);
/* Bytes of state opt holds (m and v): 4 n_held for SGD, 8 n_held for Adam. */
int64_t tnmtl_optim_bytes(const tnmtl_optim *opt);
/* params[n] -= update(grads[n]) for the parameters whose state opt holds
 * (all n by default); increments opt->step. */
void tnmtl_optim_step(tnmtl_optim *opt, float *params, const float *grads);
/* The same step on the parameters in [ranges[2r], ranges[2r+1]) for r <
 * n_ranges only (each element updated exactly as tnmtl_optim_step would);
 * increments opt->step once.  Each range must lie within one range of the
 * state opt holds (any, when it holds all); one that does not is not
 * stepped.  A process of a distributed run steps the parameters of its own
 * tasks (tnmtl/dist.h). */
void tnmtl_optim_step_ranges(tnmtl_optim *opt, float *params, const float *grads, const int64_t *ranges,
                             int n_ranges);
void tnmtl_optim_free(tnmtl_optim *opt);

#ifdef __cplusplus
}
#endif
#endif
