/* norm_internal.h - pieces of norm.c other library modules use (not installed). */
#ifndef TNMTL_NORM_INTERNAL_H
#define TNMTL_NORM_INTERNAL_H

#include <stdint.h>

#include "tnmtl/norm.h"

/* W[shape] seen as [A][D][B] for term `term`: the term's matrix is the
 * unfolding X[d][a*B + b] = W[a][d][b], D rows x A*B columns (norm.c). */
void tnmtl_norm_term_view(tnmtl_norm_method m, int ndim, const int64_t *shape, int term, int64_t *A, int64_t *D,
                          int64_t *B);

#endif
