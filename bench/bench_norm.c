/* bench_norm.c - speed of the trace norms on the paper's Omniglot layers.
 *
 *   build/bench/bench_norm [reps]            value + subgradient, every layer
 *                                            and method (median of reps)
 *   build/bench/bench_norm --kernels [reps]  the pieces of the 1936 x 3200
 *                                            fc1 unfolding, and accuracy of
 *                                            the alternatives against dgesdd
 *
 * Layers stacked over T = 50 tasks, random N(0, 0.1) data (tnmtl_rng, seed 1):
 *   conv1 5x5x1x8x50, conv2 3x3x8x12x50, conv3 3x3x12x16x50, fc1 1936x64x50.
 * The first mode prints "layer method seconds value" lines (parsed by
 * scripts/bench-norm.sh) and a total per method. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "linalg.h"
#include "tnmtl/norm.h"
#include "tnmtl/rng.h"
#include "util.h"

static const struct { const char *name; int ndim; int64_t shape[5]; } layers[] = {
    {"conv1", 5, {5, 5, 1, 8, 50}},
    {"conv2", 5, {3, 3, 8, 12, 50}},
    {"conv3", 5, {3, 3, 12, 16, 50}},
    {"fc1", 3, {1936, 64, 50}},
};
static const tnmtl_norm_method methods[3] = {TNMTL_NORM_LAF, TNMTL_NORM_TUCKER, TNMTL_NORM_TT};

static float *normal_tensor(int64_t n, uint64_t seed)
{
    float *w = malloc((size_t)n * sizeof *w);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) w[i] = (float)(0.1 * tnmtl_rng_normal(&rng));
    return w;
}

static int bench_layers(int reps)
{
    double total[3] = {0};
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int64_t n = 1;
        for (int i = 0; i < layers[l].ndim; i++) n *= layers[l].shape[i];
        float *W = normal_tensor(n, 1 + l), *grad = malloc((size_t)n * sizeof *grad);
        for (int m = 0; m < 3; m++) {
            double t[64], value = 0;
            for (int r = -1; r < reps; r++) {
                tnmtl_error err;
                double t0 = tnmtl_now();
                if (tnmtl_norm_eval(methods[m], layers[l].ndim, layers[l].shape, W, NULL, &value, NULL, grad, &err)) {
                    fprintf(stderr, "bench_norm: %s\n", err.msg);
                    return 1;
                }
                if (r >= 0) t[r] = tnmtl_now() - t0;
            }
            double med = bench_median(t, reps);
            total[m] += med;
            printf("%-6s %-7s %10.6f %.10g\n", layers[l].name, tnmtl_norm_method_name(methods[m]), med, value);
            fflush(stdout);
        }
        free(W);
        free(grad);
    }
    for (int m = 0; m < 3; m++) printf("%-6s %-7s %10.6f\n", "total", tnmtl_norm_method_name(methods[m]), total[m]);
    return 0;
}

/* ---- --kernels: where the time of the big unfolding goes ----------------- */

#define TIME(label, reps, stmt)                                                   \
    do {                                                                          \
        double t_[64];                                                            \
        for (int r_ = -1; r_ < (reps); r_++) {                                    \
            double t0_ = tnmtl_now();                                             \
            stmt;                                                                 \
            if (r_ >= 0) t_[r_] = tnmtl_now() - t0_;                              \
        }                                                                         \
        printf("  %-52s %8.4f s\n", label, bench_median(t_, (reps)));                   \
        fflush(stdout);                                                           \
    } while (0)

static double sum_sqrt(const double *lambda, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += sqrt(fmax(lambda[i], 0));
    return s;
}

/* Nuclear norm of X[m][n] by every route, against dgesdd. */
static void accuracy(const char *what, int m, int n, const float *X)
{
    double *Xd = malloc((size_t)m * n * sizeof *Xd), *A = malloc((size_t)m * n * sizeof *A);
    double *G = malloc((size_t)m * m * sizeof *G), *lam = malloc((size_t)m * sizeof *lam);
    float *Gs = malloc((size_t)m * m * sizeof *Gs), *lams = malloc((size_t)m * sizeof *lams);
    for (size_t i = 0; i < (size_t)m * n; i++) Xd[i] = X[i];
    memcpy(A, Xd, (size_t)m * n * sizeof *A);
    LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', m, n, A, n, lam, NULL, n, NULL, n);
    double ref = 0;
    for (int i = m - 1; i >= 0; i--) ref += lam[i];

    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1, X, n, 0, Gs, m);
    for (size_t i = 0; i < (size_t)m * m; i++) G[i] = Gs[i];
    LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', m, G, m, lam);
    double v_fd = sum_sqrt(lam, m);
    LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'N', 'L', m, Gs, m, lams);
    double v_ff = 0;
    for (int i = 0; i < m; i++) v_ff += sqrt(fmax(lams[i], 0));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1, Xd, n, 0, G, m);
    LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', m, G, m, lam);
    double v_dd = sum_sqrt(lam, m);
    double v_lib = 0;
    tnmtl_error err;
    /* the library on X seen as a TT term of shape (m, n): its only term */
    tnmtl_norm_eval(TNMTL_NORM_TT, 2, (int64_t[]){m, n}, X, NULL, &v_lib, NULL, NULL, &err);
    printf("  accuracy, %s (nuclear norm %.12g by dgesdd):\n", what, ref);
    printf("    float Gram (ssyrk) + ssyevd      rel err %9.2e\n", (v_ff - ref) / ref);
    printf("    float Gram (ssyrk) + dsyevd      rel err %9.2e\n", (v_fd - ref) / ref);
    printf("    double Gram (dsyrk) + dsyevd     rel err %9.2e\n", (v_dd - ref) / ref);
    printf("    library (double Gram + refine)   rel err %9.2e\n", (v_lib - ref) / ref);
    free(Xd), free(A), free(G), free(lam), free(Gs), free(lams);
}

static int bench_kernels(int reps)
{
    const int m = 1936, n = 3200, T = 50;
    int64_t shape[3] = {1936, 64, 50};
    float *W = normal_tensor((int64_t)m * n, 4);
    double *Wd = malloc((size_t)m * n * sizeof *Wd), *G = malloc((size_t)m * m * sizeof *G),
           *G2 = malloc((size_t)m * m * sizeof *G2), *lam = malloc((size_t)m * sizeof *lam),
           *Z = malloc((size_t)m * m * sizeof *Z);
    float *Gs = malloc((size_t)m * m * sizeof *Gs), *lams = malloc((size_t)m * sizeof *lams),
          *P = malloc((size_t)m * n * sizeof *P), *Ms = malloc((size_t)m * m * sizeof *Ms);
    lapack_int *isup = malloc(2 * (size_t)m * sizeof *isup), found;
    for (size_t i = 0; i < (size_t)m * n; i++) Wd[i] = W[i];
    printf("fc1 mode-1 unfolding %d x %d (Gram %d x %d), median of %d, OpenBLAS threads %d\n", m, n, m, m, reps,
           openblas_get_num_threads());
    printf("  flops: syrk %.1f G, product M X %.1f G, M = U D U^T %.1f G\n", (double)m * m * n * 1e-9,
           2.0 * m * m * n * 1e-9, (double)m * m * m * 1e-9);
    TIME("convert float -> double (6.2 M)", reps, for (size_t i = 0; i < (size_t)m * n; i++) Wd[i] = W[i]);
    TIME("ssyrk  Gram, float", reps, cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1, W, n, 0, Gs, m));
    TIME("dsyrk  Gram, double", reps, cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, n, 1, Wd, n, 0, G, m));
    TIME("dsyevd values only", reps, memcpy(G2, G, (size_t)m * m * 8);
         LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', m, G2, m, lam));
    TIME("dsyevd values + vectors", reps, memcpy(G2, G, (size_t)m * m * 8);
         LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', m, G2, m, lam));
    {
        double *d = malloc((size_t)m * sizeof *d), *e = malloc((size_t)m * sizeof *e),
               *tau = malloc((size_t)m * sizeof *tau), *d2 = malloc((size_t)m * sizeof *d2),
               *e2 = malloc((size_t)m * sizeof *e2);
        TIME("  dsytrd (tridiagonal reduction)", reps, memcpy(G2, G, (size_t)m * m * 8);
             LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', m, G2, m, d, e, tau));
        TIME("  dsterf (values of the tridiagonal)", reps, memcpy(d2, d, (size_t)m * 8); memcpy(e2, e, (size_t)m * 8);
             LAPACKE_dsterf(m, d2, e2));
        TIME("  dstedc (values + vectors of the tridiagonal)", reps, memcpy(d2, d, (size_t)m * 8);
             memcpy(e2, e, (size_t)m * 8); LAPACKE_dstedc(LAPACK_COL_MAJOR, 'I', m, d2, e2, Z, m));
        TIME("  dormtr (back-transformation of the vectors)", reps,
             LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', m, m, G2, m, tau, Z, m));
        free(d), free(e), free(tau), free(d2), free(e2);
    }
    TIME("dsyevr values + vectors (MRRR)", reps, memcpy(G2, G, (size_t)m * m * 8);
         LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'A', 'L', m, G2, m, 0, 0, 0, 0, 0, &found, lam, Z, m, isup));
    TIME("ssyevd values + vectors (float)", reps, for (size_t i = 0; i < (size_t)m * m; i++) Gs[i] = (float)G[i];
         LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'L', m, Gs, m, lams));
    TIME("ssyrk  M = (U D^1/2)(U D^1/2)^T, float", reps,
         cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, m, m, 1, Gs, m, 0, Ms, m));
    TIME("sgemm  P = M X, float", reps,
         cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, m, 1, Ms, m, W, n, 0, P, n));
    double *Pd = malloc((size_t)m * n * sizeof *Pd);
    TIME("dgemm  P = M X, double", reps,
         cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, m, 1, G2, m, Wd, n, 0, Pd, n));
    free(Pd);
    TIME("dgesdd values only (thin SVD of X, double)", 1, double *A = malloc((size_t)m * n * 8); memcpy(A, Wd, (size_t)m * n * 8);
         LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', m, n, A, n, lam, NULL, n, NULL, n); free(A));

    /* The task-mode and middle-mode Grams of fc1: in place vs copied. */
    double *U = malloc((size_t)m * n * sizeof *U), *Gt = malloc(64 * 64 * sizeof *Gt);
    TIME("fc1 mode-3 Gram 50x50, dsyrk Trans in place", reps,
         cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, T, m * 64, 1, Wd, T, 0, Gt, T));
    TIME("fc1 mode-2 Gram 64x64, copy unfolding + dsyrk", reps, tnmtl_la_unfold(Wd, m, 64, T, 8, U);
         cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, 64, m * T, 1, U, m * T, 0, Gt, 64));
    TIME("fc1 mode-2 Gram 64x64, 1936 strided dsyrk", reps, for (int a = 0; a < m; a++)
         cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, 64, T, 1, Wd + (size_t)a * 64 * T, T, a ? 1.0 : 0.0, Gt, 64));
    free(U), free(Gt);

    float *grad = malloc((size_t)m * n * sizeof *grad);
    double v;
    tnmtl_error err;
    TIME("library: Tucker value only, fc1", reps,
         tnmtl_norm_eval(TNMTL_NORM_TUCKER, 3, shape, W, NULL, &v, NULL, NULL, &err));
    TIME("library: Tucker value + subgradient, fc1", reps,
         tnmtl_norm_eval(TNMTL_NORM_TUCKER, 3, shape, W, NULL, &v, NULL, grad, &err));
    TIME("library: Tucker value + subgradient, fc1, double API", reps, double *gd = malloc((size_t)m * n * 8);
         tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, shape, Wd, NULL, &v, NULL, gd, &err); free(gd));
    free(grad);

    accuracy("random N(0, 0.1) 1936 x 3200", m, n, W);
    /* exactly rank 30 (then rounded to float): singular values 0.8^k */
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 9);
    const int k = 30;
    double *A = malloc((size_t)m * k * 8), *B = malloc((size_t)k * n * 8);
    for (size_t i = 0; i < (size_t)m * k; i++) A[i] = tnmtl_rng_normal(&rng) / sqrt(m);
    for (size_t i = 0; i < (size_t)k * n; i++) B[i] = tnmtl_rng_normal(&rng) / sqrt(n) * pow(0.8, (double)(i / n));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, A, k, B, n, 0, Wd, n);
    for (size_t i = 0; i < (size_t)m * n; i++) W[i] = (float)Wd[i];
    accuracy("rank 30 (+ float rounding) 1936 x 3200", m, n, W);
    free(A), free(B);
    free(W), free(Wd), free(G), free(G2), free(lam), free(Z), free(Gs), free(lams), free(P), free(Ms), free(isup);
    return 0;
}

int main(int argc, char **argv)
{
    int kernels = argc > 1 && !strcmp(argv[1], "--kernels");
    int reps = argc > 1 + kernels ? atoi(argv[1 + kernels]) : 5;
    if (reps < 1 || reps > 64) {
        fprintf(stderr, "usage: bench_norm [--kernels] [reps 1..64]\n");
        return 2;
    }
    return kernels ? bench_kernels(reps) : bench_layers(reps);
}
