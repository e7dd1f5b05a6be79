/* synthetic.c - multi-task image classification data with known groups of
 * related tasks (see tnmtl/synthetic.h for the construction). */
#include "tnmtl/synthetic.h"
#include "tnmtl/rng.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tnmtl_synthetic_options_init(tnmtl_synthetic_options *opt)
{
    opt->n_groups = 2;
    opt->tasks_per_group = 3;
    opt->n_unrelated = 2;
    opt->n_classes = 5;
    opt->examples_per_class = 20;
    opt->size = 16;
    opt->rank = 3;
    opt->blobs = 3;
    opt->noise = 2.5;
    opt->jitter = 0.2;
    opt->seed = 1;
}

int tnmtl_synthetic_task_group(const tnmtl_synthetic_options *opt, int t)
{
    const int related = opt->n_groups * opt->tasks_per_group;
    if (t < 0 || t >= related + opt->n_unrelated) return -2;
    return t < related ? t / opt->tasks_per_group : -1;
}

static tnmtl_status check_options(const tnmtl_synthetic_options *o, tnmtl_error *err)
{
    const char *bad = NULL;
    long long v = 0;
    if (o->n_groups < 0 || o->n_groups > 4096) bad = "n_groups", v = o->n_groups;
    else if (o->tasks_per_group < 1 || o->tasks_per_group > 4096) bad = "tasks_per_group", v = o->tasks_per_group;
    else if (o->n_unrelated < 0 || o->n_unrelated > 4096) bad = "n_unrelated", v = o->n_unrelated;
    else if (o->n_classes < 2 || o->n_classes > 100000) bad = "n_classes", v = o->n_classes;
    else if (o->examples_per_class < 1) bad = "examples_per_class", v = o->examples_per_class;
    else if (o->size < 1 || o->size > 4096) bad = "size", v = o->size;
    else if (o->rank < 1 || o->rank > o->size * o->size) bad = "rank", v = o->rank;
    else if (o->blobs < 1 || o->blobs > 1000) bad = "blobs", v = o->blobs;
    if (bad) return tnmtl_fail(err, TNMTL_ERR_INVALID, "synthetic data: bad %s %lld", bad, v);
    if (!(o->noise >= 0 && o->noise <= 1e6) || !(o->jitter >= 0 && o->jitter <= 1e6))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "synthetic data: noise %g and jitter %g must be in [0, 1e6]", o->noise,
                          o->jitter);
    if ((o->n_groups + o->n_unrelated) * o->rank > o->size * o->size)
        return tnmtl_fail(err, TNMTL_ERR_INVALID,
                          "synthetic data: %d banks of rank %d need %d orthogonal patterns, more than %d pixels",
                          o->n_groups + o->n_unrelated, o->rank, (o->n_groups + o->n_unrelated) * o->rank,
                          o->size * o->size);
    if (o->n_groups * o->tasks_per_group + o->n_unrelated < 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "synthetic data: no task (0 groups and 0 unrelated tasks)");
    const double values = (double)(o->n_groups * o->tasks_per_group + o->n_unrelated) * o->n_classes *
                          o->examples_per_class * o->size * o->size;
    if (values > (double)(1 << 30))
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "synthetic data: %.3g values is more than the limit of 2^30", values);
    return TNMTL_OK;
}

/* Patterns p[first .. first+rank) of p[][S*S]: each a sum of blobs Gaussian
 * blobs, orthogonalised against every earlier pattern (of this bank and of
 * the earlier banks; Gram-Schmidt twice) and normalised; redrawn if little
 * of it is left.  So all patterns of all banks are orthonormal. */
static tnmtl_status make_bank(tnmtl_rng *rng, int S, int first, int rank, int blobs, double *p, tnmtl_error *err)
{
    const int D = S * S;
    for (int k = first; k < first + rank; k++) {
        double *q = p + (size_t)k * D;
        for (int tries = 0;; tries++) {
            if (tries == 100)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "synthetic data: cannot draw %d independent %dx%d patterns", rank,
                                  S, S);
            memset(q, 0, (size_t)D * sizeof *q);
            for (int b = 0; b < blobs; b++) {
                const double cy = S * tnmtl_rng_uniform(rng), cx = S * tnmtl_rng_uniform(rng);
                const double w = S * (0.1 + 0.12 * tnmtl_rng_uniform(rng));
                const double sign = tnmtl_rng_uniform(rng) < 0.5 ? -1.0 : 1.0;
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++)
                        q[y * S + x] += sign * exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * w * w));
            }
            double n0 = 0;
            for (int i = 0; i < D; i++) n0 += q[i] * q[i];
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < k; j++) {
                    const double *r = p + (size_t)j * D;
                    double dot = 0;
                    for (int i = 0; i < D; i++) dot += q[i] * r[i];
                    for (int i = 0; i < D; i++) q[i] -= dot * r[i];
                }
            double n1 = 0;
            for (int i = 0; i < D; i++) n1 += q[i] * q[i];
            if (n0 > 0 && n1 > 1e-3 * n0) {
                const double inv = 1.0 / sqrt(n1);
                for (int i = 0; i < D; i++) q[i] *= inv;
                break;
            }
        }
    }
    return TNMTL_OK;
}

void tnmtl_synthetic_info_free(tnmtl_synthetic_info *info)
{
    if (!info) return;
    free(info->group);
    free(info->bank);
    free(info->patterns);
    free(info->prototypes);
    memset(info, 0, sizeof *info);
}

tnmtl_status tnmtl_synthetic_make_info(const tnmtl_synthetic_options *opt, tnmtl_dataset *out,
                                       tnmtl_synthetic_info *info, tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);
    tnmtl_synthetic_options defaults;
    tnmtl_synthetic_options_init(&defaults);
    const tnmtl_synthetic_options *o = opt ? opt : &defaults;
    tnmtl_status st = check_options(o, err);
    if (st) return st;
    const int S = o->size, D = S * S, K = o->rank, C = o->n_classes, N = o->examples_per_class;
    const int related = o->n_groups * o->tasks_per_group, T = related + o->n_unrelated;
    const int n_banks = o->n_groups + o->n_unrelated;
    st = tnmtl_dataset_init(out, T, (int64_t)T * C * N, S, S, 1, TNMTL_TARGET_CLASS, 0, err);
    if (st) return st;
    double *bank = tnmtl_malloc((size_t)n_banks * K * D * sizeof *bank, "synthetic patterns", err);
    double *proto = tnmtl_malloc((size_t)C * D * sizeof *proto, "synthetic prototypes", err);
    if (info && !st) {
        info->group = tnmtl_calloc((size_t)T, sizeof(int), "synthetic groups", err);
        info->bank = tnmtl_calloc((size_t)T, sizeof(int), "synthetic banks", err);
        info->patterns = tnmtl_calloc((size_t)n_banks * K * D, sizeof(float), "synthetic patterns", err);
        info->prototypes = tnmtl_calloc((size_t)T * C * D, sizeof(float), "synthetic prototypes", err);
        if (!info->group || !info->bank || !info->patterns || !info->prototypes) st = TNMTL_ERR_NOMEM;
    }
    if (!bank || !proto) st = TNMTL_ERR_NOMEM;

    tnmtl_rng root;
    tnmtl_rng_seed(&root, o->seed);
    for (int b = 0; b < n_banks && !st; b++) {
        tnmtl_rng rng = tnmtl_rng_split(&root, 1 + (uint64_t)b);
        st = make_bank(&rng, S, b * K, K, o->blobs, bank, err);
    }
    const double scale = sqrt((double)D / K);
    const double norm = 1.0 / sqrt(1.0 + o->jitter * o->jitter + o->noise * o->noise);
    for (int t = 0; t < T && !st; t++) {
        const int g = tnmtl_synthetic_task_group(o, t);
        const int b = g >= 0 ? g : o->n_groups + (t - related);
        const double *P = bank + (size_t)b * K * D;
        tnmtl_rng rng = tnmtl_rng_split(&root, 0x100000 + (uint64_t)t);
        memset(proto, 0, (size_t)C * D * sizeof *proto);
        for (int c = 0; c < C; c++)
            for (int k = 0; k < K; k++) {
                const double a = scale * tnmtl_rng_normal(&rng);
                for (int i = 0; i < D; i++) proto[(size_t)c * D + i] += a * P[(size_t)k * D + i];
            }
        out->task_begin[t] = (int64_t)t * C * N;
        out->n_classes[t] = C;
        for (int c = 0; c < C; c++) {
            const double *mu = proto + (size_t)c * D;
            for (int e = 0; e < N; e++) {
                const int64_t idx = out->task_begin[t] + (int64_t)c * N + e;
                const double amp = 1.0 + o->jitter * tnmtl_rng_normal(&rng);
                float *x = out->features + idx * D;
                for (int i = 0; i < D; i++) x[i] = (float)((amp * mu[i] + o->noise * tnmtl_rng_normal(&rng)) * norm);
                out->label[idx] = c;
            }
        }
        char name[32];
        if (g >= 0)
            snprintf(name, sizeof name, "g%d-t%d", g + 1, t % o->tasks_per_group + 1);
        else
            snprintf(name, sizeof name, "u%d", t - related + 1);
        st = tnmtl_dataset_set_task_name(out, t, name, err);
        if (info && !st) {
            info->group[t] = g;
            info->bank[t] = b;
            for (size_t i = 0; i < (size_t)C * D; i++) info->prototypes[(size_t)t * C * D + i] = (float)(proto[i] * norm);
        }
    }
    if (!st) {
        out->task_begin[T] = (int64_t)T * C * N;
        snprintf(out->source, sizeof out->source, "synthetic:seed=%llu", (unsigned long long)o->seed);
        if (info) {
            info->n_tasks = T;
            info->n_classes = C;
            info->n_pixels = D;
            info->rank = K;
            info->n_banks = n_banks;
            for (size_t i = 0; i < (size_t)n_banks * K * D; i++) info->patterns[i] = (float)bank[i];
        }
    }
    free(bank);
    free(proto);
    if (st) {
        tnmtl_dataset_free(out);
        tnmtl_synthetic_info_free(info);
    }
    return st;
}

tnmtl_status tnmtl_synthetic_make(const tnmtl_synthetic_options *opt, tnmtl_dataset *out, tnmtl_error *err)
{
    return tnmtl_synthetic_make_info(opt, out, NULL, err);
}
