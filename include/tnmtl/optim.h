/* tnmtl/optim.h - optimisers over one flat parameter buffer.
 *
 * Parameters, gradients and optimiser moments share one layout (a flat
 * float array of n entries), so a step is one loop and a checkpoint is a
 * copy of m and v.  Semantics follow PyTorch's torch.optim.SGD (momentum,
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
    int64_t n;                /* number of parameters                        */
    int64_t step;             /* steps taken                                 */
    float *m;                 /* [n] SGD velocity / Adam first moment        */
    float *v;                 /* [n] Adam second moment (NULL for SGD)       */
} tnmtl_optim;

/* Fills cfg with the defaults for kind (lr 1e-3 Adam, 1e-2 SGD momentum 0.9). */
void tnmtl_optim_defaults(tnmtl_optim_kind kind, tnmtl_optim_config *cfg);
tnmtl_status tnmtl_optim_init(tnmtl_optim *opt, const tnmtl_optim_config *cfg, int64_t n,
                              tnmtl_error *err);
/* params[n] -= update(grads[n]); increments opt->step. */
void tnmtl_optim_step(tnmtl_optim *opt, float *params, const float *grads);
/* The same step on the parameters in [ranges[2r], ranges[2r+1]) for r <
 * n_ranges only (each element updated exactly as tnmtl_optim_step would);
 * increments opt->step once.  A process of a distributed run steps the
 * parameters of its own tasks (tnmtl/dist.h). */
void tnmtl_optim_step_ranges(tnmtl_optim *opt, float *params, const float *grads, const int64_t *ranges,
                             int n_ranges);
void tnmtl_optim_free(tnmtl_optim *opt);

#ifdef __cplusplus
}
#endif
#endif
