/* tnmtl/synthetic.h - a multi-task image classification problem with a
 * KNOWN sharing structure, for testing that multi-task learning helps.
 *
 * Tasks come in groups of related tasks plus some unrelated ones.  Each
 * group g has a bank of `rank` smooth spatial patterns P_g (each a sum of
 * `blobs` Gaussian blobs with random centres, widths and signs); each
 * unrelated task has a private bank.  All patterns of all banks are made
 * orthonormal (Gram-Schmidt, so (n_groups + n_unrelated) * rank <= D), so
 * tasks of different banks share nothing.  Class c of task
 * t has the prototype
 *     mu_{t,c} = sqrt(D / rank) * sum_k a_{t,c,k} P_{b(t),k},   a ~ N(0, 1),
 * (D = size*size pixels, so a prototype has per-pixel RMS about 1) and an
 * example of that class is
 *     x = ((1 + jitter * u) * mu_{t,c} + noise * n) / sqrt(1 + jitter^2 + noise^2),
 * u ~ N(0, 1), n ~ N(0, I_D): strong isotropic noise in every pixel, scaled
 * so that a pixel has variance about 1.  So the class means of all tasks of
 * a group lie in one `rank`-dimensional subspace (the features a first
 * layer could share), while a task alone, with a few examples, cannot tell
 * that subspace from the noise.  With the defaults, the nearest-class-mean
 * classifier trained on 4 examples per class reaches about 76% held-out
 * accuracy in the full pixel space but about 93% once the data is projected
 * onto the true group subspace (chance: 20%; 99.8% with all 20 examples per
 * class) - the room multi-task learning has to gain.  Numbers: mean over the
 * 8 tasks and seeds 1-3, printed and checked by tests/test_synthetic.c.
 *
 * Tasks are ordered group by group, then the unrelated ones, and named
 * "g1-t1", "g1-t2", ..., "g2-t1", ..., "u1", "u2".  Within a task the
 * examples are ordered by class, then example.  The output stores float
 * features (in_h = in_w = size, in_c = 1).  The same options and seed give
 * the same dataset; values are computed with libm exp/log/sqrt, so another
 * platform's libm could change the last bits.
 *
 *   tnmtl_synthetic_options so;
 *   tnmtl_synthetic_options_init(&so);
 *   so.seed = 7;
 *   tnmtl_synthetic_make(&so, &ds, &err);
 */
#ifndef TNMTL_SYNTHETIC_H
#define TNMTL_SYNTHETIC_H

#include <stdint.h>

#include "tnmtl/dataset.h"
#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnmtl_synthetic_options {
    int n_groups;            /* groups of related tasks (default 2)              */
    int tasks_per_group;     /* (default 3)                                      */
    int n_unrelated;         /* tasks with a private pattern bank (default 2)    */
    int n_classes;           /* per task, >= 2 (default 5)                       */
    int examples_per_class;  /* (default 20)                                     */
    int size;                /* images are size x size x 1 (default 16)          */
    int rank;                /* patterns per bank, <= size*size (default 3)      */
    int blobs;               /* Gaussian blobs per pattern (default 3)           */
    double noise;            /* noise std relative to a prototype's per-pixel RMS (default 2.5) */
    double jitter;           /* std of the per-example amplitude factor (default 0.2) */
    uint64_t seed;           /* (default 1)                                      */
} tnmtl_synthetic_options;

/* Fills opt with the defaults above. */
void tnmtl_synthetic_options_init(tnmtl_synthetic_options *opt);

/* Group of task t: 0 .. n_groups-1 for related tasks, -1 for an unrelated
 * one, -2 if t is out of range. */
int tnmtl_synthetic_task_group(const tnmtl_synthetic_options *opt, int t);

/* The ground truth, for tests and reports. */
typedef struct tnmtl_synthetic_info {
    int n_tasks, n_classes, n_pixels, rank;
    int n_banks;             /* n_groups + n_unrelated                           */
    int *group;              /* [n_tasks] as tnmtl_synthetic_task_group          */
    int *bank;               /* [n_tasks] pattern bank of each task              */
    float *patterns;         /* [n_banks][rank][n_pixels] orthonormal rows       */
    float *prototypes;       /* [n_tasks][n_classes][n_pixels] class means, in the
                                output's units (scale included)                  */
} tnmtl_synthetic_info;

/* Generates the dataset into out (zeroed on failure).  opt may be NULL
 * (defaults).  Fails with TNMTL_ERR_INVALID naming a bad option, or
 * TNMTL_ERR_TOO_BIG above 2^30 values. */
tnmtl_status tnmtl_synthetic_make(const tnmtl_synthetic_options *opt, tnmtl_dataset *out, tnmtl_error *err);
/* The same, also filling info (if not NULL; free with tnmtl_synthetic_info_free). */
tnmtl_status tnmtl_synthetic_make_info(const tnmtl_synthetic_options *opt, tnmtl_dataset *out,
                                       tnmtl_synthetic_info *info, tnmtl_error *err);
void tnmtl_synthetic_info_free(tnmtl_synthetic_info *info);

#ifdef __cplusplus
}
#endif
#endif
