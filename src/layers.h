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
typedef enum tnmtl_conv_method {
    TNMTL_CONV_IM2COL,  /* im2col + GEMM per chunk (general)                   */
    TNMTL_CONV_MATMUL,  /* 1x1 valid: GEMM on the input itself                 */
    TNMTL_CONV_DIRECT   /* valid, F % 4 == 0: direct vectorised loops          */
} tnmtl_conv_method;

typedef struct tnmtl_conv_geom {
    int H, W, C;      /* input example shape                 */
    int K, F, pad;    /* kernel size, filters, padding       */
    int Ho, Wo;       /* output example shape (Ho x Wo x F)  */
    int chunk;        /* output rows per chunk (>= 1)        */
    int pool;         /* fused k x k max-pool after the conv (0: none) */
    tnmtl_conv_method method;  /* any method may be forced when its
                                * conditions hold (the tests do)  */
} tnmtl_conv_geom;

/* Elements of im2col scratch per chunk (128 KiB of floats: the chunk of
 * the column matrix stays in cache between im2col and the GEMMs; measured
 * 2-3x faster than 1 MiB chunks for the Omniglot layers). */
#define TNMTL_CONV_COL_TARGET ((size_t)1 << 15)
/* A DIRECT conv fused with a pool computes at most this many elements of
 * conv output per chunk (16 KiB of floats, in L1 between the kernel and the
 * pooling; 2-4% faster than 39 KiB chunks for the Omniglot conv1), when a
 * chunk of whole pooling windows fits. */
#define TNMTL_CONV_TMP_TARGET ((size_t)1 << 12)
/* The DIRECT input gradient copies each output row, a segment at a time,
 * between zero pixels into a stack buffer of this many elements (16 KiB of
 * floats); it applies when K * F fits (else im2col + GEMM + col2im). */
#define TNMTL_CONV_DX_PAD ((size_t)1 << 12)
/* The backward pass of a DIRECT conv fused with a max-pool works through
 * bands of pooled rows whose input rows take at most this many bytes (8
 * KiB: the band of the input and of its gradient, 16 KiB together, stay in
 * L1 while every filter passes over them; for the Omniglot conv2 8 KiB
 * measured as fast as 4 and about 7% faster than 16, bench_conv). */
#define TNMTL_CONV_BAND_BYTES ((size_t)1 << 13)
/* ... and of at most this many windows x filters (their argmax pixels'
 * offsets are computed first, in a stack buffer). */
#define TNMTL_CONV_POOLED_OFFS ((size_t)1 << 12)
/* OpenBLAS runs a GEMM with m*n*k at most 65536 * GEMM_MULTITHREAD_THRESHOLD
 * (4 by default) on the calling thread; conv chunks keep under that. */
#define TNMTL_GEMM_SERIAL_MNK ((size_t)1 << 18)

/* Fills g (Ho, Wo, chunk) from the other fields; the caller has checked
 * that the output is not empty. */
void tnmtl_conv_geom_init(tnmtl_conv_geom *g, int H, int W, int C, int K, int F, int same);
/* Fuses a k x k max-pool (k <= Ho, Wo) into the layer: chunks become
 * k-aligned rows of one example. */
void tnmtl_conv_geom_set_pool(tnmtl_conv_geom *g, int k);
/* im2col elements of one chunk (one thread) */
size_t tnmtl_conv_col_elems(const tnmtl_conv_geom *g, int B);
/* Scratch of the conv kernels, in elements: per-part gradient sums
 * [TNMTL_PARTS][K*K*C*F] and [TNMTL_PARTS][F], the transposed weights
 * [K*K*C*F] (DIRECT input gradient; room for the Winograd filters
 * [16][C][F] where they apply: tnmtl_conv_wt_elems), then per thread the im2col
 * chunk and, with a fused pool, a chunk of conv output rows. */
size_t tnmtl_conv_wt_elems(const tnmtl_conv_geom *g);
size_t tnmtl_conv_scratch_elems(const tnmtl_conv_geom *g, int B, int n_threads);

/* fc GEMMs are cut along D into pieces of *piece rows with m*n*k under
 * TNMTL_GEMM_SERIAL_MNK (forward: at most TNMTL_FC_SCRATCH partial-sum
 * elements, else one piece); returns the number of pieces. */
#define TNMTL_FC_MAX_PARTS 64
#define TNMTL_FC_SCRATCH ((size_t)1 << 20)
int tnmtl_fc_split(int B, int D, int N, int forward, int *piece);
size_t tnmtl_fc_scratch_elems(int B, int D, int N);

/* ---- threads ----------------------------------------------------------------
 * Kernels cut their work into parts (ranges of examples, or of elements for
 * elementwise layers).  The number of parts depends on the problem only (at
 * most TNMTL_PARTS), so results are bit-identical for any thread count.  Work under TNMTL_PAR_MIN_WORK multiply-adds
 * (TNMTL_PAR_MIN_ELEMS elements) stays on the calling thread. */
#define TNMTL_PARTS 8
#define TNMTL_MAX_THREADS 8
#define TNMTL_PAR_MIN_WORK 1e6
#define TNMTL_PAR_MIN_ELEMS ((size_t)1 << 16)

/* Threads the engine uses: $TNMTL_NUM_THREADS if set, else OpenBLAS's
 * thread count (OPENBLAS_NUM_THREADS), at most TNMTL_MAX_THREADS.  A
 * workspace fixes it when it is created.  The kernels keep every GEMM under
 * TNMTL_GEMM_SERIAL_MNK, so OpenBLAS's own threads stay asleep during a
 * pass (they spin for ~0.1 s after a threaded call and would compete). */
int tnmtl_engine_threads(void);
/* Runs fn(ctx, part, thread) for every part in [0, n_parts) on up to
 * n_threads threads (thread 0 is the caller; the threads take parts in turn
 * from a counter, and thread t's scratch is only used by thread t).  If a
 * thread cannot be started, the others take its parts. */
void tnmtl_parallel_for(int n_parts, int n_threads, void (*fn)(void *ctx, int part, int thread), void *ctx);
/* The conditions of TNMTL_CONV_DIRECT / TNMTL_CONV_MATMUL hold for g;
 * a DIRECT layer's input gradient is direct too when C % 4 == 0 and
 * K * F <= TNMTL_CONV_DX_PAD. */
int tnmtl_conv_direct_ok(const tnmtl_conv_geom *g);
int tnmtl_conv_direct_dx_ok(const tnmtl_conv_geom *g);
int tnmtl_conv_matmul_ok(const tnmtl_conv_geom *g);
/* A DIRECT conv fused with a k x k max-pool (k >= 2) whose backward pass
 * runs from the pooled gradient over the argmax pixels only (1 / k^2 of the
 * dense work): C 4, 8, 12 or 16, K 3 or 5, and (Wo / k) * F <=
 * TNMTL_CONV_POOLED_OFFS.  (With one input channel the dense kernels,
 * vectorised over the filters, were as fast: measured.) */
int tnmtl_conv_pooled_bwd_ok(const tnmtl_conv_geom *g);
/* A DIRECT 3x3 conv fused with a 2x2 max-pool whose float forward pass,
 * on AVX2 CPUs, runs as Winograd F(2x2, 3x3) (16 multiply-adds per input
 * channel and filter for each pooling window instead of 36): C 4, 8, 12 or
 * 16, F 8, 12 or 16, Wo >= 8. */
int tnmtl_conv_wino_ok(const tnmtl_conv_geom *g);

/* Float tanh, vectorisable, |error| <= a few ulp (tested in test_layers). */
float tnmtl_tanh_approx(float x);

/* AVX2 variants of the hottest loops (DIRECT conv with FMA, float tanh,
 * pooling) are compiled where GCC/Clang can target x86-64 AVX2, and used
 * when the CPU has AVX2 and FMA; the DIRECT conv kernels also have a variant
 * for CPUs with AVX-512VL (32 vector registers).  The baseline build stays
 * x86-64-v2.  tnmtl_simd_level(): 0 baseline, 1 AVX2 + FMA, 2 with
 * AVX-512VL (float; the double kernels, for gradient checks, stop at AVX2).
 * tnmtl_simd_force(level) makes the code of that level (at most the CPU's)
 * run (tests compare them), tnmtl_simd_force(-1) restores the detection.
 * -DTNMTL_PORTABLE_KERNELS builds the baseline only (the fuzz build: its
 * harnesses target the parsers, and the SIMD instances are most of the
 * compile time of layers.c). */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(TNMTL_PORTABLE_KERNELS)
#define TNMTL_HAVE_AVX2 1
#else
#define TNMTL_HAVE_AVX2 0
#endif
int tnmtl_simd_level(void);
int tnmtl_simd_avx2(void); /* level >= 1 */
void tnmtl_simd_force(int level);
/* Simple loops (copies, sums) compiled twice, picked by the loader. */
#if TNMTL_HAVE_AVX2 && defined(__ELF__) && !defined(__clang__)
#define TNMTL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TNMTL_CLONES
#endif

#define TNMTL_LAYER_DECLS(REAL, S)                                                                \
    /* out[B][Ho][Wo][F] = act(conv(in[B][H][W][C], w[K][K][C][F]) + b[F]); with g->pool = k:  \
     * out[B][Ho/k][Wo/k][F] = act(maxpool(conv(...) + b)) and idx[B*(Ho/k)*(Wo/k)*F] as in       \
     * tnmtl_maxpool_forward (idx unused otherwise);                                              \
     * scratch[tnmtl_conv_scratch_elems(g, B, n_threads)] */                                     \
    void tnmtl_conv_forward##S(REAL *out, int32_t *idx, const REAL *in, const REAL *w,             \
                               const REAL *b, REAL *scratch, int n_threads,                       \
                               const tnmtl_conv_geom *g, int B, tnmtl_activation act);            \
    /* dout: gradient of the pre-activation output [B][Ho][Wo][F], or with g->pool of the        \
     * pooled pre-activation [B][Ho/k][Wo/k][F] (with idx); dw += ; db += ;                       \
     * din[B][H][W][C] = (if not NULL) */                                                        \
    void tnmtl_conv_backward##S(REAL *din, REAL *dw, REAL *db, const REAL *dout,                   \
                                const int32_t *idx, const REAL *in, const REAL *w, REAL *scratch, \
                                int n_threads, const tnmtl_conv_geom *g, int B);                  \
    /* out[B][H/k][W/k][C] = max over k x k windows of in[B][H][W][C] (floor); idx[B*Ho*Wo*C]     \
     * receives the offset of each maximum inside its example (first maximum on ties). */        \
    void tnmtl_maxpool_forward##S(REAL *out, int32_t *idx, const REAL *in, int B, int H, int W,    \
                                  int C, int k, int n_threads);                                   \
    /* din[B][H][W][C] = dout routed to the maxima recorded in idx */                            \
    void tnmtl_maxpool_backward##S(REAL *din, const REAL *dout, const int32_t *idx, int B, int H,  \
                                   int W, int C, int k, int n_threads);                           \
    /* out[B][N] = act(in[B][D] w[D][N] + b[N]); scratch[tnmtl_fc_scratch_elems(B, D, N)] */     \
    void tnmtl_fc_forward##S(REAL *out, const REAL *in, const REAL *w, const REAL *b,              \
                             REAL *scratch, int n_threads, int B, int D, int N,                   \
                             tnmtl_activation act);                                               \
    /* dw[D][N] += in^T dout; db[N] += sum_b dout; din[B][D] = dout w^T (if not NULL) */         \
    void tnmtl_fc_backward##S(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,     \
                              const REAL *w, int n_threads, int B, int D, int N);                 \
    /* y[n] = act(x[n]) (y may be x); TNMTL_ACT_NONE copies */                                    \
    void tnmtl_act_forward##S(REAL *y, const REAL *x, size_t n, tnmtl_activation act,             \
                              int n_threads);                                                     \
    /* dx[n] = dy[n] * act'(x) computed from the output y[n] (dx may be dy) */                   \
    void tnmtl_act_backward##S(REAL *dx, const REAL *dy, const REAL *y, size_t n,                  \
                               tnmtl_activation act, int n_threads);

TNMTL_LAYER_DECLS(float, _f32)
TNMTL_LAYER_DECLS(double, _f64)

#undef TNMTL_LAYER_DECLS

#endif
