/* tnmtl/norm.h - tensor trace norms (LAF, Tucker, Tensor-Train).
 *
 * A tensor W of N <= 8 axes D_1 x ... x D_N is row-major with the task axis
 * last (D_N = T).  With the unfoldings of ../shared/docs/method.md:
 *   LAF     gamma_1 ||W_(N)||_*                    1 term
 *   Tucker  sum_{i=1..N} gamma_i ||W_(i)||_*       N terms
 *   TT      sum_{i=1..N-1} gamma_i ||W_[i]||_*     N-1 terms
 * where ||X||_* is the sum of singular values (nuclear norm).
 *
 * Values are exact to about 1e-12 relative: each unfolding goes through the
 * Gram matrix of its smaller side computed in double (dsyrk) and a double
 * symmetric eigendecomposition (dsyevd); singular values below 1e-4 sigma_max,
 * which the Gram cannot resolve, are recomputed from the unfolding projected
 * on their eigenvectors (so rank-deficient unfoldings are exact too).  See
 * docs/design.md, "Trace norms".  The subgradient is sum_i gamma_i U_i V_i^T
 * folded back into W's layout; singular values below TNMTL_NORM_RANK_RTOL *
 * sigma_max of their unfolding are treated as zero and add nothing to it
 * (they still count in the value).  A zero tensor gives value 0 and gradient
 * 0.  Repeated singular values are fine (U V^T does not depend on the basis
 * chosen inside an eigenspace).  Magnitudes are rescaled internally by a
 * power of two, so subnormal and huge entries work.  OpenBLAS may thread.
 *
 * Cost (2 cores): the 1936 x 3200 mode-1 unfolding of the Omniglot fc1
 * tensor dominates: ~0.3 s Gram + ~0.65 s eigendecomposition + ~0.3 s for
 * the subgradient product (docs/performance.md).  Value-only calls skip the
 * eigenvectors and are about 2x faster.
 */
#ifndef TNMTL_NORM_H
#define TNMTL_NORM_H

#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_NORM_MAX_NDIM 8
/* Singular values <= RANK_RTOL * sigma_max of their unfolding do not enter
 * the subgradient: below ~1.5e-8 sigma_max (sqrt of double eps) a Gram-based
 * singular direction is noise, and 1/sigma would blow it up; 1e-6 keeps a
 * wide margin above that while retained directions stay accurate to about
 * eps * sigma_max / sigma_i <= 1e-10.  Dropping them picks the minimum-norm
 * subgradient U_r V_r^T.  (docs/design.md, "Trace norms".) */
#define TNMTL_NORM_RANK_RTOL 1e-6

typedef enum tnmtl_norm_method {
    TNMTL_NORM_LAF,
    TNMTL_NORM_TUCKER,
    TNMTL_NORM_TT
} tnmtl_norm_method;

const char *tnmtl_norm_method_name(tnmtl_norm_method m);                 /* "laf" ... */
tnmtl_status tnmtl_norm_method_parse(const char *s, tnmtl_norm_method *m, tnmtl_error *err);
int tnmtl_norm_n_terms(tnmtl_norm_method m, int ndim);                   /* 1, N, N-1 */

/* Shape of the matrix of term i: rows x cols (row-major view of W for TT,
 * after moving the term's axis to the front for LAF/Tucker). */
void tnmtl_norm_term_shape(tnmtl_norm_method m, int ndim, const int64_t *shape, int term,
                           int64_t *rows, int64_t *cols);

/* Evaluates the norm of W[shape] with weights gamma[n_terms] (NULL: all 1;
 * each must be finite and >= 0; a term with gamma 0 is skipped unless terms
 * is requested).
 *   value  (out)  sum_i gamma_i * terms[i]
 *   terms  (out, optional) [n_terms] UNWEIGHTED nuclear norms ||W_(i)||_*
 *   grad   (out, optional) same shape as W, OVERWRITTEN with the subgradient
 * Fails with TNMTL_ERR_INVALID on a bad shape (ndim < 1 or > 8, a zero
 * dimension, TT with ndim < 2), TNMTL_ERR_NUMERIC on NaN/Inf in W, and
 * TNMTL_ERR_NOMEM when workspace cannot be allocated. */
tnmtl_status tnmtl_norm_eval(tnmtl_norm_method m, int ndim, const int64_t *shape,
                             const float *W, const double *gamma,
                             double *value, double *terms, float *grad, tnmtl_error *err);
tnmtl_status tnmtl_norm_eval_f64(tnmtl_norm_method m, int ndim, const int64_t *shape,
                                 const double *W, const double *gamma,
                                 double *value, double *terms, double *grad, tnmtl_error *err);

/* Singular values of one unfolding (descending, same accuracy as the value):
 * sv must hold min(rows, cols) of tnmtl_norm_term_shape. */
tnmtl_status tnmtl_norm_term_singular_values(tnmtl_norm_method m, int ndim, const int64_t *shape,
                                             const float *W, int term, double *sv, tnmtl_error *err);

/* Proximal operator of t*||X||_* on a rows x cols row-major matrix, in place:
 * X <- U max(S - t, 0) V^T (singular value thresholding), t >= 0 finite.
 * Computed as U_s diag(max(s - t, 0)/s) U_s^T X on the smaller side (no
 * division by small singular values).  NaN/Inf in X: TNMTL_ERR_NUMERIC. */
tnmtl_status tnmtl_prox_nuclear(int64_t rows, int64_t cols, float *X, double t, tnmtl_error *err);
/* The same on term `term` of a tensor: unfold, threshold, fold back, in place. */
tnmtl_status tnmtl_norm_prox_term(tnmtl_norm_method m, int ndim, const int64_t *shape, float *W,
                                  int term, double t, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
