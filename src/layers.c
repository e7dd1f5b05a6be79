/* layers.c - layer kernels in float and double from one source (layers_impl.h). */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if TNMTL_HAVE_AVX2
#include <immintrin.h>
#endif

void tnmtl_conv_geom_init(tnmtl_conv_geom *g, int H, int W, int C, int K, int F, int same)
{
    g->H = H;
    g->W = W;
    g->C = C;
    g->K = K;
    g->F = F;
    g->pad = same ? (K - 1) / 2 : 0;
    g->Ho = H + 2 * g->pad - K + 1;
    g->Wo = W + 2 * g->pad - K + 1;
    /* the chunk depends on the layer only, so results do not depend on the
     * workspace, the batch size or the thread count.  Its GEMMs also stay
     * under TNMTL_GEMM_SERIAL_MNK, so that OpenBLAS runs them on the calling
     * thread: the kernels are threaded over chunks themselves. */
    const size_t row = (size_t)g->Wo * K * K * C;
    size_t chunk = TNMTL_CONV_COL_TARGET / row;
    const size_t chunk2 = TNMTL_GEMM_SERIAL_MNK / (row * (size_t)F);
    if (chunk2 < chunk) chunk = chunk2;
    g->chunk = chunk < 1 ? 1 : (int)chunk; /* chunk <= TARGET */
    g->pool = 0;
    /* DIRECT for few input channels, and for C a multiple of 4 up to 16
     * (input gradient direct too): on the Omniglot layers conv2 (C 8, F 12)
     * and conv3 (C 12, F 16) that took 18% and 5% less time than im2col +
     * GEMM (forward + backward, one thread, batch 65) */
    g->method = tnmtl_conv_matmul_ok(g) ? TNMTL_CONV_MATMUL
                : tnmtl_conv_direct_ok(g) && (C <= 4 || (C % 4 == 0 && C <= 16)) ? TNMTL_CONV_DIRECT
                                                                                   : TNMTL_CONV_IM2COL;
}

void tnmtl_conv_geom_set_pool(tnmtl_conv_geom *g, int k)
{
    const int rows = g->Ho / k * k; /* the rows that reach the pool */
    g->pool = k;
    g->chunk = g->chunk < k ? k : g->chunk / k * k;
    if (g->method == TNMTL_CONV_DIRECT) { /* the chunk's conv output stays in L1 */
        const size_t cap = TNMTL_CONV_TMP_TARGET / ((size_t)g->Wo * (size_t)g->F) / (size_t)k * (size_t)k;
        if (cap >= (size_t)k && (size_t)g->chunk > cap) g->chunk = (int)cap;
    }
    if (g->chunk > rows) g->chunk = rows;
}

int tnmtl_conv_direct_ok(const tnmtl_conv_geom *g) { return g->pad == 0 && g->F % 4 == 0; }
int tnmtl_conv_direct_dx_ok(const tnmtl_conv_geom *g)
{
    return g->C % 4 == 0 && (size_t)g->K * (size_t)g->F <= TNMTL_CONV_DX_PAD;
}
int tnmtl_conv_matmul_ok(const tnmtl_conv_geom *g) { return g->K == 1 && g->pad == 0; }
int tnmtl_conv_pooled_bwd_ok(const tnmtl_conv_geom *g)
{
    return g->method == TNMTL_CONV_DIRECT && g->pool >= 2 && g->C % 4 == 0 && g->C <= 16 && (g->K == 3 || g->K == 5) &&
           (size_t)(g->Wo / g->pool) * (size_t)g->F <= TNMTL_CONV_POOLED_OFFS;
}

int tnmtl_conv_wino_ok(const tnmtl_conv_geom *g)
{
    return g->method == TNMTL_CONV_DIRECT && g->K == 3 && g->pool == 2 && g->C % 4 == 0 && g->C <= 16 &&
           (g->F == 8 || g->F == 12 || g->F == 16) && g->Wo / 2 >= 4;
}

size_t tnmtl_conv_wt_elems(const tnmtl_conv_geom *g)
{
    const size_t nw = (size_t)g->K * g->K * g->C * g->F;
    return tnmtl_conv_wino_ok(g) ? 16 * (size_t)g->C * g->F : nw; /* room for the Winograd filters */
}

size_t tnmtl_conv_scratch_elems(const tnmtl_conv_geom *g, int B, int n_threads)
{
    const size_t nw = (size_t)g->K * g->K * g->C * g->F;
    const size_t tmp = g->pool ? (size_t)g->chunk * g->Wo * g->F : 0;
    return TNMTL_PARTS * (nw + (size_t)g->F) + tnmtl_conv_wt_elems(g) +
           (size_t)n_threads * (tnmtl_conv_col_elems(g, B) + tmp);
}

int tnmtl_fc_split(int B, int D, int N, int forward, int *piece)
{
    const size_t bn = (size_t)B * N;
    size_t k = TNMTL_GEMM_SERIAL_MNK / bn;
    if (k < 1) k = 1;
    size_t parts = ((size_t)D + k - 1) / k;
    if (parts > TNMTL_FC_MAX_PARTS) parts = TNMTL_FC_MAX_PARTS;
    if (forward && parts * bn > TNMTL_FC_SCRATCH) parts = TNMTL_FC_SCRATCH / bn;
    if (parts < 1) parts = 1;
    *piece = (int)(((size_t)D + parts - 1) / parts);
    return (D + *piece - 1) / *piece;
}

size_t tnmtl_fc_scratch_elems(int B, int D, int N)
{
    int piece;
    const int parts = tnmtl_fc_split(B, D, N, 1, &piece);
    return parts > 1 ? (size_t)parts * B * N : 0;
}

int tnmtl_engine_threads(void)
{
    const char *e = getenv("TNMTL_NUM_THREADS");
    int n = e && *e ? atoi(e) : openblas_get_num_threads();
    return n < 1 ? 1 : n > TNMTL_MAX_THREADS ? TNMTL_MAX_THREADS : n;
}

typedef struct par_arg {
    void (*fn)(void *ctx, int part, int thread);
    void *ctx;
    int n_parts, thread;
    atomic_int *next;           /* the next part to take */
} par_arg;

/* Parts are taken in order from a shared counter, so a thread that is slow
 * (a busy core) takes fewer; each part computes the same bits wherever it
 * runs. */
static void *par_main(void *arg)
{
    const par_arg *a = arg;
    for (;;) {
        const int p = atomic_fetch_add(a->next, 1);
        if (p >= a->n_parts) break;
        a->fn(a->ctx, p, a->thread);
    }
    return NULL;
}

void tnmtl_parallel_for(int n_parts, int n_threads, void (*fn)(void *ctx, int part, int thread), void *ctx)
{
    if (n_threads > n_parts) n_threads = n_parts;
    if (n_threads > TNMTL_MAX_THREADS) n_threads = TNMTL_MAX_THREADS;
    if (n_threads <= 1) {
        for (int p = 0; p < n_parts; p++) fn(ctx, p, 0);
        return;
    }
    pthread_t th[TNMTL_MAX_THREADS];
    par_arg args[TNMTL_MAX_THREADS];
    int started[TNMTL_MAX_THREADS] = {0};
    atomic_int next;
    atomic_init(&next, 0);
    for (int t = 0; t < n_threads; t++) args[t] = (par_arg){fn, ctx, n_parts, t, &next};
    for (int t = 1; t < n_threads; t++) started[t] = pthread_create(&th[t], NULL, par_main, &args[t]) == 0;
    par_main(&args[0]); /* returns when every part has been taken */
    for (int t = 1; t < n_threads; t++)
        if (started[t]) pthread_join(th[t], NULL);
}

/* The column buffer also serves the input gradient of DIRECT layers. */
size_t tnmtl_conv_col_elems(const tnmtl_conv_geom *g, int B)
{
    if (g->method == TNMTL_CONV_MATMUL) return 0;
    const size_t units = (size_t)B * g->Ho;
    const size_t rows = units < (size_t)g->chunk ? units : (size_t)g->chunk;
    return rows * g->Wo * g->K * g->K * g->C;
}

static int simd_forced = -1; /* set by tests only */

/* 2: AVX2, FMA and AVX-512F/VL; 1: AVX2 and FMA; 0: neither */
static int cpu_level(void)
{
#if TNMTL_HAVE_AVX2
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 2 : 1;
#else
    return 0;
#endif
}

int tnmtl_simd_level(void) { return simd_forced >= 0 ? simd_forced : cpu_level(); }

int tnmtl_simd_avx2(void) { return tnmtl_simd_level() >= 1; }

void tnmtl_simd_force(int level)
{
    const int cpu = cpu_level();
    simd_forced = level < 0 ? -1 : level < cpu ? level : cpu;
}

/* tanh(x) ~ x p(x^2) / q(x^2) on [-7.905, 7.905] (the rational approximation
 * used by Eigen; beyond that range tanh rounds to +-1 in float).  Max error
 * about 4e-7 relative; NaN propagates.  TANH_RATIONAL evaluates it for a
 * scalar or a vector type given its mul, add, broadcast and div (the scalar
 * and the SIMD loops do the same operations, so they give the same bits). */
#define TANH_LIM 7.90531110763549805f
#define TANH_RATIONAL(r, v, T, MUL, ADD, SET1, DIV)                   \
    do {                                                              \
        const T x2_ = MUL(v, v);                                      \
        T p_ = SET1(-2.76076847742355e-16f);                          \
        p_ = ADD(MUL(p_, x2_), SET1(2.00018790482477e-13f));          \
        p_ = ADD(MUL(p_, x2_), SET1(-8.60467152213735e-11f));         \
        p_ = ADD(MUL(p_, x2_), SET1(5.12229709037114e-08f));          \
        p_ = ADD(MUL(p_, x2_), SET1(1.48572235717979e-05f));          \
        p_ = ADD(MUL(p_, x2_), SET1(6.37261928875436e-04f));          \
        p_ = ADD(MUL(p_, x2_), SET1(4.89352455891786e-03f));          \
        T q_ = SET1(1.19825839466702e-06f);                           \
        q_ = ADD(MUL(q_, x2_), SET1(1.18534705686654e-04f));          \
        q_ = ADD(MUL(q_, x2_), SET1(2.26843463243900e-03f));          \
        q_ = ADD(MUL(q_, x2_), SET1(4.89352518554385e-03f));          \
        r = DIV(MUL(v, p_), q_);                                      \
    } while (0)
#define S_MUL(a, b) ((a) * (b))
#define S_ADD(a, b) ((a) + (b))
#define S_SET1(a) (a)
#define S_DIV(a, b) ((a) / (b))

float tnmtl_tanh_approx(float x)
{
    const float v = x < -TANH_LIM ? -TANH_LIM : x > TANH_LIM ? TANH_LIM : x;
    float r;
    TANH_RATIONAL(r, v, float, S_MUL, S_ADD, S_SET1, S_DIV);
    return r;
}

#if TNMTL_HAVE_AVX2
__attribute__((target("avx2"))) static size_t tanh_f32_avx2(float *y, const float *x, size_t n)
{
    const __m256 lo = _mm256_set1_ps(-TANH_LIM), hi = _mm256_set1_ps(TANH_LIM);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* max/min return the second operand when one is NaN: x goes second */
        const __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
        __m256 r;
        TANH_RATIONAL(r, v, __m256, _mm256_mul_ps, _mm256_add_ps, _mm256_set1_ps, _mm256_div_ps);
        _mm256_storeu_ps(y + i, r);
    }
    return i;
}
#endif

static void tanh_f32(float *y, const float *x, size_t n)
{
    size_t i = 0;
#if TNMTL_HAVE_AVX2
    if (tnmtl_simd_avx2()) i = tanh_f32_avx2(y, x, n);
#endif
#if defined(__SSE2__)
    const __m128 lo = _mm_set1_ps(-TANH_LIM), hi = _mm_set1_ps(TANH_LIM);
    for (; i + 4 <= n; i += 4) {
        const __m128 v = _mm_min_ps(hi, _mm_max_ps(lo, _mm_loadu_ps(x + i)));
        __m128 r;
        TANH_RATIONAL(r, v, __m128, _mm_mul_ps, _mm_add_ps, _mm_set1_ps, _mm_div_ps);
        _mm_storeu_ps(y + i, r);
    }
#endif
    for (; i < n; i++) y[i] = tnmtl_tanh_approx(x[i]);
}

static void tanh_f64(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = tanh(x[i]);
}

#if TNMTL_HAVE_AVX2
/* pool_rows (layers_impl.h) for float and C % 4 == 0 with AVX2: the same
 * selection per lane (a value replaces the best so far when !(v <= best)
 * and best is not NaN), 8 channels at a time, then 4. */
__attribute__((target("avx2"))) static void pool_rows_f32_avx2(float *restrict out, int32_t *restrict idx,
                                                              const float *restrict img, int n_rows, int W,
                                                              int C, int k, int32_t base)
{
    const int Wo = W / k;
    for (int oh = 0; oh < n_rows; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            float *best = out + ((size_t)oh * Wo + (size_t)ow) * C;
            int32_t *bi = idx + ((size_t)oh * Wo + (size_t)ow) * C;
            const int32_t off0 = (int32_t)(((oh * k) * W + ow * k) * C);
            int c = 0;
            for (; c + 8 <= C; c += 8) {
                const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                __m256 m = _mm256_loadu_ps(img + off0 + c);
                __m256 mi = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_set1_epi32(base + off0 + c), lane));
                for (int kh = 0; kh < k; kh++)
                    for (int kw = kh ? 0 : 1; kw < k; kw++) {
                        const int32_t off = (int32_t)((((oh * k + kh) * W) + ow * k + kw) * C) + c;
                        const __m256 v = _mm256_loadu_ps(img + off);
                        const __m256 take = _mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_NLE_UQ), _mm256_cmp_ps(m, m, _CMP_ORD_Q));
                        const __m256 vi = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_set1_epi32(base + off), lane));
                        m = _mm256_blendv_ps(m, v, take);
                        mi = _mm256_blendv_ps(mi, vi, take);
                    }
                _mm256_storeu_ps(best + c, m);
                _mm256_storeu_si256((__m256i *)(bi + c), _mm256_castps_si256(mi));
            }
            for (; c < C; c += 4) {
                const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
                __m128 m = _mm_loadu_ps(img + off0 + c);
                __m128 mi = _mm_castsi128_ps(_mm_add_epi32(_mm_set1_epi32(base + off0 + c), lane));
                for (int kh = 0; kh < k; kh++)
                    for (int kw = kh ? 0 : 1; kw < k; kw++) {
                        const int32_t off = (int32_t)((((oh * k + kh) * W) + ow * k + kw) * C) + c;
                        const __m128 v = _mm_loadu_ps(img + off);
                        const __m128 take = _mm_and_ps(_mm_cmp_ps(v, m, _CMP_NLE_UQ), _mm_cmp_ps(m, m, _CMP_ORD_Q));
                        const __m128 vi = _mm_castsi128_ps(_mm_add_epi32(_mm_set1_epi32(base + off), lane));
                        m = _mm_blendv_ps(m, v, take);
                        mi = _mm_blendv_ps(mi, vi, take);
                    }
                _mm_storeu_ps(best + c, m);
                _mm_storeu_si128((__m128i *)(bi + c), _mm_castps_si128(mi));
            }
        }
}
#endif

#if TNMTL_HAVE_AVX2
/* pool_rows_f32_avx2 for k = 2 and C % 4 == 0: the same scan (the window
 * row by row, the same selection per lane) with the index vectors of the
 * four positions one add apart. */
__attribute__((target("avx2"))) static void pool2_rows_f32_avx2(float *restrict out, int32_t *restrict idx,
                                                               const float *restrict img, int n_rows, int W,
                                                               int C, int32_t base)
{
    const int Wo = W / 2;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i s01 = _mm256_set1_epi32(C), s10 = _mm256_set1_epi32(W * C), s11 = _mm256_set1_epi32(W * C + C);
    for (int oh = 0; oh < n_rows; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            const int32_t off0 = (int32_t)(((2 * oh) * W + 2 * ow) * C);
            const float *p0 = img + off0, *p1 = p0 + (size_t)W * C;
            const size_t q = ((size_t)oh * Wo + (size_t)ow) * C;
            int c = 0;
            for (; c + 8 <= C; c += 8) {
                const __m256i i00 = _mm256_add_epi32(_mm256_set1_epi32(base + off0 + c), lane);
                __m256 m = _mm256_loadu_ps(p0 + c), mi = _mm256_castsi256_ps(i00);
#define POOL2_STEP(src, shift)                                                                        \
    do {                                                                                              \
        const __m256 v = _mm256_loadu_ps(src);                                                        \
        const __m256 take = _mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_NLE_UQ), _mm256_cmp_ps(m, m, _CMP_ORD_Q)); \
        m = _mm256_blendv_ps(m, v, take);                                                             \
        mi = _mm256_blendv_ps(mi, _mm256_castsi256_ps(_mm256_add_epi32(i00, shift)), take);          \
    } while (0)
                POOL2_STEP(p0 + C + c, s01);
                POOL2_STEP(p1 + c, s10);
                POOL2_STEP(p1 + C + c, s11);
#undef POOL2_STEP
                _mm256_storeu_ps(out + q + c, m);
                _mm256_storeu_si256((__m256i *)(idx + q + c), _mm256_castps_si256(mi));
            }
            if (c < C) { /* C % 8 == 4: the last 4 channels */
                const __m128i i00 = _mm_add_epi32(_mm_set1_epi32(base + off0 + c), _mm256_castsi256_si128(lane));
                __m128 m = _mm_loadu_ps(p0 + c), mi = _mm_castsi128_ps(i00);
#define POOL2_STEP4(src, shift)                                                                       \
    do {                                                                                              \
        const __m128 v = _mm_loadu_ps(src);                                                           \
        const __m128 take = _mm_and_ps(_mm_cmp_ps(v, m, _CMP_NLE_UQ), _mm_cmp_ps(m, m, _CMP_ORD_Q));  \
        m = _mm_blendv_ps(m, v, take);                                                                \
        mi = _mm_blendv_ps(mi, _mm_castsi128_ps(_mm_add_epi32(i00, _mm256_castsi256_si128(shift))), take); \
    } while (0)
                POOL2_STEP4(p0 + C + c, s01);
                POOL2_STEP4(p1 + c, s10);
                POOL2_STEP4(p1 + C + c, s11);
#undef POOL2_STEP4
                _mm_storeu_ps(out + q + c, m);
                _mm_storeu_si128((__m128i *)(idx + q + c), _mm_castps_si128(mi));
            }
        }
}

#endif

/* pool_rows_f32 takes the AVX2 loops above when they apply (returns 1). */
static int pool_rows_fast_f32(float *out, int32_t *idx, const float *img, int n_rows, int W, int C, int k,
                              int32_t base)
{
#if TNMTL_HAVE_AVX2
    if (k == 2 && C % 4 == 0 && tnmtl_simd_avx2()) {
        pool2_rows_f32_avx2(out, idx, img, n_rows, W, C, base);
        return 1;
    }
    if (C % 4 == 0 && tnmtl_simd_avx2()) {
        pool_rows_f32_avx2(out, idx, img, n_rows, W, C, k, base);
        return 1;
    }
#endif
    (void)out, (void)idx, (void)img, (void)n_rows, (void)W, (void)C, (void)k, (void)base;
    return 0;
}

static int pool_rows_fast_f64(double *out, int32_t *idx, const double *img, int n_rows, int W, int C, int k,
                              int32_t base)
{
    (void)out, (void)idx, (void)img, (void)n_rows, (void)W, (void)C, (void)k, (void)base;
    return 0;
}

#if TNMTL_HAVE_AVX2
/* unpool_rows (layers_impl.h) for float, k = 2 and C % 4 == 0 with AVX2:
 * each of the 4 window positions gets the pooled gradient where it was the
 * recorded maximum and 0 elsewhere, 8 channels at a time, then 4 (no memset,
 * no scalar scatter); the columns past the last window are zeroed. */
__attribute__((target("avx2"))) static void unpool_rows_f32_avx2(float *restrict d, const float *restrict dp,
                                                                const int32_t *restrict idx, int n_rows, int W,
                                                                int C, int32_t base)
{
    const int Wp = W / 2;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i p01 = _mm256_set1_epi32(C), p10 = _mm256_set1_epi32(W * C), p11 = _mm256_set1_epi32(W * C + C);
    for (int i = 0; i < n_rows; i++) {
        float *row0 = d + (size_t)(2 * i) * W * C, *row1 = row0 + (size_t)W * C;
        for (int jp = 0; jp < Wp; jp++) {
            const int32_t off = (int32_t)(((2 * i) * W + 2 * jp) * C);
            float *o0 = row0 + (size_t)(2 * jp) * C, *o1 = row1 + (size_t)(2 * jp) * C;
            const size_t q = ((size_t)i * Wp + (size_t)jp) * C;
            int c = 0;
            for (; c + 8 <= C; c += 8) {
                const __m256 gv = _mm256_loadu_ps(dp + q + c);
                /* the offset of each lane's maximum relative to the window's first element */
                const __m256i rel = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(idx + q + c)),
                                                     _mm256_add_epi32(_mm256_set1_epi32(base + off + c), lane));
                _mm256_storeu_ps(o0 + c, _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, _mm256_setzero_si256()))));
                _mm256_storeu_ps(o0 + C + c, _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, p01))));
                _mm256_storeu_ps(o1 + c, _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, p10))));
                _mm256_storeu_ps(o1 + C + c, _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, p11))));
            }
            if (c < C) { /* C % 8 == 4: the last 4 channels */
                const __m128 gv = _mm_loadu_ps(dp + q + c);
                const __m128i rel = _mm_sub_epi32(_mm_loadu_si128((const __m128i *)(idx + q + c)),
                                                  _mm_add_epi32(_mm_set1_epi32(base + off + c), _mm256_castsi256_si128(lane)));
                _mm_storeu_ps(o0 + c, _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(rel, _mm_setzero_si128()))));
                _mm_storeu_ps(o0 + C + c, _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(rel, _mm256_castsi256_si128(p01)))));
                _mm_storeu_ps(o1 + c, _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(rel, _mm256_castsi256_si128(p10)))));
                _mm_storeu_ps(o1 + C + c, _mm_and_ps(gv, _mm_castsi128_ps(_mm_cmpeq_epi32(rel, _mm256_castsi256_si128(p11)))));
            }
        }
        if (W % 2) {
            memset(row0 + (size_t)(W - 1) * C, 0, (size_t)C * sizeof *d);
            memset(row1 + (size_t)(W - 1) * C, 0, (size_t)C * sizeof *d);
        }
    }
}
#endif

/* unpool_rows_f32 takes the AVX2 loop above when it applies (returns 1). */
static int unpool_rows_fast_f32(float *d, const float *dp, const int32_t *idx, int n_rows, int W, int C, int k,
                                int32_t base)
{
#if TNMTL_HAVE_AVX2
    if (k == 2 && C % 4 == 0 && tnmtl_simd_avx2()) {
        unpool_rows_f32_avx2(d, dp, idx, n_rows, W, C, base);
        return 1;
    }
#endif
    (void)d, (void)dp, (void)idx, (void)n_rows, (void)W, (void)C, (void)k, (void)base;
    return 0;
}

static int unpool_rows_fast_f64(double *d, const double *dp, const int32_t *idx, int n_rows, int W, int C, int k,
                                int32_t base)
{
    (void)d, (void)dp, (void)idx, (void)n_rows, (void)W, (void)C, (void)k, (void)base;
    return 0;
}

#define REAL float
#define REAL_F32 1
#define S(name) name##_f32
#define PUB(name) name
#define GEMM cblas_sgemm
#define TANH_N tanh_f32
#include "layers_impl.h"
#undef REAL
#undef REAL_F32
#undef S
#undef PUB
#undef GEMM
#undef TANH_N

#define REAL double
#define S(name) name##_f64
#define PUB(name) name##_f64
#define GEMM cblas_dgemm
#define TANH_N tanh_f64
#include "layers_impl.h"
#undef REAL
#undef S
#undef PUB
#undef GEMM
#undef TANH_N
