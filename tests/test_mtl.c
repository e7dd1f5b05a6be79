/* test_mtl.c - the multi-task model: layout, sharing, the full objective's
 * gradient against finite differences in double, determinism, report. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "tnmtl.h"
#include "tnmtl/mtl.h"
#include "tnmtl/report.h"

enum { T = 3, H = 8, W = 8, PER_CLASS = 6 };
static const int classes[T] = {3, 4, 2};

/* A small classification dataset with float features: class c of task t is
 * a fixed random pattern plus noise. */
static void make_data(tnmtl_dataset *ds, tnmtl_split *split)
{
    memset(ds, 0, sizeof *ds);
    ds->n_tasks = T;
    ds->in_h = H;
    ds->in_w = W;
    ds->in_c = 1;
    ds->kind = TNMTL_TARGET_CLASS;
    int64_t n = 0;
    for (int t = 0; t < T; t++) n += classes[t] * PER_CLASS;
    ds->n_examples = n;
    ds->task_begin = calloc(T + 1, sizeof(int64_t));
    ds->n_classes = calloc(T, sizeof(int));
    ds->label = calloc((size_t)n, sizeof(int));
    ds->features = calloc((size_t)n * H * W, sizeof(float));
    ds->task_names = calloc(T, sizeof(char *));
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 7);
    int64_t i = 0;
    for (int t = 0; t < T; t++) {
        ds->n_classes[t] = classes[t];
        ds->task_names[t] = strdup(t == 0 ? "a" : t == 1 ? "b" : "c");
        ds->task_begin[t] = i;
        float proto[8][H * W];
        for (int c = 0; c < classes[t]; c++)
            for (int p = 0; p < H * W; p++) proto[c][p] = (float)tnmtl_rng_normal(&rng);
        for (int c = 0; c < classes[t]; c++)
            for (int k = 0; k < PER_CLASS; k++, i++) {
                ds->label[i] = c;
                for (int p = 0; p < H * W; p++)
                    ds->features[i * H * W + p] = proto[c][p] + 0.5f * (float)tnmtl_rng_normal(&rng);
            }
    }
    ds->task_begin[T] = i;
    tnmtl_error err;
    assert_int_equal(tnmtl_dataset_validate(ds, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(ds, 0.5, 0.0, 3, split, &err), TNMTL_OK);
}

static tnmtl_mtl *make_model(tnmtl_method method, int share, const char *arch)
{
    tnmtl_mtl_config c = {0};
    c.arch = arch;
    c.act = TNMTL_ACT_TANH;
    c.in_h = H;
    c.in_w = W;
    c.in_c = 1;
    c.n_tasks = T;
    c.n_out = classes;
    c.kind = TNMTL_TARGET_CLASS;
    c.method = method;
    c.ud_share = share;
    c.gamma = 0.05;
    tnmtl_mtl *m = NULL;
    tnmtl_error err;
    tnmtl_status st = tnmtl_mtl_create(&c, &m, &err);
    if (st) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(st, TNMTL_OK);
    assert_int_equal(tnmtl_mtl_init(m, 11, &err), TNMTL_OK);
    return m;
}

static const char *ARCH = "conv3x3,pool2,fc5";

static void test_layout(void **state)
{
    (void)state;
    tnmtl_mtl *stl = make_model(TNMTL_METHOD_STL, 0, ARCH);
    int64_t sum = 0;
    for (int t = 0; t < T; t++) sum += tnmtl_net_param_count(stl->nets[t]);
    assert_int_equal(stl->n_params, sum);
    /* Every parameter belongs to exactly one view of one task. */
    char *owner = calloc((size_t)stl->n_params, 1);
    for (int t = 0; t < T; t++)
        for (int l = 0; l < stl->n_layers; l++) {
            const tnmtl_layer_info *li = tnmtl_net_layer(stl->nets[t], l);
            if (!li->n_weight) continue;
            const tnmtl_layer_params *v = &stl->view[t * stl->n_layers + l];
            for (int64_t j = 0; j < li->n_weight; j++) owner[v->w - stl->params + j]++;
            for (int64_t j = 0; j < li->n_bias; j++) owner[v->b - stl->params + j]++;
        }
    for (int64_t j = 0; j < stl->n_params; j++) assert_int_equal(owner[j], 1);
    free(owner);
    /* conv and fc5 shareable, output not (sizes differ). */
    int shareable = 0;
    for (int i = 0; i < stl->n_blocks; i++) shareable += stl->blocks[i].shareable;
    assert_int_equal(shareable, 2);

    /* UD sharing the first layer: one copy, every task points to it. */
    tnmtl_mtl *ud = make_model(TNMTL_METHOD_UD, 1, ARCH);
    const tnmtl_layer_info *conv = tnmtl_net_layer(ud->nets[0], 0);
    assert_int_equal(ud->n_params, sum - (T - 1) * (conv->n_weight + conv->n_bias));
    for (int t = 1; t < T; t++) assert_ptr_equal(ud->view[t * ud->n_layers].w, ud->view[0].w);
    /* Shared layers start from task 0's values; task-specific ones are the same as STL's. */
    assert_memory_equal(ud->view[0].w, stl->view[0].w, (size_t)conv->n_weight * sizeof(float));
    tnmtl_error err;
    tnmtl_mtl *bad;
    tnmtl_mtl_config c = ud->cfg;
    c.ud_share = 3;
    assert_int_equal(tnmtl_mtl_create(&c, &bad, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "shareable"));
    tnmtl_mtl_free(stl);
    tnmtl_mtl_free(ud);
}

static void test_stack_roundtrip(void **state)
{
    (void)state;
    tnmtl_mtl *m = make_model(TNMTL_METHOD_TUCKER, 0, ARCH);
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->stacked) continue;
        float *src = m->params + b->w_offset;
        float *stack = calloc((size_t)(b->n_w * T), sizeof(float));
        float *back = calloc((size_t)(b->n_w * T), sizeof(float));
        tnmtl_mtl_stack(m, b, src, stack);
        for (int t = 0; t < T; t++)
            for (int64_t j = 0; j < b->n_w; j++) assert_true(stack[j * T + t] == src[t * b->n_w + j]);
        tnmtl_mtl_unstack_add(m, b, stack, back);
        assert_memory_equal(back, src, (size_t)(b->n_w * T) * sizeof(float));
        assert_int_equal(b->shape[b->ndim - 1], T);
        free(stack);
        free(back);
    }
    tnmtl_mtl_free(m);
}

/* Weight decay in double, written from its definition: wd * c * the squares
 * of every task's weights of the shareable layers (a hard-shared layer once
 * per task: every task's view points at the one copy). */
static double weight_decay_f64(const tnmtl_mtl *m, const double *dparams)
{
    double sq = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < m->n_blocks; i++) {
            const tnmtl_param_block *b = &m->blocks[i];
            if (!b->shareable) continue;
            const double *w = dparams + (m->view[t * m->n_layers + b->layer].w - m->params);
            for (int64_t j = 0; j < b->n_w; j++) sq += w[j] * w[j];
        }
    return m->weight_decay * sq / (m->cfg.sum_task_losses ? 1 : T);
}

/* The objective in double: f64 task networks on the same batches plus the
 * f64 norms, evaluated at dparams (a double copy of the layout). */
static double objective_f64(const tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split, double *dparams)
{
    tnmtl_error err;
    tnmtl_workspace *ws;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)m->nets, T, 64, 1, &ws, &err), TNMTL_OK);
    double total = 0;
    int64_t idx[64];
    int labels[64];
    const int64_t n_in = H * W;
    float *xf = calloc(64 * n_in, sizeof(float));
    double *x = calloc(64 * n_in, sizeof(double));
    for (int t = 0; t < T; t++) {
        tnmtl_layer_params_f64 v[TNMTL_MAX_LAYERS];
        for (int l = 0; l < m->n_layers; l++) {
            const tnmtl_layer_params *fv = &m->view[t * m->n_layers + l];
            v[l].w = fv->w ? dparams + (fv->w - m->params) : NULL;
            v[l].b = fv->b ? dparams + (fv->b - m->params) : NULL;
        }
        int perm[64];
        int n = tnmtl_batch_indices(split, t, 5, 0, 0, idx, perm);
        tnmtl_dataset_gather(ds, idx, n, xf, labels, NULL);
        for (int64_t j = 0; j < n * n_in; j++) x[j] = xf[j];
        const double *out = tnmtl_net_forward_f64(m->nets[t], v, ws, x, n);
        total += tnmtl_softmax_xent_f64(out, labels, n, classes[t], NULL) / (m->cfg.sum_task_losses ? 1 : T);
    }
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->stacked) continue;
        double *stack = calloc((size_t)(b->n_w * T), sizeof(double));
        for (int t = 0; t < T; t++)
            for (int64_t j = 0; j < b->n_w; j++) stack[j * T + t] = dparams[b->w_offset + t * b->n_w + j];
        tnmtl_norm_method nm = m->cfg.method == TNMTL_METHOD_LAF ? TNMTL_NORM_LAF
                               : m->cfg.method == TNMTL_METHOD_TT ? TNMTL_NORM_TT : TNMTL_NORM_TUCKER;
        double v;
        assert_int_equal(tnmtl_norm_eval_f64(nm, b->ndim, b->shape, stack, b->gamma, &v, NULL, NULL, &err), TNMTL_OK);
        total += v;
        free(stack);
    }
    total += weight_decay_f64(m, dparams);
    free(x);
    free(xf);
    tnmtl_workspace_free(ws);
    return total;
}

static void check_objective_gradient(tnmtl_method method, int share, int sum_losses, double wd)
{
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_mtl *m = make_model(method, share, ARCH);
    m->cfg.sum_task_losses = sum_losses;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_set_weight_decay(m, wd, &err), TNMTL_OK);
    double loss, reg;
    assert_int_equal(tnmtl_mtl_objective(m, &ds, &split, 5, 0, 0, &loss, &reg, &err), TNMTL_OK);
    if ((method == TNMTL_METHOD_STL || method == TNMTL_METHOD_UD) && wd == 0) assert_true(reg == 0);
    else assert_true(reg > 0);
    if (method == TNMTL_METHOD_STL && wd > 0) { /* the value: weight decay alone, in closed form */
        double *dp0 = calloc((size_t)m->n_params, sizeof(double));
        for (int64_t j = 0; j < m->n_params; j++) dp0[j] = m->params[j];
        assert_true(fabs(reg - weight_decay_f64(m, dp0)) <= 1e-9 * reg);
        free(dp0);
    }

    double *dp = calloc((size_t)m->n_params, sizeof(double));
    for (int64_t j = 0; j < m->n_params; j++) dp[j] = m->params[j];
    const double J0 = objective_f64(m, &ds, &split, dp);
    assert_true(fabs(J0 - (loss + reg)) <= 1e-4 * fabs(J0));

    /* Every parameter: float analytic gradient vs central differences in double. */
    const double h = 1e-5;
    double worst = 0;
    int64_t worst_j = -1;
    for (int64_t j = 0; j < m->n_params; j++) {
        const double keep = dp[j];
        dp[j] = keep + h;
        const double jp = objective_f64(m, &ds, &split, dp);
        dp[j] = keep - h;
        const double jm = objective_f64(m, &ds, &split, dp);
        dp[j] = keep;
        const double fd = (jp - jm) / (2 * h);
        const double e = fabs(fd - m->grads[j]) / (1e-4 + 1e-3 * fabs(fd));
        if (e > worst) {
            worst = e;
            worst_j = j;
        }
    }
    if (worst > 1) fprintf(stderr, "%s: worst gradient error at parameter %lld: analytic %g\n",
                           tnmtl_method_name(method), (long long)worst_j, m->grads[worst_j]);
    assert_true(worst <= 1);
    free(dp);
    tnmtl_mtl_free(m);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

static void test_gradient_stl(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_STL, 0, 0, 0); }
static void test_gradient_ud(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_UD, 1, 0, 0); }
static void test_gradient_laf(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_LAF, 0, 0, 0); }
static void test_gradient_tucker(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_TUCKER, 0, 0, 0); }
static void test_gradient_tt(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_TT, 0, 0, 0); }

static void test_gradient_tucker_sum(void **state) { (void)state; check_objective_gradient(TNMTL_METHOD_TUCKER, 0, 1, 0); }

/* Weight decay: on STL (its value in closed form too), on a hard-shared
 * layer (counted once per task) and beside a norm with summed task losses. */
static void test_gradient_weight_decay(void **state)
{
    (void)state;
    check_objective_gradient(TNMTL_METHOD_STL, 0, 0, 0.3);
    check_objective_gradient(TNMTL_METHOD_UD, 1, 0, 0.3);
    check_objective_gradient(TNMTL_METHOD_TT, 0, 1, 0.05);
    tnmtl_mtl *m = make_model(TNMTL_METHOD_STL, 0, ARCH);
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_set_weight_decay(m, -0.1, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "weight decay"));
    assert_int_equal(tnmtl_mtl_set_weight_decay(m, NAN, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_mtl_set_weight_decay(m, INFINITY, &err), TNMTL_ERR_INVALID);
    assert_true(m->weight_decay == 0);
    tnmtl_mtl_free(m);
}

static void train_steps(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split, int64_t steps)
{
    tnmtl_optim opt;
    tnmtl_optim_config oc;
    tnmtl_error err;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    oc.lr = 0.01;
    assert_int_equal(tnmtl_optim_init(&opt, &oc, m->n_params, &err), TNMTL_OK);
    tnmtl_train_config tc = {0};
    tc.steps = steps;
    tc.batch = 4;
    tc.seed = 9;
    assert_int_equal(tnmtl_train(m, &opt, ds, split, &tc, &err), TNMTL_OK);
    assert_int_equal(opt.step, steps);
    tnmtl_optim_free(&opt);
}

static void test_determinism_and_learning(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_mtl *a = make_model(TNMTL_METHOD_TT, 0, ARCH), *b = make_model(TNMTL_METHOD_TT, 0, ARCH);
    tnmtl_error err;
    double before[T], after[T], loss;
    assert_int_equal(tnmtl_mtl_evaluate(a, &ds, &split, TNMTL_PART_TRAIN, before, &loss, &err), TNMTL_OK);
    train_steps(a, &ds, &split, 60);
    train_steps(b, &ds, &split, 60);
    assert_memory_equal(a->params, b->params, (size_t)a->n_params * sizeof(float));
    assert_int_equal(tnmtl_mtl_evaluate(a, &ds, &split, TNMTL_PART_TRAIN, after, &loss, &err), TNMTL_OK);
    for (int t = 0; t < T; t++) assert_true(after[t] >= 0.99); /* separable training data is learned */
    tnmtl_mtl_free(a);
    tnmtl_mtl_free(b);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

/* Task-parallel training gives the same bits for any number of threads,
 * also for hard-shared layers (their per-task gradients are summed in task
 * order). */
static void test_threads_do_not_change_results(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    const tnmtl_method methods[2] = {TNMTL_METHOD_UD, TNMTL_METHOD_TUCKER};
    for (int k = 0; k < 2; k++) {
        tnmtl_mtl *a = make_model(methods[k], 1, ARCH), *b = make_model(methods[k], 1, ARCH);
        tnmtl_error err;
        assert_int_equal(tnmtl_mtl_set_threads(a, 1, &err), TNMTL_OK);
        assert_int_equal(tnmtl_mtl_set_threads(b, 3, &err), TNMTL_OK);
        assert_int_equal(b->n_threads, 3);
        assert_int_equal(tnmtl_mtl_set_weight_decay(a, 0.1, &err), TNMTL_OK); /* its per-task sums too */
        assert_int_equal(tnmtl_mtl_set_weight_decay(b, 0.1, &err), TNMTL_OK);
        train_steps(a, &ds, &split, 15);
        train_steps(b, &ds, &split, 15);
        assert_memory_equal(a->params, b->params, (size_t)a->n_params * sizeof(float));
        double ma[T], mb[T];
        assert_int_equal(tnmtl_mtl_evaluate(a, &ds, &split, TNMTL_PART_TEST, ma, NULL, &err), TNMTL_OK);
        assert_int_equal(tnmtl_mtl_evaluate(b, &ds, &split, TNMTL_PART_TEST, mb, NULL, &err), TNMTL_OK);
        assert_memory_equal(ma, mb, sizeof ma);
        assert_int_equal(tnmtl_mtl_set_threads(a, 0, &err), TNMTL_ERR_INVALID);
        tnmtl_mtl_free(a);
        tnmtl_mtl_free(b);
    }
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

/* reg_every = 3 (an approximation): at steps 0 and 3 the regulariser is
 * computed, at the other steps the one of the period's first step is
 * reused: the objective's gradient is exactly the data gradient at the
 * current parameters plus the subgradient at the period's first step. */
static void test_reg_every(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_mtl *ref = make_model(TNMTL_METHOD_TUCKER, 0, ARCH), *a, *data, *reg;
    tnmtl_error err;
    tnmtl_mtl_config c = ref->cfg;
    c.reg_every = 3;
    assert_int_equal(tnmtl_mtl_create(&c, &a, &err), TNMTL_OK);
    assert_int_equal(tnmtl_mtl_init(a, 11, &err), TNMTL_OK);
    c.reg_every = 0;
    assert_int_equal(tnmtl_mtl_create(&c, &reg, &err), TNMTL_OK);
    c.method = TNMTL_METHOD_STL;
    assert_int_equal(tnmtl_mtl_create(&c, &data, &err), TNMTL_OK);
    c.reg_every = -1;
    tnmtl_mtl *bad;
    assert_int_equal(tnmtl_mtl_create(&c, &bad, &err), TNMTL_ERR_INVALID);
    tnmtl_optim opt;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    oc.lr = 0.01;
    assert_int_equal(tnmtl_optim_init(&opt, &oc, a->n_params, &err), TNMTL_OK);
    const size_t bytes = (size_t)a->n_params * sizeof(float);
    float *sub = malloc(bytes), *expect = malloc(bytes);
    double sub_value = 0;
    for (int64_t s = 0; s < 7; s++) {
        /* the data gradient at the current parameters */
        double loss, r, la, ra;
        memcpy(data->params, a->params, bytes);
        assert_int_equal(tnmtl_mtl_objective(data, &ds, &split, 5, s, 4, &loss, &r, &err), TNMTL_OK);
        /* the exact subgradient, at the start of each period */
        if (s % 3 == 0) {
            memcpy(reg->params, a->params, bytes);
            memset(reg->grads, 0, bytes);
            assert_int_equal(tnmtl_mtl_regulariser(reg, 1, &sub_value, &err), TNMTL_OK);
            memcpy(sub, reg->grads, bytes);
        }
        for (int64_t j = 0; j < a->n_params; j++) expect[j] = data->grads[j] + sub[j];
        assert_int_equal(tnmtl_mtl_objective(a, &ds, &split, 5, s, 4, &la, &ra, &err), TNMTL_OK);
        assert_true(la == loss);
        assert_true(ra == sub_value);
        assert_memory_equal(a->grads, expect, bytes);
        tnmtl_optim_step(&opt, a->params, a->grads);
    }
    /* the parameters moved: a jump (as after a resume at step 5) computes anew */
    double la, ra, r_now;
    memcpy(reg->params, a->params, bytes);
    assert_int_equal(tnmtl_mtl_regulariser(reg, 0, &r_now, &err), TNMTL_OK);
    assert_true(r_now != sub_value);
    assert_int_equal(tnmtl_mtl_objective(a, &ds, &split, 5, 5, 4, &la, &ra, &err), TNMTL_OK);
    assert_true(ra == r_now);
    tnmtl_optim_free(&opt);
    free(sub), free(expect);
    tnmtl_mtl_free(ref), tnmtl_mtl_free(a), tnmtl_mtl_free(data), tnmtl_mtl_free(reg);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

static void test_batches_are_pure(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    int64_t a[8], b[8];
    int perm[64];
    const int64_t n = split.begin[0][1] - split.begin[0][0];
    /* Every training example of a task appears once per epoch. */
    int64_t seen[64] = {0};
    for (int64_t s = 0; s * 3 < 2 * n; s++) {
        int k = tnmtl_batch_indices(&split, 0, 1, s, 3, a, perm);
        assert_int_equal(k, 3);
        tnmtl_batch_indices(&split, 0, 1, s, 3, b, perm);
        assert_memory_equal(a, b, sizeof(int64_t) * 3);
        for (int j = 0; j < 3; j++) {
            assert_true(a[j] >= ds.task_begin[0] && a[j] < ds.task_begin[1]);
            if (s * 3 + j < n) seen[a[j] - ds.task_begin[0]]++;
        }
    }
    int64_t total = 0;
    for (int j = 0; j < 64; j++) {
        assert_true(seen[j] <= 1);
        total += seen[j];
    }
    assert_int_equal(total, n);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

static void test_report(void **state)
{
    (void)state;
    tnmtl_error err;
    tnmtl_sharing_report r;
    /* Hard-shared layer: rho = 1 and effective rank 1. */
    tnmtl_mtl *ud = make_model(TNMTL_METHOD_UD, 1, ARCH);
    assert_int_equal(tnmtl_sharing_report_make(ud, &r, &err), TNMTL_OK);
    assert_int_equal(r.n_layers, 2);
    assert_true(r.layers[0].shared);
    assert_true(fabs(r.layers[0].rho - 1) < 1e-9);
    assert_true(fabs(r.layers[0].eff_rank - 1) < 1e-6);
    /* Independent random layers (fc 64x5 per task): rho near 0, rank near T. */
    assert_true(fabs(r.layers[1].rho) < 0.2);
    assert_true(r.layers[1].eff_rank > T - 0.5);
    double s = 0;
    for (int i = 0; i < r.layers[1].n_sv; i++) s += r.layers[1].sv[i];
    assert_true(fabs(s - 1) < 1e-9);
    tnmtl_sharing_report_free(&r);
    tnmtl_mtl_free(ud);
    /* Identical task weights that are not hard-shared also give rho = 1. */
    tnmtl_mtl *m = make_model(TNMTL_METHOD_LAF, 0, ARCH);
    const tnmtl_param_block *b = &m->blocks[1];
    for (int t = 1; t < T; t++)
        memcpy(m->params + b->w_offset + t * b->n_w, m->params + b->w_offset, (size_t)b->n_w * sizeof(float));
    assert_int_equal(tnmtl_sharing_report_make(m, &r, &err), TNMTL_OK);
    assert_true(fabs(r.layers[1].rho - 1) < 1e-6);
    assert_true(r.layers[1].similarity[0 * T + 2] > 0.999999);
    assert_true(r.layers[1].relatedness[0 * T + 2] > 0.999999);
    tnmtl_sharing_report_free(&r);
    /* Task 1 permutes and flips the output units of the same weights: the
     * cosine drops, the relatedness stays 1. */
    const tnmtl_layer_info *fc = tnmtl_net_layer(m->nets[0], b->layer);
    const int d_out = fc->weight_shape[1], d_in = fc->weight_shape[0];
    float *w0 = m->params + b->w_offset, *w1 = w0 + b->n_w;
    for (int i = 0; i < d_in; i++)
        for (int j = 0; j < d_out; j++) w1[i * d_out + j] = -w0[i * d_out + (j + 1) % d_out];
    assert_int_equal(tnmtl_sharing_report_make(m, &r, &err), TNMTL_OK);
    assert_true(r.layers[1].similarity[0 * T + 1] < 0.5);
    assert_true(fabs(r.layers[1].relatedness[0 * T + 1] - 1) < 1e-5);
    assert_true(fabs(r.layers[1].relatedness[1 * T + 0] - 1) < 1e-5);
    tnmtl_sharing_report_free(&r);
    tnmtl_mtl_free(m);
}

static void test_bad_config(void **state)
{
    (void)state;
    tnmtl_error err;
    tnmtl_mtl *m;
    tnmtl_mtl_config c = {0};
    c.arch = "conv3x9";
    c.in_h = H;
    c.in_w = W;
    c.in_c = 1;
    c.n_tasks = T;
    c.n_out = classes;
    assert_int_not_equal(tnmtl_mtl_create(&c, &m, &err), TNMTL_OK); /* 9x9 kernel on 8x8 */
    assert_non_null(strstr(err.msg, "conv3x9"));
    c.arch = ARCH;
    c.gamma = NAN;
    assert_int_equal(tnmtl_mtl_create(&c, &m, &err), TNMTL_ERR_INVALID);
    c.gamma = 0;
    c.n_tasks = 0;
    assert_int_equal(tnmtl_mtl_create(&c, &m, &err), TNMTL_ERR_INVALID);
    tnmtl_method meth;
    assert_int_equal(tnmtl_method_parse("tuker", &meth, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "tuker"));
}

/* gamma 0: the norms weigh nothing, so a LAF, Tucker or TT model's objective
 * is STL's, loss and gradient bit for bit, and its regulariser 0 (the norms
 * are skipped, so it also costs what STL does). */
static void test_gamma_zero_is_stl(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_error err;
    tnmtl_mtl *stl = make_model(TNMTL_METHOD_STL, 0, ARCH);
    double loss0, reg0;
    assert_int_equal(tnmtl_mtl_objective(stl, &ds, &split, 3, 0, 4, &loss0, &reg0, &err), TNMTL_OK);
    const tnmtl_method methods[] = {TNMTL_METHOD_LAF, TNMTL_METHOD_TUCKER, TNMTL_METHOD_TT};
    for (int k = 0; k < 3; k++) {
        tnmtl_mtl_config c = stl->cfg;
        c.method = methods[k];
        c.gamma = 0;
        tnmtl_mtl *m;
        assert_int_equal(tnmtl_mtl_create(&c, &m, &err), TNMTL_OK);
        assert_int_equal(tnmtl_mtl_init(m, 11, &err), TNMTL_OK);
        assert_int_equal(m->n_params, stl->n_params);
        assert_memory_equal(m->params, stl->params, (size_t)m->n_params * sizeof(float));
        double loss, reg;
        assert_int_equal(tnmtl_mtl_objective(m, &ds, &split, 3, 0, 4, &loss, &reg, &err), TNMTL_OK);
        assert_true(loss == loss0);
        assert_true(reg == 0);
        assert_memory_equal(m->grads, stl->grads, (size_t)m->n_params * sizeof(float));
        tnmtl_mtl_free(m);
    }
    tnmtl_mtl_free(stl);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

/* The ranges of the parameters a process of tasks tb .. te-1 steps, found
 * from the task views: each block's weights, then its biases, of those
 * tasks; a hard-shared block whole.  Returns their number. */
static int part_ranges(const tnmtl_mtl *m, int tb, int te, int64_t *r)
{
    int n = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        for (int bias = 0; bias < 2; bias++)
            for (int t = b->shared ? 0 : tb; t < (b->shared ? 1 : te); t++) {
                const tnmtl_layer_params *v = &m->view[t * m->n_layers + b->layer];
                const tnmtl_layer_info *li = tnmtl_net_layer(m->nets[t], b->layer);
                r[2 * n] = (bias ? v->b : v->w) - m->params;
                r[2 * n + 1] = r[2 * n] + (bias ? li->n_bias : li->n_weight);
                n++;
            }
    }
    return n;
}

/* What each process of a distributed run keeps (tnmtl_optim_set_ranges):
 * two "processes" of one model, tasks {0} and {1, 2}, each holding the
 * Adam state of its own parameters and of the hard-shared layer, step to
 * the parameters and moments of one optimiser holding everything, bit for
 * bit, holding n_params + n_shared values together, each fewer than
 * n_params.  A checkpoint needs the whole state; one loads into a part. */
static void test_optim_ranges(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_split split;
    make_data(&ds, &split);
    tnmtl_mtl *a = make_model(TNMTL_METHOD_UD, 1, ARCH), *b = make_model(TNMTL_METHOD_UD, 1, ARCH);
    assert_true(a->n_shared > 0);
    const int64_t n = a->n_params;
    const size_t bytes = (size_t)n * sizeof(float);
    tnmtl_error err;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    oc.lr = 0.01;
    tnmtl_optim whole, part[2];
    assert_int_equal(tnmtl_optim_init(&whole, &oc, n, &err), TNMTL_OK);
    assert_null(whole.ranges);
    assert_int_equal(whole.n_held, n);
    assert_int_equal(tnmtl_optim_bytes(&whole), 8 * n);
    int64_t ranges[2][2 * 4 * 64];
    const int tb[2] = {0, 1}, te[2] = {1, T};
    float *copy[2];
    for (int k = 0; k < 2; k++) {
        const int nr = part_ranges(b, tb[k], te[k], ranges[k]);
        assert_int_equal(tnmtl_optim_init(&part[k], &oc, n, &err), TNMTL_OK);
        assert_int_equal(tnmtl_optim_set_ranges(&part[k], ranges[k], nr, &err), TNMTL_OK);
        assert_true(part[k].n_held < n);
        assert_int_equal(tnmtl_optim_bytes(&part[k]), 8 * part[k].n_held);
        copy[k] = malloc(bytes);
    }
    assert_int_equal(part[0].n_held + part[1].n_held, n + a->n_shared);
    for (int64_t s = 0; s < 8; s++) {
        double loss, reg;
        assert_int_equal(tnmtl_mtl_objective(a, &ds, &split, 5, s, 4, &loss, &reg, &err), TNMTL_OK);
        tnmtl_optim_step(&whole, a->params, a->grads);
        assert_int_equal(tnmtl_mtl_objective(b, &ds, &split, 5, s, 4, &loss, &reg, &err), TNMTL_OK);
        for (int k = 0; k < 2; k++) { /* each process steps its part of its copy */
            memcpy(copy[k], b->params, bytes);
            tnmtl_optim_step(&part[k], copy[k], b->grads);
        }
        for (int k = 0; k < 2; k++) /* and the parts are put together */
            for (int r = 0; r < part[k].n_ranges; r++)
                memcpy(b->params + part[k].ranges[2 * r], copy[k] + part[k].ranges[2 * r],
                       (size_t)(part[k].ranges[2 * r + 1] - part[k].ranges[2 * r]) * sizeof(float));
    }
    assert_memory_equal(a->params, b->params, bytes);
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < n; i++) {
            const int64_t j = tnmtl_optim_index(&part[k], i);
            if (j < 0) continue;
            assert_memory_equal(&part[k].m[j], &whole.m[i], sizeof(float));
            assert_memory_equal(&part[k].v[j], &whole.v[i], sizeof(float));
        }
    assert_int_equal(tnmtl_optim_index(&part[0], n), -1);
    /* A checkpoint of a part is refused; process 0's part widened to the
     * whole layout and given the other's state saves what one optimiser does. */
    const char *dir = tu_tmpdir();
    char one[600], two[600], path[700];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(two, sizeof two, "%s/two", dir);
    assert_int_equal(mkdir(one, 0755), 0);
    assert_int_equal(mkdir(two, 0755), 0);
    snprintf(path, sizeof path, "%s/%s", two, TNMTL_CHECKPOINT_FILE);
    assert_int_equal(tnmtl_checkpoint_save(path, b, &part[0], NULL, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs all of it"));
    assert_int_equal(tnmtl_optim_set_ranges(&part[0], NULL, 0, &err), TNMTL_OK);
    assert_int_equal(part[0].n_held, n);
    assert_null(part[0].ranges);
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = tnmtl_optim_index(&part[1], i), j0 = tnmtl_optim_index(&part[0], i);
        assert_int_equal(j0, i);
        if (j < 0) continue;
        part[0].m[i] = part[1].m[j];
        part[0].v[i] = part[1].v[j];
    }
    assert_memory_equal(part[0].m, whole.m, bytes);
    assert_memory_equal(part[0].v, whole.v, bytes);
    assert_int_equal(tnmtl_checkpoint_save(path, b, &part[0], NULL, &err), TNMTL_OK);
    snprintf(path, sizeof path, "%s/%s", one, TNMTL_CHECKPOINT_FILE);
    assert_int_equal(tnmtl_checkpoint_save(path, a, &whole, NULL, &err), TNMTL_OK);
    char why[512] = "";
    if (!tu_same_checkpoint(one, two, why, sizeof why)) fail_msg("%s", why);
    /* loaded into the second process's part: its state */
    tnmtl_optim q;
    assert_int_equal(tnmtl_optim_init(&q, &oc, n, &err), TNMTL_OK);
    assert_int_equal(tnmtl_optim_set_ranges(&q, ranges[1], part_ranges(b, 1, T, ranges[1]), &err), TNMTL_OK);
    assert_int_equal(tnmtl_checkpoint_load(path, b, &q, &err), TNMTL_OK);
    assert_int_equal(q.step, 8);
    assert_int_equal(q.n_held, part[1].n_held);
    assert_memory_equal(q.m, part[1].m, (size_t)q.n_held * sizeof(float));
    assert_memory_equal(q.v, part[1].v, (size_t)q.n_held * sizeof(float));
    /* ranges out of order or outside are refused, opt unchanged; a range
     * not held is not stepped */
    const int64_t bad[4] = {10, 20, 5, 8}, outside[2] = {0, n + 1};
    assert_int_equal(tnmtl_optim_set_ranges(&q, bad, 2, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_optim_set_ranges(&q, outside, 1, &err), TNMTL_ERR_INVALID);
    assert_int_equal(q.n_held, part[1].n_held);
    memcpy(copy[0], b->params, bytes);
    const int out = b->blocks[b->n_blocks - 1].layer; /* task 0's output weights, not held by q */
    const int64_t w0 = b->view[out].w - b->params;
    const int64_t task0[2] = {w0, w0 + tnmtl_net_layer(b->nets[0], out)->n_weight};
    assert_int_equal(tnmtl_optim_index(&q, w0), -1);
    tnmtl_optim_step_ranges(&q, copy[0], b->grads, task0, 1);
    assert_memory_equal(copy[0], b->params, bytes);
    tnmtl_optim_free(&q);
    tnmtl_optim_free(&whole);
    for (int k = 0; k < 2; k++) {
        tnmtl_optim_free(&part[k]);
        free(copy[k]);
    }
    tu_rmtree(dir);
    tnmtl_mtl_free(a);
    tnmtl_mtl_free(b);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),           cmocka_unit_test(test_stack_roundtrip),
        cmocka_unit_test(test_gradient_stl),     cmocka_unit_test(test_gradient_ud),
        cmocka_unit_test(test_gradient_laf),     cmocka_unit_test(test_gradient_tucker),
        cmocka_unit_test(test_gradient_tt),      cmocka_unit_test(test_gradient_tucker_sum),
        cmocka_unit_test(test_gradient_weight_decay),
        cmocka_unit_test(test_determinism_and_learning),
        cmocka_unit_test(test_batches_are_pure), cmocka_unit_test(test_report),
        cmocka_unit_test(test_threads_do_not_change_results),
        cmocka_unit_test(test_reg_every),
        cmocka_unit_test(test_optim_ranges),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_gamma_zero_is_stl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
