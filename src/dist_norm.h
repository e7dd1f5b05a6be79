/* dist_norm.h - norm terms computed from each process's own tasks
 * (src/dist_norm.c); not installed. */
#ifndef TNMTL_DIST_NORM_H
#define TNMTL_DIST_NORM_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/dist.h"
#include "tnmtl/norm.h"

/* Scratch memory kept from step to step (the ROWS terms' unfoldings:
 * tens of MB that would otherwise be mapped and cleared every step).
 * Zeroed: empty; its owner frees buf. */
typedef struct tnmtl_dist_norm_scratch {
    void *buf;
    size_t cap;
} tnmtl_dist_norm_scratch;

/* How term `term` of a tensor of `shape` (task axis last) is split:
 *   SUM         its Gram is on the side that is not the tasks': a sum over
 *               task blocks, computed from each process's own tasks;
 *   ROWS        the task mode with T <= the weights per task, from 3
 *               processes on: the T x T Gram's rows and the subgradient's
 *               split over the processes, from the gathered tensor (with 2,
 *               each process's row block costs what one process's whole
 *               symmetric Gram does, and it measured slower: REPLICATED);
 *   REPLICATED  every process evaluates it whole (tnmtl_norm_eval). */
typedef enum tnmtl_dist_norm_term_kind {
    TNMTL_DIST_TERM_SUM,
    TNMTL_DIST_TERM_ROWS,
    TNMTL_DIST_TERM_REPLICATED
} tnmtl_dist_norm_term_kind;
tnmtl_dist_norm_term_kind tnmtl_dist_norm_term_kind_of(tnmtl_norm_method m, int ndim, const int64_t *shape, int term,
                                                       int n_processes);
/* 1 for a SUM term: one computed without the other processes' weights. */
int tnmtl_dist_norm_term_splits(tnmtl_norm_method m, int ndim, const int64_t *shape, int term);

/* The SUM terms and, when W (the whole gathered tensor) is given, the ROWS
 * terms, with weights gamma[n_terms] (the others are left to
 * tnmtl_norm_eval on the whole tensor): their weighted value (the same on
 * every process) into *value, and the subgradient of this process's tasks
 * task_begin .. task_end-1 ADDED into grad_local (NULL: value only).
 * W_local and grad_local have the shape of W with the last axis cut to this
 * process's tasks; dist_begin[P+1] the processes' first tasks.
 * Collective. */
tnmtl_status tnmtl_dist_norm_eval(tnmtl_dist *d, const int *dist_begin, tnmtl_norm_method m, int ndim,
                                  const int64_t *shape, int task_begin, int task_end, const float *W_local,
                                  const float *W, const double *gamma, double *value, float *grad_local,
                                  tnmtl_dist_norm_scratch *scratch, tnmtl_error *err);

#endif
