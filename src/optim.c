/* optim.c - SGD with momentum and Adam with PyTorch's update rules.
 *
 * SGD (torch.optim.SGD, dampening 0, no Nesterov):
 *     m = momentum * m + g        (m starts at 0, so the first m is g)
 *     p -= lr * m
 * Adam (torch.optim.Adam, amsgrad off, no weight decay), at step t >= 1:
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g * g
 *     p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * The scalar factors are computed in double, the per-element work in float
 * in the same order of operations as PyTorch's single-tensor implementation.
 */
#include "tnmtl/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void tnmtl_optim_defaults(tnmtl_optim_kind kind, tnmtl_optim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    if (kind == TNMTL_OPTIM_SGD) {
        cfg->lr = 1e-2;
        cfg->momentum = 0.9;
    } else {
        cfg->lr = 1e-3;
    }
}

tnmtl_status tnmtl_optim_init(tnmtl_optim *opt, const tnmtl_optim_config *cfg, int64_t n,
                              tnmtl_error *err)
{
    if (!opt || !cfg) return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_optim_init: NULL argument");
    memset(opt, 0, sizeof *opt);
    if (cfg->kind != TNMTL_OPTIM_SGD && cfg->kind != TNMTL_OPTIM_ADAM)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "unknown optimiser kind %d", (int)cfg->kind);
    if (!(cfg->lr > 0) || !isfinite(cfg->lr))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "learning rate %g must be positive and finite", cfg->lr);
    if (cfg->kind == TNMTL_OPTIM_SGD && !(cfg->momentum >= 0 && cfg->momentum < 1))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "SGD momentum %g must be in [0, 1)", cfg->momentum);
    if (cfg->kind == TNMTL_OPTIM_ADAM) {
        if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "Adam betas (%g, %g) must be in [0, 1)",
                              cfg->beta1, cfg->beta2);
        if (!(cfg->eps > 0) || !isfinite(cfg->eps))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "Adam eps %g must be positive and finite", cfg->eps);
    }
    if (n < 1 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "optimiser over %lld parameters", (long long)n);
    opt->cfg = *cfg;
    opt->n = n;
    opt->n_held = n;
    opt->m = tnmtl_calloc((size_t)n, sizeof *opt->m, "optimiser first moment", err);
    if (!opt->m) return err ? err->status : TNMTL_ERR_NOMEM;
    if (cfg->kind == TNMTL_OPTIM_ADAM) {
        opt->v = tnmtl_calloc((size_t)n, sizeof *opt->v, "optimiser second moment", err);
        if (!opt->v) {
            tnmtl_optim_free(opt);
            return err ? err->status : TNMTL_ERR_NOMEM;
        }
    }
    return TNMTL_OK;
}

/* The per-element Adam update.  The loop does not vectorise by itself (GCC
 * keeps sqrtf scalar: it may set errno), so on x86 an AVX copy runs it 8
 * elements at a time: the same operations, each correctly rounded (vsqrtps
 * and vdivps as sqrtf and /), so the same bits. */
static void adam_scalar(float *params, float *m, float *v, const float *grads, size_t n, float fb1, float fb2,
                        float c1, float c2, float step_size, float bc2_sqrt, float eps)
{
    for (size_t i = 0; i < n; i++) {
        const float g = grads[i];
        m[i] = m[i] * fb1 + g * c1;
        v[i] = v[i] * fb2 + c2 * g * g;
        params[i] -= step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx"))) static void adam_avx(float *params, float *m, float *v, const float *grads, size_t n,
                                                    float fb1, float fb2, float c1, float c2, float step_size,
                                                    float bc2_sqrt, float eps)
{
    const __m256 vb1 = _mm256_set1_ps(fb1), vb2 = _mm256_set1_ps(fb2), vc1 = _mm256_set1_ps(c1),
                 vc2 = _mm256_set1_ps(c2), vss = _mm256_set1_ps(step_size), vbc = _mm256_set1_ps(bc2_sqrt),
                 veps = _mm256_set1_ps(eps);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* no FMA: the scalar code rounds each product */
        const __m256 g = _mm256_loadu_ps(grads + i);
        const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), vb1), _mm256_mul_ps(g, vc1));
        const __m256 vi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vb2),
                                        _mm256_mul_ps(_mm256_mul_ps(vc2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        const __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc), veps);
        _mm256_storeu_ps(params + i,
                         _mm256_sub_ps(_mm256_loadu_ps(params + i), _mm256_mul_ps(vss, _mm256_div_ps(mi, den))));
    }
    adam_scalar(params + i, m + i, v + i, grads + i, n - i, fb1, fb2, c1, c2, step_size, bc2_sqrt, eps);
}
#endif

static void adam_update(float *params, float *m, float *v, const float *grads, size_t n, float fb1, float fb2,
                        float c1, float c2, float step_size, float bc2_sqrt, float eps)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx")) {
        adam_avx(params, m, v, grads, n, fb1, fb2, c1, c2, step_size, bc2_sqrt, eps);
        return;
    }
#endif
    adam_scalar(params, m, v, grads, n, fb1, fb2, c1, c2, step_size, bc2_sqrt, eps);
}

/* The held range containing parameter i (ranges non-NULL), or -1. */
static int held_range(const tnmtl_optim *opt, int64_t i)
{
    int lo = 0, hi = opt->n_ranges; /* the first range ending after i is in [lo, hi] */
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (opt->ranges[2 * mid + 1] <= i) lo = mid + 1;
        else hi = mid;
    }
    return lo < opt->n_ranges && opt->ranges[2 * lo] <= i ? lo : -1;
}

/* Where the state of range r of opt begins in m and v. */
static int64_t held_start(const tnmtl_optim *opt, int r)
{
    int64_t k = 0;
    for (int j = 0; j < r; j++) k += opt->ranges[2 * j + 1] - opt->ranges[2 * j];
    return k;
}

int64_t tnmtl_optim_index(const tnmtl_optim *opt, int64_t i)
{
    if (i < 0 || i >= opt->n) return -1;
    if (!opt->ranges) return i;
    const int r = held_range(opt, i);
    return r < 0 ? -1 : held_start(opt, r) + (i - opt->ranges[2 * r]);
}

int64_t tnmtl_optim_bytes(const tnmtl_optim *opt)
{
    return opt->n_held * (int64_t)sizeof(float) * ((opt->m != NULL) + (opt->v != NULL));
}

tnmtl_status tnmtl_optim_set_ranges(tnmtl_optim *opt, const int64_t *ranges, int n_ranges, tnmtl_error *err)
{
    if (!opt || !opt->m || n_ranges < 0 || (n_ranges > 0 && !ranges))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_optim_set_ranges: bad arguments");
    /* the ranges kept (empty ones dropped, adjacent ones merged), checked */
    int64_t *kept = NULL, held = 0;
    int n_kept = 0;
    if (ranges && !(n_ranges == 1 && ranges[0] == 0 && ranges[1] == opt->n)) {
        kept = tnmtl_malloc((size_t)(n_ranges ? n_ranges : 1) * 2 * sizeof *kept, "optimiser ranges", err);
        if (!kept) return TNMTL_ERR_NOMEM;
        int64_t prev_end = 0;
        for (int r = 0; r < n_ranges; r++) {
            const int64_t lo = ranges[2 * r], hi = ranges[2 * r + 1];
            if (lo < prev_end || hi < lo || hi > opt->n) {
                free(kept);
                return tnmtl_fail(err, TNMTL_ERR_INVALID,
                                  "optimiser range %d [%lld, %lld) is not ascending, disjoint and within [0, %lld)", r,
                                  (long long)lo, (long long)hi, (long long)opt->n);
            }
            if (hi == lo) continue;
            prev_end = hi;
            held += hi - lo;
            if (n_kept > 0 && kept[2 * n_kept - 1] == lo) {
                kept[2 * n_kept - 1] = hi;
            } else {
                kept[2 * n_kept] = lo;
                kept[2 * n_kept + 1] = hi;
                n_kept++;
            }
        }
        if (n_kept == 1 && kept[0] == 0 && kept[1] == opt->n) { /* everything */
            free(kept);
            kept = NULL;
            n_kept = 0;
        }
    }
    if (!kept) held = opt->n;
    if (!kept && !opt->ranges) return TNMTL_OK; /* all held already */
    if (kept && opt->ranges && n_kept == opt->n_ranges &&
        !memcmp(kept, opt->ranges, (size_t)n_kept * 2 * sizeof *kept)) { /* these ranges held already */
        free(kept);
        return TNMTL_OK;
    }
    float *nm = tnmtl_calloc(held ? (size_t)held : 1, sizeof *nm, "optimiser first moment", err);
    float *nv = opt->v ? tnmtl_calloc(held ? (size_t)held : 1, sizeof *nv, "optimiser second moment", err) : NULL;
    if (!nm || (opt->v && !nv)) {
        free(nm);
        free(nv);
        free(kept);
        return err ? err->status : TNMTL_ERR_NOMEM;
    }
    /* Copy the state held before and after: walk the new ranges, and inside
     * each the old pieces it overlaps. */
    const int64_t all[2] = {0, opt->n};
    const int64_t *nr = kept ? kept : all;
    const int nn = kept ? n_kept : 1;
    int64_t at = 0;
    for (int r = 0; r < nn; r++) {
        for (int64_t i = nr[2 * r]; i < nr[2 * r + 1];) {
            /* the run of parameters from i whose old state is contiguous (or absent) */
            int64_t end = nr[2 * r + 1], src = -1;
            if (!opt->ranges) {
                src = i;
            } else {
                const int o = held_range(opt, i);
                if (o >= 0) {
                    src = held_start(opt, o) + (i - opt->ranges[2 * o]);
                    if (opt->ranges[2 * o + 1] < end) end = opt->ranges[2 * o + 1];
                } else { /* not held before: up to the next old range */
                    for (int j = 0; j < opt->n_ranges; j++)
                        if (opt->ranges[2 * j] > i) {
                            if (opt->ranges[2 * j] < end) end = opt->ranges[2 * j];
                            break;
                        }
                }
            }
            if (src >= 0) {
                memcpy(nm + at, opt->m + src, (size_t)(end - i) * sizeof *nm);
                if (nv) memcpy(nv + at, opt->v + src, (size_t)(end - i) * sizeof *nv);
            }
            at += end - i;
            i = end;
        }
    }
    free(opt->m);
    free(opt->v);
    free(opt->ranges);
    opt->m = nm;
    opt->v = nv;
    opt->ranges = kept;
    opt->n_ranges = n_kept;
    opt->n_held = held;
    return TNMTL_OK;
}

void tnmtl_optim_step(tnmtl_optim *opt, float *params, const float *grads)
{
    const int64_t all[2] = {0, opt->n};
    if (opt->ranges) tnmtl_optim_step_ranges(opt, params, grads, opt->ranges, opt->n_ranges);
    else tnmtl_optim_step_ranges(opt, params, grads, all, 1);
}

void tnmtl_optim_step_ranges(tnmtl_optim *opt, float *params, const float *grads, const int64_t *ranges,
                             int n_ranges)
{
    opt->step++;
    const double t = (double)opt->step, b1 = opt->cfg.beta1, b2 = opt->cfg.beta2;
    const float fb1 = (float)b1, fb2 = (float)b2, c1 = (float)(1 - b1), c2 = (float)(1 - b2);
    const float step_size = (float)(opt->cfg.lr / (1 - pow(b1, t)));
    const float bc2_sqrt = (float)sqrt(1 - pow(b2, t));
    const float eps = (float)opt->cfg.eps;
    const float mu = (float)opt->cfg.momentum, lr = (float)opt->cfg.lr;
    for (int r = 0; r < n_ranges; r++) {
        const int64_t lo = ranges[2 * r], n = ranges[2 * r + 1] - lo;
        if (n <= 0) continue;
        /* the state of [lo, lo + n): at lo when all is held, else inside one held range */
        int64_t k = lo;
        if (opt->ranges) {
            const int h = held_range(opt, lo);
            if (h < 0 || lo + n > opt->ranges[2 * h + 1]) continue;
            k = held_start(opt, h) + (lo - opt->ranges[2 * h]);
        } else if (lo < 0 || lo + n > opt->n) {
            continue;
        }
        float *p = params + lo, *m = opt->m + k;
        const float *g = grads + lo;
        if (opt->cfg.kind == TNMTL_OPTIM_SGD) {
            for (int64_t i = 0; i < n; i++) {
                m[i] = mu * m[i] + g[i];
                p[i] -= lr * m[i];
            }
        } else {
            adam_update(p, m, opt->v + k, g, (size_t)n, fb1, fb2, c1, c2, step_size, bc2_sqrt, eps);
        }
    }
}

void tnmtl_optim_free(tnmtl_optim *opt)
{
    if (!opt) return;
    free(opt->m);
    free(opt->v);
    free(opt->ranges);
    opt->m = opt->v = NULL;
    opt->ranges = NULL;
    opt->n_ranges = 0;
    opt->n_held = 0;
}
