/* bench_conv.c - the conv layers of the paper's Omniglot network, one at a
 * time, on one thread, at every instruction-set level of the direct
 * kernels (layers.h: 0 baseline, 1 AVX2 + FMA, 2 with AVX-512VL's 32
 * registers), interleaved so that all levels see the same load.
 *
 *   build/bench/bench_conv [batch 1..1024] [reps >= 1]     (default 65 20)
 *
 * Each layer as the trainer runs it: valid conv fused with the 2x2 max-pool
 * and tanh after it, float.  Forward = conv + pool + tanh; backward = the
 * pooled gradient back to the weight, bias and (but for conv1) input
 * gradients.  Prints, per layer and level, the fastest of reps runs in ms
 * per example and the counted rate: 2 x the multiply-adds of the conv over
 * the output rows and columns a pooling window reads (forward; backward
 * twice that, once for conv1, which has no input gradient).  The last line
 * is one-thread cblas_sgemm on 1024^3 in the same run (the machine's peak
 * for one core).  The fastest run is the figure: on a shared machine the
 * others measure the neighbours.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layers.h"
#include "tnmtl/rng.h"

void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fill(float *x, size_t n, tnmtl_rng *rng)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 * tnmtl_rng_normal(rng));
}

typedef struct layer {
    const char *name;
    int H, C, K, F;      /* input H x H x C, K x K kernel, F filters */
} layer;

int main(int argc, char **argv)
{
    const int B = argc > 1 ? atoi(argv[1]) : 65;
    const int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (B < 1 || B > 1024 || reps < 1) {
        fprintf(stderr, "usage: bench_conv [batch 1..1024] [reps >= 1]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    const layer layers[3] = {{"conv1", 105, 1, 5, 8}, {"conv2", 50, 8, 3, 12}, {"conv3", 24, 12, 3, 16}};
    const int levels = tnmtl_simd_level() + 1;
    static const char *level_name[3] = {"baseline", "AVX2+FMA", "AVX-512VL"};
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    printf("Omniglot conv layers (fused 2x2 max-pool + tanh), batch %d, one thread, fastest of %d\n", B, reps);
    printf("| layer | level | forward ms/example | GFLOP/s | backward ms/example | GFLOP/s |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    for (int l = 0; l < 3; l++) {
        const layer *ly = &layers[l];
        tnmtl_conv_geom g;
        tnmtl_conv_geom_init(&g, ly->H, ly->H, ly->C, ly->K, ly->F, 0);
        tnmtl_conv_geom_set_pool(&g, 2);
        const int Hp = g.Ho / 2, Wp = g.Wo / 2;
        const size_t n_in = (size_t)B * ly->H * ly->H * ly->C, n_w = (size_t)ly->K * ly->K * ly->C * ly->F;
        const size_t n_out = (size_t)B * Hp * Wp * ly->F;
        float *in = malloc(n_in * sizeof(float)), *w = malloc(n_w * sizeof(float)), *b = calloc((size_t)ly->F, sizeof(float));
        float *out = malloc(n_out * sizeof(float)), *dout = malloc(n_out * sizeof(float));
        float *din = malloc(n_in * sizeof(float)), *dw = calloc(n_w, sizeof(float)), *db = calloc((size_t)ly->F, sizeof(float));
        int32_t *idx = malloc(n_out * sizeof(int32_t));
        float *scratch = malloc(tnmtl_conv_scratch_elems(&g, B, 1) * sizeof(float));
        if (!in || !w || !b || !out || !dout || !din || !dw || !db || !idx || !scratch) {
            fprintf(stderr, "bench_conv: out of memory\n");
            return 1;
        }
        fill(in, n_in, &rng);
        fill(w, n_w, &rng);
        fill(dout, n_out, &rng);
        const double macs = (double)(2 * Hp) * (2 * Wp) * ly->K * ly->K * ly->C * ly->F; /* per example */
        double best_f[3] = {1e30, 1e30, 1e30}, best_b[3] = {1e30, 1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < levels; v++) {
                tnmtl_simd_force(v);
                const double t0 = now();
                tnmtl_conv_forward_f32(out, idx, in, w, b, scratch, 1, &g, B, TNMTL_ACT_TANH);
                const double t1 = now();
                tnmtl_conv_backward_f32(l ? din : NULL, dw, db, dout, idx, in, w, scratch, 1, &g, B);
                const double t2 = now();
                if (t1 - t0 < best_f[v]) best_f[v] = t1 - t0;
                if (t2 - t1 < best_b[v]) best_b[v] = t2 - t1;
            }
        tnmtl_simd_force(-1);
        for (int v = 0; v < levels; v++)
            printf("| %s %dx%dx%d k%d f%d | %s | %.4f | %.1f | %.4f | %.1f |\n", ly->name, ly->H, ly->H, ly->C,
                   ly->K, ly->F, level_name[v], best_f[v] / B * 1e3, 2 * macs * B / best_f[v] * 1e-9,
                   best_b[v] / B * 1e3, 2 * (l ? 2 : 1) * macs * B / best_b[v] * 1e-9);
        free(in), free(w), free(b), free(out), free(dout), free(din), free(dw), free(db), free(idx), free(scratch);
    }
    /* one core's matrix-multiply rate in the same run */
    const int n = 1024;
    float *A = malloc((size_t)n * n * sizeof(float)), *Bm = malloc((size_t)n * n * sizeof(float)),
          *Cm = malloc((size_t)n * n * sizeof(float));
    if (!A || !Bm || !Cm) return 1;
    fill(A, (size_t)n * n, &rng);
    fill(Bm, (size_t)n * n, &rng);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        const double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, A, n, Bm, n, 0, Cm, n);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    printf("\ncblas_sgemm %d^3, one thread: %.1f GFLOP/s\n", n, 2.0 * n * n * n / best * 1e-9);
    free(A), free(Bm), free(Cm);
    return 0;
}
