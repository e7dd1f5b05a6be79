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

#include <cblas.h>

#include "linalg.h"
#include "tnmtl/rng.h"
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
static void term_view(tnmtl_norm_method m, int ndim, const int64_t *shape, int term, int64_t *A, int64_t *D,
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
    term_view(m, ndim, shape, term, &A, &D, &B);
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

/* ---- the fast solver: tracked inverse square roots ---------------------------
 *
 * For a large unfolding X (Gram side p >= min_side), the exact subgradient
 * U V^T = M X with M = (X X^T)^{-1/2} (rows side; X M with M = (X^T X)^{-1/2}
 * on the columns side) needs a p x p eigendecomposition.  The tracker keeps
 * M (float) from its last exact decomposition (a "refresh") and, while the
 * weights move, uses P = M_0 X as the subgradient: one GEMM instead of a
 * Gram, an eigensolver and a GEMM.  This is the gradient of the quadratic
 * majoriser of the nuclear norm at the refresh point X_0,
 *   ||X||_* <= 1/2 tr(X^T M_0 X) + 1/2 ||X_0||_*,   equality at X = X_0
 * (iteratively reweighted least squares), so a move of X along a singular
 * direction changes the gradient as the exact one does to first order,
 * including a sign flip when a singular value crosses zero (where a reused
 * subgradient would keep pushing).  The value reported for the step is that
 * majoriser: its error is second order in M_0's error.
 *
 * Refresh when: no M yet, a step that is a multiple of `period` (so a run
 * resumed there is bit-identical), a step that does not follow the last, or
 * the estimated error of P exceeding `tol`.  The estimate: with M = G^{-1/2} + E
 * (G = X X^T), P P^T - I = G^{1/2} E + E G^{1/2} + O(E^2), whose Frobenius
 * norm bounds sqrt(2) ||P - U V^T||_F to first order (the error E G^{1/2} has
 * entries E_ij s_j in G's eigenbasis, the defect E_ij (s_i + s_j) >= them).
 * ||P P^T - I||_F^2 is estimated from `probes` Rademacher vectors
 * (Hutchinson: E ||(P P^T - I) z||^2 = ||P P^T - I||_F^2), drawn from the
 * step, so the decision is deterministic.  Directions below RANK_RTOL at the
 * refresh are out of M (the projector replaces I), as in the exact path.
 * docs/design.md, "The fast solver". */

typedef struct tracked_term {
    int on;                  /* Gram side >= min_side: tracked */
    int valid;               /* M holds a refresh */
    int64_t A, D, B;         /* the unfolding's view [A][D][B] */
    int64_t R, C, p, r;      /* matrix R x C, Gram side p, retained rank r */
    int rows_side, direct;
    float *M;                /* [p][p] U_r diag(1/sigma) U_r^T at the refresh */
    float *Vr;               /* [r][p] retained eigenvectors (r < p only): the projector */
    double nuc0;             /* the refresh's nuclear norm (of the scaled tensor) */
} tracked_term;

static tnmtl_status norm_eval(tnmtl_norm_method m, int ndim, const int64_t *shape, int f64, const void *W,
                              const double *gamma, double *value, double *terms, void *grad,
                              tnmtl_norm_tracker *tr, int64_t step, tnmtl_error *err);

struct tnmtl_norm_tracker {
    tnmtl_norm_method method;
    int ndim, n_terms;
    int64_t shape[TNMTL_NORM_MAX_NDIM], count;
    tnmtl_norm_fast_config cfg;
    tracked_term term[TNMTL_NORM_MAX_NDIM];
    float *P;                /* [count] scratch: M X */
    float *X;                /* [count] scratch: a copied unfolding (non-direct terms) */
    int64_t last_step;       /* of the last evaluation (-2: none) */
    tnmtl_norm_tracker_stats stats;
};

void tnmtl_norm_fast_config_default(tnmtl_norm_fast_config *c)
{
    c->tol = 1e-3;
    c->period = 20;
    c->min_side = 512;
    c->probes = 8;
}

static tracked_term *tracker_term(tnmtl_norm_tracker *tr, int t)
{
    return tr->term[t].on ? &tr->term[t] : NULL;
}

static void tracked_term_clear(tracked_term *tt)
{
    free(tt->M);
    free(tt->Vr);
    tt->M = NULL;
    tt->Vr = NULL;
    tt->valid = 0;
}

/* Exact spectrum of the term from nd's double data: M, the projector, the
 * nuclear norm (scaled units). */
static tnmtl_status tracked_refresh(tnmtl_norm_tracker *tr, tracked_term *tt, const norm_data *nd, tnmtl_error *err)
{
    const int64_t p = tt->p;
    double *Xd_copy = NULL, *G = NULL, *sigma = NULL, *w = NULL;
    tnmtl_status st = TNMTL_OK;
    tracked_term_clear(tt);
    const double *Xd = nd->Wd;
    if (!tt->direct) {
        Xd_copy = tnmtl_calloc((size_t)nd->count, sizeof(double), "unfolding", err);
        if (!Xd_copy) return err ? err->status : TNMTL_ERR_NOMEM;
        tnmtl_la_unfold(nd->Wd, tt->A, tt->D, tt->B, sizeof(double), Xd_copy);
        Xd = Xd_copy;
    }
    G = tnmtl_calloc((size_t)(p * p), sizeof(double), "Gram matrix", err);
    sigma = G ? tnmtl_calloc((size_t)p, sizeof(double), "singular values", err) : NULL;
    w = sigma ? tnmtl_calloc((size_t)p, sizeof(double), "weights", err) : NULL;
    tt->M = w ? tnmtl_calloc((size_t)(p * p), sizeof(float), "tracked inverse square root", err) : NULL;
    if (!tt->M) {
        st = err ? err->status : TNMTL_ERR_NOMEM;
        goto done;
    }
    if ((st = tnmtl_la_spectrum(tt->R, tt->C, Xd, 1, G, sigma, err))) goto done;
    double sum = 0.0, smax = 0.0;
    for (int64_t i = 0; i < p; i++) {
        sum += sigma[i];
        smax = fmax(smax, sigma[i]);
    }
    tt->nuc0 = sum;
    int64_t r = 0; /* pack the retained eigenvectors into G's last rows, as term_eval does */
    for (int64_t i = p - 1; smax > 0.0 && i >= 0; i--) {
        if (!(sigma[i] > TNMTL_NORM_RANK_RTOL * smax)) continue;
        int64_t dst = p - 1 - r;
        if (dst != i) memmove(G + (size_t)dst * (size_t)p, G + (size_t)i * (size_t)p, (size_t)p * sizeof *G);
        w[dst] = 1.0 / sigma[i];
        r++;
    }
    tt->r = r;
    const double *vt = G + (size_t)(p - r) * (size_t)p;
    /* M in double (one syrk), then rounded: the float product's error is
     * about eps_f cond(X) per direction either way (docs/design.md). */
    double *Md = tnmtl_calloc((size_t)(p * p), sizeof(double), "tracked inverse square root", err);
    if (!Md) {
        st = err ? err->status : TNMTL_ERR_NOMEM;
        goto done;
    }
    st = tnmtl_la_spectral_matrix(1, p, r, vt, w + (p - r), Md, err);
    for (int64_t i = 0; !st && i < p * p; i++) tt->M[i] = (float)Md[i];
    free(Md);
    if (st) goto done;
    if (r < p && r > 0) {
        tt->Vr = tnmtl_calloc((size_t)(r * p), sizeof(float), "retained eigenvectors", err);
        if (!tt->Vr) {
            st = err ? err->status : TNMTL_ERR_NOMEM;
            goto done;
        }
        for (int64_t i = 0; i < r * p; i++) tt->Vr[i] = (float)vt[i];
    }
    tt->valid = 1;
    tr->stats.refreshes++;
done:
    if (st) tracked_term_clear(tt);
    free(Xd_copy);
    free(G);
    free(sigma);
    free(w);
    return st;
}

/* P = M X (rows side) or X M (columns side), X the term's float matrix. */
static void tracked_apply(const tracked_term *tt, const float *X, float *P)
{
    const int64_t R = tt->R, C = tt->C, p = tt->p;
    if (tt->rows_side)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)C, (int)p, 1.0f, tt->M, (int)p, X,
                    (int)C, 0.0f, P, (int)C);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)C, (int)p, 1.0f, X, (int)C, tt->M,
                    (int)p, 0.0f, P, (int)C);
}

/* Estimated ||P - U V^T||_F / ||U V^T||_F from ||P P^T - Pi||_F / sqrt(2)
 * (Pi the projector on the retained directions; P^T P on the columns side),
 * with k Rademacher probes drawn from the step. */
static tnmtl_status tracked_error(const tnmtl_norm_tracker *tr, const tracked_term *tt, int term, int64_t step,
                                  const float *P, double *rel, tnmtl_error *err)
{
    const int64_t p = tt->p, q = tt->rows_side ? tt->C : tt->R, r = tt->r;
    const int k = tr->cfg.probes;
    *rel = 0.0;
    if (r == 0 || k < 1) return TNMTL_OK;
    float *Z = tnmtl_calloc((size_t)(p * k), sizeof(float), "error probes", err);   /* [p][k] */
    float *Y = Z ? tnmtl_calloc((size_t)(q * k), sizeof(float), "error probes", err) : NULL; /* [q][k] */
    float *D = Y ? tnmtl_calloc((size_t)(p * k), sizeof(float), "error probes", err) : NULL; /* [p][k] */
    float *T = D && tt->Vr ? tnmtl_calloc((size_t)(r * k), sizeof(float), "error probes", err) : NULL;
    if (!D || (tt->Vr && !T)) {
        free(Z);
        free(Y);
        free(D);
        return err ? err->status : TNMTL_ERR_NOMEM;
    }
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, ((uint64_t)step << 4) ^ (uint64_t)term ^ 0x7472616365ULL);
    for (int64_t i = 0; i < p * k; i++) Z[i] = (tnmtl_rng_u64(&rng) >> 63) ? 1.0f : -1.0f;
    /* D = Pi Z (the projector's part), then D = P P^T Z - D. */
    if (tt->Vr) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, k, (int)p, 1.0f, tt->Vr, (int)p, Z, k, 0.0f,
                    T, k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, k, (int)r, 1.0f, tt->Vr, (int)p, T, k, 0.0f, D,
                    k);
    } else {
        memcpy(D, Z, (size_t)(p * k) * sizeof *D);
    }
    if (tt->rows_side) { /* P [p][q] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)q, k, (int)p, 1.0f, P, (int)q, Z, k, 0.0f, Y, k);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p, k, (int)q, 1.0f, P, (int)q, Y, k, -1.0f, D, k);
    } else {             /* P [q][p] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q, k, (int)p, 1.0f, P, (int)p, Z, k, 0.0f, Y, k);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)p, k, (int)q, 1.0f, P, (int)p, Y, k, -1.0f, D, k);
    }
    double ss = 0.0;
    for (int64_t i = 0; i < p * k; i++) ss += (double)D[i] * D[i];
    *rel = sqrt(ss / k / 2.0) / sqrt((double)r);
    free(Z);
    free(Y);
    free(D);
    free(T);
    return TNMTL_OK;
}

static tnmtl_status tracked_term_eval(tnmtl_norm_tracker *tr, tracked_term *tt, const norm_data *nd, int64_t step,
                                      double gamma, float *grad, double *nuc, tnmtl_error *err)
{
    const int term = (int)(tt - tr->term);
    if (nd->scale != 1.0) { /* magnitudes far from 1: exact (the kept M has another scale) */
        tracked_term_clear(tt);
        return term_eval(nd, tt->A, tt->D, tt->B, gamma, grad, nuc, NULL, err);
    }
    const float *X = nd->Wf;
    if (!tt->direct) {
        tnmtl_la_unfold(nd->Wf, tt->A, tt->D, tt->B, sizeof(float), tr->X);
        X = tr->X;
    }
    int refresh = !tt->valid || step % tr->cfg.period == 0 || step != tr->last_step + 1;
    tnmtl_status st;
    if (!refresh) {
        tracked_apply(tt, X, tr->P);
        double rel;
        if ((st = tracked_error(tr, tt, term, step, tr->P, &rel, err))) return st;
        tr->stats.last_error = rel;
        if (rel > tr->stats.max_error) tr->stats.max_error = rel;
        if (rel > tr->cfg.tol) {
            refresh = 1;
            tr->stats.adaptive_refreshes++;
        }
    }
    if (refresh) {
        if ((st = tracked_refresh(tr, tt, nd, err))) return st;
        tracked_apply(tt, X, tr->P);
        *nuc = tt->nuc0;
    } else {
        /* The majoriser 1/2 (<M X, X> + ||X_0||_*). */
        double ip = 0.0;
        for (int64_t i = 0; i < nd->count; i++) ip += (double)tr->P[i] * X[i];
        *nuc = 0.5 * (ip + tt->nuc0);
    }
    if (grad && gamma != 0.0) {
        float g = (float)gamma;
        if (tt->direct) {
            for (int64_t i = 0; i < nd->count; i++) grad[i] += g * tr->P[i];
        } else {
            for (int64_t i = 0; i < nd->count; i++) tr->P[i] *= g;
            tnmtl_la_fold_add(0, tr->P, tt->A, tt->D, tt->B, 0, grad);
        }
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_norm_tracker_create(tnmtl_norm_method m, int ndim, const int64_t *shape,
                                       const tnmtl_norm_fast_config *cfg, tnmtl_norm_tracker **out,
                                       tnmtl_error *err)
{
    *out = NULL;
    int64_t count;
    tnmtl_status st = check_shape(m, ndim, shape, &count, err);
    if (st) return st;
    tnmtl_norm_fast_config c;
    if (cfg) c = *cfg;
    else tnmtl_norm_fast_config_default(&c);
    if (!(c.tol > 0.0) || !isfinite(c.tol) || c.period < 1 || c.min_side < 1 || c.probes < 1 || c.probes > 64)
        return tnmtl_fail(err, TNMTL_ERR_INVALID,
                          "fast norm solver: tol %g (must be > 0), period %d (>= 1), min_side %lld (>= 1), "
                          "probes %d (1 to 64)", c.tol, c.period, (long long)c.min_side, c.probes);
    tnmtl_norm_tracker *tr = tnmtl_calloc(1, sizeof *tr, "norm tracker", err);
    if (!tr) return TNMTL_ERR_NOMEM;
    tr->method = m;
    tr->ndim = ndim;
    tr->n_terms = tnmtl_norm_n_terms(m, ndim);
    memcpy(tr->shape, shape, (size_t)ndim * sizeof *shape);
    tr->count = count;
    tr->cfg = c;
    tr->last_step = -2;
    int any = 0, any_copy = 0;
    for (int t = 0; t < tr->n_terms; t++) {
        tracked_term *tt = &tr->term[t];
        term_view(m, ndim, shape, t, &tt->A, &tt->D, &tt->B);
        tt->direct = tt->A == 1 || tt->B == 1;
        tt->R = tt->B == 1 ? tt->A : tt->D;
        tt->C = tt->B == 1 ? tt->D : tt->A * tt->B;
        tt->p = tnmtl_la_small_side(tt->R, tt->C, &tt->rows_side);
        tt->on = tt->p >= c.min_side && tnmtl_la_check_size(tt->R, tt->C, NULL) == TNMTL_OK;
        any |= tt->on;
        any_copy |= tt->on && !tt->direct;
    }
    if (any) tr->P = tnmtl_calloc((size_t)count, sizeof(float), "tracked subgradient", err);
    if (any_copy && tr->P) tr->X = tnmtl_calloc((size_t)count, sizeof(float), "tracked unfolding", err);
    if ((any && !tr->P) || (any_copy && !tr->X)) {
        tnmtl_norm_tracker_free(tr);
        return TNMTL_ERR_NOMEM;
    }
    for (int t = 0; t < tr->n_terms; t++) tr->stats.tracked_terms += tr->term[t].on;
    *out = tr;
    return TNMTL_OK;
}

void tnmtl_norm_tracker_free(tnmtl_norm_tracker *tr)
{
    if (!tr) return;
    for (int t = 0; t < tr->n_terms; t++) tracked_term_clear(&tr->term[t]);
    free(tr->P);
    free(tr->X);
    free(tr);
}

tnmtl_status tnmtl_norm_tracker_eval(tnmtl_norm_tracker *tr, int64_t step, const float *W, const double *gamma,
                                     double *value, float *grad, tnmtl_error *err)
{
    if (step < 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "step %lld (must be >= 0)", (long long)step);
    tnmtl_status st = norm_eval(tr->method, tr->ndim, tr->shape, 0, W, gamma, value, NULL, grad, tr, step, err);
    if (st) { /* the next call starts over */
        for (int t = 0; t < tr->n_terms; t++) tracked_term_clear(&tr->term[t]);
        tr->last_step = -2;
        return st;
    }
    tr->last_step = step;
    tr->stats.evals++;
    return TNMTL_OK;
}

void tnmtl_norm_tracker_get_stats(const tnmtl_norm_tracker *tr, tnmtl_norm_tracker_stats *s)
{
    *s = tr->stats;
}

/* Every term of the norm; with a tracker (float API only), its tracked terms
 * go through tracked_term_eval and the others are exact. */
static tnmtl_status norm_eval(tnmtl_norm_method m, int ndim, const int64_t *shape, int f64, const void *W,
                              const double *gamma, double *value, double *terms, void *grad,
                              tnmtl_norm_tracker *tr, int64_t step, tnmtl_error *err)
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
        term_view(m, ndim, shape, t, &A, &D, &B);
        double nuc = 0.0;
        tracked_term *tt = tr ? tracker_term(tr, t) : NULL;
        if (tt) st = tracked_term_eval(tr, tt, &nd, step, g, grad, &nuc, err);
        else st = term_eval(&nd, A, D, B, g, grad, &nuc, NULL, err);
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
    return norm_eval(m, ndim, shape, 0, W, gamma, value, terms, grad, NULL, 0, err);
}

tnmtl_status tnmtl_norm_eval_f64(tnmtl_norm_method m, int ndim, const int64_t *shape, const double *W,
                                 const double *gamma, double *value, double *terms, double *grad,
                                 tnmtl_error *err)
{
    return norm_eval(m, ndim, shape, 1, W, gamma, value, terms, grad, NULL, 0, err);
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
    term_view(m, ndim, shape, term, &A, &D, &B);
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
    term_view(m, ndim, shape, term, &A, &D, &B);
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
