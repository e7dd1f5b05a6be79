/* tnmtl/resources.h - memory a multi-task model will need, checked up front.
 *
 * A model or batch too big for the machine should be refused with a message
 * before anything is allocated, not killed by the kernel half-way through
 * (Linux overcommits: a huge calloc succeeds and the process dies when the
 * pages are touched).  tnmtl_mtl_memory_estimate computes, from the
 * configuration alone (it builds one task network, which is cheap and
 * allocates no parameters), the bytes of every buffer tnmtl_mtl_create,
 * tnmtl_optim_init, training, evaluation and checkpoint loading allocate:
 *
 *   params, grads    n_params floats each (tnmtl/mtl.h layout), and for a
 *                    UD model the per-task copies of the shared gradients
 *   optim            n_moments x n_params floats (Adam 2, SGD 1); a process
 *                    of a distributed run holds its part only between
 *                    checkpoints (tnmtl_mtl_own_optim), but process 0 holds
 *                    all of it while one is saved, so this is the bound
 *   stack            the stacked-tensor scratch of the norm methods
 *                    (tensor + its gradient: 2 x largest n_w * T floats;
 *                    with reg_every > 1 also the kept subgradient of every
 *                    stacked layer, sum of n_w * T floats)
 *   regulariser      the trace norm's temporaries for the largest stacked
 *                    tensor (double copies, unfolding, Gram matrix)
 *   workspace        per worker thread: activations of one batch
 *                    (tnmtl_workspace_bytes) and the batch buffers (inputs,
 *                    output gradient, labels)
 *   checkpoint       loading a checkpoint: the file (params + moments) and
 *                    a copy of the parameters
 *
 * total = params + grads + optim + stack + max(regulariser + workspace,
 * checkpoint): training and checkpoint loading do not overlap.  The data
 * set is not included (it is loaded before the model; its memory is
 * already in use when tnmtl_memory_available is read).
 *
 *   tnmtl_memory_estimate est;
 *   if (tnmtl_mtl_memory_estimate(&cfg, batch, 0, 2, &est, &err) ||
 *       tnmtl_memory_check(&est, 0, &err)) ...  // TNMTL_ERR_TOO_BIG, message with the sizes
 */
#ifndef TNMTL_RESOURCES_H
#define TNMTL_RESOURCES_H

#include <stdint.h>

#include "tnmtl/error.h"
#include "tnmtl/mtl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnmtl_memory_estimate {
    int64_t n_params;            /* parameters of all tasks                     */
    int batch;                   /* batch the workspace was sized for           */
    int threads;                 /* worker threads counted                      */
    /* bytes (saturate at UINT64_MAX instead of overflowing) */
    uint64_t params, grads, optim, stack, regulariser, workspace, checkpoint;
    uint64_t total;
} tnmtl_memory_estimate;

/* Estimate for the model cfg (as given to tnmtl_mtl_create; a UD model with
 * ud_share < 0 is counted without sharing, an upper bound), batches of up to
 * `batch` examples per task (>= 1), n_threads worker threads (0: the
 * default of tnmtl_mtl_create, one per CPU; never more than the tasks) and
 * an optimiser with n_moments (0..2) moment buffers.  Fails like
 * tnmtl_mtl_create on a bad configuration (architecture errors name the
 * token), allocating nothing but one net. */
tnmtl_status tnmtl_mtl_memory_estimate(const tnmtl_mtl_config *cfg, int batch, int n_threads, int n_moments,
                                       tnmtl_memory_estimate *est, tnmtl_error *err);

/* Memory this process can still use, in bytes: the smallest of
 * MemAvailable (/proc/meminfo; else physical memory from sysconf), the
 * cgroup limit (memory.max, less what the cgroup uses) and RLIMIT_AS /
 * RLIMIT_DATA.  0 if nothing could be read. */
uint64_t tnmtl_memory_available(void);

/* Refuses (TNMTL_ERR_TOO_BIG) an estimate above `available` bytes
 * (0: tnmtl_memory_available(); if that is unknown the check passes).
 * The message gives the total and its largest parts in MB, e.g.
 *   "the model needs about 41234 MB (1288 M parameters: parameters 5153 MB,
 *    gradients 5153 MB, optimiser 10306 MB, ...), more than the 23512 MB of
 *    memory available; use a smaller --arch or --batch". */
tnmtl_status tnmtl_memory_check(const tnmtl_memory_estimate *est, uint64_t available, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
