/* linalg.c - Gram matrices, symmetric eigendecomposition and spectral maps
 * for the trace norms (see linalg.h). */
#include "linalg.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Levels of small-singular-value refinement (each gains a factor 1e-4). */
#define LA_MAX_REFINE_DEPTH 6

tnmtl_status tnmtl_la_check_size(int64_t R, int64_t C, tnmtl_error *err)
{
    int64_t p = R < C ? R : C;
    if (p > TNMTL_LA_MAX_EIG_DIM)
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "a %lld x %lld unfolding needs a %lld x %lld eigenproblem "
                          "(at most %d)", (long long)R, (long long)C, (long long)p, (long long)p, TNMTL_LA_MAX_EIG_DIM);
    return TNMTL_OK;
}

int64_t tnmtl_la_small_side(int64_t R, int64_t C, int *rows_side)
{
    *rows_side = R <= C;
    return R <= C ? R : C;
}

void tnmtl_la_fill_lower(int64_t p, double *G)
{
    for (int64_t i = 1; i < p; i++)
        for (int64_t j = 0; j < i; j++) G[i * p + j] = G[j * p + i];
}

void tnmtl_la_gram(int64_t R, int64_t C, const double *X, double *G)
{
    if (R <= C)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)R, (int)C, 1.0, X, (int)C, 0.0, G, (int)R);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)C, (int)R, 1.0, X, (int)C, 0.0, G, (int)C);
    tnmtl_la_fill_lower(R <= C ? R : C, G);
}

tnmtl_status tnmtl_la_syev(int64_t p, double *G, double *lambda, int want_vectors, tnmtl_error *err)
{
    if (p > TNMTL_LA_MAX_EIG_DIM)
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "eigenproblem of size %lld exceeds the limit of %d",
                          (long long)p, TNMTL_LA_MAX_EIG_DIM);
    if (p == 1) {
        lambda[0] = G[0];
        if (want_vectors) G[0] = 1.0;
        return TNMTL_OK;
    }
    /* The row-major upper triangle is the column-major lower one; in column
     * major, eigenvector i comes back as column i = row i of our view. */
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, want_vectors ? 'V' : 'N', 'L', (lapack_int)p, G,
                                     (lapack_int)p, lambda);
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory in the %lld x %lld eigensolver", (long long)p,
                          (long long)p);
    if (info > 0)
        return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "symmetric eigensolver (dsyevd) did not converge (info %d)",
                          (int)info);
    if (info < 0) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "dsyevd: bad argument %d", (int)-info);
    return TNMTL_OK;
}

static tnmtl_status spectrum(int64_t R, int64_t C, const double *X, int want_vectors, double *G, double *sigma,
                             int depth, tnmtl_error *err)
{
    int rows_side;
    int64_t p = tnmtl_la_small_side(R, C, &rows_side);
    tnmtl_la_gram(R, C, X, G);
    tnmtl_status st = tnmtl_la_syev(p, G, sigma, want_vectors, err);
    if (st) return st;
    for (int64_t i = 0; i < p; i++) sigma[i] = sqrt(fmax(sigma[i], 0.0));
    double smax = sigma[p - 1];
    int64_t k = 0; /* ascending: the small ones come first */
    while (k < p && sigma[k] < TNMTL_LA_REFINE_RTOL * smax) k++;
    if (k == 0 || !(smax > 0.0) || depth >= LA_MAX_REFINE_DEPTH) return TNMTL_OK;
    if (!want_vectors) {
        tnmtl_la_gram(R, C, X, G);
        st = tnmtl_la_syev(p, G, sigma, 1, err);
        if (st) return st;
        for (int64_t i = 0; i < p; i++) sigma[i] = sqrt(fmax(sigma[i], 0.0));
    }
    /* Y = U_k^T X [k][C] (rows side) or X U_k [R][k] (cols side): the part of
     * X in the small singular subspace; its singular values are the small
     * ones of X, now relative to its own (small) scale. */
    int64_t ry = rows_side ? k : R, cy = rows_side ? C : k;
    double *Y = tnmtl_calloc((size_t)(ry * cy), sizeof *Y, "singular value refinement", err);
    double *G2 = Y ? tnmtl_calloc((size_t)(k * k), sizeof *G2, "singular value refinement", err) : NULL;
    double *rot = G2 && want_vectors ? tnmtl_calloc((size_t)(k * p), sizeof *rot, "singular vectors", err) : NULL;
    if (!G2 || (want_vectors && !rot)) {
        st = err ? err->status : TNMTL_ERR_NOMEM;
        goto done;
    }
    if (rows_side)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)k, (int)C, (int)R, 1.0, G, (int)p, X, (int)C,
                    0.0, Y, (int)C);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)k, (int)C, 1.0, X, (int)C, G, (int)p,
                    0.0, Y, (int)k);
    st = spectrum(ry, cy, Y, want_vectors, G2, sigma, depth + 1, err);
    if (st || !want_vectors) goto done;
    /* The small block's singular vectors: rows of G2 combine the rows of U_k. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)k, (int)p, (int)k, 1.0, G2, (int)k, G, (int)p, 0.0,
                rot, (int)p);
    memcpy(G, rot, (size_t)(k * p) * sizeof *G);
done:
    free(Y);
    free(G2);
    free(rot);
    return st;
}

tnmtl_status tnmtl_la_spectrum(int64_t R, int64_t C, const double *X, int want_vectors, double *G,
                               double *sigma, tnmtl_error *err)
{
    return spectrum(R, C, X, want_vectors, G, sigma, 0, err);
}

/* ---- float/double BLAS dispatch --------------------------------------- */

static void gemm(int f64, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha, const void *A,
                 int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc)
{
    enum CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
    if (f64)
        cblas_dgemm(CblasRowMajor, a, b, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    else
        cblas_sgemm(CblasRowMajor, a, b, (int)M, (int)N, (int)K, (float)alpha, A, (int)lda, B, (int)ldb,
                    (float)beta, C, (int)ldc);
}

/* dst[rows][cols] (float or double) = src[rows][cols], row i times rowscale[i] (if given). */
static void convert_rows(int f64, const double *src, int64_t rows, int64_t cols, const double *rowscale, void *dst)
{
    for (int64_t i = 0; i < rows; i++) {
        double s = rowscale ? rowscale[i] : 1.0;
        const double *in = src + i * cols;
        if (f64) {
            double *o = (double *)dst + i * cols;
            for (int64_t j = 0; j < cols; j++) o[j] = in[j] * s;
        } else {
            float *o = (float *)dst + i * cols;
            for (int64_t j = 0; j < cols; j++) o[j] = (float)(in[j] * s);
        }
    }
}

static void scale_array(int f64, void *x, int64_t n, double beta)
{
    if (beta == 1.0) return;
    if (f64) {
        double *d = x;
        for (int64_t i = 0; i < n; i++) d[i] = beta == 0.0 ? 0.0 : d[i] * beta;
    } else {
        float *f = x;
        for (int64_t i = 0; i < n; i++) f[i] = beta == 0.0 ? 0.0f : (float)(f[i] * beta);
    }
}

tnmtl_status tnmtl_la_spectral_apply(int f64, int64_t R, int64_t C, int64_t r, const double *vt,
                                     const double *w, const void *X, double alpha, void *out,
                                     double beta, tnmtl_error *err)
{
    int rows_side;
    int64_t p = tnmtl_la_small_side(R, C, &rows_side), q = rows_side ? C : R;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    if (r == 0) {
        scale_array(f64, out, R * C, beta);
        return TNMTL_OK;
    }
    double flops_m = 0.5 * (double)p * p * r + (double)p * p * q;  /* form U diag(w) U^T */
    double flops_u = 2.0 * (double)r * p * q;                      /* two thin products  */

    if (flops_m <= flops_u) {
        /* M = B^T B with B = diag(sqrt(w)) U_r^T, then one product with X. */
        double *sq = tnmtl_malloc((size_t)r * sizeof *sq, "spectral weights", err);
        void *B = sq ? tnmtl_calloc((size_t)(r * p), es, "spectral factor", err) : NULL;
        void *M = B ? tnmtl_calloc((size_t)(p * p), es, "spectral matrix", err) : NULL;
        if (!M) {
            free(sq);
            free(B);
            return TNMTL_ERR_NOMEM;
        }
        for (int64_t i = 0; i < r; i++) sq[i] = sqrt(w[i]);
        convert_rows(f64, vt, r, p, sq, B);
        if (f64) {
            double *m = M;
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)r, 1.0, B, (int)p, 0.0, m, (int)p);
            tnmtl_la_fill_lower(p, m);
        } else {
            float *m = M;
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)r, 1.0f, B, (int)p, 0.0f, m, (int)p);
            for (int64_t i = 1; i < p; i++)
                for (int64_t j = 0; j < i; j++) m[i * p + j] = m[j * p + i];
        }
        if (rows_side) gemm(f64, 0, 0, R, C, R, alpha, M, p, X, C, beta, out, C);
        else gemm(f64, 0, 0, R, C, C, alpha, X, C, M, p, beta, out, C);
        free(sq);
        free(B);
        free(M);
        return TNMTL_OK;
    }

    /* U_r diag(w) (U_r^T X) or (X U_r) diag(w) U_r^T. */
    void *V = tnmtl_calloc((size_t)(r * p), es, "eigenvectors", err);
    void *Y = V ? tnmtl_calloc((size_t)(r * q), es, "projection", err) : NULL;
    if (!Y) {
        free(V);
        return TNMTL_ERR_NOMEM;
    }
    convert_rows(f64, vt, r, p, NULL, V);
    if (rows_side) {
        gemm(f64, 0, 0, r, C, R, 1.0, V, p, X, C, 0.0, Y, C);              /* Y[r][C] = V X */
        for (int64_t i = 0; i < r; i++) scale_array(f64, (char *)Y + (size_t)(i * C) * es, C, w[i]);
        gemm(f64, 1, 0, R, C, r, alpha, V, p, Y, C, beta, out, C);         /* out += V^T Y  */
    } else {
        gemm(f64, 0, 1, R, r, C, 1.0, X, C, V, p, 0.0, Y, r);              /* Y[R][r] = X V^T */
        for (int64_t i = 0; i < R; i++) {
            for (int64_t j = 0; j < r; j++) {
                if (f64) ((double *)Y)[i * r + j] *= w[j];
                else ((float *)Y)[i * r + j] = (float)(((float *)Y)[i * r + j] * w[j]);
            }
        }
        gemm(f64, 0, 0, R, C, r, alpha, Y, r, V, p, beta, out, C);         /* out += Y V      */
    }
    free(V);
    free(Y);
    return TNMTL_OK;
}

/* Branch-free blocks (vectorisable); the index of a NaN/Inf is looked up
 * only when a block has one. */
#define LA_SCAN_BLOCK 4096

int64_t tnmtl_la_maxabs_f32(const float *x, int64_t n, double *maxabs)
{
    float m = 0.0f;
    for (int64_t b0 = 0; b0 < n; b0 += LA_SCAN_BLOCK) {
        int64_t b1 = b0 + LA_SCAN_BLOCK < n ? b0 + LA_SCAN_BLOCK : n;
        int bad = 0;
        for (int64_t i = b0; i < b1; i++) {
            float a = fabsf(x[i]);
            bad |= !(a <= FLT_MAX);
            m = a > m ? a : m;
        }
        if (bad)
            for (int64_t i = b0; i < b1; i++)
                if (!(fabsf(x[i]) <= FLT_MAX)) return i;
    }
    *maxabs = m;
    return -1;
}

int64_t tnmtl_la_maxabs_f64(const double *x, int64_t n, double *maxabs)
{
    double m = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += LA_SCAN_BLOCK) {
        int64_t b1 = b0 + LA_SCAN_BLOCK < n ? b0 + LA_SCAN_BLOCK : n;
        int bad = 0;
        for (int64_t i = b0; i < b1; i++) {
            double a = fabs(x[i]);
            bad |= !(a <= DBL_MAX);
            m = a > m ? a : m;
        }
        if (bad)
            for (int64_t i = b0; i < b1; i++)
                if (!(fabs(x[i]) <= DBL_MAX)) return i;
    }
    *maxabs = m;
    return -1;
}

void tnmtl_la_unfold(const void *W, int64_t A, int64_t D, int64_t B, size_t elem, void *out)
{
    const char *src = W;
    char *dst = out;
    size_t run = (size_t)B * elem;
    for (int64_t a = 0; a < A; a++)
        for (int64_t d = 0; d < D; d++)
            memcpy(dst + (size_t)(d * A + a) * run, src + (size_t)(a * D + d) * run, run);
}

void tnmtl_la_fold_add(int p_f64, const void *P, int64_t A, int64_t D, int64_t B, int g_f64, void *grad)
{
    for (int64_t a = 0; a < A; a++) {
        for (int64_t d = 0; d < D; d++) {
            size_t src = (size_t)(d * A + a) * (size_t)B, dst = (size_t)(a * D + d) * (size_t)B;
            if (p_f64 && g_f64) {
                const double *p = (const double *)P + src;
                double *g = (double *)grad + dst;
                for (int64_t b = 0; b < B; b++) g[b] += p[b];
            } else if (p_f64) {
                const double *p = (const double *)P + src;
                float *g = (float *)grad + dst;
                for (int64_t b = 0; b < B; b++) g[b] = (float)(g[b] + p[b]);
            } else if (g_f64) {
                const float *p = (const float *)P + src;
                double *g = (double *)grad + dst;
                for (int64_t b = 0; b < B; b++) g[b] += p[b];
            } else {
                const float *p = (const float *)P + src;
                float *g = (float *)grad + dst;
                for (int64_t b = 0; b < B; b++) g[b] += p[b];
            }
        }
    }
}
