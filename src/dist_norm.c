/* dist_norm.c - norm terms computed from the tasks a process holds (the
 * `split` distributed norm of tnmtl_mtl_set_dist_norm).
 *
 * A stacked tensor W has the task axis last, so in every term's unfolding
 * X (D x A*B, norm_internal.h) the tasks own either a block of columns (the
 * task axis is in B: Tucker's non-task modes, every TT term) or a block of
 * rows (the task mode: LAF, Tucker's last).  When the Gram matrix of the
 * unfolding's smaller side is taken over the OTHER side - rows side
 * D <= A*B in the first case, columns side A*B < D in the second - it is a
 * sum over the tasks:
 *     G = sum_p X_p X_p^T   (D x D)          or   G = sum_p X_p^T X_p   (A x A)
 * with X_p the part of X that process p's tasks own.  Each process forms its
 * part, the parts are summed in rank order (tnmtl_dist_sum_ordered), every
 * process solves the same eigenproblem G = U diag(sigma^2) U^T, and each
 * forms the subgradient of its own part:
 *     U_r diag(1/sigma) U_r^T X_p                 or   X_p U_r diag(1/sigma) U_r^T
 * over sigma > TNMTL_NORM_RANK_RTOL sigma_max - the exact norm's polar factor,
 * restricted to the process's columns (rows).  The task mode with fewer
 * tasks than weights per task has a T x T Gram that is no such sum: its
 * rows are split instead (rows_term, from the gathered tensor).  The other
 * terms ("replicated") are evaluated by tnmtl_norm_eval on the whole tensor
 * as before.
 *
 * Against the one-process norm: the same matrices, a different summation
 * order in the Gram (and no refinement of singular values below 1e-4
 * sigma_max, which only the value sees): agreement to rounding, not bit for
 * bit (docs/performance.md, "Distributed training"; tests/test_mpi.c). */
#include "dist_norm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "linalg.h"
#include "norm_internal.h"
#include "util.h"

tnmtl_dist_norm_term_kind tnmtl_dist_norm_term_kind_of(tnmtl_norm_method m, int ndim, const int64_t *shape, int term,
                                                       int n_processes)
{
    int64_t A, D, B;
    tnmtl_norm_term_view(m, ndim, shape, term, &A, &D, &B);
    if (B == 1) /* the task mode: the tasks (last axis) are the rows, D = T */
        return A * B < D ? TNMTL_DIST_TERM_SUM : n_processes >= 3 ? TNMTL_DIST_TERM_ROWS : TNMTL_DIST_TERM_REPLICATED;
    return D <= A * B ? TNMTL_DIST_TERM_SUM : TNMTL_DIST_TERM_REPLICATED;
}

int tnmtl_dist_norm_term_splits(tnmtl_norm_method m, int ndim, const int64_t *shape, int term)
{
    return tnmtl_dist_norm_term_kind_of(m, ndim, shape, term, 1) == TNMTL_DIST_TERM_SUM;
}

/* The sum of the singular values sigma_i = sqrt(max(lambda_i, 0)) of a
 * Gram's eigenvalues lambda[p], their largest in *smax. */
static double sigma_sum(const double *lambda, int64_t p, double *smax)
{
    double v = 0;
    *smax = 0;
    for (int64_t i = 0; i < p; i++) {
        const double s = sqrt(lambda[i] > 0 ? lambda[i] : 0);
        v += s;
        *smax = s > *smax ? s : *smax;
    }
    return v;
}

/* The directions the subgradient keeps: the rows i of G[p][p]
 * (eigenvectors) with sigma_i above the rank tolerance, packed first, and
 * lambda[k] <- their sigma.  Returns their count. */
static int64_t retain_directions(double *G, double *lambda, int64_t p, double smax)
{
    int64_t r = 0;
    for (int64_t i = 0; i < p; i++) {
        const double s = sqrt(lambda[i] > 0 ? lambda[i] : 0);
        if (s > TNMTL_NORM_RANK_RTOL * smax) {
            if (r != i) memcpy(G + r * p, G + i * p, (size_t)p * sizeof *G);
            lambda[r++] = s;
        }
    }
    return r;
}

/* n pieces of bytes[i] each, 64-byte aligned, carved from s (grown when
 * needed): piece[i]. */
static tnmtl_status scratch_carve(tnmtl_dist_norm_scratch *s, int n, const size_t *bytes, void **piece,
                                  tnmtl_error *err)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (bytes[i] + 63) / 64 * 64;
    if (total > s->cap) {
        free(s->buf);
        s->cap = 0;
        if (!(s->buf = tnmtl_malloc(total, "norm scratch", err))) return TNMTL_ERR_NOMEM;
        s->cap = total;
    }
    char *p = s->buf;
    for (int i = 0; i < n; i++) {
        piece[i] = p;
        p += (bytes[i] + 63) / 64 * 64;
    }
    return TNMTL_OK;
}

/* The task mode with the tasks the smaller side (TNMTL_DIST_TERM_ROWS): X
 * (T x C, every task's row, from the gathered tensor W[C][T]) has the
 * Gram G = X X^T (T x T).  Process p forms its rows G_p = X_p X^T, the row
 * blocks are gathered (and G made symmetric from its upper triangle, the
 * same on every process), every process solves G = U diag(sigma^2) U^T and
 * forms its own rows of the polar factor:
 *     P_p = U_p diag(gamma/sigma) U^T X     (T_p x C)
 * so the product, the larger cost, is divided by P and the Gram costs
 * 2 T_p T C instead of T^2 C (a win from 3 processes on). */
static tnmtl_status rows_term(tnmtl_dist *d, const int *dist_begin, int tb, int te, int64_t C, int64_t T,
                              const float *W, double gamma, double *value, float *grad,
                              tnmtl_dist_norm_scratch *scratch, tnmtl_error *err)
{
    const int64_t Tp = te - tb;
    tnmtl_status st = tnmtl_la_check_size(T, T, err);
    if (st) return st;
    /* X[T][C] double and float, G[T][T], lambda[T], off[T+1], Y[T][T],
     * M[Tp][T] double and float, P[Tp][C] float */
    const size_t bytes[9] = {(size_t)(T * C) * 8, (size_t)(T * C) * 4, (size_t)(T * T) * 8, (size_t)T * 8,
                             (size_t)(T + 1) * 8, (size_t)(T * T) * 8, (size_t)(Tp * T) * 8, (size_t)(Tp * T) * 4,
                             (size_t)(Tp * C) * 4};
    void *piece[9];
    if ((st = scratch_carve(scratch, 9, bytes, piece, err))) return st;
    double *X = piece[0], *G = piece[2], *lambda = piece[3], *Y = piece[5], *M = piece[6];
    float *Xf = piece[1], *Mf = piece[7], *P = piece[8];
    int64_t *off = piece[4];
    tnmtl_la_unfold(W, C, T, 1, sizeof(float), Xf); /* W[C][T] -> X[T][C] */
    for (int64_t i = 0; i < T * C; i++) X[i] = Xf[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Tp, (int)T, (int)C, 1.0, X + tb * C, (int)C, X, (int)C,
                0.0, G + tb * T, (int)T);
    for (int64_t t = 0; t <= T; t++) off[t] = t * T;
    if ((st = tnmtl_dist_allgather_f64(d, G, off, dist_begin, err))) return st;
    tnmtl_la_fill_lower(T, G);
    if ((st = tnmtl_la_syev(T, G, lambda, grad != NULL, err))) return st;
    double smax;
    *value = sigma_sum(lambda, T, &smax);
    if (!grad || smax == 0) return TNMTL_OK;
    const int64_t r = retain_directions(G, lambda, T, smax);
    /* Y[r][T] = diag(gamma/sigma) U^T,  M[Tp][T] = U_p Y (double), then
     * P[Tp][C] = M X in single precision, as tnmtl_la_spectral_apply forms
     * the one-process subgradient. */
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < T; j++) Y[i * T + j] = G[i * T + j] * (gamma / lambda[i]);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Tp, (int)T, (int)r, 1.0, G + tb, (int)T, Y, (int)T, 0.0,
                M, (int)T);
    for (int64_t i = 0; i < Tp * T; i++) Mf[i] = (float)M[i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Tp, (int)C, (int)T, 1.0f, Mf, (int)T, Xf, (int)C, 0.0f,
                P, (int)C);
    tnmtl_la_fold_add(0, P, C, Tp, 1, 0, grad); /* P[Tp][C] -> grad[C][Tp] */
    return TNMTL_OK;
}

/* One split term: its value (the same on every process) and, with grad,
 * gamma times its subgradient added into grad (the local tensor's layout). */
static tnmtl_status split_term(tnmtl_dist *d, tnmtl_norm_method m, int ndim, const int64_t *local_shape, int term,
                               const float *W, double gamma, double *value, float *grad, tnmtl_error *err)
{
    int64_t A, D, B;
    tnmtl_norm_term_view(m, ndim, local_shape, term, &A, &D, &B);
    const int task_mode = B == 1;
    const int64_t R = D, C = A * B;       /* the local unfolding X[R][C]           */
    const int64_t p = task_mode ? C : R;  /* side of the Gram (never the tasks')   */
    const int64_t q = task_mode ? R : C;  /* the local extent of the other side    */
    tnmtl_status st = tnmtl_la_check_size(p, p, err);
    if (st) return st;
    double *X = tnmtl_malloc((size_t)(R * C + 1) * sizeof *X, "unfolding", err);
    double *G = X ? tnmtl_calloc((size_t)(p * p), sizeof *G, "Gram matrix", err) : NULL;
    double *lambda = G ? tnmtl_calloc((size_t)p, sizeof *lambda, "eigenvalues", err) : NULL;
    double *Y = NULL;
    if (!lambda) {
        st = TNMTL_ERR_NOMEM;
        goto done;
    }
    /* X = the local unfolding in double (W[A][D][B] -> X[D][A*B]). */
    float *tmp = tnmtl_malloc((size_t)(R * C + 1) * sizeof *tmp, "unfolding", err);
    if (!tmp) {
        st = TNMTL_ERR_NOMEM;
        goto done;
    }
    tnmtl_la_unfold(W, A, D, B, sizeof(float), tmp);
    for (int64_t i = 0; i < R * C; i++) X[i] = tmp[i];
    free(tmp);
    if (q > 0) {
        if (task_mode)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, (int)R, 1.0, X, (int)C, 0.0, G, (int)p);
        else
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)p, (int)C, 1.0, X, (int)C, 0.0, G, (int)p);
    }
    tnmtl_la_fill_lower(p, G);
    if ((st = tnmtl_dist_sum_ordered(d, G, p * p, err))) goto done;
    if ((st = tnmtl_la_syev(p, G, lambda, grad != NULL, err))) goto done;
    double smax;
    *value = sigma_sum(lambda, p, &smax);
    if (!grad || q == 0 || smax == 0) goto done;
    const int64_t r = retain_directions(G, lambda, p, smax); /* weights 1/sigma_i */
    Y = tnmtl_malloc((size_t)(r * q + 1) * sizeof *Y, "projection", err);
    double *P = Y ? tnmtl_malloc((size_t)(R * C + 1) * sizeof *P, "subgradient", err) : NULL;
    if (!P) {
        free(Y);
        Y = NULL;
        st = TNMTL_ERR_NOMEM;
        goto done;
    }
    if (!task_mode) {
        /* Y[r][C] = diag(1/sigma) U_r^T X,  P[D][C] = U_r Y */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)C, (int)p, 1.0, G, (int)p, X, (int)C, 0.0,
                    Y, (int)C);
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < C; j++) Y[i * C + j] *= gamma / lambda[i];
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)C, (int)r, 1.0, G, (int)p, Y, (int)C, 0.0,
                    P, (int)C);
    } else {
        /* Y[R][r] = X U_r diag(1/sigma),  P[R][C] = Y U_r^T */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)r, (int)C, 1.0, X, (int)C, G, (int)p, 0.0,
                    Y, (int)r);
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < r; j++) Y[i * r + j] *= gamma / lambda[j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)C, (int)r, 1.0, Y, (int)r, G, (int)p, 0.0,
                    P, (int)C);
    }
    tnmtl_la_fold_add(1, P, A, D, B, 0, grad);
    free(P);
done:
    free(Y);
    free(X);
    free(G);
    free(lambda);
    return st;
}

tnmtl_status tnmtl_dist_norm_eval(tnmtl_dist *d, const int *dist_begin, tnmtl_norm_method m, int ndim,
                                  const int64_t *shape, int task_begin, int task_end, const float *W_local,
                                  const float *W, const double *gamma, double *value, float *grad_local,
                                  tnmtl_dist_norm_scratch *scratch, tnmtl_error *err)
{
    int64_t local_shape[TNMTL_NORM_MAX_NDIM];
    memcpy(local_shape, shape, (size_t)ndim * sizeof *shape);
    local_shape[ndim - 1] = task_end - task_begin;
    const int n_terms = tnmtl_norm_n_terms(m, ndim);
    *value = 0;
    for (int i = 0; i < n_terms; i++) {
        const tnmtl_dist_norm_term_kind kind = tnmtl_dist_norm_term_kind_of(m, ndim, shape, i, tnmtl_dist_size(d));
        if (!(gamma[i] > 0) || kind == TNMTL_DIST_TERM_REPLICATED || (kind == TNMTL_DIST_TERM_ROWS && !W)) continue;
        double v = 0;
        tnmtl_status st;
        if (kind == TNMTL_DIST_TERM_SUM) {
            st = split_term(d, m, ndim, local_shape, i, W_local, gamma[i], &v, grad_local, err);
        } else {
            const int64_t T = shape[ndim - 1];
            int64_t C = 1;
            for (int k = 0; k < ndim - 1; k++) C *= shape[k];
            st = rows_term(d, dist_begin, task_begin, task_end, C, T, W, gamma[i], &v, grad_local, scratch, err);
        }
        if (st) {
            tnmtl_error_prefix(err, "term %d of the %s norm", i + 1, tnmtl_norm_method_name(m));
            return st;
        }
        *value += gamma[i] * v;
    }
    return TNMTL_OK;
}
