/* test_norm.c - tensor trace norms: reference values, known-rank tensors,
 * finite differences, invariances, degenerate inputs, prox.
 *
 * References come from numpy double SVDs (scripts/make_norm_fixtures.py ->
 * tests/fixtures/norm/norm_ref.h); the tensors are regenerated here from
 * (shape, seed) with the same integer generator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tnmtl/norm.h"
#include "fixtures/norm/norm_ref.h"

static const tnmtl_norm_method methods[3] = {TNMTL_NORM_LAF, TNMTL_NORM_TUCKER, TNMTL_NORM_TT};

/* ---- helpers ----------------------------------------------------------- */

static int64_t prod(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static float *gen_f32(int64_t n, uint32_t seed)
{
    float *w = malloc((size_t)n * sizeof *w);
    for (int64_t i = 0; i < n; i++) w[i] = norm_ref_value(seed, i);
    return w;
}

static double *gen_f64(int64_t n, uint32_t seed)
{
    double *w = malloc((size_t)n * sizeof *w);
    for (int64_t i = 0; i < n; i++) w[i] = norm_ref_value(seed, i);
    return w;
}

static void gammas(int nt, double *g)
{
    for (int i = 0; i < nt; i++) g[i] = 0.5 + 0.25 * i;
}

#define CHECK_OK(call)                                                             \
    do {                                                                           \
        tnmtl_error e_ = {0};                                                      \
        tnmtl_error *err = &e_;                                                    \
        tnmtl_status st_ = (call);                                                 \
        if (st_ != TNMTL_OK) fail_msg("%s failed: %s", #call, e_.msg);             \
    } while (0)

static void assert_close(double got, double want, double atol, double rtol, const char *what)
{
    if (!(fabs(got - want) <= atol + rtol * fabs(want)))
        fail_msg("%s: got %.17g want %.17g (diff %.3g)", what, got, want, fabs(got - want));
}

/* Householder reflection Q[n][n] = I - 2 v v^T / v^T v (orthogonal). */
static double *householder(int64_t n, uint32_t seed)
{
    double *Q = calloc((size_t)(n * n), sizeof *Q), *v = gen_f64(n, seed), vv = 0;
    for (int64_t i = 0; i < n; i++) vv += v[i] * v[i];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) Q[i * n + j] = (i == j) - 2 * v[i] * v[j] / vv;
    free(v);
    return Q;
}

/* W <- W x_k Q: W'[..., j, ...] = sum_i Q[j][i] W[..., i, ...] along axis k. */
static void mode_product(double *W, int ndim, const int64_t *shape, int k, const double *Q)
{
    int64_t A = 1, D = shape[k], B = 1;
    for (int i = 0; i < k; i++) A *= shape[i];
    for (int i = k + 1; i < ndim; i++) B *= shape[i];
    double *col = malloc((size_t)D * sizeof *col);
    for (int64_t a = 0; a < A; a++) {
        for (int64_t b = 0; b < B; b++) {
            for (int64_t d = 0; d < D; d++) col[d] = W[(a * D + d) * B + b];
            for (int64_t j = 0; j < D; j++) {
                double s = 0;
                for (int64_t d = 0; d < D; d++) s += Q[j * D + d] * col[d];
                W[(a * D + j) * B + b] = s;
            }
        }
    }
    free(col);
}

/* Superdiagonal tensor W[i,i,...,i] = s[i] (i < k), then an orthogonal
 * transform on every mode.  Every unfolding of every method then has the
 * singular values s (padded with zeros), and the polar factor of every
 * unfolding is the same tensor E (superdiagonal ones where s > 0, same
 * transforms).  Returns W; *E gets the polar tensor. */
static double *superdiag(int ndim, const int64_t *shape, const double *s, int k, uint32_t seed, double **E)
{
    int64_t n = prod(ndim, shape);
    double *W = calloc((size_t)n, sizeof *W), *P = calloc((size_t)n, sizeof *P);
    for (int i = 0; i < k; i++) {
        int64_t off = 0;
        for (int d = 0; d < ndim; d++) off = off * shape[d] + i;
        W[off] = s[i];
        P[off] = s[i] > 0;
    }
    for (int d = 0; d < ndim; d++) {
        double *Q = householder(shape[d], seed + (uint32_t)d);
        mode_product(W, ndim, shape, d, Q);
        mode_product(P, ndim, shape, d, Q);
        free(Q);
    }
    if (E) *E = P;
    else free(P);
    return W;
}

/* ---- (a) numpy reference values ------------------------------------------ */

static void check_ref_case(const norm_ref_case *c, int with_f64)
{
    int64_t n = prod(c->ndim, c->shape);
    float *W = gen_f32(n, c->seed), *grad = malloc((size_t)n * sizeof *grad);
    for (int mi = 0; mi < 3; mi++) {
        tnmtl_norm_method m = methods[mi];
        int nt = tnmtl_norm_n_terms(m, c->ndim);
        if (m == TNMTL_NORM_TT && c->ndim < 2) continue;
        double g[8], value, terms[8];
        gammas(nt, g);
        CHECK_OK(tnmtl_norm_eval(m, c->ndim, c->shape, W, g, &value, terms, grad, err));
        char what[128];
        for (int t = 0; t < nt; t++) {
            snprintf(what, sizeof what, "%s %s term %d", c->name, tnmtl_norm_method_name(m), t);
            assert_close(terms[t], c->terms[mi][t], 0, 1e-9, what);
        }
        snprintf(what, sizeof what, "%s %s value", c->name, tnmtl_norm_method_name(m));
        assert_close(value, c->value[mi], 0, 1e-9, what);
        for (int k = 0; k < c->n_grad; k++) {
            snprintf(what, sizeof what, "%s %s grad[%lld]", c->name, tnmtl_norm_method_name(m),
                     (long long)c->grad_idx[k]);
            assert_close(grad[c->grad_idx[k]], c->grad[mi][k], 2e-6, 1e-5, what);
        }
        if (!with_f64) continue;
        double *Wd = gen_f64(n, c->seed), *gd = malloc((size_t)n * sizeof *gd);
        CHECK_OK(tnmtl_norm_eval_f64(m, c->ndim, c->shape, Wd, g, &value, terms, gd, err));
        assert_close(value, c->value[mi], 0, 1e-11, "f64 value");
        for (int k = 0; k < c->n_grad; k++) assert_close(gd[c->grad_idx[k]], c->grad[mi][k], 1e-11, 1e-10, "f64 grad");
        free(Wd);
        free(gd);
    }
    free(W);
    free(grad);
}

static void test_reference_small(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof norm_ref_cases / sizeof norm_ref_cases[0]; i++)
        if (prod(norm_ref_cases[i].ndim, norm_ref_cases[i].shape) <= 100000) check_ref_case(&norm_ref_cases[i], 1);
}

static void test_reference_fc1(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof norm_ref_cases / sizeof norm_ref_cases[0]; i++)
        if (prod(norm_ref_cases[i].ndim, norm_ref_cases[i].shape) > 100000) check_ref_case(&norm_ref_cases[i], 0);
}

static void test_term_shapes_and_singular_values(void **state)
{
    (void)state;
    const int64_t shape[4] = {2, 3, 4, 5};
    int64_t r, c;
    tnmtl_norm_term_shape(TNMTL_NORM_TUCKER, 4, shape, 2, &r, &c);
    assert_int_equal(r, 4);
    assert_int_equal(c, 30);
    tnmtl_norm_term_shape(TNMTL_NORM_TT, 4, shape, 1, &r, &c);
    assert_int_equal(r, 6);
    assert_int_equal(c, 20);
    tnmtl_norm_term_shape(TNMTL_NORM_LAF, 4, shape, 0, &r, &c);
    assert_int_equal(r, 5);
    assert_int_equal(c, 24);
    assert_int_equal(tnmtl_norm_n_terms(TNMTL_NORM_TT, 4), 3);
    assert_int_equal(tnmtl_norm_n_terms(TNMTL_NORM_TUCKER, 4), 4);
    assert_int_equal(tnmtl_norm_n_terms(TNMTL_NORM_LAF, 4), 1);

    /* Singular values: descending, sum = the reference term. */
    const norm_ref_case *cs = &norm_ref_cases[4]; /* t2x3x4x5 */
    assert_string_equal(cs->name, "t2x3x4x5");
    float *W = gen_f32(120, cs->seed);
    for (int mi = 0; mi < 3; mi++) {
        for (int t = 0; t < tnmtl_norm_n_terms(methods[mi], 4); t++) {
            double sv[12], sum = 0;
            tnmtl_norm_term_shape(methods[mi], 4, shape, t, &r, &c);
            CHECK_OK(tnmtl_norm_term_singular_values(methods[mi], 4, shape, W, t, sv, err));
            for (int64_t k = 0; k < (r < c ? r : c); k++) {
                sum += sv[k];
                if (k) assert_true(sv[k] <= sv[k - 1]);
            }
            assert_close(sum, cs->terms[mi][t], 0, 1e-9, "sum of singular values");
        }
    }
    double sv[8];
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_norm_term_singular_values(TNMTL_NORM_TT, 4, shape, W, 3, sv, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "term 3"));
    free(W);

    tnmtl_norm_method m;
    assert_int_equal(tnmtl_norm_method_parse("tucker", &m, &err), TNMTL_OK);
    assert_int_equal(m, TNMTL_NORM_TUCKER);
    assert_int_equal(tnmtl_norm_method_parse("Tucker", &m, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'Tucker'"));
}

/* ---- (b) known low rank, (e) degenerate spectra ---------------------------- */

static void check_superdiag(int ndim, const int64_t *shape, const double *s, int k, uint32_t seed)
{
    int64_t n = prod(ndim, shape);
    double *E, *W = superdiag(ndim, shape, s, k, seed, &E), sum = 0;
    for (int i = 0; i < k; i++) sum += s[i];
    float *Wf = malloc((size_t)n * sizeof *Wf), *gf = malloc((size_t)n * sizeof *gf);
    double *gd = malloc((size_t)n * sizeof *gd);
    for (int64_t i = 0; i < n; i++) Wf[i] = (float)W[i];
    for (int mi = 0; mi < 3; mi++) {
        int nt = tnmtl_norm_n_terms(methods[mi], ndim);
        double g[8], value, terms[8], gsum = 0;
        gammas(nt, g);
        for (int t = 0; t < nt; t++) gsum += g[t];
        CHECK_OK(tnmtl_norm_eval_f64(methods[mi], ndim, shape, W, g, &value, terms, gd, err));
        for (int t = 0; t < nt; t++) assert_close(terms[t], sum, 1e-12, 1e-12, "known-rank term (f64)");
        assert_close(value, gsum * sum, 1e-12, 1e-12, "known-rank value (f64)");
        for (int64_t i = 0; i < n; i++) assert_close(gd[i], gsum * E[i], 1e-9, 0, "known-rank subgradient (f64)");
        /* Float API on the rounded tensor: float-level agreement. */
        CHECK_OK(tnmtl_norm_eval(methods[mi], ndim, shape, Wf, g, &value, terms, gf, err));
        for (int t = 0; t < nt; t++) assert_close(terms[t], sum, 1e-6, 1e-6, "known-rank term (f32)");
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(gf[i])) fail_msg("non-finite gradient");
        }
    }
    free(W);
    free(E);
    free(Wf);
    free(gf);
    free(gd);
}

static void test_known_rank(void **state)
{
    (void)state;
    const double s5[5] = {3.0, 2.5, 1.25, 0.5, 0.125};
    check_superdiag(3, (int64_t[]){5, 6, 7}, s5, 5, 100);           /* full rank in mode 1 */
    check_superdiag(3, (int64_t[]){8, 6, 9}, s5, 3, 101);           /* rank 3 < all dims   */
    check_superdiag(4, (int64_t[]){4, 5, 3, 6}, s5, 2, 102);        /* rank 2              */
    check_superdiag(2, (int64_t[]){6, 4}, s5, 1, 103);              /* rank 1 matrix       */
    check_superdiag(5, (int64_t[]){3, 3, 4, 4, 5}, s5, 3, 104);     /* conv-like           */
}

static void test_repeated_and_tiny_singular_values(void **state)
{
    (void)state;
    const double rep[5] = {2.0, 2.0, 2.0, 1.0, 1.0};
    check_superdiag(3, (int64_t[]){6, 5, 7}, rep, 5, 200);
    const double same[4] = {1.0, 1.0, 1.0, 1.0};
    check_superdiag(3, (int64_t[]){4, 4, 4}, same, 4, 201);         /* W orthogonal-ish: all sigma equal */
    /* A singular value below RANK_RTOL counts in the value, not in the subgradient. */
    const double tiny[3] = {1.0, 1e-7, 0.0};
    int64_t shape[3] = {4, 5, 6};
    double *E, *W = superdiag(3, shape, tiny, 3, 202, &E);
    double value, terms[3], *g = malloc(120 * sizeof *g), *E1, *W1;
    CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, shape, W, NULL, &value, terms, g, err));
    for (int t = 0; t < 3; t++) assert_close(terms[t], 1.0 + 1e-7, 1e-13, 0, "tiny sigma in the value");
    const double one[1] = {1.0};
    W1 = superdiag(3, shape, one, 1, 202, &E1);
    for (int i = 0; i < 120; i++) assert_close(g[i], 3 * E1[i], 1e-8, 0, "tiny sigma not in the subgradient");
    free(W);
    free(E);
    free(W1);
    free(E1);
    free(g);
}

static void test_zero_one_element_vector(void **state)
{
    (void)state;
    /* Zero tensor: value 0, gradient exactly 0 (grad is overwritten). */
    int64_t shape[3] = {3, 4, 5};
    float Z[60] = {0}, G[60];
    for (int mi = 0; mi < 3; mi++) {
        for (int i = 0; i < 60; i++) G[i] = 7.0f;
        double value = -1, terms[3] = {-1, -1, -1};
        CHECK_OK(tnmtl_norm_eval(methods[mi], 3, shape, Z, NULL, &value, terms, G, err));
        assert_true(value == 0.0);
        for (int t = 0; t < tnmtl_norm_n_terms(methods[mi], 3); t++) assert_true(terms[t] == 0.0);
        for (int i = 0; i < 60; i++) assert_true(G[i] == 0.0f);
    }
    /* One element: every term is |w|, the subgradient sign(w) * sum gamma. */
    int64_t one[4] = {1, 1, 1, 1};
    float w = -2.5f, g;
    double gm[4] = {0.5, 0.75, 1.0, 1.25}, value, terms[4];
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 4, one, &w, gm, &value, terms, &g, err));
    assert_close(value, 2.5 * 3.5, 1e-12, 0, "one-element Tucker");
    assert_close(g, -3.5, 1e-6, 0, "one-element Tucker grad");
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TT, 4, one, &w, gm, &value, terms, &g, err));
    assert_close(value, 2.5 * 2.25, 1e-12, 0, "one-element TT");
    assert_close(g, -2.25, 1e-6, 0, "one-element TT grad");
    /* ndim 1: a vector, ||w||_2 and w/||w||. */
    int64_t n7[1] = {7};
    double v[7] = {1, -2, 3, -4, 5, -6, 7}, gv[7], nrm = sqrt(140.0);
    for (int mi = 0; mi < 2; mi++) {
        CHECK_OK(tnmtl_norm_eval_f64(methods[mi], 1, n7, v, NULL, &value, terms, gv, err));
        assert_close(value, nrm, 0, 1e-14, "vector norm");
        for (int i = 0; i < 7; i++) assert_close(gv[i], v[i] / nrm, 1e-15, 0, "vector grad");
    }
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_norm_eval_f64(TNMTL_NORM_TT, 1, n7, v, NULL, &value, NULL, NULL, &err), TNMTL_ERR_INVALID);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float W[24] = {1};
    double value;
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 0, (int64_t[]){1}, W, NULL, &value, NULL, NULL, &err),
                     TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, W, NULL, &value,
                                     NULL, NULL, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_LAF, 2, (int64_t[]){4, 0}, W, NULL, &value, NULL, NULL, &err),
                     TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "dimension 1"));
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_LAF, 2, (int64_t[]){4, -6}, W, NULL, &value, NULL, NULL, &err),
                     TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_LAF, 2, (int64_t[]){1LL << 40, 1LL << 40}, W, NULL, &value, NULL,
                                     NULL, &err), TNMTL_ERR_TOO_BIG);
    /* A 40000 x 40000 unfolding (1.6e9 elements) is refused before the data is read. */
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TT, 2, (int64_t[]){40000, 40000}, W, NULL, &value, NULL, NULL, &err),
                     TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "40000 x 40000"));
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 2, (int64_t[]){4, 6}, W, (double[]){1, -1}, &value, NULL,
                                     NULL, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "gamma[1]"));
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 2, (int64_t[]){4, 6}, W, (double[]){1, NAN}, &value, NULL,
                                     NULL, &err), TNMTL_ERR_INVALID);
    /* NaN / Inf: numeric error naming the element, grad left alone. */
    float G[24];
    for (int i = 0; i < 24; i++) G[i] = 3.0f;
    W[17] = NAN;
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_TT, 3, (int64_t[]){2, 3, 4}, W, NULL, &value, NULL, G, &err),
                     TNMTL_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "element 17 is NaN"));
    W[17] = 0;
    W[3] = -INFINITY;
    assert_int_equal(tnmtl_norm_eval(TNMTL_NORM_LAF, 3, (int64_t[]){2, 3, 4}, W, NULL, &value, NULL, G, &err),
                     TNMTL_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "element 3 is infinite"));
    double Wd[4] = {1, 2, NAN, 4};
    assert_int_equal(tnmtl_norm_eval_f64(TNMTL_NORM_LAF, 2, (int64_t[]){2, 2}, Wd, NULL, &value, NULL, NULL, &err),
                     TNMTL_ERR_NUMERIC);
    float X[6] = {1, 2, 3, 4, 5, INFINITY};
    assert_int_equal(tnmtl_prox_nuclear(2, 3, X, 0.5, &err), TNMTL_ERR_NUMERIC);
    X[5] = 6;
    assert_int_equal(tnmtl_prox_nuclear(2, 3, X, -0.5, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_prox_nuclear(0, 3, X, 0.5, &err), TNMTL_ERR_INVALID);
}

/* Extreme magnitudes: subnormal floats, values near FLT_MAX, doubles far
 * outside the range where squares are representable. */
static void test_extreme_magnitudes(void **state)
{
    (void)state;
    int64_t shape[3] = {4, 5, 6};
    double *W = gen_f64(120, 300), base[3], scaled[3], gb[120], gs[120];
    CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, shape, W, NULL, NULL, base, gb, err));
    const double factors[] = {1e-300, 1e-200, 1e200, -1e300, -3.5};
    for (size_t k = 0; k < sizeof factors / sizeof factors[0]; k++) {
        double *V = malloc(120 * sizeof *V);
        for (int i = 0; i < 120; i++) V[i] = W[i] * factors[k];
        CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, shape, V, NULL, NULL, scaled, gs, err));
        for (int t = 0; t < 3; t++) assert_close(scaled[t], fabs(factors[k]) * base[t], 0, 1e-13, "f64 scaling");
        for (int i = 0; i < 120; i++) assert_close(gs[i], (factors[k] > 0 ? 1 : -1) * gb[i], 1e-13, 0, "f64 grad scaling");
        free(V);
    }
    /* float: exact power-of-two scalings into the subnormal range and near the top. */
    const float ff[] = {0x1p-140f, 0x1p-100f, 0x1p100f, -0x1p126f};
    float *Wf = malloc(120 * sizeof *Wf), gf[120];
    for (size_t k = 0; k < sizeof ff / sizeof ff[0]; k++) {
        for (int i = 0; i < 120; i++) Wf[i] = (float)W[i] * ff[k];
        double ref[3];
        double *Wd = malloc(120 * sizeof *Wd);
        for (int i = 0; i < 120; i++) Wd[i] = Wf[i]; /* same (possibly subnormal) values */
        CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, shape, Wd, NULL, NULL, ref, gs, err));
        CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 3, shape, Wf, NULL, NULL, scaled, gf, err));
        for (int t = 0; t < 3; t++) {
            assert_true(isfinite(scaled[t]) && scaled[t] > 0);
            assert_close(scaled[t], ref[t], 0, 1e-12, "f32 extreme magnitude");
        }
        for (int i = 0; i < 120; i++) assert_close(gf[i], gs[i], 1e-6, 0, "f32 extreme magnitude grad");
        free(Wd);
    }
    free(Wf);
    free(W);
}

/* ---- (c) finite differences ---------------------------------------------- */

static void test_finite_differences(void **state)
{
    (void)state;
    const int64_t shapes[3][4] = {{3, 4, 5}, {2, 3, 4, 5}, {6, 2, 7}};
    const int ndims[3] = {3, 4, 3};
    for (int s = 0; s < 3; s++) {
        int64_t n = prod(ndims[s], shapes[s]);
        double *W = gen_f64(n, 400 + s), *g = malloc((size_t)n * sizeof *g), *Wp = malloc((size_t)n * sizeof *Wp);
        for (int mi = 0; mi < 3; mi++) {
            double gm[8];
            gammas(tnmtl_norm_n_terms(methods[mi], ndims[s]), gm);
            CHECK_OK(tnmtl_norm_eval_f64(methods[mi], ndims[s], shapes[s], W, gm, NULL, NULL, g, err));
            for (int dir = 0; dir < 6; dir++) {
                /* directions: 4 random ones, 2 coordinate ones */
                double *V = gen_f64(n, 500 + 10 * s + dir), h = 1e-6, fp, fm, dot = 0;
                if (dir >= 4) {
                    int64_t j = (dir * 37 + s) % n;
                    for (int64_t i = 0; i < n; i++) V[i] = i == j;
                }
                for (int64_t i = 0; i < n; i++) dot += g[i] * V[i];
                for (int64_t i = 0; i < n; i++) Wp[i] = W[i] + h * V[i];
                CHECK_OK(tnmtl_norm_eval_f64(methods[mi], ndims[s], shapes[s], Wp, gm, &fp, NULL, NULL, err));
                for (int64_t i = 0; i < n; i++) Wp[i] = W[i] - h * V[i];
                CHECK_OK(tnmtl_norm_eval_f64(methods[mi], ndims[s], shapes[s], Wp, gm, &fm, NULL, NULL, err));
                double fd = (fp - fm) / (2 * h);
                if (!(fabs(fd - dot) <= 1e-6 * (1 + fabs(dot))))
                    fail_msg("shape %d %s direction %d: fd %.12g grad.v %.12g", s, tnmtl_norm_method_name(methods[mi]),
                             dir, fd, dot);
                free(V);
            }
        }
        free(W);
        free(g);
        free(Wp);
    }
}

/* Float API gradient against the double one on a wide spectrum (sigma from
 * 1 down to 1e-5), large enough that the float product path is considered. */
static void test_f32_gradient_wide_spectrum(void **state)
{
    (void)state;
    int64_t shape[3] = {40, 50, 40};
    double s[40];
    for (int i = 0; i < 40; i++) s[i] = pow(10.0, -5.0 * i / 39);
    int64_t n = prod(3, shape);
    double *W = superdiag(3, shape, s, 40, 600, NULL), *gd = malloc((size_t)n * sizeof *gd);
    float *Wf = malloc((size_t)n * sizeof *Wf), *gf = malloc((size_t)n * sizeof *gf);
    for (int64_t i = 0; i < n; i++) Wf[i] = (float)W[i];
    for (int64_t i = 0; i < n; i++) W[i] = Wf[i]; /* both APIs see the same numbers */
    for (int mi = 0; mi < 3; mi++) {
        double vd, vf;
        CHECK_OK(tnmtl_norm_eval_f64(methods[mi], 3, shape, W, NULL, &vd, NULL, gd, err));
        CHECK_OK(tnmtl_norm_eval(methods[mi], 3, shape, Wf, NULL, &vf, NULL, gf, err));
        assert_close(vf, vd, 0, 1e-12, "wide spectrum value f32 vs f64");
        double worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(gf[i] - gd[i]));
        if (worst > 1e-6) fail_msg("%s: float gradient differs by %.3g", tnmtl_norm_method_name(methods[mi]), worst);
    }
    free(W);
    free(gd);
    free(Wf);
    free(gf);
}

/* ---- (d) properties ----------------------------------------------------- */

static void test_properties(void **state)
{
    (void)state;
    int64_t shape[5] = {5, 5, 1, 8, 50};
    int64_t n = prod(5, shape);
    float *W = gen_f32(n, 700), *V = malloc((size_t)n * sizeof *V);
    double base[5], t2[5], laf, tt[4];
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 5, shape, W, NULL, NULL, base, NULL, err));
    /* ||aW|| = |a| ||W|| */
    const float a[] = {-3.5f, 0.25f, 1e-30f, 1e30f};
    for (size_t k = 0; k < 4; k++) {
        for (int64_t i = 0; i < n; i++) V[i] = W[i] * a[k];
        CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 5, shape, V, NULL, NULL, t2, NULL, err));
        for (int t = 0; t < 5; t++) assert_close(t2[t], fabsf(a[k]) * base[t], 0, 1e-6, "scaling");
    }
    /* LAF = last Tucker term = last TT term. */
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_LAF, 5, shape, W, NULL, &laf, NULL, NULL, err));
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TT, 5, shape, W, NULL, NULL, tt, NULL, err));
    assert_close(laf, tt[3], 0, 1e-12, "LAF vs last TT term");
    assert_close(laf, base[4], 0, 1e-12, "LAF vs last Tucker term");
    /* Tucker terms are invariant under an orthogonal transform of any mode. */
    int64_t s3[3] = {6, 7, 8};
    double *Wd = gen_f64(336, 701), before[3], after[3];
    CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, s3, Wd, NULL, NULL, before, NULL, err));
    for (int k = 0; k < 3; k++) {
        double *Q = householder(s3[k], 702 + (uint32_t)k);
        mode_product(Wd, 3, s3, k, Q);
        free(Q);
        CHECK_OK(tnmtl_norm_eval_f64(TNMTL_NORM_TUCKER, 3, s3, Wd, NULL, NULL, after, NULL, err));
        for (int t = 0; t < 3; t++) assert_close(after[t], before[t], 0, 1e-13, "orthogonal invariance");
    }
    /* value = sum gamma_i terms_i; a zero gamma still reports its term. */
    double g[5] = {0, 1, 0, 2, 0.5}, value, terms[5];
    CHECK_OK(tnmtl_norm_eval(TNMTL_NORM_TUCKER, 5, shape, W, g, &value, terms, NULL, err));
    assert_close(value, base[1] + 2 * base[3] + 0.5 * base[4], 0, 1e-12, "weighted value");
    assert_close(terms[0], base[0], 0, 1e-12, "zero-gamma term still reported");
    free(W);
    free(V);
    free(Wd);
}

/* ---- (f) prox ---------------------------------------------------------- */

static void test_prox_reference(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof svt_ref_cases / sizeof svt_ref_cases[0]; k++) {
        const svt_ref_case *c = &svt_ref_cases[k];
        int64_t n = c->rows * c->cols;
        float *X = gen_f32(n, c->seed);
        CHECK_OK(tnmtl_prox_nuclear(c->rows, c->cols, X, c->t, err));
        for (int64_t i = 0; i < n; i++) assert_close(X[i], c->out[i], 2e-6, 0, "SVT vs numpy");
        free(X);
    }
}

static void test_prox_known(void **state)
{
    (void)state;
    /* X = Q1 diag(s) Q2^T (6 x 4): prox_t gives Q1 diag(max(s - t, 0)) Q2^T. */
    const double s[4] = {3.0, 2.0, 2.0, 0.5}, t = 1.0, st[4] = {2.0, 1.0, 1.0, 0.0};
    int64_t shape[2] = {6, 4};
    double *Xd = superdiag(2, shape, s, 4, 800, NULL), *Yd = superdiag(2, shape, st, 4, 800, NULL);
    float X[24];
    for (int i = 0; i < 24; i++) X[i] = (float)Xd[i];
    CHECK_OK(tnmtl_prox_nuclear(6, 4, X, t, err));
    for (int i = 0; i < 24; i++) assert_close(X[i], Yd[i], 2e-6, 0, "SVT known case");
    /* t = 0: identity; t >= sigma_max: zero. */
    for (int i = 0; i < 24; i++) X[i] = (float)Xd[i];
    CHECK_OK(tnmtl_prox_nuclear(4, 6, X, 0.0, err));
    for (int i = 0; i < 24; i++) assert_true(X[i] == (float)Xd[i]);
    CHECK_OK(tnmtl_prox_nuclear(4, 6, X, 3.0, err));
    for (int i = 0; i < 24; i++) assert_close(X[i], 0.0, 1e-6, 0, "SVT to zero");
    free(Xd);
    free(Yd);

    /* prox_term on every term: the term's singular values become max(s-t, 0). */
    int64_t s4[4] = {3, 4, 2, 5};
    for (int mi = 0; mi < 3; mi++) {
        for (int term = 0; term < tnmtl_norm_n_terms(methods[mi], 4); term++) {
            float *W = gen_f32(120, 810);
            int64_t r, c;
            tnmtl_norm_term_shape(methods[mi], 4, s4, term, &r, &c);
            int64_t p = r < c ? r : c;
            double before[60], after[60], tt = 0.4;
            CHECK_OK(tnmtl_norm_term_singular_values(methods[mi], 4, s4, W, term, before, err));
            CHECK_OK(tnmtl_norm_prox_term(methods[mi], 4, s4, W, term, tt, err));
            CHECK_OK(tnmtl_norm_term_singular_values(methods[mi], 4, s4, W, term, after, err));
            for (int64_t i = 0; i < p; i++) assert_close(after[i], fmax(before[i] - tt, 0), 2e-6, 0, "prox_term sv");
            free(W);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_small),
        cmocka_unit_test(test_reference_fc1),
        cmocka_unit_test(test_term_shapes_and_singular_values),
        cmocka_unit_test(test_known_rank),
        cmocka_unit_test(test_repeated_and_tiny_singular_values),
        cmocka_unit_test(test_zero_one_element_vector),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_extreme_magnitudes),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_f32_gradient_wide_spectrum),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_prox_reference),
        cmocka_unit_test(test_prox_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
