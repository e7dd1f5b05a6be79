/* test_norm_fast.c - the fast norm solver (tnmtl_norm_tracker, tnmtl/norm.h)
 * against the exact norms: at a refresh, while the weights move, after a
 * jump, on resume, and inside the multi-task trainer (LAF unchanged bit for
 * bit; a Tucker model's subgradient within the tolerance at every step of
 * continued training). */
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
#include "tnmtl/mtl.h"
#include "tnmtl/norm.h"
#include "tnmtl/rng.h"

/* A 40 x 12 x 6 tensor: Tucker modes 1 (40 x 72) and 2 (12 x 240) are
 * tracked with min_side 8, mode 3 (6 x 480) is exact. */
enum { D1 = 40, D2 = 12, D3 = 6, N = D1 * D2 * D3 };
static const int64_t shape[3] = {D1, D2, D3};
static const double gamma3[3] = {0.7, 1.0, 0.4};

static tnmtl_norm_fast_config small_config(void)
{
    tnmtl_norm_fast_config c;
    tnmtl_norm_fast_config_default(&c);
    c.min_side = 8;
    c.period = 20;
    return c;
}

/* A tensor with a spread spectrum: random, plus a strong low-rank part. */
static void make_tensor(float *w, uint64_t seed)
{
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, seed);
    double u[D1], v[D2 * D3];
    for (int i = 0; i < D1; i++) u[i] = tnmtl_rng_normal(&rng);
    for (int j = 0; j < D2 * D3; j++) v[j] = tnmtl_rng_normal(&rng);
    for (int i = 0; i < D1; i++)
        for (int j = 0; j < D2 * D3; j++) w[i * D2 * D3 + j] = (float)(0.1 * tnmtl_rng_normal(&rng) + 0.05 * u[i] * v[j]);
}

/* The exact value and subgradient, in double. */
static void exact(tnmtl_norm_method m, const float *w, double *value, double *grad)
{
    double *wd = malloc(N * sizeof *wd);
    for (int i = 0; i < N; i++) wd[i] = w[i];
    tnmtl_error err;
    assert_int_equal(tnmtl_norm_eval_f64(m, 3, shape, wd, gamma3, value, NULL, grad, &err), TNMTL_OK);
    free(wd);
}

static double rel_frobenius(const float *a, const double *b, int64_t n)
{
    double d = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        nb += b[i] * b[i];
    }
    return sqrt(d / nb);
}

/* w += eps * |w|_rms * noise */
static void nudge(float *w, double eps, tnmtl_rng *rng)
{
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)w[i] * w[i];
    const double scale = eps * sqrt(ss / N);
    for (int i = 0; i < N; i++) w[i] += (float)(scale * tnmtl_rng_normal(rng));
}

/* At a refresh the value is the exact one and the subgradient the exact one
 * up to the float product. */
static void test_refresh_is_exact(void **state)
{
    (void)state;
    const tnmtl_norm_method methods[2] = {TNMTL_NORM_TUCKER, TNMTL_NORM_TT};
    for (int k = 0; k < 2; k++) {
        float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
        double *ge = malloc(N * sizeof *ge), ve, v;
        make_tensor(w, 3);
        exact(methods[k], w, &ve, ge);
        tnmtl_norm_fast_config c = small_config();
        tnmtl_norm_tracker *tr;
        tnmtl_error err;
        assert_int_equal(tnmtl_norm_tracker_create(methods[k], 3, shape, &c, &tr, &err), TNMTL_OK);
        assert_int_equal(tnmtl_norm_tracker_eval(tr, 0, w, gamma3, &v, g, &err), TNMTL_OK);
        tnmtl_norm_tracker_stats s;
        tnmtl_norm_tracker_get_stats(tr, &s);
        assert_int_equal(s.tracked_terms, k == 0 ? 2 : 1); /* Tucker modes 1-2; TT term 1 (term 2 is 480 x 6) */
        assert_true(s.refreshes >= 1);
        assert_true(fabs(v - ve) <= 1e-9 * ve);
        assert_true(rel_frobenius(g, ge, N) < 1e-5);
        tnmtl_norm_tracker_free(tr);
        free(w), free(g), free(ge);
    }
}

/* While the weights move a little per step, the tracked subgradient stays
 * within the tolerance of the exact one, the value within its square, and
 * most steps are not refreshes. */
static void test_tracks_moving_weights(void **state)
{
    (void)state;
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
    double *ge = malloc(N * sizeof *ge), ve, v;
    make_tensor(w, 5);
    tnmtl_norm_fast_config c = small_config();
    tnmtl_norm_tracker *tr;
    tnmtl_error err;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_OK);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 9);
    double worst = 0, worst_value = 0;
    for (int64_t step = 0; step < 40; step++) {
        assert_int_equal(tnmtl_norm_tracker_eval(tr, step, w, gamma3, &v, g, &err), TNMTL_OK);
        exact(TNMTL_NORM_TUCKER, w, &ve, ge);
        worst = fmax(worst, rel_frobenius(g, ge, N));
        worst_value = fmax(worst_value, fabs(v - ve) / ve);
        /* the majoriser is above the norm (up to the float product's rounding) */
        if (!(v >= ve * (1 - 1e-7))) fail_msg("step %lld: value %.17g below the norm %.17g", (long long)step, v, ve);
        nudge(w, 2e-5, &rng);
    }
    tnmtl_norm_tracker_stats s;
    tnmtl_norm_tracker_get_stats(tr, &s);
    print_message("moving weights: worst subgradient error %.2e, value %.2e, refreshes %lld of %lld evals (x2 terms)\n",
                  worst, worst_value, (long long)s.refreshes, (long long)s.evals);
    assert_true(worst <= c.tol);
    assert_true(worst_value <= 1e-6);
    assert_int_equal(s.evals, 40);
    assert_true(s.refreshes < 2 * 40 / 2);   /* most steps tracked */
    assert_true(s.refreshes >= 2 * 2);       /* steps 0 and 20, both terms */
    assert_true(s.max_error > 0);
    tnmtl_norm_tracker_free(tr);
    free(w), free(g), free(ge);
}

/* A jump far beyond the tolerance refreshes at once (adaptive refresh), so
 * the subgradient is right at that step; a fixed schedule would be off. */
static void test_jump_refreshes(void **state)
{
    (void)state;
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
    double *ge = malloc(N * sizeof *ge), ve, v;
    make_tensor(w, 7);
    tnmtl_norm_fast_config c = small_config();
    tnmtl_norm_tracker *tr;
    tnmtl_error err;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_OK);
    assert_int_equal(tnmtl_norm_tracker_eval(tr, 0, w, gamma3, &v, g, &err), TNMTL_OK);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    nudge(w, 0.2, &rng);
    assert_int_equal(tnmtl_norm_tracker_eval(tr, 1, w, gamma3, &v, g, &err), TNMTL_OK);
    tnmtl_norm_tracker_stats s;
    tnmtl_norm_tracker_get_stats(tr, &s);
    assert_true(s.adaptive_refreshes >= 1);
    assert_true(s.last_error > c.tol);
    exact(TNMTL_NORM_TUCKER, w, &ve, ge);
    assert_true(rel_frobenius(g, ge, N) < 1e-5);
    assert_true(fabs(v - ve) <= 1e-9 * ve);
    tnmtl_norm_tracker_free(tr);
    free(w), free(g), free(ge);
}

/* A tracker made anew at a multiple of the period (a resumed run) gives
 * the same bits as one that ran from the start. */
static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    float *w = malloc(N * sizeof *w), *ga = malloc(N * sizeof *ga), *gb = malloc(N * sizeof *gb);
    make_tensor(w, 11);
    tnmtl_norm_fast_config c = small_config();
    c.period = 10;
    tnmtl_norm_tracker *a, *b = NULL;
    tnmtl_error err;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TT, 3, shape, &c, &a, &err), TNMTL_OK);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 2);
    for (int64_t step = 0; step < 25; step++) {
        double va, vb;
        assert_int_equal(tnmtl_norm_tracker_eval(a, step, w, gamma3, &va, ga, &err), TNMTL_OK);
        if (step == 10) assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TT, 3, shape, &c, &b, &err), TNMTL_OK);
        if (b) {
            assert_int_equal(tnmtl_norm_tracker_eval(b, step, w, gamma3, &vb, gb, &err), TNMTL_OK);
            assert_true(va == vb);
            assert_memory_equal(ga, gb, N * sizeof *ga);
        }
        nudge(w, 1e-5, &rng);
    }
    tnmtl_norm_tracker_free(a);
    tnmtl_norm_tracker_free(b);
    free(w), free(ga), free(gb);
}

static void test_bad_input(void **state)
{
    (void)state;
    tnmtl_norm_tracker *tr;
    tnmtl_error err;
    tnmtl_norm_fast_config c = small_config();
    c.tol = 0;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "tol"));
    c = small_config();
    c.period = 0;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_ERR_INVALID);
    c = small_config();
    c.probes = 0;
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_ERR_INVALID);
    const int64_t bad_shape[3] = {4, 0, 2};
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, bad_shape, NULL, &tr, &err), TNMTL_ERR_INVALID);

    /* NaN: an error naming the element, then a clean start */
    c = small_config();
    assert_int_equal(tnmtl_norm_tracker_create(TNMTL_NORM_TUCKER, 3, shape, &c, &tr, &err), TNMTL_OK);
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
    double *ge = malloc(N * sizeof *ge), v, ve;
    make_tensor(w, 13);
    assert_int_equal(tnmtl_norm_tracker_eval(tr, 0, w, gamma3, &v, g, &err), TNMTL_OK);
    const float keep = w[17];
    w[17] = NAN;
    assert_int_equal(tnmtl_norm_tracker_eval(tr, 1, w, gamma3, &v, g, &err), TNMTL_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "17"));
    w[17] = keep * 3;
    assert_int_equal(tnmtl_norm_tracker_eval(tr, 2, w, gamma3, &v, g, &err), TNMTL_OK);
    exact(TNMTL_NORM_TUCKER, w, &ve, ge);
    assert_true(fabs(v - ve) <= 1e-9 * ve);
    assert_int_equal(tnmtl_norm_tracker_eval(tr, -1, w, gamma3, &v, g, &err), TNMTL_ERR_INVALID);
    tnmtl_norm_tracker_free(tr);
    free(w), free(g), free(ge);
}

/* ---- inside the trainer ---------------------------------------------------- */

enum { T = 4, H = 8, W = 8, PER_CLASS = 6, CLASSES = 3 };
static const int classes[T] = {CLASSES, CLASSES, CLASSES, CLASSES};

static void make_data(tnmtl_dataset *ds, tnmtl_split *split)
{
    memset(ds, 0, sizeof *ds);
    ds->n_tasks = T;
    ds->in_h = H;
    ds->in_w = W;
    ds->in_c = 1;
    ds->kind = TNMTL_TARGET_CLASS;
    const int64_t n = (int64_t)T * CLASSES * PER_CLASS;
    ds->n_examples = n;
    ds->task_begin = calloc(T + 1, sizeof(int64_t));
    ds->n_classes = calloc(T, sizeof(int));
    ds->label = calloc((size_t)n, sizeof(int));
    ds->features = calloc((size_t)n * H * W, sizeof(float));
    ds->task_names = calloc(T, sizeof(char *));
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 21);
    int64_t i = 0;
    for (int t = 0; t < T; t++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", t);
        ds->n_classes[t] = CLASSES;
        ds->task_names[t] = strdup(name);
        ds->task_begin[t] = i;
        for (int c = 0; c < CLASSES; c++)
            for (int k = 0; k < PER_CLASS; k++, i++) {
                ds->label[i] = c;
                for (int p = 0; p < H * W; p++)
                    ds->features[i * H * W + p] = (float)((p % (c + 2) == 0) + 0.7 * tnmtl_rng_normal(&rng));
            }
    }
    ds->task_begin[T] = i;
    tnmtl_error err;
    assert_int_equal(tnmtl_dataset_validate(ds, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(ds, 0.5, 0.0, 3, split, &err), TNMTL_OK);
}

static tnmtl_mtl *make_model(tnmtl_method method, tnmtl_norm_solver solver, const tnmtl_norm_fast_config *fast)
{
    tnmtl_mtl_config c = {0};
    c.arch = "conv4x3,pool2,fc24";
    c.act = TNMTL_ACT_TANH;
    c.in_h = H;
    c.in_w = W;
    c.in_c = 1;
    c.n_tasks = T;
    c.n_out = classes;
    c.kind = TNMTL_TARGET_CLASS;
    c.method = method;
    c.gamma = 0.02;
    c.norm_solver = solver;
    c.fast = fast;
    tnmtl_mtl *m = NULL;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_create(&c, &m, &err), TNMTL_OK);
    assert_int_equal(tnmtl_mtl_init(m, 4, &err), TNMTL_OK);
    return m;
}

static void train(tnmtl_mtl *m, tnmtl_optim *opt, const tnmtl_dataset *ds, const tnmtl_split *split, int64_t steps)
{
    tnmtl_train_config tc = {0};
    tc.steps = steps;
    tc.batch = 4;
    tc.seed = 8;
    tnmtl_error err;
    tnmtl_status st = tnmtl_train(m, opt, ds, split, &tc, &err);
    if (st) fail_msg("training failed: %s", err.msg);
}

/* LAF has no term large enough to track: the fast solver is the exact one,
 * bit for bit. */
static void test_laf_is_unchanged(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_norm_fast_config fc;
    tnmtl_norm_fast_config_default(&fc);
    fc.min_side = 2;
    tnmtl_mtl *a = make_model(TNMTL_METHOD_LAF, TNMTL_NORM_SOLVER_EXACT, NULL);
    tnmtl_mtl *b = make_model(TNMTL_METHOD_LAF, TNMTL_NORM_SOLVER_FAST, &fc);
    tnmtl_optim oa, ob;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    tnmtl_error err;
    assert_int_equal(tnmtl_optim_init(&oa, &oc, a->n_params, &err), TNMTL_OK);
    assert_int_equal(tnmtl_optim_init(&ob, &oc, b->n_params, &err), TNMTL_OK);
    train(a, &oa, &ds, &split, 12);
    train(b, &ob, &ds, &split, 12);
    assert_memory_equal(a->params, b->params, (size_t)a->n_params * sizeof(float));
    tnmtl_optim_free(&oa), tnmtl_optim_free(&ob);
    tnmtl_mtl_free(a), tnmtl_mtl_free(b);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

/* Continues a trained Tucker or TT model (60 exact steps, the
 * "checkpoint") for 40 steps with the fast solver at tolerance tol and
 * period 20: at every step its regulariser subgradient is compared with the
 * exact one at the same parameters (relative Frobenius over all stacked
 * blocks); returns the worst error and the value's, and the refresh count. */
static void continue_fast(tnmtl_method method, double tol, double *worst, double *worst_value, int64_t *refreshes,
                          int *tracked)
{
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_norm_fast_config fc;
    tnmtl_norm_fast_config_default(&fc);
    fc.min_side = 16; /* fc1's modes 1 (144 x 96) and 2 (24 x 576), TT term 1; conv terms exact */
    fc.tol = tol;
    tnmtl_mtl *m = make_model(method, TNMTL_NORM_SOLVER_FAST, &fc);
    tnmtl_mtl *ref = make_model(method, TNMTL_NORM_SOLVER_EXACT, NULL);
    tnmtl_mtl *stl = make_model(TNMTL_METHOD_STL, TNMTL_NORM_SOLVER_EXACT, NULL);
    tnmtl_optim opt;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    tnmtl_error err;
    assert_int_equal(tnmtl_optim_init(&opt, &oc, m->n_params, &err), TNMTL_OK);
    m->cfg.norm_solver = TNMTL_NORM_SOLVER_EXACT;
    train(m, &opt, &ds, &split, 60);
    m->cfg.norm_solver = TNMTL_NORM_SOLVER_FAST;
    const size_t bytes = (size_t)m->n_params * sizeof(float);
    *worst = *worst_value = 0;
    for (int64_t step = 60; step < 100; step++) {
        double loss, reg, rl, rr, rv, exact_value;
        memcpy(stl->params, m->params, bytes); /* the data gradient alone */
        assert_int_equal(tnmtl_mtl_objective(stl, &ds, &split, 8, step, 4, &rl, &rr, &err), TNMTL_OK);
        assert_int_equal(tnmtl_mtl_objective(m, &ds, &split, 8, step, 4, &loss, &reg, &err), TNMTL_OK);
        assert_true(loss == rl);
        memcpy(ref->params, m->params, bytes); /* the exact regulariser at the same parameters */
        memset(ref->grads, 0, bytes);
        assert_int_equal(tnmtl_mtl_regulariser(ref, 1, &rv, &err), TNMTL_OK);
        double d = 0, n = 0;
        for (int64_t j = 0; j < m->n_params; j++) {
            const double fast = (double)m->grads[j] - stl->grads[j];
            d += (fast - ref->grads[j]) * (fast - ref->grads[j]);
            n += (double)ref->grads[j] * ref->grads[j];
        }
        *worst = fmax(*worst, sqrt(d / n));
        *worst_value = fmax(*worst_value, fabs(reg - rv) / rv);
        /* reported values are the exact path's (to BLAS rounding), not the majoriser */
        assert_int_equal(tnmtl_mtl_regulariser(m, 0, &exact_value, &err), TNMTL_OK);
        if (!(fabs(exact_value - rv) <= 1e-12 * rv)) fail_msg("reported %.17g, exact %.17g", exact_value, rv);
        tnmtl_optim_step(&opt, m->params, m->grads);
    }
    *refreshes = 0;
    *tracked = 0;
    for (int i = 0; m->trackers && i < m->n_blocks; i++)
        if (m->trackers[i]) {
            tnmtl_norm_tracker_stats bs;
            tnmtl_norm_tracker_get_stats(m->trackers[i], &bs);
            *refreshes += bs.refreshes;
            *tracked += bs.tracked_terms;
        }
    print_message("%s, tol %g: worst subgradient error %.2e, value %.2e over 40 steps; %d tracked terms, "
                  "%lld refreshes\n", tnmtl_method_name(method), tol, *worst, *worst_value, *tracked,
                  (long long)*refreshes);
    tnmtl_optim_free(&opt);
    tnmtl_mtl_free(m), tnmtl_mtl_free(ref), tnmtl_mtl_free(stl);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

/* The solver's guarantee on a trained model: at tol 1e-3 (the default) the
 * subgradient is within 1e-3 of the exact one at every step and the value
 * within 1e-6 (here Adam moves this small model so fast that it refreshes
 * at almost every step, as it does on Omniglot: docs/performance.md); at a
 * loose tol it refreshes only on its schedule and its error stays under
 * that tol. */
static void test_trained_model_within_tolerance(void **state)
{
    (void)state;
    const tnmtl_method methods[2] = {TNMTL_METHOD_TUCKER, TNMTL_METHOD_TT};
    for (int k = 0; k < 2; k++) {
        double worst, worst_value;
        int64_t refreshes;
        int tracked;
        continue_fast(methods[k], 1e-3, &worst, &worst_value, &refreshes, &tracked);
        assert_true(tracked >= 1);
        assert_true(worst <= 1e-3);
        assert_true(worst_value <= 1e-6);
        continue_fast(methods[k], 0.5, &worst, &worst_value, &refreshes, &tracked);
        assert_true(refreshes <= 2 * tracked + 2); /* steps 60 and 80, and few adaptive ones */
        assert_true(worst <= 0.5);
        assert_true(worst > 1e-3); /* it did track: the subgradient moved off the exact one */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_is_exact),
        cmocka_unit_test(test_tracks_moving_weights),
        cmocka_unit_test(test_jump_refreshes),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_laf_is_unchanged),
        cmocka_unit_test(test_trained_model_within_tolerance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
