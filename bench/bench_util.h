/* bench_util.h - small helpers shared by the benchmark programs (header only:
 * every bench/bench_*.c is its own program). */
#ifndef TNMTL_BENCH_UTIL_H
#define TNMTL_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "layers.h"
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
 * copies and the loss are not counted.
 *
 * executed 0: as dense convolutions (the work the step stands for, the
 * count of earlier rounds); 1: the multiply-adds the float engine executes
 * on this CPU: a conv fused with a k x k max-pool takes its weight and input
 * gradients over the argmax pixels only (tnmtl_conv_pooled_bwd_ok: 1 / k^2),
 * and on AVX2 CPUs a 3x3 one with a 2x2 pool runs forward as Winograd
 * (tnmtl_conv_wino_ok: 16 per channel and filter for each pooling window
 * instead of 36, windows in groups of 4 per row); the Winograd transforms
 * are not counted. */
static inline int64_t bench_train_macs(const tnmtl_net *net, int executed)
{
    const int L = tnmtl_net_n_layers(net);
    int64_t macs = 0;
    int first = 1;
    for (int i = 0; i < L; i++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net, i);
        if (!li->n_weight) continue;
        int64_t m = li->macs, fwd, grad;
        int q = i + 1;
        if (q < L && (tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_TANH || tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_RELU))
            q++;
        fwd = grad = m;
        if (li->kind == TNMTL_LAYER_CONV && q < L && tnmtl_net_layer(net, q)->kind == TNMTL_LAYER_MAXPOOL) {
            const int k = tnmtl_net_layer(net, q)->ksize;
            const int64_t windows = (int64_t)(li->out_h / k) * (li->out_w / k);
            m = m / ((int64_t)li->out_h * li->out_w) * (li->out_h / k * k) * (li->out_w / k * k);
            fwd = grad = m;
            tnmtl_conv_geom g;
            tnmtl_conv_geom_init(&g, li->in_h, li->in_w, li->in_c, li->ksize, li->out_c, li->same_pad);
            tnmtl_conv_geom_set_pool(&g, k);
            if (executed && tnmtl_conv_pooled_bwd_ok(&g)) grad = m / (k * k);
            if (executed && tnmtl_simd_level() >= 1 && tnmtl_conv_wino_ok(&g)) {
                const int64_t per_window = 16 * (int64_t)li->in_c * li->out_c, nb = li->out_w / 2;
                fwd = per_window * windows / nb * ((nb + 3) / 4 * 4);
            }
        }
        macs += fwd + (first ? 1 : 2) * grad;
        first = 0;
    }
    return macs;
}

#endif
