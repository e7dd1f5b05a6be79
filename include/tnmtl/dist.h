/* tnmtl/dist.h - one model trained by several processes, split by task (MPI).
 *
 * The task networks are independent except through the regulariser, so a
 * distributed run splits the tasks: process r of P computes the forward and
 * backward passes of a contiguous block of tasks (tnmtl_dist_partition,
 * balanced by training examples) and steps only their parameters.  Each step
 * then exchanges, in a fixed order:
 *   - the per-task losses (T doubles) and the per-task contributions to
 *     hard-shared (UD) layers, which every process sums in task order;
 *   - the weights of the stacked (norm-regularised) layers, so that every
 *     process holds the whole tensor and evaluates the norm and its
 *     subgradient as one process does.
 * Nothing depends on arrival order or on P: the same seed gives the same
 * parameters, bit for bit, for any P and without MPI (tests/test_mpi.c).
 * Each process holds the optimiser state (Adam's moments, SGD's velocity) of
 * the parameters it steps only, about 1/P of it (tnmtl_mtl_own_optim).  The
 * other parameters are exchanged only where a whole model is needed, and the
 * optimiser state gathered on process 0 only where a checkpoint is saved
 * (tnmtl_mtl_dist_sync: checkpoints, the end of training), so checkpoints
 * are the single-process format: a run saved with P processes resumes with
 * Q, or without MPI.
 *
 * Built with MPI (`make mpi`, -DTNMTL_MPI) a tnmtl_dist spans
 * MPI_COMM_WORLD; built without, tnmtl_dist_init gives one process and every
 * call below is trivial.  tnmtl_train, tnmtl_mtl_objective,
 * tnmtl_mtl_evaluate and tnmtl_mtl_dist_sync are collective on a model with
 * a tnmtl_dist: every process calls them in the same order.
 *
 * Cost per step (docs/performance.md, "Distributed training"): each process
 * receives the stacked weights of the other processes' tasks,
 * 4 (P-1)/P sum_k n_w(k) T bytes, plus 8 T for the losses and 4 T n_shared for
 * UD; the norm is evaluated redundantly on every process.
 */
#ifndef TNMTL_DIST_H
#define TNMTL_DIST_H

#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tnmtl_dist tnmtl_dist;

/* 1 when the library was built with MPI. */
int tnmtl_dist_has_mpi(void);
/* Starts MPI (MPI_Init_thread, funneled) when built with it and not yet
 * started; argc/argv may be NULL.  Without MPI: one process. */
tnmtl_status tnmtl_dist_init(int *argc, char ***argv, tnmtl_dist **out, tnmtl_error *err);
/* Ends MPI when tnmtl_dist_init started it, and frees d (NULL: nothing). */
void tnmtl_dist_finalize(tnmtl_dist *d);
/* Stops every process of the run with exit status code (MPI_Abort); without
 * MPI, or with one process, it returns and the caller exits. */
void tnmtl_dist_abort(const tnmtl_dist *d, int code);
int tnmtl_dist_rank(const tnmtl_dist *d);        /* 0 .. size-1 (0 for NULL) */
int tnmtl_dist_size(const tnmtl_dist *d);        /* P (1 for NULL)           */
/* Processes of this run on this machine (to share its cores). */
int tnmtl_dist_local_size(const tnmtl_dist *d);
/* Payload bytes this process has sent and received in the model's
 * collectives so far (not counting MPI's own headers). */
uint64_t tnmtl_dist_bytes(const tnmtl_dist *d);
/* Waits for every process (MPI_Barrier). */
tnmtl_status tnmtl_dist_barrier(const tnmtl_dist *d, tnmtl_error *err);

/* Splits tasks 0..n_tasks-1 into n_parts contiguous blocks whose summed
 * weights (training examples) are as even as a greedy cut makes them:
 * block r is tasks begin[r] .. begin[r+1]-1 (begin[n_parts+1], begin[0] = 0,
 * begin[n_parts] = n_tasks; a block is empty when n_parts > n_tasks).
 * Deterministic: a function of the weights only. */
void tnmtl_dist_partition(const int64_t *weight, int n_tasks, int n_parts, int *begin);

#ifdef __cplusplus
}
#endif
#endif
