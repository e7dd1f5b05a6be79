/* test_layers.c - every layer kernel on its own: central finite differences
 * in double for the input, weight and bias gradients; float against double;
 * chunking, fusion, ties, NaN and the hand-computed loss values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "layers.h"
#include "testutil.h"
#include "tnmtl/net.h"
#include "tnmtl/rng.h"

#define GC_H 1e-6
#define GC_ATOL 1e-8
#define GC_RTOL 1e-6

static void fill_normal(double *x, size_t n, tnmtl_rng *rng, double scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * tnmtl_rng_normal(rng);
}

static float *to_f32(const double *x, size_t n)
{
    float *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

static double *to_f64(const float *x, size_t n)
{
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* float result vs double reference: |a-b| <= rtol * max|b| + rtol * |b| */
static void assert_close_f32(const char *name, const float *a, const double *b, size_t n, double rtol)
{
    double *ad = to_f64(a, n);
    double e = tu_max_rel_err(ad, b, n, rtol * (max_abs(b, n) + 1e-30), rtol);
    if (!(e <= 1)) printf("  %s: float vs double error ratio %g\n", name, e);
    free(ad);
    assert_true(e <= 1);
}

static void check(const char *name, gc_result r)
{
    gc_print(name, &r);
    assert_true(gc_ok(&r));
}

/* ---- conv ---------------------------------------------------------------- */

typedef struct conv_case {
    tnmtl_conv_geom g;
    int B, threads;
    size_t n_in, n_w, n_out;
    double *in, *w, *b, *R, *out, *col;
} conv_case;

/* chunk > 0 and method >= 0 override the defaults */
static void conv_case_init(conv_case *c, int B, int H, int W, int C, int K, int F, int same, int chunk,
                           int method, uint64_t seed)
{
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, seed);
    tnmtl_conv_geom_init(&c->g, H, W, C, K, F, same);
    if (chunk > 0) c->g.chunk = chunk;
    if (method >= 0) c->g.method = (tnmtl_conv_method)method;
    c->B = B;
    c->threads = 1;
    c->n_in = (size_t)B * H * W * C;
    c->n_w = (size_t)K * K * C * F;
    c->n_out = (size_t)B * c->g.Ho * c->g.Wo * F;
    c->in = malloc(c->n_in * sizeof(double));
    c->w = malloc(c->n_w * sizeof(double));
    c->b = malloc((size_t)F * sizeof(double));
    c->R = malloc(c->n_out * sizeof(double));
    c->out = malloc(c->n_out * sizeof(double));
    c->col = malloc((tnmtl_conv_scratch_elems(&c->g, B, 3) + 1) * sizeof(double));
    fill_normal(c->in, c->n_in, &rng, 1);
    fill_normal(c->w, c->n_w, &rng, 0.5);
    fill_normal(c->b, (size_t)F, &rng, 0.5);
    fill_normal(c->R, c->n_out, &rng, 1);
}

static void conv_case_free(conv_case *c)
{
    free(c->in);
    free(c->w);
    free(c->b);
    free(c->R);
    free(c->out);
    free(c->col);
}

/* L = sum(conv(in) * R) */
static double conv_loss(void *ctx)
{
    conv_case *c = ctx;
    tnmtl_conv_forward_f64(c->out, NULL, c->in, c->w, c->b, c->col, c->threads, &c->g, c->B, TNMTL_ACT_NONE);
    return dot(c->out, c->R, c->n_out);
}

static const char *method_name[] = {"im2col", "matmul", "direct"};

static void run_conv_case_m(int B, int H, int W, int C, int K, int F, int same, int chunk, int method)
{
    conv_case c;
    conv_case_init(&c, B, H, W, C, K, F, same, chunk, method, 1000 + (uint64_t)(H * 31 + K * 7 + same));
    printf(" conv B=%d %dx%dx%d k%d f%d %s chunk %d -> %dx%d, %s\n", B, H, W, C, K, F,
           same ? "same" : "valid", c.g.chunk, c.g.Ho, c.g.Wo, method_name[c.g.method]);
    double *din = malloc(c.n_in * sizeof(double)), *dw = calloc(c.n_w, sizeof(double)),
           *db = calloc((size_t)F, sizeof(double));
    conv_loss(&c);
    tnmtl_conv_backward_f64(din, dw, db, c.R, NULL, c.in, c.w, c.col, 1, &c.g, B);
    check("conv dx", gc_check(conv_loss, &c, c.in, din, (int64_t)c.n_in, GC_H, GC_ATOL, GC_RTOL, 400));
    check("conv dw", gc_check(conv_loss, &c, c.w, dw, (int64_t)c.n_w, GC_H, GC_ATOL, GC_RTOL, 400));
    check("conv db", gc_check(conv_loss, &c, c.b, db, F, GC_H, GC_ATOL, GC_RTOL, 400));

    /* the weight and bias gradients accumulate, the input gradient is overwritten */
    double *dw2 = malloc(c.n_w * sizeof(double)), *din2 = malloc(c.n_in * sizeof(double));
    memcpy(dw2, dw, c.n_w * sizeof(double));
    tnmtl_conv_backward_f64(din2, dw2, NULL, c.R, NULL, c.in, c.w, c.col, 1, &c.g, B);
    for (size_t i = 0; i < c.n_w; i++) assert_true(fabs(dw2[i] - 2 * dw[i]) <= 1e-12 * (1 + fabs(dw[i])));
    for (size_t i = 0; i < c.n_in; i++) assert_true(fabs(din2[i] - din[i]) <= 1e-12 * (1 + fabs(din[i])));

    /* float path agrees with the double path */
    float *fin = to_f32(c.in, c.n_in), *fw = to_f32(c.w, c.n_w), *fb = to_f32(c.b, (size_t)F),
          *fR = to_f32(c.R, c.n_out);
    float *fout = malloc(c.n_out * sizeof(float)), *fdin = malloc(c.n_in * sizeof(float)),
          *fdw = calloc(c.n_w, sizeof(float)), *fdb = calloc((size_t)F, sizeof(float)),
          *fcol = malloc((tnmtl_conv_scratch_elems(&c.g, B, 3) + 1) * sizeof(float));
    tnmtl_conv_forward_f32(fout, NULL, fin, fw, fb, fcol, 1, &c.g, B, TNMTL_ACT_NONE);
    tnmtl_conv_backward_f32(fdin, fdw, fdb, fR, NULL, fin, fw, fcol, 1, &c.g, B);
    /* three threads give the same bits */
    float *tout = malloc(c.n_out * sizeof(float)), *tdin = malloc(c.n_in * sizeof(float)),
          *tdw = calloc(c.n_w, sizeof(float)), *tdb = calloc((size_t)F, sizeof(float));
    tnmtl_conv_forward_f32(tout, NULL, fin, fw, fb, fcol, 3, &c.g, B, TNMTL_ACT_NONE);
    tnmtl_conv_backward_f32(tdin, tdw, tdb, fR, NULL, fin, fw, fcol, 3, &c.g, B);
    assert_memory_equal(tout, fout, c.n_out * sizeof(float));
    assert_memory_equal(tdin, fdin, c.n_in * sizeof(float));
    assert_memory_equal(tdw, fdw, c.n_w * sizeof(float));
    assert_memory_equal(tdb, fdb, (size_t)F * sizeof(float));
    free(tout), free(tdin), free(tdw), free(tdb);
    conv_loss(&c);
    assert_close_f32("conv out", fout, c.out, c.n_out, 1e-5);
    assert_close_f32("conv dx", fdin, din, c.n_in, 1e-5);
    assert_close_f32("conv dw", fdw, dw, c.n_w, 1e-5);
    assert_close_f32("conv db", fdb, db, (size_t)F, 1e-5);

    free(fin), free(fw), free(fb), free(fR), free(fout), free(fdin), free(fdw), free(fdb), free(fcol);
    free(din), free(dw), free(db), free(dw2), free(din2);
    conv_case_free(&c);
}

static void run_conv_case(int B, int H, int W, int C, int K, int F, int same, int chunk)
{
    run_conv_case_m(B, H, W, C, K, F, same, chunk, -1);
}

static void test_conv_valid(void **state)
{
    (void)state;
    run_conv_case(2, 7, 6, 3, 3, 4, 0, 0);
    run_conv_case(2, 9, 8, 1, 5, 3, 0, 0);  /* c_in 1, like the first Omniglot layer */
    run_conv_case(3, 5, 5, 2, 5, 2, 0, 0);  /* kernel as big as the input: 1x1 output */
}

static void test_conv_same(void **state)
{
    (void)state;
    run_conv_case(2, 6, 5, 3, 3, 4, 1, 0);
    run_conv_case(2, 5, 4, 2, 5, 3, 1, 0);  /* padding 2 on a 4-wide image */
    run_conv_case(1, 3, 3, 2, 7, 2, 1, 0);  /* kernel bigger than the image */
}

static void test_conv_1x1_and_chunks(void **state)
{
    (void)state;
    run_conv_case(3, 4, 5, 6, 1, 3, 0, 0);  /* 1x1: direct GEMM, no im2col */
    run_conv_case(3, 4, 5, 6, 1, 3, 0, 2);
    run_conv_case(3, 6, 5, 2, 3, 3, 0, 1);  /* one output row per chunk */
    run_conv_case(3, 6, 5, 2, 3, 3, 1, 5);  /* chunks straddle examples */
}

/* The direct kernels and the im2col path on the same layers; tails of the
 * pixel and tap blocks, every kind of channel block, several of them. */
static void test_conv_direct(void **state)
{
    (void)state;
    for (int level = 0; level < 2; level++) { /* the baseline and AVX2 kernels, then the detected ones */
        tnmtl_simd_force(level);
        run_conv_case_m(2, 9, 11, 1, 5, 8, 0, 3, TNMTL_CONV_DIRECT);
        run_conv_case_m(2, 7, 6, 3, 3, 16, 0, 0, TNMTL_CONV_DIRECT);
        run_conv_case_m(2, 8, 10, 8, 3, 12, 0, 2, TNMTL_CONV_DIRECT);
    }
    tnmtl_simd_force(-1);
    run_conv_case_m(2, 9, 8, 1, 5, 8, 0, 0, -1);  /* default method: direct */
    run_conv_case_m(2, 9, 11, 1, 5, 8, 0, 3, TNMTL_CONV_DIRECT); /* Wo = 7: a 4-block and 3 singles */
    run_conv_case_m(2, 7, 6, 3, 3, 16, 0, 0, TNMTL_CONV_DIRECT); /* KC = 9: 4 + 4 + 1 taps */
    run_conv_case_m(2, 6, 6, 2, 2, 8, 0, 1, TNMTL_CONV_DIRECT);
    run_conv_case_m(2, 9, 8, 1, 5, 8, 0, 0, TNMTL_CONV_IM2COL);
    /* channel blocks of 2 vectors, 1 + a half, 1, a half (AVX2 float: 16,
     * 12, 8, 4 channels), also for the input gradient (C % 4 == 0), with
     * pixel blocks and their tails */
    run_conv_case_m(2, 8, 10, 8, 3, 12, 0, 2, TNMTL_CONV_DIRECT);  /* like Omniglot's conv2 */
    run_conv_case_m(1, 3, 9, 12, 2, 16, 0, 0, TNMTL_CONV_DIRECT);  /* C 12, F 16 like conv3 */
    run_conv_case_m(1, 3, 9, 4, 3, 12, 0, 0, TNMTL_CONV_DIRECT);
    run_conv_case_m(2, 8, 10, 8, 3, 12, 0, 0, -1);                /* default method: direct */
    /* bigger layers (beyond what finite differences resolve): against the
     * im2col path, and baseline against AVX2 */
    const int geo[8][2] = {{2, 16}, {8, 12}, {12, 4}, {16, 4}, {8, 20}, {20, 8}, {4, 12}, {12, 16}}; /* C, F */
    for (int k = 0; k < 8; k++) {
        const int C = geo[k][0], F = geo[k][1];
        conv_case a, b;
        conv_case_init(&a, 3, 12, 17, C, 3, F, 0, 0, TNMTL_CONV_DIRECT, 4); /* Wo 15 */
        conv_case_init(&b, 3, 12, 17, C, 3, F, 0, 0, TNMTL_CONV_IM2COL, 4);
        conv_loss(&a);
        conv_loss(&b);
        assert_true(tu_max_rel_err(a.out, b.out, a.n_out, 1e-13, 1e-13) <= 1);
        double *gb[2] = {calloc(b.n_in, sizeof(double)), calloc(b.n_w, sizeof(double))};
        tnmtl_conv_backward_f64(gb[0], gb[1], NULL, b.R, NULL, b.in, b.w, b.col, 1, &b.g, 3);
        /* the baseline and the AVX2 kernels add the same terms in the same
         * order per element, except the pixel-pair kernels' weight gradient
         * (even and odd pixels summed apart); AVX2 fuses each multiply-add
         * (one rounding instead of two), so they agree to rounding */
        double *dw[3], *dx[3], *out0 = malloc(a.n_out * sizeof(double));
        for (int v = 0; v < 3; v++) {
            tnmtl_simd_force(v);
            conv_loss(&a);
            if (v == 0) memcpy(out0, a.out, a.n_out * sizeof(double));
            dw[v] = calloc(a.n_w, sizeof(double));
            dx[v] = calloc(a.n_in, sizeof(double));
            tnmtl_conv_backward_f64(dx[v], dw[v], NULL, a.R, NULL, a.in, a.w, a.col, 1, &a.g, 3);
        }
        printf("  C %d F %d: kernels up to level %d of 2 run\n", C, F, tnmtl_simd_level());
        tnmtl_simd_force(-1);
        assert_true(tu_max_rel_err(out0, a.out, a.n_out, 1e-14, 1e-13) <= 1);
        for (int v = 1; v < 3; v++) {
            assert_true(tu_max_rel_err(dw[0], dw[v], a.n_w, 1e-14, 1e-13) <= 1);
            assert_true(tu_max_rel_err(dx[0], dx[v], a.n_in, 1e-14, 1e-13) <= 1);
        }
        assert_true(tu_max_rel_err(dx[0], gb[0], a.n_in, 1e-12, 1e-12) <= 1);
        assert_true(tu_max_rel_err(dw[0], gb[1], a.n_w, 1e-12, 1e-12) <= 1);
        /* the float kernels (half vectors on AVX2) against the double ones */
        float *fin = to_f32(a.in, a.n_in), *fw = to_f32(a.w, a.n_w), *fb = to_f32(a.b, (size_t)F),
              *fR = to_f32(a.R, a.n_out), *fout = malloc(a.n_out * sizeof(float)),
              *fdx = malloc(a.n_in * sizeof(float)), *fdw = calloc(a.n_w, sizeof(float)),
              *fcol = malloc((tnmtl_conv_scratch_elems(&a.g, 3, 1) + 1) * sizeof(float));
        tnmtl_conv_forward_f32(fout, NULL, fin, fw, fb, fcol, 1, &a.g, 3, TNMTL_ACT_NONE);
        tnmtl_conv_backward_f32(fdx, fdw, NULL, fR, NULL, fin, fw, fcol, 1, &a.g, 3);
        assert_close_f32("direct out", fout, b.out, a.n_out, 1e-5);
        assert_close_f32("direct dx", fdx, gb[0], a.n_in, 1e-5);
        assert_close_f32("direct dw", fdw, gb[1], a.n_w, 1e-5);
        free(fin), free(fw), free(fb), free(fR), free(fout), free(fdx), free(fdw), free(fcol);
        for (int v = 0; v < 3; v++) free(dw[v]), free(dx[v]);
        free(out0), free(gb[0]), free(gb[1]);
        conv_case_free(&a);
        conv_case_free(&b);
    }
}

/* The float conv fused with a 2x2 max-pool (the trainer's path: the
 * kernels for one input channel, pixel pairs, 8 + 4 channel pooling and
 * unpooling, padded input gradient, odd widths), at every instruction-set
 * level, against the double conv followed by the double max-pool. */
static void test_conv_pool_fused_levels(void **state)
{
    (void)state;
    /* C, K, F, W, H; {4, 3, 16, 301, 6}: an output row of 2 x 16 x 150 > TNMTL_CONV_DX_PAD
     * elements, so the input gradient goes through the stack buffer in two segments; the
     * 3x3 ones with 8-16 filters run forward as Winograd on AVX2 (groups of 4 pooling
     * windows, the last group shifted back: 5 and 150 windows per row) */
    const int geo[6][5] = {{1, 5, 8, 19, 18}, {8, 3, 12, 13, 12}, {12, 3, 16, 13, 12}, {1, 3, 16, 12, 11},
                           {4, 3, 16, 301, 6}, {16, 3, 8, 12, 10}};
    for (int k = 0; k < 6; k++) {
        const int C = geo[k][0], K = geo[k][1], F = geo[k][2], W = geo[k][3], H = geo[k][4], B = 3;
        conv_case c;
        conv_case_init(&c, B, H, W, C, K, F, 0, 0, TNMTL_CONV_IM2COL, 500 + (uint64_t)k);
        const int Ho = c.g.Ho, Wo = c.g.Wo, Hp = Ho / 2, Wp = Wo / 2;
        const size_t np = (size_t)B * Hp * Wp * F;
        /* reference: conv, pool, L = sum(pooled * R[:np]); back through both */
        double *conv = malloc(c.n_out * sizeof(double)), *pooled = malloc(np * sizeof(double));
        double *dconv = malloc(c.n_out * sizeof(double)), *rdx = malloc(c.n_in * sizeof(double));
        double *rdw = calloc(c.n_w, sizeof(double)), *rdb = calloc((size_t)F, sizeof(double));
        int32_t *ridx = malloc(np * sizeof(int32_t));
        tnmtl_conv_forward_f64(conv, NULL, c.in, c.w, c.b, c.col, 1, &c.g, B, TNMTL_ACT_NONE);
        tnmtl_maxpool_forward_f64(pooled, ridx, conv, B, Ho, Wo, F, 2, 1);
        tnmtl_maxpool_backward_f64(dconv, c.R, ridx, B, Ho, Wo, F, 2, 1);
        tnmtl_conv_backward_f64(rdx, rdw, rdb, dconv, NULL, c.in, c.w, c.col, 1, &c.g, B);
        tnmtl_conv_geom gp;
        tnmtl_conv_geom_init(&gp, H, W, C, K, F, 0);
        tnmtl_conv_geom_set_pool(&gp, 2);
        assert_int_equal(gp.method, TNMTL_CONV_DIRECT);
        assert_int_equal(tnmtl_conv_wino_ok(&gp), K == 3 && C % 4 == 0);
        float *fin = to_f32(c.in, c.n_in), *fw = to_f32(c.w, c.n_w), *fb = to_f32(c.b, (size_t)F),
              *fR = to_f32(c.R, np), *fo = malloc(np * sizeof(float)), *fdx = malloc(c.n_in * sizeof(float)),
              *fdw = malloc(c.n_w * sizeof(float)), *fdb = malloc((size_t)F * sizeof(float)),
              *scr = malloc(tnmtl_conv_scratch_elems(&gp, B, 1) * sizeof(float));
        int32_t *fidx = malloc(np * sizeof(int32_t));
        for (int level = 0; level < 3; level++) {
            tnmtl_simd_force(level);
            printf("  C %d K %d F %d W %d, level %d\n", C, K, F, W, tnmtl_simd_level());
            memset(fdw, 0, c.n_w * sizeof(float));
            memset(fdb, 0, (size_t)F * sizeof(float));
            tnmtl_conv_forward_f32(fo, fidx, fin, fw, fb, scr, 1, &gp, B, TNMTL_ACT_NONE);
            tnmtl_conv_backward_f32(fdx, fdw, fdb, fR, fidx, fin, fw, scr, 1, &gp, B);
            assert_memory_equal(fidx, ridx, np * sizeof(int32_t));
            assert_close_f32("fused out", fo, pooled, np, 1e-5);
            assert_close_f32("fused dx", fdx, rdx, c.n_in, 1e-5);
            assert_close_f32("fused dw", fdw, rdw, c.n_w, 1e-5);
            assert_close_f32("fused db", fdb, rdb, (size_t)F, 1e-5);
        }
        tnmtl_simd_force(-1);
        free(conv), free(pooled), free(dconv), free(rdx), free(rdw), free(rdb), free(ridx);
        free(fin), free(fw), free(fb), free(fR), free(fo), free(fdx), free(fdw), free(fdb), free(scr), free(fidx);
        conv_case_free(&c);
    }
}

/* The backward pass of a conv fused with a k x k max-pool runs from the
 * pooled gradient over the argmax pixels only (tnmtl_conv_pooled_bwd_ok):
 * finite differences of the fused double layer, the double and float
 * layers at every instruction-set level against the dense conv + max-pool,
 * with 2x2 and 3x3 pools, 3x3 and 5x5 kernels, every channel count it
 * takes, and without the input gradient (a first layer). */
typedef struct pooled_case {
    tnmtl_conv_geom g;
    int B;
    size_t n_pool;
    double *in, *w, *b, *R, *pooled, *scratch;
    int32_t *idx;
} pooled_case;

static double pooled_loss(void *ctx) /* L = sum(pool(conv(in)) * R) */
{
    pooled_case *c = ctx;
    tnmtl_conv_forward_f64(c->pooled, c->idx, c->in, c->w, c->b, c->scratch, 1, &c->g, c->B, TNMTL_ACT_NONE);
    return dot(c->pooled, c->R, c->n_pool);
}

static void test_conv_pool_sparse_backward(void **state)
{
    (void)state;
    /* C, K, F, k, H, W */
    const int geo[6][6] = {{8, 3, 12, 2, 10, 11}, {12, 3, 16, 2, 9, 12}, {4, 5, 8, 3, 13, 15},
                           {16, 5, 4, 2, 9, 10},  {4, 3, 8, 3, 12, 9},   {8, 5, 4, 3, 11, 14}};
    for (int k = 0; k < 6; k++) {
        const int C = geo[k][0], K = geo[k][1], F = geo[k][2], P = geo[k][3], H = geo[k][4], W = geo[k][5], B = 3;
        conv_case c; /* the dense reference: conv, then max-pool */
        conv_case_init(&c, B, H, W, C, K, F, 0, 0, TNMTL_CONV_IM2COL, 700 + (uint64_t)k);
        const int Ho = c.g.Ho, Wo = c.g.Wo;
        pooled_case pc = {c.g, B, (size_t)B * (Ho / P) * (Wo / P) * F, c.in, c.w, c.b, c.R, NULL, NULL, NULL};
        tnmtl_conv_geom_init(&pc.g, H, W, C, K, F, 0);
        tnmtl_conv_geom_set_pool(&pc.g, P);
        assert_true(tnmtl_conv_pooled_bwd_ok(&pc.g));
        printf("  C %d K %d F %d pool %d, %dx%d\n", C, K, F, P, H, W);
        pc.pooled = malloc(pc.n_pool * sizeof(double));
        pc.idx = malloc(pc.n_pool * sizeof(int32_t));
        pc.scratch = malloc(tnmtl_conv_scratch_elems(&pc.g, B, 1) * sizeof(double));
        double *conv = malloc(c.n_out * sizeof(double)), *dconv = malloc(c.n_out * sizeof(double));
        double *rpool = malloc(pc.n_pool * sizeof(double)), *rdx = malloc(c.n_in * sizeof(double));
        double *rdw = calloc(c.n_w, sizeof(double)), *rdb = calloc((size_t)F, sizeof(double));
        int32_t *ridx = malloc(pc.n_pool * sizeof(int32_t));
        tnmtl_conv_forward_f64(conv, NULL, c.in, c.w, c.b, c.col, 1, &c.g, B, TNMTL_ACT_NONE);
        tnmtl_maxpool_forward_f64(rpool, ridx, conv, B, Ho, Wo, F, P, 1);
        tnmtl_maxpool_backward_f64(dconv, c.R, ridx, B, Ho, Wo, F, P, 1);
        tnmtl_conv_backward_f64(rdx, rdw, rdb, dconv, NULL, c.in, c.w, c.col, 1, &c.g, B);

        double *dx = malloc(c.n_in * sizeof(double)), *dw = malloc(c.n_w * sizeof(double)),
               *db = malloc((size_t)F * sizeof(double));
        for (int level = 0; level < 3; level++) {
            tnmtl_simd_force(level);
            memset(dw, 0, c.n_w * sizeof(double));
            memset(db, 0, (size_t)F * sizeof(double));
            pooled_loss(&pc);
            assert_memory_equal(pc.idx, ridx, pc.n_pool * sizeof(int32_t));
            tnmtl_conv_backward_f64(dx, dw, db, c.R, pc.idx, c.in, c.w, pc.scratch, 1, &pc.g, B);
            assert_true(tu_max_rel_err(dx, rdx, c.n_in, 1e-13, 1e-13) <= 1);
            assert_true(tu_max_rel_err(dw, rdw, c.n_w, 1e-13, 1e-13) <= 1);
            assert_true(tu_max_rel_err(db, rdb, (size_t)F, 1e-13, 1e-13) <= 1);
            if (level == 0 || k == 0) {
                /* finite differences through the fused layer; the loss is
                 * linear in each input between argmax changes, so a step of
                 * 1e-4 has no truncation error and 100x less rounding error
                 * than GC_H on this loss of a few hundred */
                const double h = 1e-4;
                check("pooled dx", gc_check(pooled_loss, &pc, pc.in, dx, (int64_t)c.n_in, h, GC_ATOL, GC_RTOL, 300));
                check("pooled dw", gc_check(pooled_loss, &pc, pc.w, dw, (int64_t)c.n_w, h, GC_ATOL, GC_RTOL, 300));
                check("pooled db", gc_check(pooled_loss, &pc, pc.b, db, F, h, GC_ATOL, GC_RTOL, 300));
            }
            /* a first layer: no input gradient, the same weight gradient */
            double *dw1 = calloc(c.n_w, sizeof(double));
            tnmtl_conv_backward_f64(NULL, dw1, NULL, c.R, pc.idx, c.in, c.w, pc.scratch, 1, &pc.g, B);
            assert_memory_equal(dw1, dw, c.n_w * sizeof(double));
            free(dw1);
        }
        /* float, every level, against the double reference */
        float *fin = to_f32(c.in, c.n_in), *fw = to_f32(c.w, c.n_w), *fb = to_f32(c.b, (size_t)F),
              *fR = to_f32(c.R, pc.n_pool), *fo = malloc(pc.n_pool * sizeof(float)),
              *fdx = malloc(c.n_in * sizeof(float)), *fdw = malloc(c.n_w * sizeof(float)),
              *fdb = malloc((size_t)F * sizeof(float)),
              *fscr = malloc(tnmtl_conv_scratch_elems(&pc.g, B, 1) * sizeof(float));
        int32_t *fidx = malloc(pc.n_pool * sizeof(int32_t));
        for (int level = 0; level < 3; level++) {
            tnmtl_simd_force(level);
            memset(fdw, 0, c.n_w * sizeof(float));
            memset(fdb, 0, (size_t)F * sizeof(float));
            tnmtl_conv_forward_f32(fo, fidx, fin, fw, fb, fscr, 1, &pc.g, B, TNMTL_ACT_NONE);
            tnmtl_conv_backward_f32(fdx, fdw, fdb, fR, fidx, fin, fw, fscr, 1, &pc.g, B);
            assert_memory_equal(fidx, ridx, pc.n_pool * sizeof(int32_t));
            assert_close_f32("pooled out", fo, rpool, pc.n_pool, 1e-5);
            assert_close_f32("pooled dx", fdx, rdx, c.n_in, 1e-5);
            assert_close_f32("pooled dw", fdw, rdw, c.n_w, 1e-5);
            assert_close_f32("pooled db", fdb, rdb, (size_t)F, 1e-5);
        }
        tnmtl_simd_force(-1);
        free(fin), free(fw), free(fb), free(fR), free(fo), free(fdx), free(fdw), free(fdb), free(fscr), free(fidx);
        free(dx), free(dw), free(db), free(conv), free(dconv), free(rpool), free(rdx), free(rdw), free(rdb);
        free(ridx), free(pc.pooled), free(pc.idx), free(pc.scratch);
        conv_case_free(&c);
    }
}

/* Layers big enough to be cut over threads: 1, 2 and 3 threads give the
 * same bits (the parts do not depend on the thread count). */
static void test_threads_bit_identical(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++) {
        conv_case c;
        if (m == 0) conv_case_init(&c, 16, 20, 19, 4, 3, 12, 0, 5, -1, 31);
        else conv_case_init(&c, 9, 30, 31, 1, 5, 8, 0, 0, -1, 32);
        float *fin = to_f32(c.in, c.n_in), *fw = to_f32(c.w, c.n_w), *fb = to_f32(c.b, (size_t)c.g.F),
              *fR = to_f32(c.R, c.n_out);
        float *scr = malloc(tnmtl_conv_scratch_elems(&c.g, c.B, 3) * sizeof(float));
        float *out[3], *din[3], *dw[3], *db[3];
        printf(" %s conv, %.2g MACs\n", method_name[c.g.method], (double)c.n_out * c.g.K * c.g.K * c.g.C);
        for (int t = 0; t < 3; t++) {
            out[t] = malloc(c.n_out * sizeof(float));
            din[t] = malloc(c.n_in * sizeof(float));
            dw[t] = calloc(c.n_w, sizeof(float));
            db[t] = calloc((size_t)c.g.F, sizeof(float));
            tnmtl_conv_forward_f32(out[t], NULL, fin, fw, fb, scr, t + 1, &c.g, c.B, TNMTL_ACT_TANH);
            tnmtl_conv_backward_f32(din[t], dw[t], db[t], fR, NULL, fin, fw, scr, t + 1, &c.g, c.B);
            if (t == 0) continue;
            assert_memory_equal(out[t], out[0], c.n_out * sizeof(float));
            assert_memory_equal(din[t], din[0], c.n_in * sizeof(float));
            assert_memory_equal(dw[t], dw[0], c.n_w * sizeof(float));
            assert_memory_equal(db[t], db[0], (size_t)c.g.F * sizeof(float));
        }
        /* the conv fused with a 2x2 pool */
        {
            tnmtl_conv_geom gp = c.g;
            tnmtl_conv_geom_set_pool(&gp, 2);
            const size_t npool = (size_t)c.B * (gp.Ho / 2) * (gp.Wo / 2) * gp.F;
            float *scr2 = malloc(tnmtl_conv_scratch_elems(&gp, c.B, 3) * sizeof(float));
            float *po[2], *pdin[2], *pdw[2];
            int32_t *pidx[2];
            for (int t = 0; t < 2; t++) {
                po[t] = malloc(npool * sizeof(float));
                pidx[t] = malloc(npool * sizeof(int32_t));
                pdin[t] = malloc(c.n_in * sizeof(float));
                pdw[t] = calloc(c.n_w, sizeof(float));
                tnmtl_conv_forward_f32(po[t], pidx[t], fin, fw, fb, scr2, 1 + 2 * t, &gp, c.B, TNMTL_ACT_TANH);
                tnmtl_conv_backward_f32(pdin[t], pdw[t], NULL, fR, pidx[t], fin, fw, scr2, 1 + 2 * t, &gp, c.B);
            }
            assert_memory_equal(po[0], po[1], npool * sizeof(float));
            assert_memory_equal(pidx[0], pidx[1], npool * sizeof(int32_t));
            assert_memory_equal(pdin[0], pdin[1], c.n_in * sizeof(float));
            assert_memory_equal(pdw[0], pdw[1], c.n_w * sizeof(float));
            for (int t = 0; t < 2; t++) free(po[t]), free(pidx[t]), free(pdin[t]), free(pdw[t]);
            free(scr2);
        }
        /* pooling and the activations on the conv output */
        const int Ho = c.g.Ho, Wo = c.g.Wo, F = c.g.F;
        const size_t np = (size_t)c.B * (Ho / 2) * (Wo / 2) * F;
        float *p1 = malloc(np * sizeof(float)), *p2 = malloc(np * sizeof(float));
        int32_t *i1 = malloc(np * sizeof(int32_t)), *i2 = malloc(np * sizeof(int32_t));
        tnmtl_maxpool_forward_f32(p1, i1, out[0], c.B, Ho, Wo, F, 2, 1);
        tnmtl_maxpool_forward_f32(p2, i2, out[0], c.B, Ho, Wo, F, 2, 3);
        assert_memory_equal(p1, p2, np * sizeof(float));
        assert_memory_equal(i1, i2, np * sizeof(int32_t));
        tnmtl_maxpool_backward_f32(out[1], p1, i1, c.B, Ho, Wo, F, 2, 1);
        tnmtl_maxpool_backward_f32(out[2], p1, i1, c.B, Ho, Wo, F, 2, 3);
        assert_memory_equal(out[1], out[2], c.n_out * sizeof(float));
        tnmtl_act_backward_f32(out[1], fR, out[0], c.n_out, TNMTL_ACT_TANH, 1);
        tnmtl_act_backward_f32(out[2], fR, out[0], c.n_out, TNMTL_ACT_TANH, 3);
        assert_memory_equal(out[1], out[2], c.n_out * sizeof(float));
        for (int t = 0; t < 3; t++) free(out[t]), free(din[t]), free(dw[t]), free(db[t]);
        free(p1), free(p2), free(i1), free(i2), free(fin), free(fw), free(fb), free(fR), free(scr);
        conv_case_free(&c);
    }
}

/* Chunk size changes only the blocking: results agree to rounding. */
static void test_conv_chunking_invariant(void **state)
{
    (void)state;
    conv_case a, b;
    conv_case_init(&a, 3, 8, 7, 3, 3, 5, 0, 0, -1, 77);
    conv_case_init(&b, 3, 8, 7, 3, 3, 5, 0, 4, -1, 77);
    assert_true(a.g.chunk >= 3 * a.g.Ho); /* one chunk */
    double *dwa = calloc(a.n_w, sizeof(double)), *dwb = calloc(a.n_w, sizeof(double));
    double *dxa = malloc(a.n_in * sizeof(double)), *dxb = malloc(a.n_in * sizeof(double));
    conv_loss(&a);
    conv_loss(&b);
    assert_true(tu_max_rel_err(a.out, b.out, a.n_out, 1e-13, 1e-13) <= 1);
    tnmtl_conv_backward_f64(dxa, dwa, NULL, a.R, NULL, a.in, a.w, a.col, 1, &a.g, 3);
    tnmtl_conv_backward_f64(dxb, dwb, NULL, b.R, NULL, b.in, b.w, b.col, 1, &b.g, 3);
    assert_true(tu_max_rel_err(dwa, dwb, a.n_w, 1e-12, 1e-12) <= 1);
    assert_true(tu_max_rel_err(dxa, dxb, a.n_in, 1e-12, 1e-12) <= 1);
    free(dwa), free(dwb), free(dxa), free(dxb);
    conv_case_free(&a);
    conv_case_free(&b);
}

/* conv with a fused activation = conv followed by the activation */
static void test_conv_fused_activation(void **state)
{
    (void)state;
    conv_case c;
    conv_case_init(&c, 2, 6, 6, 2, 3, 4, 0, 0, -1, 5);
    float *fin = to_f32(c.in, c.n_in), *fw = to_f32(c.w, c.n_w), *fb = to_f32(c.b, 4);
    float *o1 = malloc(c.n_out * sizeof(float)), *o2 = malloc(c.n_out * sizeof(float));
    float *col = malloc(tnmtl_conv_scratch_elems(&c.g, 2, 1) * sizeof(float));
    for (int a = 0; a < 2; a++) {
        tnmtl_activation act = a ? TNMTL_ACT_RELU : TNMTL_ACT_TANH;
        tnmtl_conv_forward_f32(o1, NULL, fin, fw, fb, col, 1, &c.g, 2, act);
        tnmtl_conv_forward_f32(o2, NULL, fin, fw, fb, col, 1, &c.g, 2, TNMTL_ACT_NONE);
        tnmtl_act_forward_f32(o2, o2, c.n_out, act, 1);
        assert_memory_equal(o1, o2, c.n_out * sizeof(float));
    }
    free(fin), free(fw), free(fb), free(o1), free(o2), free(col);
    conv_case_free(&c);
}

/* ---- max-pool -------------------------------------------------------------- */

typedef struct pool_case {
    int B, H, W, C, k;
    size_t n_in, n_out;
    double *in, *R, *out;
    int32_t *idx;
} pool_case;

static double pool_loss(void *ctx)
{
    pool_case *c = ctx;
    tnmtl_maxpool_forward_f64(c->out, c->idx, c->in, c->B, c->H, c->W, c->C, c->k, 1);
    return dot(c->out, c->R, c->n_out);
}

static void run_pool_case(int B, int H, int W, int C, int k)
{
    printf(" pool B=%d %dx%dx%d k%d\n", B, H, W, C, k);
    pool_case c = {B, H, W, C, k, (size_t)B * H * W * C, (size_t)B * (H / k) * (W / k) * C, 0, 0, 0, 0};
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 99 + (uint64_t)k);
    c.in = malloc(c.n_in * sizeof(double));
    c.R = malloc(c.n_out * sizeof(double));
    c.out = malloc(c.n_out * sizeof(double));
    c.idx = malloc(c.n_out * sizeof(int32_t));
    /* distinct values: a random permutation of a grid spaced 1e-2 apart, far
     * wider than the finite-difference step, so no maximum changes place */
    int *perm = malloc(c.n_in * sizeof(int));
    for (size_t i = 0; i < c.n_in; i++) perm[i] = (int)i;
    tnmtl_rng_shuffle(&rng, perm, c.n_in);
    for (size_t i = 0; i < c.n_in; i++) c.in[i] = 0.01 * perm[i] - 0.3;
    fill_normal(c.R, c.n_out, &rng, 1);
    double *din = malloc(c.n_in * sizeof(double));
    pool_loss(&c);
    tnmtl_maxpool_backward_f64(din, c.R, c.idx, B, H, W, C, k, 1);
    check("pool dx", gc_check(pool_loss, &c, c.in, din, (int64_t)c.n_in, GC_H, GC_ATOL, GC_RTOL, 1000));

    /* float agrees exactly (max is exact) */
    pool_loss(&c);
    float *fin = to_f32(c.in, c.n_in), *fout = malloc(c.n_out * sizeof(float));
    int32_t *fidx = malloc(c.n_out * sizeof(int32_t));
    tnmtl_maxpool_forward_f32(fout, fidx, fin, B, H, W, C, k, 2);
    assert_memory_equal(fidx, c.idx, c.n_out * sizeof(int32_t));
    for (size_t i = 0; i < c.n_out; i++) assert_true(fout[i] == (float)c.out[i]);
    free(fin), free(fout), free(fidx), free(perm), free(din);
    free(c.in), free(c.R), free(c.out), free(c.idx);
}

static void test_pool(void **state)
{
    (void)state;
    run_pool_case(2, 6, 6, 3, 2);
    run_pool_case(2, 7, 5, 2, 2); /* odd sizes: the last row/column is dropped (floor) */
    run_pool_case(1, 8, 7, 2, 3);
}

static void test_pool_ties_and_nan(void **state)
{
    (void)state;
    /* one 2x2 window, 2 channels: channel 0 all equal (tie -> first), channel
     * 1 with the max at the last position */
    float in[8] = {5, 1, 5, 2, 5, 3, 5, 4};
    float out[2], dout[2] = {1, 10}, din[8];
    int32_t idx[2];
    tnmtl_maxpool_forward_f32(out, idx, in, 1, 2, 2, 2, 2, 1);
    assert_true(out[0] == 5 && out[1] == 4);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 7);
    tnmtl_maxpool_backward_f32(din, dout, idx, 1, 2, 2, 2, 2, 1);
    float want[8] = {1, 0, 0, 0, 0, 0, 0, 10};
    assert_memory_equal(din, want, sizeof want);
    /* NaN propagates */
    in[3] = NAN;
    tnmtl_maxpool_forward_f32(out, idx, in, 1, 2, 2, 2, 2, 1);
    assert_true(isnan(out[1]));
}

/* The vectorised pooling (AVX2, C % 4 == 0) and the baseline loop pick the
 * same maxima and indices as a plain reference, with many ties (values on a
 * coarse grid) and NaNs, for channel counts with 8-blocks, 4-blocks and
 * neither, and pool sizes 2 and 3. */
static void test_pool_simd(void **state)
{
    (void)state;
    const int Cs[6] = {3, 4, 8, 12, 16, 20};
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 77);
    for (int ci = 0; ci < 6; ci++)
        for (int k = 2; k <= 3; k++) {
            const int B = 2, H = 7, W = 8, C = Cs[ci], Ho = H / k, Wo = W / k;
            const size_t n_in = (size_t)B * H * W * C, n_out = (size_t)B * Ho * Wo * C;
            float *in = malloc(n_in * sizeof(float)), *out[2], *ref = malloc(n_out * sizeof(float));
            int32_t *idx[2], *ridx = malloc(n_out * sizeof(int32_t));
            for (size_t i = 0; i < n_in; i++) {
                const double u = tnmtl_rng_uniform(&rng);
                in[i] = u < 0.05 ? NAN : (float)(int)(4 * tnmtl_rng_uniform(&rng)) - 1.5f;
            }
            for (int b = 0; b < B; b++)
                for (int oh = 0; oh < Ho; oh++)
                    for (int ow = 0; ow < Wo; ow++)
                        for (int c = 0; c < C; c++) {
                            float m = 0;
                            int32_t mi = -1;
                            for (int kh = 0; kh < k; kh++)
                                for (int kw = 0; kw < k; kw++) {
                                    const int32_t o = ((oh * k + kh) * W + ow * k + kw) * C + c;
                                    const float v = in[(size_t)b * H * W * C + (size_t)o];
                                    if (mi < 0 || (!(v <= m) && m == m)) m = v, mi = o;
                                }
                            const size_t q = (((size_t)b * Ho + (size_t)oh) * Wo + (size_t)ow) * C + (size_t)c;
                            ref[q] = m;
                            ridx[q] = mi;
                        }
            for (int v = 0; v < 2; v++) {
                tnmtl_simd_force(v);
                out[v] = malloc(n_out * sizeof(float));
                idx[v] = malloc(n_out * sizeof(int32_t));
                tnmtl_maxpool_forward_f32(out[v], idx[v], in, B, H, W, C, k, 1);
                assert_memory_equal(idx[v], ridx, n_out * sizeof(int32_t));
                assert_memory_equal(out[v], ref, n_out * sizeof(float)); /* NaN bits included */
            }
            tnmtl_simd_force(-1);
            free(in), free(ref), free(ridx), free(out[0]), free(out[1]), free(idx[0]), free(idx[1]);
        }
}

/* ---- fully connected -------------------------------------------------------- */

typedef struct fc_case {
    int B, D, N;
    double *in, *w, *b, *R, *out, *scratch;
} fc_case;

static double fc_loss(void *ctx)
{
    fc_case *c = ctx;
    tnmtl_fc_forward_f64(c->out, c->in, c->w, c->b, c->scratch, 1, c->B, c->D, c->N, TNMTL_ACT_NONE);
    return dot(c->out, c->R, (size_t)c->B * c->N);
}

static void test_fc(void **state)
{
    (void)state;
    const int B = 3, D = 7, N = 5;
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 11);
    fc_case c = {B, D, N, malloc(B * D * sizeof(double)), malloc(D * N * sizeof(double)),
                 malloc(N * sizeof(double)), malloc(B * N * sizeof(double)), malloc(B * N * sizeof(double)),
                 NULL};
    fill_normal(c.in, B * D, &rng, 1);
    fill_normal(c.w, D * N, &rng, 0.5);
    fill_normal(c.b, N, &rng, 0.5);
    fill_normal(c.R, B * N, &rng, 1);
    double din[3 * 7], dw[7 * 5] = {0}, db[5] = {0};
    fc_loss(&c);
    /* out[0][0] by hand */
    double o = c.b[0];
    for (int d = 0; d < D; d++) o += c.in[d] * c.w[d * N];
    assert_true(fabs(c.out[0] - o) < 1e-12);
    tnmtl_fc_backward_f64(din, dw, db, c.R, c.in, c.w, 1, B, D, N);
    check("fc dx", gc_check(fc_loss, &c, c.in, din, B * D, GC_H, GC_ATOL, GC_RTOL, 1000));
    check("fc dw", gc_check(fc_loss, &c, c.w, dw, D * N, GC_H, GC_ATOL, GC_RTOL, 1000));
    check("fc db", gc_check(fc_loss, &c, c.b, db, N, GC_H, GC_ATOL, GC_RTOL, 1000));

    float *fin = to_f32(c.in, B * D), *fw = to_f32(c.w, D * N), *fb = to_f32(c.b, N), *fR = to_f32(c.R, B * N);
    float fout[15], fdin[21], fdw[35] = {0}, fdb[5] = {0};
    tnmtl_fc_forward_f32(fout, fin, fw, fb, NULL, 1, B, D, N, TNMTL_ACT_NONE);
    tnmtl_fc_backward_f32(fdin, fdw, fdb, fR, fin, fw, 1, B, D, N);
    fc_loss(&c);
    assert_close_f32("fc out", fout, c.out, B * N, 1e-5);
    assert_close_f32("fc dx", fdin, din, B * D, 1e-5);
    assert_close_f32("fc dw", fdw, dw, D * N, 1e-5);
    assert_close_f32("fc db", fdb, db, N, 1e-5);
    free(fin), free(fw), free(fb), free(fR);
    free(c.in), free(c.w), free(c.b), free(c.R), free(c.out);
}

/* A layer big enough to be cut into pieces (the Omniglot fc1 at batch 64):
 * against a plain double product, and the same bits for 1 and 3 threads. */
static void test_fc_split(void **state)
{
    (void)state;
    enum { B = 64, D = 1936, N = 64 };
    int piece;
    const int parts = tnmtl_fc_split(B, D, N, 1, &piece);
    printf("  fc %dx%d at batch %d: %d pieces of %d rows\n", D, N, B, parts, piece);
    assert_true(parts > 1 && (size_t)piece * B * N <= TNMTL_GEMM_SERIAL_MNK);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 12);
    float *in = malloc(B * D * sizeof(float)), *w = malloc(D * N * sizeof(float)), b[N];
    float *dout = malloc(B * N * sizeof(float)), *scratch = malloc(tnmtl_fc_scratch_elems(B, D, N) * sizeof(float));
    for (int i = 0; i < B * D; i++) in[i] = (float)tnmtl_rng_normal(&rng);
    for (int i = 0; i < D * N; i++) w[i] = (float)(0.05 * tnmtl_rng_normal(&rng));
    for (int i = 0; i < N; i++) b[i] = (float)tnmtl_rng_normal(&rng);
    for (int i = 0; i < B * N; i++) dout[i] = (float)tnmtl_rng_normal(&rng);
    float *out[2], *din[2], *dw[2], db[2][N];
    for (int t = 0; t < 2; t++) {
        out[t] = malloc(B * N * sizeof(float));
        din[t] = malloc(B * D * sizeof(float));
        dw[t] = calloc(D * N, sizeof(float));
        memset(db[t], 0, sizeof db[t]);
        tnmtl_fc_forward_f32(out[t], in, w, b, scratch, t ? 3 : 1, B, D, N, TNMTL_ACT_TANH);
        tnmtl_fc_backward_f32(din[t], dw[t], db[t], dout, in, w, t ? 3 : 1, B, D, N);
    }
    assert_memory_equal(out[0], out[1], B * N * sizeof(float));
    assert_memory_equal(din[0], din[1], B * D * sizeof(float));
    assert_memory_equal(dw[0], dw[1], D * N * sizeof(float));
    assert_memory_equal(db[0], db[1], sizeof db[0]);
    /* reference values in double */
    double worst = 0;
    for (int i = 0; i < B; i += 7)
        for (int n = 0; n < N; n += 5) {
            double z = b[n];
            for (int d = 0; d < D; d++) z += (double)in[i * D + d] * w[d * N + n];
            worst = fmax(worst, fabs(tanh(z) - out[0][i * N + n]));
        }
    for (int d = 0; d < D; d += 97)
        for (int n = 0; n < N; n += 3) {
            double g = 0;
            for (int i = 0; i < B; i++) g += (double)in[i * D + d] * dout[i * N + n];
            worst = fmax(worst, fabs(g - dw[0][d * N + n]) / (1 + fabs(g)));
        }
    for (int i = 0; i < B; i += 11)
        for (int d = 0; d < D; d += 13) {
            double g = 0;
            for (int n = 0; n < N; n++) g += (double)dout[i * N + n] * w[d * N + n];
            worst = fmax(worst, fabs(g - din[0][i * D + d]) / (1 + fabs(g)));
        }
    printf("  worst error against double %.3g\n", worst);
    assert_true(worst < 1e-5);
    for (int t = 0; t < 2; t++) free(out[t]), free(din[t]), free(dw[t]);
    free(in), free(w), free(dout), free(scratch);
}

/* ---- activations -------------------------------------------------------------- */

typedef struct act_case {
    tnmtl_activation act;
    size_t n;
    double *x, *y, *R;
} act_case;

static double act_loss(void *ctx)
{
    act_case *c = ctx;
    tnmtl_act_forward_f64(c->y, c->x, c->n, c->act, 1);
    return dot(c->y, c->R, c->n);
}

static void run_act_case(tnmtl_activation act)
{
    enum { n = 60 };
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 3 + (uint64_t)act);
    double x[n], y[n], R[n], dx[n];
    fill_normal(x, n, &rng, 1.5);
    /* keep away from relu's kink at 0 */
    for (int i = 0; i < n; i++)
        if (fabs(x[i]) < 0.05) x[i] = x[i] < 0 ? -0.05 - x[i] : 0.05 + x[i];
    fill_normal(R, n, &rng, 1);
    act_case c = {act, n, x, y, R};
    act_loss(&c);
    tnmtl_act_backward_f64(dx, R, y, n, act, 1);
    check(act == TNMTL_ACT_TANH ? "tanh dx" : "relu dx",
          gc_check(act_loss, &c, x, dx, n, GC_H, GC_ATOL, GC_RTOL, n));
    /* in place forward and backward give the same */
    act_loss(&c);
    double y2[n], d2[n];
    memcpy(y2, x, sizeof y2);
    tnmtl_act_forward_f64(y2, y2, n, act, 1);
    memcpy(d2, R, sizeof d2);
    tnmtl_act_backward_f64(d2, d2, y2, n, act, 1);
    assert_memory_equal(y2, y, sizeof y2);
    assert_memory_equal(d2, dx, sizeof d2);
    /* float path */
    float *fx = to_f32(x, n), fy[n], fd[n], *fR = to_f32(R, n);
    tnmtl_act_forward_f32(fy, fx, n, act, 1);
    tnmtl_act_backward_f32(fd, fR, fy, n, act, 1);
    assert_close_f32("act y", fy, y, n, 2e-6);
    assert_close_f32("act dx", fd, dx, n, 2e-6);
    free(fx), free(fR);
}

static void test_tanh(void **state)
{
    (void)state;
    run_act_case(TNMTL_ACT_TANH);
}

static void test_relu(void **state)
{
    (void)state;
    run_act_case(TNMTL_ACT_RELU);
    float x[5] = {-2, -0.0f, 0, 3, NAN}, y[5], d[5], one[5] = {1, 1, 1, 1, 1};
    tnmtl_act_forward_f32(y, x, 5, TNMTL_ACT_RELU, 1);
    assert_true(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 3 && isnan(y[4]));
    tnmtl_act_backward_f32(d, one, y, 5, TNMTL_ACT_RELU, 1);
    assert_true(d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 1); /* 0 at the kink, as PyTorch */
}

/* The float tanh approximation against libm's double tanh; the SIMD loop
 * and the scalar function agree bit for bit. */
static void test_tanh_approx_accuracy(void **state)
{
    (void)state;
    enum { n = 200003 };
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = -12.0f + 24.0f * (float)i / (n - 1);
    x[7] = 1e-30f;
    x[8] = -3e-5f;
    x[9] = 1e9f;
    x[10] = -INFINITY;
    tnmtl_act_forward_f32(y, x, n, TNMTL_ACT_TANH, 3);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double t = tanh((double)x[i]);
        double e = fabs(y[i] - t) / (fabs(t) > 1e-30 ? fabs(t) : 1e-30);
        if (e > worst) worst = e;
        assert_true(y[i] == tnmtl_tanh_approx(x[i]));
        assert_true(fabs(y[i]) <= 1.0f);
    }
    printf("  tanh approx max relative error %.3g\n", worst);
    assert_true(worst < 1e-6);
    assert_true(y[9] == 1.0f && y[10] == -1.0f);
    /* the baseline loop gives the same bits as the AVX2 one */
    float *y0 = malloc(n * sizeof(float));
    tnmtl_simd_force(0);
    tnmtl_act_forward_f32(y0, x, n, TNMTL_ACT_TANH, 1);
    tnmtl_simd_force(-1);
    assert_memory_equal(y0, y, n * sizeof(float));
    free(y0);
    float nan_in[5] = {0.5f, NAN, 0.5f, 0.5f, NAN}, nan_out[5];
    tnmtl_act_forward_f32(nan_out, nan_in, 5, TNMTL_ACT_TANH, 1); /* one SIMD block, one scalar */
    assert_true(isnan(nan_out[1]) && isnan(nan_out[4]) && !isnan(nan_out[0]));
    free(x), free(y);
}

/* ---- losses ---------------------------------------------------------------------- */

typedef struct xent_case {
    int B, C;
    double *z;
    int *y;
} xent_case;

static double xent_loss(void *ctx)
{
    xent_case *c = ctx;
    return tnmtl_softmax_xent_f64(c->z, c->y, c->B, c->C, NULL);
}

static void test_softmax_xent(void **state)
{
    (void)state;
    /* hand values: log(e^1 + e^2 + e^3) - 3 */
    double z1[3] = {1, 2, 3};
    int y1[1] = {2};
    double d1[3];
    const double want = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3;
    assert_true(fabs(tnmtl_softmax_xent_f64(z1, y1, 1, 3, d1) - 0.40760596444438) < 1e-12);
    assert_true(fabs(want - 0.40760596444438) < 1e-12);
    assert_true(fabs(d1[2] - (exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0)) - 1)) < 1e-12);
    /* stable for huge logits: loss of label 1 in (1000, 0) is 1000 */
    float zf[2] = {1000, 0}, df[2];
    int y2[1] = {1};
    assert_true(fabs(tnmtl_softmax_xent(zf, y2, 1, 2, df) - 1000) < 1e-9);
    assert_true(df[0] == 1.0f && df[1] == -1.0f);
    /* a label out of range gives NaN, never an out-of-bounds access */
    int bad[1] = {3};
    assert_true(isnan(tnmtl_softmax_xent_f64(z1, bad, 1, 3, d1)));
    bad[0] = -1;
    assert_true(isnan(tnmtl_softmax_xent_f64(z1, bad, 1, 3, NULL)));
    assert_true(isnan(tnmtl_softmax_xent_f64(z1, y1, 0, 3, NULL)));
    assert_true(isnan(tnmtl_softmax_xent_f64(z1, y1, 1, 0, NULL)));
    assert_true(isnan(tnmtl_mse_f64(z1, z1, 0, 3, NULL)));

    enum { B = 4, C = 5 };
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 21);
    double z[B * C], dz[B * C];
    int y[B] = {0, 4, 2, 2};
    fill_normal(z, B * C, &rng, 2);
    xent_case c = {B, C, z, y};
    tnmtl_softmax_xent_f64(z, y, B, C, dz);
    check("xent dz", gc_check(xent_loss, &c, z, dz, B * C, GC_H, 1e-9, GC_RTOL, 100));
    /* the mean over the batch: gradient rows sum to zero */
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < C; k++) s += dz[b * C + k];
        assert_true(fabs(s) < 1e-15);
    }
    float *fz = to_f32(z, B * C), fdz[B * C];
    double lf = tnmtl_softmax_xent(fz, y, B, C, fdz), ld = tnmtl_softmax_xent_f64(z, y, B, C, NULL);
    assert_true(fabs(lf - ld) < 1e-6 * fabs(ld));
    assert_close_f32("xent dz", fdz, dz, B * C, 1e-6);
    free(fz);
}

typedef struct mse_case {
    int B, D;
    double *o, *t;
} mse_case;

static double mse_loss(void *ctx)
{
    mse_case *c = ctx;
    return tnmtl_mse_f64(c->o, c->t, c->B, c->D, NULL);
}

static void test_mse(void **state)
{
    (void)state;
    double o[4] = {1, 2, 3, 4}, t[4] = {1, 0, 3, 1}, d[4];
    /* (0 + 4 + 0 + 9) / 4 */
    assert_true(fabs(tnmtl_mse_f64(o, t, 2, 2, d) - 3.25) < 1e-15);
    assert_true(d[1] == 1.0 && d[3] == 1.5 && d[0] == 0);
    mse_case c = {2, 2, o, t};
    check("mse dout", gc_check(mse_loss, &c, o, d, 4, GC_H, GC_ATOL, GC_RTOL, 4));
    float fo[4] = {1, 2, 3, 4}, ft[4] = {1, 0, 3, 1}, fd[4];
    assert_true(tnmtl_mse(fo, ft, 2, 2, fd) == 3.25);
    assert_true(fd[1] == 1.0f && fd[3] == 1.5f);
}

/* ---- the checker itself ------------------------------------------------------------
 * A gradient that is wrong in one entry, or wrong by a small factor, must be
 * reported, at the entry that is wrong. */
static void test_checker_catches_wrong_gradient(void **state)
{
    (void)state;
    conv_case c;
    conv_case_init(&c, 2, 6, 6, 2, 3, 3, 0, 0, -1, 8);
    double *din = malloc(c.n_in * sizeof(double)), *dw = calloc(c.n_w, sizeof(double)),
           *db = calloc(3, sizeof(double));
    conv_loss(&c);
    tnmtl_conv_backward_f64(din, dw, db, c.R, NULL, c.in, c.w, c.col, 1, &c.g, 2);
    gc_result good = gc_check(conv_loss, &c, c.w, dw, (int64_t)c.n_w, GC_H, GC_ATOL, GC_RTOL, 1000);
    assert_true(gc_ok(&good));
    /* one entry off by 0.01% */
    dw[17] *= 1.0001;
    gc_result bad = gc_check(conv_loss, &c, c.w, dw, (int64_t)c.n_w, GC_H, GC_ATOL, GC_RTOL, 1000);
    gc_print("perturbed dw", &bad);
    assert_false(gc_ok(&bad));
    assert_int_equal(bad.worst, 17);
    dw[17] /= 1.0001;
    /* a backward that forgets the bias of one filter */
    db[1] = 0;
    bad = gc_check(conv_loss, &c, c.b, db, 3, GC_H, GC_ATOL, GC_RTOL, 3);
    assert_false(gc_ok(&bad));
    assert_int_equal(bad.worst, 1);
    /* NaN is a failure */
    din[0] = NAN;
    bad = gc_check(conv_loss, &c, c.in, din, (int64_t)c.n_in, GC_H, GC_ATOL, GC_RTOL, 1000);
    assert_false(gc_ok(&bad));
    free(din), free(dw), free(db);
    conv_case_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_valid),
        cmocka_unit_test(test_conv_same),
        cmocka_unit_test(test_conv_1x1_and_chunks),
        cmocka_unit_test(test_conv_direct),
        cmocka_unit_test(test_conv_pool_fused_levels),
        cmocka_unit_test(test_conv_pool_sparse_backward),
        cmocka_unit_test(test_conv_chunking_invariant),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_conv_fused_activation),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_ties_and_nan),
        cmocka_unit_test(test_pool_simd),
        cmocka_unit_test(test_fc),
        cmocka_unit_test(test_fc_split),
        cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_tanh_approx_accuracy),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_checker_catches_wrong_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
