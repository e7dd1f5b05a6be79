/* layers_impl.h - layer kernels, written once for a scalar type (internal).
 *
 * Included twice by layers.c with:
 *   REAL       float | double
 *   S(name)    name##_f32 | name##_f64      (internal kernels)
 *   PUB(name)  name       | name##_f64      (public loss functions)
 *   GEMM       cblas_sgemm | cblas_dgemm
 *   TANH_N     y[n] = tanh(x[n]) for REAL arrays
 * See layers.h for the contract of each function.
 */

/* ---- im2col / col2im ------------------------------------------------------
 * Chunk of output rows [u0, u1) (row u = (b, oh), b = u / Ho): column matrix
 * col[(u - u0) * Wo + ow][(kh * K + kw) * C + c] = in[b][oh+kh-pad][ow+kw-pad][c]
 * (0 outside the image).  For fixed (ow, kh) the kw*C entries that fall inside
 * the image are contiguous in NHWC memory, so each is one run.
 * to_col: col = im2col(img); else the adjoint, img += col2im(col). */
TNMTL_CLONES static void S(col_walk)(REAL *col, REAL *img_all, const tnmtl_conv_geom *g, size_t u0,
                                     size_t u1, int to_col)
{
    const int H = g->H, W = g->W, C = g->C, K = g->K, pad = g->pad, Wo = g->Wo, Ho = g->Ho;
    const size_t KC = (size_t)K * C, KKC = (size_t)K * KC;
    for (size_t u = u0; u < u1; u++) {
        const size_t b = u / (size_t)Ho;
        const int oh = (int)(u % (size_t)Ho);
        REAL *img = img_all + b * (size_t)H * W * C;
        for (int ow = 0; ow < Wo; ow++) {
            REAL *row = col + ((u - u0) * (size_t)Wo + (size_t)ow) * KKC;
            /* kw range whose input column lies inside the image */
            const int kw0 = ow - pad < 0 ? pad - ow : 0;
            const int kw1 = ow - pad + K > W ? W - ow + pad : K;
            for (int kh = 0; kh < K; kh++) {
                REAL *c = row + (size_t)kh * KC;
                const int ih = oh + kh - pad;
                const int inside = ih >= 0 && ih < H;
                if (to_col && !inside) memset(c, 0, KC * sizeof *c);
                if (!inside) continue;
                REAL *im = img + ((size_t)ih * W + (size_t)(ow - pad + kw0)) * C;
                const size_t len = (size_t)(kw1 - kw0) * C;
                if (to_col) {
                    if (kw0 > 0) memset(c, 0, (size_t)kw0 * C * sizeof *c);
                    for (size_t i = 0; i < len; i++) c[(size_t)kw0 * C + i] = im[i];
                    if (kw1 < K) memset(c + (size_t)kw1 * C, 0, (size_t)(K - kw1) * C * sizeof *c);
                } else {
                    for (size_t i = 0; i < len; i++) im[i] += c[(size_t)kw0 * C + i];
                }
            }
        }
    }
}

static void S(im2col)(REAL *col, const REAL *in, const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    S(col_walk)(col, (REAL *)in, g, u0, u1, 1); /* in is only read */
}

static void S(col2im)(REAL *din, const REAL *col, const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    S(col_walk)((REAL *)col, din, g, u0, u1, 0); /* col is only read */
}

/* ---- activations ---------------------------------------------------------- */

static void S(act_forward_serial)(REAL *y, const REAL *x, size_t n, tnmtl_activation act)
{
    switch (act) {
    case TNMTL_ACT_TANH:
        TANH_N(y, x, n);
        break;
    case TNMTL_ACT_RELU:
        /* x < 0 ? 0 : x lets NaN through, as torch.relu does */
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? (REAL)0 : x[i];
        break;
    case TNMTL_ACT_NONE:
        if (y != x) memmove(y, x, n * sizeof *y);
        break;
    }
}

TNMTL_CLONES static void S(act_backward_serial)(REAL *dx, const REAL *dy, const REAL *y, size_t n,
                                   tnmtl_activation act)
{
    switch (act) {
    case TNMTL_ACT_TANH:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * ((REAL)1 - y[i] * y[i]);
        break;
    case TNMTL_ACT_RELU:
        for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : (REAL)0;
        break;
    case TNMTL_ACT_NONE:
        if (dx != dy) memmove(dx, dy, n * sizeof *dx);
        break;
    }
}

/* Elementwise work cut into parts of at least TNMTL_PAR_MIN_ELEMS. */
typedef struct S(act_job) {
    REAL *out;
    const REAL *a, *y;
    size_t n;
    int n_parts, backward;
    tnmtl_activation act;
} S(act_job);

static void S(act_part)(void *ctx, int p, int thread)
{
    const S(act_job) *j = ctx;
    (void)thread;
    const size_t i0 = j->n * (size_t)p / (size_t)j->n_parts, i1 = j->n * (size_t)(p + 1) / (size_t)j->n_parts;
    if (j->backward) S(act_backward_serial)(j->out + i0, j->a + i0, j->y + i0, i1 - i0, j->act);
    else S(act_forward_serial)(j->out + i0, j->a + i0, i1 - i0, j->act);
}

static void S(act_run)(S(act_job) *j, int n_threads)
{
    const size_t parts = j->n / TNMTL_PAR_MIN_ELEMS;
    j->n_parts = parts < 1 ? 1 : parts > (size_t)n_threads ? n_threads : (int)parts;
    tnmtl_parallel_for(j->n_parts, j->n_parts, S(act_part), j);
}

void S(tnmtl_act_forward)(REAL *y, const REAL *x, size_t n, tnmtl_activation act, int n_threads)
{
    S(act_job) j = {y, x, NULL, n, 1, 0, act};
    S(act_run)(&j, n_threads);
}

void S(tnmtl_act_backward)(REAL *dx, const REAL *dy, const REAL *y, size_t n, tnmtl_activation act,
                           int n_threads)
{
    S(act_job) j = {dx, dy, y, n, 1, 1, act};
    S(act_run)(&j, n_threads);
}

/* out[rows][F] += b[F], then the activation, on a block that is in cache. */
TNMTL_CLONES static void S(bias_act)(REAL *out, const REAL *b, size_t rows, int F, tnmtl_activation act)
{
    for (size_t r = 0; r < rows; r++) {
        REAL *o = out + r * (size_t)F;
        for (int f = 0; f < F; f++) o[f] += b[f];
    }
    if (act != TNMTL_ACT_NONE) S(act_forward_serial)(out, out, rows * (size_t)F, act);
}

/* db[n] += sum over rows of d[r][n] (rows F apart) for a constant n <= 16:
 * the sums stay in registers (no store-to-load chain through db), and each
 * element's terms are still added row by row. */
static inline __attribute__((always_inline)) void S(bias_grad_n)(REAL *restrict db, const REAL *restrict d,
                                                                 size_t rows, int F, const int n)
{
    REAL acc[16];
    for (int f = 0; f < n; f++) acc[f] = db[f];
    for (size_t r = 0; r < rows; r++)
        for (int f = 0; f < n; f++) acc[f] += d[r * (size_t)F + (size_t)f];
    for (int f = 0; f < n; f++) db[f] = acc[f];
}

/* db[F] += sum over rows of d[rows][F] */
TNMTL_CLONES static void S(bias_grad)(REAL *db, const REAL *d, size_t rows, int F)
{
    int f0 = 0;
    for (; f0 + 16 <= F; f0 += 16) S(bias_grad_n)(db + f0, d + f0, rows, F, 16);
    switch (F - f0) {
    case 0: return;
    case 4: S(bias_grad_n)(db + f0, d + f0, rows, F, 4); return;
    case 8: S(bias_grad_n)(db + f0, d + f0, rows, F, 8); return;
    case 12: S(bias_grad_n)(db + f0, d + f0, rows, F, 12); return;
    default: break;
    }
    for (size_t r = 0; r < rows; r++) {
        const REAL *dr = d + r * (size_t)F;
        for (int f = f0; f < F; f++) db[f] += dr[f];
    }
}

/* ---- max-pooling ---------------------------------------------------------- */

/* Pools n_rows output rows of one example: img points at input row r0 = the
 * first output row * k, out/idx at that output row; the offsets stored in
 * idx are relative to the example, so base = r0 * W * C is added.  The
 * window is scanned row by row; a value replaces the best so far when it is
 * greater or NaN (the first maximum wins ties, as in PyTorch, and the first
 * NaN propagates); branch-free so that the channel loop vectorises. */
TNMTL_CLONES static void S(pool_rows)(REAL *restrict out, int32_t *restrict idx, const REAL *restrict img,
                         int n_rows, int W, int C, int k, int32_t base)
{
    if (S(pool_rows_fast)(out, idx, img, n_rows, W, C, k, base)) return; /* layers.c */
    const int Wo = W / k;
    for (int oh = 0; oh < n_rows; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            REAL *restrict best = out + ((size_t)oh * Wo + (size_t)ow) * C;
            int32_t *restrict bi = idx + ((size_t)oh * Wo + (size_t)ow) * C;
            const int32_t off0 = (int32_t)(((oh * k) * W + ow * k) * C);
            for (int c = 0; c < C; c++) {
                best[c] = img[off0 + c];
                bi[c] = base + off0 + c;
            }
            for (int kh = 0; kh < k; kh++)
                for (int kw = kh ? 0 : 1; kw < k; kw++) {
                    const int32_t off = (int32_t)((((oh * k + kh) * W) + ow * k + kw) * C);
                    const REAL *restrict src = img + off;
                    for (int c = 0; c < C; c++) {
                        const REAL v = src[c], m = best[c];
                        const int take = !(v <= m) && m == m;
                        best[c] = take ? v : m;
                        bi[c] = take ? base + off + c : bi[c];
                    }
                }
        }
}

static void S(maxpool_fwd_range)(REAL *out, int32_t *idx, const REAL *in, size_t b0, size_t b1, int H,
                                 int W, int C, int k)
{
    const size_t in_n = (size_t)H * W * C, out_n = (size_t)(H / k) * (W / k) * C;
    for (size_t b = b0; b < b1; b++)
        S(pool_rows)(out + b * out_n, idx + b * out_n, in + b * in_n, H / k, W, C, k, 0);
}

TNMTL_CLONES static void S(maxpool_bwd_range)(REAL *din, const REAL *dout, const int32_t *idx, size_t b0, size_t b1,
                                 int H, int W, int C, int k)
{
    const size_t in_n = (size_t)H * W * C, out_n = (size_t)(H / k) * (W / k) * C;
    memset(din + b0 * in_n, 0, (b1 - b0) * in_n * sizeof *din);
    for (size_t b = b0; b < b1; b++) {
        REAL *img = din + b * in_n;
        const REAL *d = dout + b * out_n;
        const int32_t *ix = idx + b * out_n;
        for (size_t i = 0; i < out_n; i++) img[ix[i]] += d[i];
    }
}

typedef struct S(pool_job) {
    REAL *out;
    int32_t *idx;
    const REAL *in;
    int B, H, W, C, k, n_parts, backward;
} S(pool_job);

static void S(pool_part)(void *ctx, int p, int thread)
{
    const S(pool_job) *j = ctx;
    (void)thread;
    const size_t b0 = (size_t)j->B * (size_t)p / (size_t)j->n_parts;
    const size_t b1 = (size_t)j->B * (size_t)(p + 1) / (size_t)j->n_parts;
    if (j->backward) S(maxpool_bwd_range)(j->out, j->in, j->idx, b0, b1, j->H, j->W, j->C, j->k);
    else S(maxpool_fwd_range)(j->out, j->idx, j->in, b0, b1, j->H, j->W, j->C, j->k);
}

static void S(pool_run)(S(pool_job) *j, int n_threads)
{
    const size_t work = (size_t)j->B * j->H * j->W * j->C / TNMTL_PAR_MIN_ELEMS;
    int parts = work < 1 ? 1 : work > (size_t)n_threads ? n_threads : (int)work;
    j->n_parts = parts > j->B ? j->B : parts;
    tnmtl_parallel_for(j->n_parts, j->n_parts, S(pool_part), j);
}

void S(tnmtl_maxpool_forward)(REAL *out, int32_t *idx, const REAL *in, int B, int H, int W, int C,
                              int k, int n_threads)
{
    S(pool_job) j = {out, idx, in, B, H, W, C, k, 1, 0};
    S(pool_run)(&j, n_threads);
}

void S(tnmtl_maxpool_backward)(REAL *din, const REAL *dout, const int32_t *idx, int B, int H, int W,
                               int C, int k, int n_threads)
{
    S(pool_job) j = {din, (int32_t *)idx, dout, B, H, W, C, k, 1, 1};
    S(pool_run)(&j, n_threads);
}

/* ---- convolution -----------------------------------------------------------
 * Three ways, chosen per layer by tnmtl_conv_geom_init (g->method):
 *  IM2COL  per chunk of output rows, out_chunk[M][F] = col[M][KKC] w[KKC][F]
 *          with M = rows * Wo (the NHWC output of the chunk is that matrix);
 *  MATMUL  1x1 valid: the input rows are the column matrix;
 *  DIRECT  valid, F a multiple of 4: direct loops over the taps, vectorised
 *          over a block of filters (up to 2 vectors) for several output
 *          pixels at a time (im2col + GEMM is copy-bound for few channels:
 *          with C = 1 each column row is 25 copied values for 200 MACs, and
 *          its GEMMs have 8-16 columns).  The input gradient is direct too
 *          when C is a multiple of 4 (vectorised over input channels, from
 *          the weights with their last two axes swapped), else it goes
 *          through the IM2COL code. */

/* The DIRECT kernels, once per instruction set (layers_direct.h): SSE2 or
 * plain C; AVX2 + FMA; and AVX2 + FMA with AVX-512VL's 32 registers (the
 * same 32-byte vectors, larger register blocks), where the compiler can
 * target them; picked at run time (tnmtl_simd_level).  The AVX2 instances
 * fuse each a + x * y into one multiply-add (GCC contracts only when told
 * so; Clang does by default): the same terms as the baseline, rounded once
 * instead of twice. */
#define DVB 16
#define DBIG 0
#define DTARGET
#define D(name) S(name##_base)
#include "layers_direct.h"
#undef DVB
#undef DBIG
#undef DTARGET
#undef D
#if TNMTL_HAVE_AVX2
#if defined(__clang__)
#define DFMA_CONTRACT
#else
#define DFMA_CONTRACT , optimize("fp-contract=fast")
#endif
#define DVB 32
#define DBIG 0
#define DTARGET __attribute__((target("avx2,fma") DFMA_CONTRACT))
#define D(name) S(name##_avx2)
#include "layers_direct.h"
#undef DBIG
#undef DTARGET
#undef D
#ifdef REAL_F32 /* the double kernels (gradient checks) stop at AVX2 */
#define DBIG 1
#define DTARGET __attribute__((target("avx2,fma,avx512f,avx512vl") DFMA_CONTRACT))
#define D(name) S(name##_avx512)
#include "layers_direct.h"
#undef DBIG
#undef DTARGET
#undef D
#define DIRECT_L2(kernel) S(kernel##_avx512)
#else
#define DIRECT_L2(kernel) S(kernel##_avx2)
#endif
#undef DVB
#undef DFMA_CONTRACT
#endif

/* The instance for this CPU (or the level a test forced). */
#if TNMTL_HAVE_AVX2
#define DIRECT_DISPATCH(kernel, ...)                                                             \
    do {                                                                                         \
        const int level_ = tnmtl_simd_level();                                                   \
        if (level_ >= 2) DIRECT_L2(kernel)(__VA_ARGS__);                                          \
        else if (level_ == 1) S(kernel##_avx2)(__VA_ARGS__);                                      \
        else S(kernel##_base)(__VA_ARGS__);                                                       \
    } while (0)
#else
#define DIRECT_DISPATCH(kernel, ...) S(kernel##_base)(__VA_ARGS__)
#endif

static void S(conv_direct_fwd)(REAL *out, const REAL *in, const REAL *w, const REAL *b,
                               const tnmtl_conv_geom *g, size_t u0, size_t u1)
{
    DIRECT_DISPATCH(direct_fwd, out, in, w, b, g, u0, u1);
}

static void S(conv_direct_dw)(REAL *dw, const REAL *dout, const REAL *in, const tnmtl_conv_geom *g,
                              size_t u0, size_t u1)
{
    DIRECT_DISPATCH(direct_dw, dw, dout, in, g, u0, u1);
}

static void S(conv_direct_dx)(REAL *din, const REAL *dout, const REAL *wt, const tnmtl_conv_geom *g,
                              size_t u0, size_t u1)
{
    DIRECT_DISPATCH(direct_dx, din, dout, wt, g, u0, u1);
}
static void S(conv_direct_pooled_bwd)(REAL *dwf, REAL *din, const REAL *in, const REAL *wt, const REAL *gp,
                                      const int32_t *idx, const tnmtl_conv_geom *g, size_t b0, size_t b1)
{
    DIRECT_DISPATCH(direct_pooled_bwd, dwf, din, in, wt, gp, idx, g, b0, b1);
}
#undef DIRECT_DISPATCH

/* The Winograd forward (layers_direct.h), float on AVX2 levels only: if it
 * applies to g, fills U[16][C][F] with the transformed filters and says so. */
static int S(conv_wino_prepare)(REAL *U, const REAL *w, const tnmtl_conv_geom *g)
{
#if TNMTL_HAVE_AVX2 && defined(REAL_F32)
    if (tnmtl_simd_level() < 1 || !tnmtl_conv_wino_ok(g)) return 0;
    if (tnmtl_simd_level() >= 2) S(wino_filter_avx512)(U, w, g->C, g->F);
    else S(wino_filter_avx2)(U, w, g->C, g->F);
    return 1;
#else
    (void)U, (void)w, (void)g;
    return 0;
#endif
}

static void S(conv_wino_fwd)(REAL *out, const REAL *in, const REAL *U, const REAL *b, const tnmtl_conv_geom *g,
                             size_t u0, size_t u1)
{
#if TNMTL_HAVE_AVX2 && defined(REAL_F32)
    if (tnmtl_simd_level() >= 2) S(wino_fwd_avx512)(out, in, U, b, g, u0, u1);
    else S(wino_fwd_avx2)(out, in, U, b, g, u0, u1);
#else
    (void)out, (void)in, (void)U, (void)b, (void)g, (void)u0, (void)u1;
#endif
}
#if TNMTL_HAVE_AVX2
#undef DIRECT_L2
#endif

/* Work of a conv call.  The batch is cut into n_parts ranges of whole
 * examples (whole groups of chunk/Ho examples when several fit a chunk),
 * a number fixed by the layer and B only, so that the chunking, and with
 * it every rounding, is the same for any number of threads; parameter
 * gradients are summed per part and the parts added in order.
 *
 * With g->pool = k > 0 the conv is fused with a following k x k max-pool
 * (and an activation, applied after the pooling: max and tanh/relu commute):
 * each chunk of k-aligned output rows is computed into a per-thread buffer
 * and pooled at once, so the full conv output never exists; the backward
 * pass rebuilds each chunk's output gradient from the pooled one. */
typedef struct S(conv_job) {
    const tnmtl_conv_geom *g;
    int B, n_parts, per_group;   /* per_group: examples per group       */
    size_t n_groups;
    REAL *out, *din, *dw, *db;   /* outputs of the pass (NULL: skip)    */
    const REAL *in, *w, *b, *dout;
    int32_t *idx;                /* pooled: argmax offsets              */
    REAL *part_w, *part_b;       /* [n_parts][K*K*C*F], [n_parts][F]    */
    int pooled_bwd;              /* tnmtl_conv_pooled_bwd_ok: part_w is
                                  * [n_parts][F][K*K*C] (filter-major)  */
    REAL *wt;                    /* [K][K][F][C]: DIRECT input gradient;
                                  * forward: Winograd filters [16][C][F] */
    int wino;                    /* forward as Winograd (wino_fwd)      */
    REAL *col;                   /* [n_threads][col elems + tmp elems]  */
    size_t col_elems, tmp_elems;
    tnmtl_activation act;
} S(conv_job);

static void S(conv_job_init)(S(conv_job) *j, const tnmtl_conv_geom *g, int B, REAL *scratch)
{
    memset(j, 0, sizeof *j);
    j->g = g;
    j->B = B;
    j->per_group = g->chunk >= g->Ho && !g->pool ? g->chunk / g->Ho : 1;
    j->n_groups = ((size_t)B + (size_t)j->per_group - 1) / (size_t)j->per_group;
    j->n_parts = j->n_groups < TNMTL_PARTS ? (int)j->n_groups : TNMTL_PARTS;
    const size_t nw = (size_t)g->K * g->K * g->C * g->F;
    j->part_w = scratch;
    j->part_b = scratch + (size_t)TNMTL_PARTS * nw;
    j->wt = j->part_b + (size_t)TNMTL_PARTS * g->F;
    j->col = j->wt + tnmtl_conv_wt_elems(g);
    j->col_elems = tnmtl_conv_col_elems(g, B);
    j->tmp_elems = g->pool ? (size_t)g->chunk * g->Wo * g->F : 0;
}

/* Example range [*b0, *b1) of part p. */
static void S(conv_part_range)(const S(conv_job) *j, int p, size_t *b0, size_t *b1)
{
    const size_t g0 = j->n_groups * (size_t)p / (size_t)j->n_parts;
    const size_t g1 = j->n_groups * (size_t)(p + 1) / (size_t)j->n_parts;
    *b0 = g0 * (size_t)j->per_group;
    *b1 = g1 * (size_t)j->per_group < (size_t)j->B ? g1 * (size_t)j->per_group : (size_t)j->B;
}

/* Output rows of examples [e0, e1) to compute: all, or with pooling the
 * first (Ho / k) * k of one example. */
static size_t S(conv_rows_end)(const S(conv_job) *j, size_t e0, size_t e1)
{
    const tnmtl_conv_geom *g = j->g;
    return g->pool ? e0 * (size_t)g->Ho + (size_t)(g->Ho / g->pool * g->pool) : e1 * (size_t)g->Ho;
}

/* Walks the chunks of the examples [*e0, b1): start with *u1 = *e0 * Ho.
 * Returns 0 at the end, else the next chunk [*u0, *u1) of output rows, of
 * which *e0 is the first example. */
static int S(next_chunk)(const S(conv_job) *j, size_t b1, size_t *e0, size_t *u0, size_t *u1)
{
    const tnmtl_conv_geom *g = j->g;
    while (*e0 < b1) {
        const size_t e1 = *e0 + (size_t)j->per_group < b1 ? *e0 + (size_t)j->per_group : b1;
        const size_t end = S(conv_rows_end)(j, *e0, e1);
        if (*u1 < end) {
            *u0 = *u1;
            *u1 = *u0 + (size_t)g->chunk < end ? *u0 + (size_t)g->chunk : end;
            return 1;
        }
        *e0 = e1;
        *u1 = e1 * (size_t)g->Ho;
    }
    return 0;
}

TNMTL_CLONES static void S(conv_fwd_part)(void *ctx, int p, int thread)
{
    const S(conv_job) *j = ctx;
    const tnmtl_conv_geom *g = j->g;
    const int F = g->F, KKC = g->K * g->K * g->C, k = g->pool;
    REAL *col = j->col + (size_t)thread * (j->col_elems + j->tmp_elems), *tmp = col + j->col_elems;
    const size_t pooled_n = k ? (size_t)(g->Ho / k) * (g->Wo / k) * F : 0;
    size_t b0, b1;
    S(conv_part_range)(j, p, &b0, &b1);
    size_t e0 = b0, u0, u1 = b0 * (size_t)g->Ho;
    while (S(next_chunk)(j, b1, &e0, &u0, &u1)) {
        const size_t M = (u1 - u0) * (size_t)g->Wo;
        REAL *o = k ? tmp : j->out + u0 * (size_t)g->Wo * F;
        const tnmtl_activation act = k ? TNMTL_ACT_NONE : j->act;
        if (j->wino) {
            S(conv_wino_fwd)(o, j->in, j->wt, j->b, g, u0, u1);
        } else if (g->method == TNMTL_CONV_DIRECT) {
            S(conv_direct_fwd)(o, j->in, j->w, j->b, g, u0, u1);
            if (act != TNMTL_ACT_NONE) S(act_forward_serial)(o, o, M * (size_t)F, act);
        } else {
            const REAL *a = col;
            if (g->method == TNMTL_CONV_MATMUL) a = j->in + u0 * (size_t)g->Wo * KKC;
            else S(im2col)(col, j->in, g, u0, u1);
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, F, KKC, 1, a, KKC, j->w, F, 0, o, F);
            S(bias_act)(o, j->b, M, F, act);
        }
        if (!k) continue;
        /* pool the chunk's rows [r0, r1) of example e0, then activate */
        const int r0 = (int)(u0 - e0 * (size_t)g->Ho), rows = (int)(u1 - u0) / k;
        const size_t po = e0 * pooled_n + (size_t)(r0 / k) * (g->Wo / k) * F;
        S(pool_rows)(j->out + po, j->idx + po, tmp, rows, g->Wo, F, k, (int32_t)r0 * g->Wo * F);
        if (j->act != TNMTL_ACT_NONE)
            S(act_forward_serial)(j->out + po, j->out + po, (size_t)rows * (g->Wo / k) * F, j->act);
    }
}

TNMTL_CLONES static void S(conv_bwd_part)(void *ctx, int p, int thread)
{
    const S(conv_job) *j = ctx;
    const tnmtl_conv_geom *g = j->g;
    const int F = g->F, KKC = g->K * g->K * g->C, k = g->pool;
    const size_t nw = (size_t)KKC * F, in_n = (size_t)g->H * g->W * g->C;
    const size_t pooled_n = k ? (size_t)(g->Ho / k) * (g->Wo / k) * F : 0;
    const int matmul = g->method == TNMTL_CONV_MATMUL, direct = g->method == TNMTL_CONV_DIRECT;
    const int direct_dx = direct && tnmtl_conv_direct_dx_ok(g);
    REAL *col = j->col + (size_t)thread * (j->col_elems + j->tmp_elems), *tmp = col + j->col_elems;
    REAL *pw = j->dw ? j->part_w + (size_t)p * nw : NULL, *pb = j->db ? j->part_b + (size_t)p * F : NULL;
    size_t b0, b1;
    S(conv_part_range)(j, p, &b0, &b1);
    if (pw) memset(pw, 0, nw * sizeof *pw);
    if (pb) memset(pb, 0, (size_t)F * sizeof *pb);
    if (j->din && !matmul) memset(j->din + b0 * in_n, 0, (b1 - b0) * in_n * sizeof *j->din);
    if (j->pooled_bwd) { /* from the pooled gradient, over the argmax pixels */
        const REAL *gp = j->dout + b0 * pooled_n;
        if (pb) S(bias_grad)(pb, gp, (b1 - b0) * pooled_n / (size_t)F, F);
        S(conv_direct_pooled_bwd)(pw, j->din ? j->din + b0 * in_n : NULL, j->in + b0 * in_n, j->wt, gp,
                                  j->idx + b0 * pooled_n, g, b0, b1);
        return;
    }
    size_t e0 = b0, u0, u1 = b0 * (size_t)g->Ho;
    while (S(next_chunk)(j, b1, &e0, &u0, &u1)) {
        const size_t M = (u1 - u0) * (size_t)g->Wo;
        const REAL *d = j->dout + u0 * (size_t)g->Wo * F;
        if (pb && !k) S(bias_grad)(pb, d, M, F);
        if (k) { /* this chunk's output gradient from the pooled one */
            const int r0 = (int)(u0 - e0 * (size_t)g->Ho), rows = (int)(u1 - u0) / k;
            const size_t po = e0 * pooled_n + (size_t)(r0 / k) * (g->Wo / k) * F;
            const size_t n = (size_t)rows * (g->Wo / k) * F;
            const int32_t base = (int32_t)r0 * g->Wo * F;
            if (!S(unpool_rows_fast)(tmp, j->dout + po, j->idx + po, rows, g->Wo, F, k, base)) { /* layers.c */
                memset(tmp, 0, M * (size_t)F * sizeof *tmp);
                /* pooling windows do not overlap: each element is written once */
                for (size_t i = 0; i < n; i++) tmp[j->idx[po + i] - base] = j->dout[po + i];
            }
            d = tmp;
            /* the bias gradient: the sum of the pooled gradient (the rebuilt
             * one adds only zeros to it) */
            if (pb) S(bias_grad)(pb, j->dout + po, n / (size_t)F, F);
        }
        if (pw && direct) S(conv_direct_dw)(pw, d, j->in, g, u0, u1);
        if (pw && !direct) { /* dw[KKC][F] += col^T d */
            const REAL *a = col;
            if (matmul) a = j->in + u0 * (size_t)g->Wo * KKC;
            else S(im2col)(col, j->in, g, u0, u1);
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, KKC, F, (int)M, 1, a, KKC, d, F, 1, pw, F);
        }
        if (!j->din) continue;
        if (direct_dx) {
            S(conv_direct_dx)(j->din, d, j->wt, g, u0, u1);
            continue;
        }
        if (matmul) { /* din rows of the chunk = d w^T */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, KKC, F, 1, d, F, j->w, F, 0,
                 j->din + u0 * (size_t)g->Wo * KKC, KKC);
            continue;
        }
        /* dcol[M][KKC] = d w^T, then scattered back onto the image */
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, KKC, F, 1, d, F, j->w, F, 0, col, KKC);
        S(col2im)(j->din, col, g, u0, u1);
    }
}

static void S(conv_run)(S(conv_job) *j, int n_threads, int backward)
{
    const tnmtl_conv_geom *g = j->g;
    const double macs = (double)j->B * g->Ho * g->Wo * g->K * g->K * g->C * g->F;
    tnmtl_parallel_for(j->n_parts, macs < TNMTL_PAR_MIN_WORK ? 1 : n_threads,
                       backward ? S(conv_bwd_part) : S(conv_fwd_part), j);
    if (!backward) return;
    /* the parts' sums, in order */
    const size_t nw = (size_t)g->K * g->K * g->C * g->F;
    const size_t KKC = nw / (size_t)g->F;
    for (int p = 0; p < j->n_parts; p++) {
        const REAL *pw = j->part_w + (size_t)p * nw;
        if (j->dw && j->pooled_bwd) /* pw[F][K*K*C] */
            for (size_t i = 0; i < KKC; i++)
                for (int f = 0; f < g->F; f++) j->dw[i * (size_t)g->F + (size_t)f] += pw[(size_t)f * KKC + i];
        else if (j->dw)
            for (size_t i = 0; i < nw; i++) j->dw[i] += pw[i];
        if (j->db)
            for (int f = 0; f < g->F; f++) j->db[f] += j->part_b[(size_t)p * g->F + f];
    }
}

void S(tnmtl_conv_forward)(REAL *out, int32_t *idx, const REAL *in, const REAL *w, const REAL *b,
                           REAL *scratch, int n_threads, const tnmtl_conv_geom *g, int B,
                           tnmtl_activation act)
{
    S(conv_job) j;
    S(conv_job_init)(&j, g, B, scratch);
    j.out = out, j.idx = idx, j.in = in, j.w = w, j.b = b, j.act = act;
    j.wino = S(conv_wino_prepare)(j.wt, w, g);
    S(conv_run)(&j, n_threads, 0);
}

void S(tnmtl_conv_backward)(REAL *din, REAL *dw, REAL *db, const REAL *dout, const int32_t *idx,
                            const REAL *in, const REAL *w, REAL *scratch, int n_threads,
                            const tnmtl_conv_geom *g, int B)
{
    S(conv_job) j;
    S(conv_job_init)(&j, g, B, scratch);
    j.din = din, j.dw = dw, j.db = db, j.dout = dout, j.idx = (int32_t *)idx, j.in = in, j.w = w;
    j.pooled_bwd = tnmtl_conv_pooled_bwd_ok(g);
    if (din && g->method == TNMTL_CONV_DIRECT && (tnmtl_conv_direct_dx_ok(g) || j.pooled_bwd)) {
        /* wt[kh][kw][f][c] = w[kh][kw][c][f] */
        const int KK = g->K * g->K, C = g->C, F = g->F;
        for (int k = 0; k < KK; k++)
            for (int c = 0; c < C; c++)
                for (int f = 0; f < F; f++) j.wt[((size_t)k * F + f) * C + c] = w[((size_t)k * C + c) * F + f];
    }
    S(conv_run)(&j, n_threads, 1);
}


/* ---- fully connected --------------------------------------------------------
 * The GEMMs are cut along D (tnmtl_fc_split) into pieces that OpenBLAS runs
 * on the calling thread, spread over the engine's threads: the forward pass
 * sums per-piece products (scratch) in order, the weight gradient and the
 * input gradient are disjoint row / column blocks. */
typedef struct S(fc_job) {
    REAL *out, *part, *din, *dw;
    const REAL *in, *w, *dout;
    int B, D, N, piece, n_parts;
} S(fc_job);

static void S(fc_fwd_part)(void *ctx, int p, int thread)
{
    const S(fc_job) *j = ctx;
    (void)thread;
    const int k0 = p * j->piece, k = j->D - k0 < j->piece ? j->D - k0 : j->piece;
    REAL *c = j->n_parts > 1 ? j->part + (size_t)p * j->B * j->N : j->out;
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->B, j->N, k, 1, j->in + k0, j->D,
         j->w + (size_t)k0 * j->N, j->N, 0, c, j->N);
}

static void S(fc_bwd_part)(void *ctx, int p, int thread)
{
    const S(fc_job) *j = ctx;
    (void)thread;
    const int k0 = p * j->piece, k = j->D - k0 < j->piece ? j->D - k0 : j->piece;
    /* dw rows [k0, k0+k) += in[:, k0:k0+k]^T dout */
    if (j->dw)
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, j->N, j->B, 1, j->in + k0, j->D, j->dout,
             j->N, 1, j->dw + (size_t)k0 * j->N, j->N);
    /* din[:, k0:k0+k] = dout w[k0:k0+k, :]^T */
    if (j->din)
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, j->B, k, j->N, 1, j->dout, j->N,
             j->w + (size_t)k0 * j->N, j->N, 0, j->din + k0, j->D);
}

void S(tnmtl_fc_forward)(REAL *out, const REAL *in, const REAL *w, const REAL *b, REAL *scratch,
                         int n_threads, int B, int D, int N, tnmtl_activation act)
{
    S(fc_job) j = {out, scratch, NULL, NULL, in, w, NULL, B, D, N, 0, 0};
    j.n_parts = tnmtl_fc_split(B, D, N, 1, &j.piece);
    const double macs = (double)B * D * N;
    tnmtl_parallel_for(j.n_parts, macs < TNMTL_PAR_MIN_WORK ? 1 : n_threads, S(fc_fwd_part), &j);
    if (j.n_parts > 1) {
        const size_t n = (size_t)B * N;
        memcpy(out, scratch, n * sizeof *out);
        for (int p = 1; p < j.n_parts; p++)
            for (size_t i = 0; i < n; i++) out[i] += scratch[(size_t)p * n + i];
    }
    S(bias_act)(out, b, (size_t)B, N, act);
}

void S(tnmtl_fc_backward)(REAL *din, REAL *dw, REAL *db, const REAL *dout, const REAL *in,
                          const REAL *w, int n_threads, int B, int D, int N)
{
    S(fc_job) j = {NULL, NULL, din, dw, in, w, dout, B, D, N, 0, 0};
    j.n_parts = tnmtl_fc_split(B, D, N, 0, &j.piece);
    const double macs = (double)B * D * N;
    if (dw || din)
        tnmtl_parallel_for(j.n_parts, macs < TNMTL_PAR_MIN_WORK ? 1 : n_threads, S(fc_bwd_part), &j);
    if (db) S(bias_grad)(db, dout, (size_t)B, N);
}

/* ---- losses (public) -------------------------------------------------------
 * Sums are taken in double in both variants.  A label outside [0, C) makes
 * the loss NaN (its row's gradient is then the plain softmax), as do empty
 * sizes (nothing is touched then). */
double PUB(tnmtl_softmax_xent)(const REAL *logits, const int *labels, int B, int C, REAL *dlogits)
{
    if (B < 1 || C < 1) return NAN;
    double total = 0;
    for (size_t b = 0; b < (size_t)B; b++) {
        const REAL *z = logits + b * (size_t)C;
        double m = z[0];
        for (int c = 1; c < C; c++)
            if (z[c] > m || z[c] != z[c]) m = z[c];
        double s = 0;
        for (int c = 0; c < C; c++) s += exp((double)z[c] - m);
        const double lse = m + log(s);
        const int y = labels[b];
        const int ok = y >= 0 && y < C;
        total += ok ? lse - (double)z[y] : NAN;
        if (!dlogits) continue;
        REAL *d = dlogits + b * (size_t)C;
        for (int c = 0; c < C; c++) d[c] = (REAL)(exp((double)z[c] - lse) / B);
        if (ok) d[y] -= (REAL)(1.0 / B);
    }
    return total / B;
}

double PUB(tnmtl_mse)(const REAL *out, const REAL *target, int B, int D, REAL *dout)
{
    if (B < 1 || D < 1) return NAN;
    const size_t n = (size_t)B * D;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)out[i] - (double)target[i];
        total += e * e;
        if (dout) dout[i] = (REAL)(2.0 * e / (double)n);
    }
    return total / (double)n;
}
