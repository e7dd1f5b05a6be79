/* dist_internal.h - the collectives a distributed model uses (src/dist.c);
 * not installed.  Each is a no-op for a NULL or one-process tnmtl_dist.
 * Process r owns tasks begin[r] .. begin[r+1]-1 (tnmtl_dist_partition). */
#ifndef TNMTL_DIST_INTERNAL_H
#define TNMTL_DIST_INTERNAL_H

#include <stdint.h>

#include "tnmtl/dist.h"

/* buf holds task t's values at [off[t], off[t+1]) (elements; off[T+1],
 * increasing); each process fills its own tasks' and receives the rest. */
tnmtl_status tnmtl_dist_allgather_f32(tnmtl_dist *d, float *buf, const int64_t *off, const int *begin,
                                      tnmtl_error *err);
tnmtl_status tnmtl_dist_allgather_f64(tnmtl_dist *d, double *buf, const int64_t *off, const int *begin,
                                      tnmtl_error *err);
/* Process root receives the other processes' segments into buf (laid out
 * as for the allgathers; its own segment stays as it is); every other
 * process sends its segment, off[begin[rank+1]] - off[begin[rank]]
 * elements, from mine (buf is not used there). */
tnmtl_status tnmtl_dist_gather_f32(tnmtl_dist *d, int root, float *buf, const float *mine, const int64_t *off,
                                   const int *begin, tnmtl_error *err);
/* buf[n] <- the sum over the processes of their buf, added in rank order
 * (((b_0 + b_1) + b_2) + ...: the same bits on every process, for a given
 * P): a chain from process 0 to P-1, then a broadcast. */
tnmtl_status tnmtl_dist_sum_ordered(tnmtl_dist *d, double *buf, int64_t n, tnmtl_error *err);
/* *text (a malloc'd string, or NULL) <- process root's on every process
 * (the others' *text is replaced, not freed). */
tnmtl_status tnmtl_dist_bcast_text(tnmtl_dist *d, int root, char **text, tnmtl_error *err);
/* *v <- process root's *v on every process. */
void tnmtl_dist_bcast_int(tnmtl_dist *d, int root, int *v);
/* flags[n] <- their maximum over the processes (1 on any: 1 on all). */
void tnmtl_dist_any(tnmtl_dist *d, int *flags, int n);
/* The status st of process root (and its message in err) on every process. */
tnmtl_status tnmtl_dist_share_status(tnmtl_dist *d, int root, tnmtl_status st, tnmtl_error *err);

#endif
