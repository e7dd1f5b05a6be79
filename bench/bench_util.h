/* bench_util.h - small helpers shared by the benchmark programs (header only:
 * every bench/bench_*.c is its own program). */
#ifndef TNMTL_BENCH_UTIL_H
#define TNMTL_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "tnmtl/net.h"

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of t[n] (sorts t). */
static inline double bench_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, bench_cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Multiply-adds of the engine's GEMM-like loops for one training example
 * of net: forward and weight gradient of every conv/fc layer, input
 * gradient of every one but the first (not computed); a conv fused with the
 * max-pool after it skips the output rows and columns that no pooling
 * window reads (Omniglot conv1: 100 x 100 of 101 x 101; the direct kernels
 * do, as every Omniglot conv layer uses).  Pooling, activations, im2col
 * copies and the loss are not counted. */
static inline int64_t bench_train_macs(const tnmtl_net *net)
{
    const int L = tnmtl_net_n_layers(net);
    int64_t macs = 0;
    int first = 1;
    for (int i = 0; i < L; i++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net, i);
        if (!li->n_weight) continue;
        int64_t m = li->macs;
        int q = i + 1;
        if (q < L && (tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_TANH || tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_RELU))
            q++;
        if (li->kind == TNMTL_LAYER_CONV && q < L && tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_MAXPOOL) {
            const int k = tnmtl_net_layer(net, q)->ksize;
            m = m / ((int64_t)li->out_h * li->out_w) * (li->out_h / k * k) * (li->out_w / k * k);
        }
        macs += (first ? 2 : 3) * m;
        first = 0;
    }
    return macs;
}

#endif
