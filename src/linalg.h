/* linalg.h - dense kernels for the trace norms (internal, not installed).
 *
 * Everything works on ROW-MAJOR matrices.  A spectral map of a matrix X
 * (R x C) goes through the Gram matrix of its smaller side:
 *   rows side (R <= C):  G = X X^T  (R x R),  S(X) = U diag(w) U^T X
 *   cols side (C <  R):  G = X^T X  (C x C),  S(X) = X U diag(w) U^T
 * where G = U diag(lambda) U^T.  With w_i = 1/sigma_i this is the polar
 * factor U V^T of X; with w_i = max(sigma_i - t, 0)/sigma_i it is singular
 * value thresholding.  Grams and eigendecompositions are always in double;
 * the products with X run in float or double (the `f64` flag says which
 * type the void pointers hold).
 */
#ifndef TNMTL_LINALG_H
#define TNMTL_LINALG_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

/* Largest Gram side: dsyevd's workspace (1 + 6p + 2p^2 doubles) must fit a
 * 32-bit LAPACK int. */
#define TNMTL_LA_MAX_EIG_DIM 30000
/* Fails with TNMTL_ERR_TOO_BIG when min(R, C) exceeds it (check before
 * allocating the p x p Gram). */
tnmtl_status tnmtl_la_check_size(int64_t R, int64_t C, tnmtl_error *err);

/* p = min(R, C); *rows_side = (R <= C). */
int64_t tnmtl_la_small_side(int64_t R, int64_t C, int *rows_side);

/* G[p][p] (full symmetric) = X X^T or X^T X of X[R][C] (double). */
void tnmtl_la_gram(int64_t R, int64_t C, const double *X, double *G);

/* G[p][p] symmetric from its upper triangle (copied to the lower). */
void tnmtl_la_fill_lower(int64_t p, double *G);
/* Symmetric eigendecomposition of G[p][p] (full or upper triangle, row
 * major), eigenvalues ascending in lambda[p].  With want_vectors, G is
 * overwritten so that ROW i of G is the unit eigenvector of lambda[i]. */
tnmtl_status tnmtl_la_syev(int64_t p, double *G, double *lambda, int want_vectors, tnmtl_error *err);

/* Singular values of X[R][C] (double) through the Gram of its smaller
 * side: sigma[p], paired with row i of G[p][p] (its left (rows side) or
 * right (cols side) singular vector) when want_vectors.
 *
 * sigma_i = sqrt(lambda_i) has an absolute error of about
 * eps lambda_max / sigma_i (sqrt(eps) sigma_max for a zero one), so the
 * singular values below TNMTL_LA_REFINE_RTOL * sigma_max are recomputed from
 * Y = U_k^T X (rows side) or X U_k (cols side), the part of X in their
 * subspace, by the same method applied to Y (recursively): the eigenvector
 * error leaks into Y only at the level eps sigma_max (sigma_max / sigma_k),
 * and Y's own Gram is accurate relative to Y's small scale.  This needs the
 * eigenvectors of those values; without want_vectors they are computed only
 * when some singular value is small.  Refined values stay below the others
 * but may leave ascending order among themselves. */
#define TNMTL_LA_REFINE_RTOL 1e-4
tnmtl_status tnmtl_la_spectrum(int64_t R, int64_t C, const double *X, int want_vectors, double *G,
                               double *sigma, tnmtl_error *err);

/* out[R][C] = alpha * S(X) + beta * out, with S built from the r
 * eigenvectors vt[r][p] (rows, orthonormal) and weights w[r] >= 0.
 * X and out hold float (f64 = 0) or double (f64 = 1); out must not alias X.
 * Chooses between forming U diag(w) U^T once (p^2 r + 2 p^2 q flops) and
 * two thin products (4 p q r flops) by flop count. */
tnmtl_status tnmtl_la_spectral_apply(int f64, int64_t R, int64_t C, int64_t r, const double *vt,
                                     const double *w, const void *X, double alpha, void *out,
                                     double beta, tnmtl_error *err);

/* Largest |x| of x[n]; returns the index of the first NaN/Inf or -1. */
int64_t tnmtl_la_maxabs_f32(const float *x, int64_t n, double *maxabs);
int64_t tnmtl_la_maxabs_f64(const double *x, int64_t n, double *maxabs);

/* W viewed as [A][D][B] -> out[D][A*B] (mode unfolding, `D` to the front).
 * elem is the element size (4 or 8). */
void tnmtl_la_unfold(const void *W, int64_t A, int64_t D, int64_t B, size_t elem, void *out);
/* grad[A][D][B] += P[D][A*B] folded back.  p_f64 / g_f64 say whether P and
 * grad hold doubles (else floats).  With A = B = 1 it is a plain add. */
void tnmtl_la_fold_add(int p_f64, const void *P, int64_t A, int64_t D, int64_t B, int g_f64, void *grad);

#endif
