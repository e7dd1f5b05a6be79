/* test_torch_reference.c - the paper's Omniglot network against PyTorch.
 *
 * tests/fixtures/torch_omniglot/ is written by scripts/make_torch_fixtures.py
 * (PyTorch 1.13, float32): inputs, weights in tnmtl's layouts, logits, loss,
 * every gradient and the losses of 5 Adam steps.  Each tensor is compared on
 * its own with a tolerance relative to that tensor's largest magnitude:
 *     |ours - torch| <= atol_rel * max|torch| + rtol * |torch|
 * (the float path differs from PyTorch by summation order and by our
 * tanh approximation, ~4e-7 relative). */
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
#include "tnmtl/net.h"
#include "tnmtl/npy.h"
#include "tnmtl/optim.h"

#define DIR "tests/fixtures/torch_omniglot/"
#define B 3
#define N_OUT 20

/* Loads DIR name.npy as float32 and checks its element count. */
static float *load(const char *name, int64_t want_count)
{
    char path[256];
    snprintf(path, sizeof path, DIR "%s.npy", name);
    tnmtl_npy_header h;
    float *data = NULL;
    tnmtl_error err;
    tnmtl_status st = tnmtl_npy_load_f32(path, &h, &data, &err);
    if (st) printf("%s\n", err.msg);
    assert_int_equal(st, TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_F32);
    assert_int_equal(h.count, want_count);
    return data;
}

/* max over i of |a-b| / (atol_rel * max|b| + rtol * |b|); prints it */
static double compare(const char *name, const double *a, const float *b, size_t n, double atol_rel,
                      double rtol)
{
    double *bd = malloc(n * sizeof *bd), m = 0, worst_abs = 0;
    for (size_t i = 0; i < n; i++) {
        bd[i] = b[i];
        m = fabs(bd[i]) > m ? fabs(bd[i]) : m;
        worst_abs = fabs(a[i] - bd[i]) > worst_abs ? fabs(a[i] - bd[i]) : worst_abs;
    }
    double e = tu_max_rel_err(a, bd, n, atol_rel * m + 1e-30, rtol);
    printf("  %-10s max|ref| %.3e  max|diff| %.3e (%.2e of max)  tolerance ratio %.3f\n", name, m,
           worst_abs, worst_abs / (m + 1e-30), e);
    free(bd);
    return e;
}

static const char *pnames[] = {"conv1", "conv2", "conv3", "fc1", "fc2"};

typedef struct fixture {
    tnmtl_net *net;
    int L;
    int param_layer[5];  /* net layer index of each named parameter layer */
    int64_t n;
    float *x, *theta;    /* [B][105][105][1], [n] */
    int labels[B];
} fixture;

static void fixture_load(fixture *f)
{
    tnmtl_net_config cfg = {"conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64", 105, 105, 1, N_OUT,
                            TNMTL_ACT_TANH};
    tnmtl_error err;
    assert_int_equal(tnmtl_net_create(&cfg, &f->net, &err), TNMTL_OK);
    f->L = tnmtl_net_n_layers(f->net);
    f->n = tnmtl_net_param_count(f->net);
    f->theta = calloc((size_t)f->n, sizeof(float));
    tnmtl_layer_params *p = calloc((size_t)f->L, sizeof *p);
    tnmtl_net_bind(f->net, f->theta, p);
    int k = 0;
    for (int i = 0; i < f->L; i++) {
        const tnmtl_layer_info *I = tnmtl_net_layer(f->net, i);
        if (!I->n_weight) continue;
        assert_true(k < 5);
        f->param_layer[k] = i;
        char name[32];
        snprintf(name, sizeof name, "%s_w", pnames[k]);
        float *w = load(name, I->n_weight);
        snprintf(name, sizeof name, "%s_b", pnames[k]);
        float *b = load(name, I->n_bias);
        memcpy(p[i].w, w, (size_t)I->n_weight * sizeof(float));
        memcpy(p[i].b, b, (size_t)I->n_bias * sizeof(float));
        free(w), free(b);
        k++;
    }
    assert_int_equal(k, 5);
    free(p);
    f->x = load("x", (int64_t)B * 105 * 105);
    tnmtl_npy_header h;
    void *lab = NULL;
    assert_int_equal(tnmtl_npy_load(DIR "labels.npy", &h, &lab, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_I32);
    assert_int_equal(h.count, B);
    memcpy(f->labels, lab, sizeof f->labels);
    free(lab);
}

static void fixture_free(fixture *f)
{
    free(f->x), free(f->theta);
    tnmtl_net_free(f->net);
}

/* Forward, loss and every gradient, in float (f64 = 0) or double (f64 = 1),
 * against the PyTorch float32 reference. */
static void run_reference(int f64, double tol_scale)
{
    fixture f;
    fixture_load(&f);
    const size_t n = (size_t)f.n, n_in = (size_t)B * 105 * 105;
    tnmtl_workspace *ws = NULL;
    tnmtl_error err;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)&f.net, 1, B, f64, &ws, &err), TNMTL_OK);
    /* results widened to double for the comparison */
    double *logits = malloc(B * N_OUT * sizeof(double)), *grad = calloc(n, sizeof(double)),
           *dx = malloc(n_in * sizeof(double)), loss;
    if (!f64) {
        tnmtl_layer_params *p = calloc((size_t)f.L, sizeof *p), *g = calloc((size_t)f.L, sizeof *g);
        float *g32 = calloc(n, sizeof(float)), *dx32 = malloc(n_in * sizeof(float)), dz[B * N_OUT];
        tnmtl_net_bind(f.net, f.theta, p);
        tnmtl_net_bind(f.net, g32, g);
        const float *z = tnmtl_net_forward(f.net, p, ws, f.x, B);
        assert_non_null(z);
        for (int i = 0; i < B * N_OUT; i++) logits[i] = z[i];
        loss = tnmtl_softmax_xent(z, f.labels, B, N_OUT, dz);
        tnmtl_net_backward(f.net, p, g, ws, dz, dx32, B);
        for (size_t i = 0; i < n; i++) grad[i] = g32[i];
        for (size_t i = 0; i < n_in; i++) dx[i] = dx32[i];
        free(p), free(g), free(g32), free(dx32);
    } else {
        tnmtl_layer_params_f64 *p = calloc((size_t)f.L, sizeof *p), *g = calloc((size_t)f.L, sizeof *g);
        double *theta = malloc(n * sizeof(double)), *x = malloc(n_in * sizeof(double)), dz[B * N_OUT];
        for (size_t i = 0; i < n; i++) theta[i] = f.theta[i];
        for (size_t i = 0; i < n_in; i++) x[i] = f.x[i];
        tnmtl_net_bind_f64(f.net, theta, p);
        tnmtl_net_bind_f64(f.net, grad, g);
        const double *z = tnmtl_net_forward_f64(f.net, p, ws, x, B);
        assert_non_null(z);
        memcpy(logits, z, sizeof(double) * B * N_OUT);
        loss = tnmtl_softmax_xent_f64(z, f.labels, B, N_OUT, dz);
        tnmtl_net_backward_f64(f.net, p, g, ws, dz, dx, B);
        free(p), free(g), free(theta), free(x);
    }

    float *ref_logits = load("logits", B * N_OUT), *ref_loss = load("loss", 1);
    printf(" %s path (loss %.7f, PyTorch %.7f)\n", f64 ? "double" : "float", loss, ref_loss[0]);
    assert_true(compare("logits", logits, ref_logits, B * N_OUT, 2e-6 * tol_scale, 1e-5 * tol_scale) <= 1);
    assert_true(compare("loss", &loss, ref_loss, 1, 1e-6 * tol_scale, 1e-6 * tol_scale) <= 1);
    /* gradient tolerances per tensor: the small conv tensors sum over the
     * most terms and see the most rounding */
    const double atol[5] = {2e-5, 1e-5, 1e-5, 1e-5, 2e-6};
    tnmtl_layer_params_f64 *gt = calloc((size_t)f.L, sizeof *gt);
    tnmtl_net_bind_f64(f.net, grad, gt);
    for (int k = 0; k < 5; k++) {
        const tnmtl_layer_info *I = tnmtl_net_layer(f.net, f.param_layer[k]);
        char name[32];
        snprintf(name, sizeof name, "g_%s_w", pnames[k]);
        float *rw = load(name, I->n_weight);
        assert_true(compare(name, gt[f.param_layer[k]].w, rw, (size_t)I->n_weight, atol[k] * tol_scale,
                            1e-4 * tol_scale) <= 1);
        snprintf(name, sizeof name, "g_%s_b", pnames[k]);
        float *rb = load(name, I->n_bias);
        assert_true(compare(name, gt[f.param_layer[k]].b, rb, (size_t)I->n_bias, atol[k] * tol_scale,
                            1e-4 * tol_scale) <= 1);
        free(rw), free(rb);
    }
    float *ref_dx = load("dx", (int64_t)n_in);
    assert_true(compare("dx", dx, ref_dx, n_in, 2e-5 * tol_scale, 1e-4 * tol_scale) <= 1);
    free(ref_dx), free(ref_logits), free(ref_loss), free(gt);
    free(logits), free(grad), free(dx);
    tnmtl_workspace_free(ws);
    fixture_free(&f);
}

static void test_float_path(void **state)
{
    (void)state;
    run_reference(0, 1);
}

/* The double path against a float32 reference: the reference's own rounding
 * dominates, the same tolerances apply. */
static void test_double_path(void **state)
{
    (void)state;
    run_reference(1, 1);
}

/* 5 Adam steps (lr 1e-3) on the batch; losses before each step and after. */
static void test_adam_steps(void **state)
{
    (void)state;
    fixture f;
    fixture_load(&f);
    tnmtl_workspace *ws = NULL;
    tnmtl_error err;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)&f.net, 1, B, 0, &ws, &err), TNMTL_OK);
    tnmtl_layer_params *p = calloc((size_t)f.L, sizeof *p), *g = calloc((size_t)f.L, sizeof *g);
    float *grad = calloc((size_t)f.n, sizeof(float)), dz[B * N_OUT];
    tnmtl_net_bind(f.net, f.theta, p);
    tnmtl_net_bind(f.net, grad, g);
    tnmtl_optim opt;
    tnmtl_optim_config cfg;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &cfg);
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, f.n, &err), TNMTL_OK);
    float *ref = load("adam_losses", 6);
    double losses[6];
    for (int s = 0; s <= 5; s++) {
        const float *z = tnmtl_net_forward(f.net, p, ws, f.x, B);
        losses[s] = tnmtl_softmax_xent(z, f.labels, B, N_OUT, dz);
        if (s == 5) break;
        memset(grad, 0, (size_t)f.n * sizeof(float));
        tnmtl_net_backward(f.net, p, g, ws, dz, NULL, B);
        tnmtl_optim_step(&opt, f.theta, grad);
    }
    for (int s = 0; s <= 5; s++) printf("  step %d loss %.7f  PyTorch %.7f\n", s, losses[s], ref[s]);
    assert_true(compare("adam loss", losses, ref, 6, 1e-5, 1e-5) <= 1);
    assert_true(losses[5] < losses[0] - 1);
    free(ref), free(p), free(g), free(grad);
    tnmtl_optim_free(&opt);
    tnmtl_workspace_free(ws);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_path),
        cmocka_unit_test(test_double_path),
        cmocka_unit_test(test_adam_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
