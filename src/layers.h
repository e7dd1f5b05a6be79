/* layers.h - layer kernels: forward and backward of each layer kind (internal).
 *
 * One source (layers_impl.h) is compiled twice by layers.c, once with
 * float and once with double; the float kernels end in _f32, the double
 * ones in _f64.  Only the scalar tanh differs: the float path uses a
 * vectorisable rational approximation (max error a few ulp, see
 * tnmtl_tanh_approx), the double path libm's tanh, so that finite-difference
 * checks in double test the exact derivative.
 *
 * Layouts (net.h): activations NHWC x[B][H][W][C]; conv weights
 * [K][K][C][F] (HWIO); fc weights [D][N].  Backward kernels ACCUMULATE (+=)
 * into weight and bias gradients and WRITE (=) the input gradient din; any of
 * din, dw, db may be NULL when not needed.  Sizes that can exceed 2^31 are size_t.
 */
#ifndef TNMTL_LAYERS_H
#define TNMTL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/net.h"

/* Conv geometry, stride 1.  pad = 0 ("valid") or (K-1)/2 ("same", K odd).
 * The im2col matrix of a chunk of `chunk` output rows (an output row is one
 * (b, oh): Wo pixels) is [chunk*Wo][K*K*C]; the scratch `col` passed to the
 * conv kernels must hold tnmtl_conv_col_elems(g, B) elements. */
typedef struct tnmtl_conv_geom {
    int H, W, C;      /* input example shape                 */
    int K, F, pad;    /* kernel size, filters, padding       */
    int Ho, Wo;       /* output example shape (Ho x Wo x F)  */
    int chunk;        /* output rows per im2col chunk (>= 1) */
} tnmtl_conv_geom;

/* Elements of im2col scratch kept per chunk (about 1 MiB of floats: the
 * chunk of the column matrix stays in L2 between im2col and GEMM). */
#define TNMTL_CONV_COL_TARGET ((size_t)1 << 18)

/* Fills g (Ho, Wo, chunk) from the other fields; the caller has checked
 * that the output is not empty. */
void tnmtl_conv_geom_init(tnmtl_conv_geom *g, int H, int W, int C, int K, int F, int same);
size_t tnmtl_conv_col_elems(const tnmtl_conv_geom *g, int B);

/* Float tanh, vectorisable, |error| <= a few ulp (tested in test_layers). */
float tnmtl_tanh_approx(float x);

#define TNMTL_LAYER_DECLS(REAL, S)                                                                \
    /* out[B][Ho][Wo][F] = act(conv(in[B][H][W][C], w[K][K][C][F]) + b[F]); col: scratch */      \
    void tnmtl_conv_forward##S(REAL *out, const REAL *in, const REAL *w, const REAL *b, REAL *col, \
                               const tnmtl_conv_geom *g, int B, tnmtl_activation act);            \
    /* dout[B][Ho][Wo][F] (gradient of the pre-activation output); dw += ; db += ;                \
     * din[B][H][W][C] = (if not NULL) */                                                        \
    void tnmtl_conv_backward##S(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,   \
                                const REAL *w, REAL *col, const tnmtl_conv_geom *g, int B);       \
    /* out[B][H/k][W/k][C] = max over k x k windows of in[B][H][W][C] (floor); idx[B*Ho*Wo*C]     \
     * receives the offset of each maximum inside its example (first maximum on ties). */        \
    void tnmtl_maxpool_forward##S(REAL *out, int32_t *idx, const REAL *in, int B, int H, int W,    \
                                  int C, int k);                                                  \
    /* din[B][H][W][C] = dout routed to the maxima recorded in idx */                            \
    void tnmtl_maxpool_backward##S(REAL *din, const REAL *dout, const int32_t *idx, int B, int H,  \
                                   int W, int C, int k);                                          \
    /* out[B][N] = act(in[B][D] w[D][N] + b[N]) */                                                \
    void tnmtl_fc_forward##S(REAL *out, const REAL *in, const REAL *w, const REAL *b, int B, int D, \
                             int N, tnmtl_activation act);                                        \
    /* dw[D][N] += in^T dout; db[N] += sum_b dout; din[B][D] = dout w^T (if not NULL) */         \
    void tnmtl_fc_backward##S(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,     \
                              const REAL *w, int B, int D, int N);                                \
    /* y[n] = act(x[n]) (y may be x); TNMTL_ACT_NONE copies */                                    \
    void tnmtl_act_forward##S(REAL *y, const REAL *x, size_t n, tnmtl_activation act);            \
    /* dx[n] = dy[n] * act'(x) computed from the output y[n] (dx may be dy) */                   \
    void tnmtl_act_backward##S(REAL *dx, const REAL *dy, const REAL *y, size_t n,                  \
                               tnmtl_activation act);

TNMTL_LAYER_DECLS(float, _f32)
TNMTL_LAYER_DECLS(double, _f64)

#undef TNMTL_LAYER_DECLS

#endif
