/* dist_norm.h - norm terms computed from each process's own tasks
 * (src/dist_norm.c); not installed. */
#ifndef TNMTL_DIST_NORM_H
#define TNMTL_DIST_NORM_H

#include <stdint.h>

#include "tnmtl/dist.h"
#include "tnmtl/norm.h"

/* 1 when term `term` of a tensor of `shape` (task axis last) has its Gram
 * matrix on the side that is not the tasks': a sum over task blocks. */
int tnmtl_dist_norm_term_splits(tnmtl_norm_method m, int ndim, const int64_t *shape, int term);

/* The terms that split, with weights gamma[n_terms] (the others are left to
 * tnmtl_norm_eval on the whole tensor): their weighted value (the same on
 * every process) into *value, and the subgradient of this process's tasks
 * task_begin .. task_end-1 ADDED into grad_local (NULL: value only).
 * W_local and grad_local have the shape of W with the last axis cut to this
 * process's tasks.  Collective. */
tnmtl_status tnmtl_dist_norm_eval(tnmtl_dist *d, tnmtl_norm_method m, int ndim, const int64_t *shape,
                                  int task_begin, int task_end, const float *W_local, const double *gamma,
                                  double *value, float *grad_local, tnmtl_error *err);

#endif
