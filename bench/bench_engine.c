/* bench_engine.c - speed of the core engine against the machine's sgemm.
 *
 *   build/bench/bench_engine [batch] [reps]
 *
 * Times forward + loss + backward of the paper's Omniglot network at
 * 105x105x1 (default batch 64; median of `reps` after warm-up) and, in the
 * same run, cblas_sgemm on 2048 x 2048 matrices, one sgemm after each engine
 * step so that both see the same load of a shared machine.  Both use
 * OpenBLAS's thread count (OPENBLAS_NUM_THREADS): sgemm through OpenBLAS's
 * threads, the engine through its own (see src/layers.h).  The work counted for the
 * network is exactly what the engine computes with GEMMs, per example:
 *   forward MACs of every conv/fc layer
 * + weight-gradient MACs (the same number)
 * + input-gradient MACs (the same number) for every layer but the first,
 *   whose input gradient is not computed;
 * FLOPs = 2 x MACs (conv rows that no max-pool window reads are skipped by
 * the engine and not counted).  Pooling, activations and im2col are not counted. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tnmtl/net.h"
#include "tnmtl/rng.h"
#include "util.h"
#include "bench_util.h"

/* One 2048^3 sgemm per call; returns seconds. */
typedef struct sgemm_bench {
    int n;
    float *a, *b, *c;
} sgemm_bench;

static void sgemm_init(sgemm_bench *s, int n)
{
    s->n = n;
    s->a = malloc((size_t)n * n * sizeof(float));
    s->b = malloc((size_t)n * n * sizeof(float));
    s->c = malloc((size_t)n * n * sizeof(float));
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        s->a[i] = (float)tnmtl_rng_uniform(&rng);
        s->b[i] = (float)tnmtl_rng_uniform(&rng);
    }
}

static double sgemm_run(sgemm_bench *s)
{
    const int n = s->n;
    double t0 = tnmtl_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, s->a, n, s->b, n, 0, s->c, n);
    return tnmtl_now() - t0;
}

int main(int argc, char **argv)
{
    const int B = argc > 1 ? atoi(argv[1]) : 64;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (B < 1 || B > 4096 || reps < 1) {
        fprintf(stderr, "usage: bench_engine [batch 1..4096] [reps >= 1]\n");
        return 2;
    }
    if (reps > 64) reps = 64;
    tnmtl_net_config cfg = {"conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64", 105, 105, 1, 20,
                            TNMTL_ACT_TANH};
    tnmtl_net *net;
    tnmtl_workspace *ws;
    tnmtl_error err;
    if (tnmtl_net_create(&cfg, &net, &err) ||
        tnmtl_workspace_create((const tnmtl_net *const *)&net, 1, B, 0, &ws, &err)) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        return 1;
    }
    const int L = tnmtl_net_n_layers(net);
    const int64_t n = tnmtl_net_param_count(net), n_in = tnmtl_net_n_in(net);
    float *theta = calloc((size_t)n, sizeof(float)), *grad = calloc((size_t)n, sizeof(float));
    float *x = malloc((size_t)(B * n_in) * sizeof(float)), *dz = malloc((size_t)B * 20 * sizeof(float));
    int *y = malloc((size_t)B * sizeof(int));
    tnmtl_layer_params *p = calloc((size_t)L, sizeof *p), *g = calloc((size_t)L, sizeof *g);
    tnmtl_net_bind(net, theta, p);
    tnmtl_net_bind(net, grad, g);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 42);
    tnmtl_net_init_params(net, p, &rng);
    for (int64_t i = 0; i < B * n_in; i++) x[i] = tnmtl_rng_uniform(&rng) < 0.1 ? 0.0f : 1.0f;
    for (int i = 0; i < B; i++) y[i] = (int)tnmtl_rng_below(&rng, 20);

    /* exact GEMM work per example (bench_util.h) */
    const int64_t macs = bench_train_macs(net, 0);
    const double flop = 2.0 * (double)macs * B;

    /* engine steps and sgemm calls alternate, so that both see the same
     * load of the machine; medians of each */
    sgemm_bench sg;
    sgemm_init(&sg, 2048);
    double tf[64], tb[64], tt[64], ts[64], loss = 0;
    for (int r = -3; r < reps; r++) {
        double t0 = tnmtl_now();
        const float *z = tnmtl_net_forward(net, p, ws, x, B);
        loss = tnmtl_softmax_xent(z, y, B, 20, dz);
        double t1 = tnmtl_now();
        memset(grad, 0, (size_t)n * sizeof(float));
        tnmtl_net_backward(net, p, g, ws, dz, NULL, B);
        double t2 = tnmtl_now();
        double tsg = sgemm_run(&sg);
        /* OpenBLAS's idle threads spin (sched_yield) for about 0.1 s after a
         * threaded call; let them go to sleep before the next engine step */
        nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
            tt[r] = t2 - t0;
            ts[r] = tsg;
        }
    }
    const double med_f = bench_median(tf, reps), med_b = bench_median(tb, reps), med = bench_median(tt, reps);
    const double gemm = 2.0 * 2048 * 2048 * 2048.0 / bench_median(ts, reps) * 1e-9;
    const double rate = flop / med * 1e-9;
    free(sg.a), free(sg.b), free(sg.c);

    printf("OpenBLAS %s, core %s, %d threads (engine and sgemm)\n", openblas_get_config(),
           openblas_get_corename(), openblas_get_num_threads());
    printf("Omniglot net 105x105x1, batch %d: %.3f M GEMM MACs per example (fwd %.3f M)\n", B,
           macs * 1e-6, tnmtl_net_macs(net) * 1e-6);
    printf("  forward+loss %.2f ms, backward %.2f ms, total %.2f ms (median of %d), loss %.4f\n",
           med_f * 1e3, med_b * 1e3, med * 1e3, reps, loss);
    printf("  engine   %.1f GFLOP/s (%.0f examples/s)\n", rate, B / med);
    printf("  sgemm    %.1f GFLOP/s (2048 x 2048, median of %d, interleaved)\n", gemm, reps);
    printf("  ratio    %.1f%% of the sgemm rate\n", 100 * rate / gemm);

    free(theta), free(grad), free(x), free(dz), free(y), free(p), free(g);
    tnmtl_workspace_free(ws);
    tnmtl_net_free(net);
    return 0;
}
