/* norm.c - tensor trace norms (LAF, Tucker, TT): values, subgradients, prox.
 *
 * Every term is the nuclear norm of one matrix view of W (see norm.h and
 * ../shared/docs/method.md).  W, seen as [A][D][B], gives the unfolding
 * X[d][a*B + b] = W[a][d][b] (D x A*B):
 *   Tucker mode i:  A = D_1..D_{i-1},  D = D_i,  B = D_{i+1}..D_N
 *   LAF:            Tucker mode N (B = 1)
 *   TT term i:      A = 1,  D = D_1..D_i,  B = D_{i+1}..D_N
 * When A == 1 (X is W itself) or B == 1 (X^T is W itself) the matrix is read
 * in place and the subgradient is written straight into grad; otherwise the
 * unfolding is copied once and the subgradient folded back.
 *
 * Each term: Gram matrix of the smaller side in double (dsyrk on a double
 * copy of W), eigendecomposition (dsyevd), sigma = sqrt(max(lambda, 0)).
 * Subgradient U V^T = U diag(1/sigma) U^T X over sigma > RANK_RTOL sigma_max
 * (linalg.c).  Accuracy and speed choices: docs/design.md "Trace norms".
 */
#include "tnmtl/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "norm_internal.h"
#include "util.h"

/* The product with X runs in float (float API) only when every retained
 * singular value is >= this fraction of sigma_max: the float rounding error
 * of u_i^T X is about eps_f * sigma_max and is divided by sigma_i, so below
 * this the product is done in double.  Small matrices always use double. */
#define NORM_F32_PRODUCT_RTOL (1.0 / 64)
#define NORM_F32_MIN_ELEMS 65536

const char *tnmtl_norm_method_name(tnmtl_norm_method m)
{
    switch (m) {
    case TNMTL_NORM_LAF: return "laf";
    case TNMTL_NORM_TUCKER: return "tucker";
    case TNMTL_NORM_TT: return "tt";
    }
    return "?";
}

tnmtl_status tnmtl_norm_method_parse(const char *s, tnmtl_norm_method *m, tnmtl_error *err)
{
    static const tnmtl_norm_method all[] = {TNMTL_NORM_LAF, TNMTL_NORM_TUCKER, TNMTL_NORM_TT};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
        if (!strcmp(s, tnmtl_norm_method_name(all[i]))) {
            *m = all[i];
            return TNMTL_OK;
        }
    }
    return tnmtl_fail(err, TNMTL_ERR_INVALID, "unknown norm method '%s' (expected laf, tucker or tt)", s ? s : "");
}

int tnmtl_norm_n_terms(tnmtl_norm_method m, int ndim)
{
    if (ndim < 1 || ndim > TNMTL_NORM_MAX_NDIM) return 0;
    switch (m) {
    case TNMTL_NORM_LAF: return 1;
    case TNMTL_NORM_TUCKER: return ndim;
    case TNMTL_NORM_TT: return ndim - 1;
    }
    return 0;
}

/* W[shape] seen as [A][D][B] for term `term` (valid shape and term). */
void tnmtl_norm_term_view(tnmtl_norm_method m, int ndim, const int64_t *shape, int term, int64_t *A, int64_t *D,
                          int64_t *B)
{
    int lo, hi; /* D = prod shape[lo..hi) */
    if (m == TNMTL_NORM_TT) {
        lo = 0;
        hi = term + 1;
    } else {
        lo = m == TNMTL_NORM_LAF ? ndim - 1 : term;
        hi = lo + 1;
    }
    *A = *D = *B = 1;
    for (int i = 0; i < ndim; i++) {
        if (i < lo) *A *= shape[i];
        else if (i < hi) *D *= shape[i];
        else *B *= shape[i];
    }
}

void tnmtl_norm_term_shape(tnmtl_norm_method m, int ndim, const int64_t *shape, int term, int64_t *rows,
                           int64_t *cols)
{
    int64_t A, D, B;
    tnmtl_norm_term_view(m, ndim, shape, term, &A, &D, &B);
    *rows = D;
    *cols = A * B;
}

static tnmtl_status check_shape(tnmtl_norm_method m, int ndim, const int64_t *shape, int64_t *count,
                                tnmtl_error *err)
{
    if (m != TNMTL_NORM_LAF && m != TNMTL_NORM_TUCKER && m != TNMTL_NORM_TT)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "unknown norm method %d", (int)m);
    if (ndim < 1 || ndim > TNMTL_NORM_MAX_NDIM)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tensor has %d dimensions (expected 1 to %d)", ndim,
                          TNMTL_NORM_MAX_NDIM);
    if (m == TNMTL_NORM_TT && ndim < 2)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the TT norm needs at least 2 dimensions, got %d", ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "dimension %d of the tensor is %lld (must be >= 1)", i,
                              (long long)shape[i]);
        if (shape[i] > INT32_MAX || n > INT32_MAX / shape[i])
            return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "tensor has more than %d elements", INT32_MAX);
        n *= shape[i];
    }
    *count = n;
    return TNMTL_OK;
}

/* ---- one term ------------------------------------------------------------ */

/* The tensor as the kernels see it.  Wd = W * scale in double (scale a power
 * of two keeping the Gram away from overflow and underflow); Wf = the same
 * in float for the float API (NULL for the double API). */
typedef struct norm_data {
    int f64;           /* 1: caller's W and grad are double */
    int64_t count;
    const double *Wd;  /* [count] */
    const float *Wf;   /* [count] or NULL */
    double scale;
} norm_data;

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Nuclear norm (of the scaled tensor) of the unfolding [A][D][B]; optional
 * singular values sv[min] descending (scaled); with grad (float or double
 * as nd->f64), grad += gamma * U V^T folded back into W's layout. */
static tnmtl_status term_eval(const norm_data *nd, int64_t A, int64_t D, int64_t B, double gamma, void *grad,
                              double *nuc, double *sv, tnmtl_error *err)
{
    int direct = A == 1 || B == 1;
    int64_t R = B == 1 ? A : D, C = B == 1 ? D : A * B;
    int rows_side;
    int64_t p = tnmtl_la_small_side(R, C, &rows_side);
    int want_grad = grad && gamma != 0.0;
    double *Xd_copy = NULL, *G = NULL, *sigma = NULL, *w = NULL;
    float *Xf_copy = NULL;
    void *P = NULL;

    tnmtl_status st = tnmtl_la_check_size(R, C, err);
    if (st) return st;
    const double *Xd = nd->Wd;
    if (!direct) {
        Xd_copy = tnmtl_calloc((size_t)nd->count, sizeof(double), "unfolding", err);
        if (!Xd_copy) return err ? err->status : TNMTL_ERR_NOMEM;
        tnmtl_la_unfold(nd->Wd, A, D, B, sizeof(double), Xd_copy);
        Xd = Xd_copy;
    }
    G = tnmtl_calloc((size_t)(p * p), sizeof(double), "Gram matrix", err);
    sigma = G ? tnmtl_calloc((size_t)p, sizeof(double), "singular values", err) : NULL;
    w = sigma ? tnmtl_calloc((size_t)p, sizeof(double), "weights", err) : NULL;
    if (!w) {
        st = err ? err->status : TNMTL_ERR_NOMEM;
        goto done;
    }
    st = tnmtl_la_spectrum(R, C, Xd, want_grad, G, sigma, err);
    if (st) goto done;

    double sum = 0.0, smax = 0.0; /* nearly ascending: sum from the small end */
    for (int64_t i = 0; i < p; i++) {
        sum += sigma[i];
        smax = fmax(smax, sigma[i]);
    }
    *nuc = sum;
    if (sv) {
        memcpy(sv, sigma, (size_t)p * sizeof *sv);
        qsort(sv, (size_t)p, sizeof *sv, cmp_desc);
    }
    if (!want_grad || !(smax > 0.0)) goto done;

    /* Pack the eigenvectors of the retained singular values into the last r
     * rows of G (processing from the top, a row only moves down into rows
     * already packed or dropped), their weights 1/sigma into w. */
    int64_t r = 0;
    double smin_kept = smax;
    for (int64_t i = p - 1; i >= 0; i--) {
        if (!(sigma[i] > TNMTL_NORM_RANK_RTOL * smax)) continue;
        int64_t dst = p - 1 - r;
        if (dst != i) memmove(G + (size_t)dst * (size_t)p, G + (size_t)i * (size_t)p, (size_t)p * sizeof *G);
        w[dst] = 1.0 / sigma[i];
        smin_kept = fmin(smin_kept, sigma[i]);
        r++;
    }
    const double *vt = G + (size_t)(p - r) * (size_t)p;
    const double *wr = w + (p - r);
    int prod_f64 = nd->f64 || smin_kept < NORM_F32_PRODUCT_RTOL * smax || R * C < NORM_F32_MIN_ELEMS;

    const void *X;
    if (prod_f64) {
        X = Xd;
    } else if (direct) {
        X = nd->Wf;
    } else {
        Xf_copy = tnmtl_calloc((size_t)nd->count, sizeof(float), "unfolding", err);
        if (!Xf_copy) {
            st = err ? err->status : TNMTL_ERR_NOMEM;
            goto done;
        }
        tnmtl_la_unfold(nd->Wf, A, D, B, sizeof(float), Xf_copy);
        X = Xf_copy;
    }
    if (direct && prod_f64 == nd->f64) {
        st = tnmtl_la_spectral_apply(prod_f64, R, C, r, vt, wr, X, gamma, grad, 1.0, err);
    } else {
        P = tnmtl_calloc((size_t)nd->count, prod_f64 ? sizeof(double) : sizeof(float), "subgradient", err);
        if (!P) {
            st = err ? err->status : TNMTL_ERR_NOMEM;
            goto done;
        }
        st = tnmtl_la_spectral_apply(prod_f64, R, C, r, vt, wr, X, gamma, P, 0.0, err);
        if (!st) {
            if (direct) tnmtl_la_fold_add(prod_f64, P, 1, nd->count, 1, nd->f64, grad);
            else tnmtl_la_fold_add(prod_f64, P, A, D, B, nd->f64, grad);
        }
    }
done:
    free(Xd_copy);
    free(Xf_copy);
    free(P);
    free(G);
    free(sigma);
    free(w);
    return st;
}

/* ---- evaluation ----------------------------------------------------------- */

/* Power of two s with maxabs * s in [0.5, 1), or 1 when maxabs is in the
 * comfortable range [2^-lim, 2^lim] (then no scaled copy is needed). */
static double pick_scale(double maxabs, int lim)
{
    int e;
    frexp(maxabs, &e);
    if (maxabs == 0.0 || (e >= -lim && e <= lim)) return 1.0;
    return ldexp(1.0, -e);
}

static tnmtl_status norm_eval(tnmtl_norm_method m, int ndim, const int64_t *shape, int f64, const void *W,
                              const double *gamma, double *value, double *terms, void *grad, tnmtl_error *err)
{
    int64_t count;
    tnmtl_status st = check_shape(m, ndim, shape, &count, err);
    if (st) return st;
    if (!W) return tnmtl_fail(err, TNMTL_ERR_INVALID, "no tensor data");
    int nt = tnmtl_norm_n_terms(m, ndim);
    for (int i = 0; gamma && i < nt; i++)
        if (!(gamma[i] >= 0.0) || !isfinite(gamma[i]))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "gamma[%d] = %g (must be finite and >= 0)", i, gamma[i]);

    for (int t = 0; t < nt; t++) { /* refuse huge eigenproblems before touching the data */
        int64_t rows, cols;
        tnmtl_norm_term_shape(m, ndim, shape, t, &rows, &cols);
        if ((st = tnmtl_la_check_size(rows, cols, err)) != TNMTL_OK) return st;
    }
    double maxabs = 0.0;
    int64_t bad = f64 ? tnmtl_la_maxabs_f64(W, count, &maxabs) : tnmtl_la_maxabs_f32(W, count, &maxabs);
    if (bad >= 0)
        return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "tensor element %lld is %s", (long long)bad,
                          isnan(f64 ? ((const double *)W)[bad] : ((const float *)W)[bad]) ? "NaN" : "infinite");

    size_t es = f64 ? sizeof(double) : sizeof(float);
    if (grad) memset(grad, 0, (size_t)count * es);
    if (value) *value = 0.0;
    if (terms) memset(terms, 0, (size_t)nt * sizeof *terms);
    if (maxabs == 0.0) return TNMTL_OK; /* zero tensor: value 0, subgradient 0 */

    norm_data nd = {f64, count, NULL, NULL, pick_scale(maxabs, f64 ? 400 : 40)};
    double *dcopy = NULL;
    float *fcopy = NULL;
    if (f64 && nd.scale == 1.0) {
        nd.Wd = W;
    } else {
        dcopy = tnmtl_calloc((size_t)count, sizeof(double), "double copy of the tensor", err);
        if (!dcopy) return err ? err->status : TNMTL_ERR_NOMEM;
        for (int64_t i = 0; i < count; i++)
            dcopy[i] = (f64 ? ((const double *)W)[i] : ((const float *)W)[i]) * nd.scale;
        nd.Wd = dcopy;
    }
    if (!f64) {
        nd.Wf = W;
        if (nd.scale != 1.0 && grad) {
            fcopy = tnmtl_calloc((size_t)count, sizeof(float), "scaled copy of the tensor", err);
            if (!fcopy) {
                free(dcopy);
                return err ? err->status : TNMTL_ERR_NOMEM;
            }
            for (int64_t i = 0; i < count; i++) fcopy[i] = (float)dcopy[i];
            nd.Wf = fcopy;
        }
    }

    double total = 0.0;
    for (int t = 0; t < nt; t++) {
        double g = gamma ? gamma[t] : 1.0;
        if (g == 0.0 && !terms) continue;
        int64_t A, D, B;
        tnmtl_norm_term_view(m, ndim, shape, t, &A, &D, &B);
        double nuc = 0.0;
        st = term_eval(&nd, A, D, B, g, grad, &nuc, NULL, err);
        if (st) {
            tnmtl_error_prefix(err, "%s term %d", tnmtl_norm_method_name(m), t + 1);
            break;
        }
        nuc /= nd.scale;
        if (terms) terms[t] = nuc;
        total += g * nuc;
    }
    free(dcopy);
    free(fcopy);
    if (st) {
        if (grad) memset(grad, 0, (size_t)count * es);
        return st;
    }
    if (value) *value = total;
    return TNMTL_OK;
}

tnmtl_status tnmtl_norm_eval(tnmtl_norm_method m, int ndim, const int64_t *shape, const float *W,
                             const double *gamma, double *value, double *terms, float *grad, tnmtl_error *err)
{
    return norm_eval(m, ndim, shape, 0, W, gamma, value, terms, grad, err);
}

tnmtl_status tnmtl_norm_eval_f64(tnmtl_norm_method m, int ndim, const int64_t *shape, const double *W,
                                 const double *gamma, double *value, double *terms, double *grad,
                                 tnmtl_error *err)
{
    return norm_eval(m, ndim, shape, 1, W, gamma, value, terms, grad, err);
}

static tnmtl_status check_term(tnmtl_norm_method m, int ndim, const int64_t *shape, int term, int64_t *count,
                               tnmtl_error *err)
{
    tnmtl_status st = check_shape(m, ndim, shape, count, err);
    if (st) return st;
    int nt = tnmtl_norm_n_terms(m, ndim);
    if (term < 0 || term >= nt)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "term %d out of range (the %s norm of a %d-d tensor has %d)",
                          term, tnmtl_norm_method_name(m), ndim, nt);
    return TNMTL_OK;
}

tnmtl_status tnmtl_norm_term_singular_values(tnmtl_norm_method m, int ndim, const int64_t *shape,
                                             const float *W, int term, double *sv, tnmtl_error *err)
{
    int64_t count, A, D, B, rows, cols;
    tnmtl_status st = check_term(m, ndim, shape, term, &count, err);
    if (st) return st;
    tnmtl_norm_term_view(m, ndim, shape, term, &A, &D, &B);
    tnmtl_norm_term_shape(m, ndim, shape, term, &rows, &cols);
    int64_t p = rows < cols ? rows : cols;
    if ((st = tnmtl_la_check_size(rows, cols, err)) != TNMTL_OK) return st;
    double maxabs;
    int64_t bad = tnmtl_la_maxabs_f32(W, count, &maxabs);
    if (bad >= 0) return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "tensor element %lld is not finite", (long long)bad);
    if (maxabs == 0.0) {
        memset(sv, 0, (size_t)p * sizeof *sv);
        return TNMTL_OK;
    }
    norm_data nd = {0, count, NULL, W, pick_scale(maxabs, 0)};
    double *dcopy = tnmtl_calloc((size_t)count, sizeof(double), "double copy of the tensor", err);
    if (!dcopy) return err ? err->status : TNMTL_ERR_NOMEM;
    for (int64_t i = 0; i < count; i++) dcopy[i] = W[i] * nd.scale;
    nd.Wd = dcopy;
    double nuc;
    st = term_eval(&nd, A, D, B, 0.0, NULL, &nuc, sv, err);
    free(dcopy);
    for (int64_t i = 0; !st && i < p; i++) sv[i] /= nd.scale;
    return st;
}

/* ---- proximal operator ----------------------------------------------------- */

tnmtl_status tnmtl_prox_nuclear(int64_t rows, int64_t cols, float *X, double t, tnmtl_error *err)
{
    if (rows < 1 || cols < 1 || rows > INT32_MAX || cols > INT32_MAX || rows > INT32_MAX / cols)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "bad matrix size %lld x %lld", (long long)rows, (long long)cols);
    if (!(t >= 0.0) || !isfinite(t))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "prox threshold %g (must be finite and >= 0)", t);
    tnmtl_status st = tnmtl_la_check_size(rows, cols, err);
    if (st) return st;
    int64_t n = rows * cols;
    double maxabs;
    int64_t bad = tnmtl_la_maxabs_f32(X, n, &maxabs);
    if (bad >= 0) return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "matrix element %lld is not finite", (long long)bad);
    if (t == 0.0 || maxabs == 0.0) return TNMTL_OK;

    int rows_side;
    int64_t p = tnmtl_la_small_side(rows, cols, &rows_side);
    double scale = pick_scale(maxabs, 0), ts = t * scale;
    double *Xd = tnmtl_calloc((size_t)n, sizeof(double), "double copy", err);
    double *G = Xd ? tnmtl_calloc((size_t)(p * p), sizeof(double), "Gram matrix", err) : NULL;
    double *sigma = G ? tnmtl_calloc((size_t)p, sizeof(double), "singular values", err) : NULL;
    double *w = sigma ? tnmtl_calloc((size_t)p, sizeof(double), "weights", err) : NULL;
    float *out = w ? tnmtl_calloc((size_t)n, sizeof(float), "prox result", err) : NULL;
    if (!out) {
        st = err ? err->status : TNMTL_ERR_NOMEM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++) Xd[i] = X[i] * scale;
    st = tnmtl_la_spectrum(rows, cols, Xd, 1, G, sigma, err);
    if (st) goto done;
    /* Keep sigma > t: pack their eigenvectors into the last r rows of G. */
    int64_t r = 0;
    for (int64_t i = p - 1; i >= 0; i--) {
        if (!(sigma[i] > ts)) continue;
        int64_t dst = p - 1 - r;
        if (dst != i) memmove(G + (size_t)dst * (size_t)p, G + (size_t)i * (size_t)p, (size_t)p * sizeof *G);
        w[dst] = (sigma[i] - ts) / sigma[i];
        r++;
    }
    /* U diag(w) U^T X: no division amplifies rounding here, float is enough. */
    st = tnmtl_la_spectral_apply(0, rows, cols, r, G + (size_t)(p - r) * (size_t)p, w + (p - r), X, 1.0, out, 0.0, err);
    if (!st) memcpy(X, out, (size_t)n * sizeof *X);
done:
    free(Xd);
    free(G);
    free(sigma);
    free(w);
    free(out);
    return st;
}

tnmtl_status tnmtl_norm_prox_term(tnmtl_norm_method m, int ndim, const int64_t *shape, float *W, int term,
                                  double t, tnmtl_error *err)
{
    int64_t count, A, D, B;
    tnmtl_status st = check_term(m, ndim, shape, term, &count, err);
    if (st) return st;
    tnmtl_norm_term_view(m, ndim, shape, term, &A, &D, &B);
    if (A == 1) return tnmtl_prox_nuclear(D, B, W, t, err);
    if (B == 1) return tnmtl_prox_nuclear(A, D, W, t, err); /* prox(X^T) = prox(X)^T */
    float *X = tnmtl_calloc((size_t)count, sizeof(float), "unfolding", err);
    if (!X) return err ? err->status : TNMTL_ERR_NOMEM;
    tnmtl_la_unfold(W, A, D, B, sizeof(float), X);
    st = tnmtl_prox_nuclear(D, A * B, X, t, err);
    if (!st) {
        memset(W, 0, (size_t)count * sizeof *W);
        tnmtl_la_fold_add(0, X, A, D, B, 0, W);
    }
    free(X);
    return st;
}
