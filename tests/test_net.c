/* test_net.c - whole networks: gradient check of a small CNN in double,
 * architecture parsing and refusals, workspace rules, determinism, and the
 * optimisers against hand-computed steps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "testutil.h"
#include "tnmtl/net.h"
#include "tnmtl/optim.h"
#include "tnmtl/rng.h"

static tnmtl_net *make_net(const char *arch, int h, int w, int c, int n_out, tnmtl_activation act)
{
    tnmtl_net_config cfg = {arch, h, w, c, n_out, act};
    tnmtl_net *net = NULL;
    tnmtl_error err;
    tnmtl_status st = tnmtl_net_create(&cfg, &net, &err);
    if (st) printf("unexpected error for '%s': %s\n", arch, err.msg);
    assert_int_equal(st, TNMTL_OK);
    return net;
}

/* ---- gradient check of a whole network ------------------------------------------ */

typedef struct net_case {
    tnmtl_net *net;
    tnmtl_workspace *ws;
    int B;
    double *theta;               /* [param_count] */
    tnmtl_layer_params_f64 *p;   /* into theta */
    double *x;                   /* [B][n_in] */
    int *y;                      /* [B] */
} net_case;

static double net_loss(void *ctx)
{
    net_case *c = ctx;
    const double *z = tnmtl_net_forward_f64(c->net, c->p, c->ws, c->x, c->B);
    assert_non_null(z);
    return tnmtl_softmax_xent_f64(z, c->y, c->B, tnmtl_net_n_out(c->net), NULL);
}

static void gradcheck_net(const char *arch, int h, int w, int cin, int n_out, tnmtl_activation act, int B)
{
    printf(" net '%s' at %dx%dx%d, act %d, B=%d\n", arch, h, w, cin, (int)act, B);
    net_case c = {make_net(arch, h, w, cin, n_out, act), NULL, B, 0, 0, 0, 0};
    tnmtl_error err;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)&c.net, 1, B, 1, &c.ws, &err), TNMTL_OK);
    const int L = tnmtl_net_n_layers(c.net);
    const int64_t n = tnmtl_net_param_count(c.net), n_in = tnmtl_net_n_in(c.net);
    /* parameters from the float initialiser, widened to double */
    float *theta32 = calloc((size_t)n, sizeof(float));
    tnmtl_layer_params *p32 = calloc((size_t)L, sizeof *p32);
    tnmtl_net_bind(c.net, theta32, p32);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 7);
    tnmtl_net_init_params(c.net, p32, &rng);
    c.theta = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) c.theta[i] = theta32[i];
    /* nonzero biases so that their gradient paths are exercised */
    c.p = calloc((size_t)L, sizeof *c.p);
    tnmtl_net_bind_f64(c.net, c.theta, c.p);
    for (int i = 0; i < L; i++) {
        const tnmtl_layer_info *I = tnmtl_net_layer(c.net, i);
        for (int64_t j = 0; j < I->n_bias; j++) c.p[i].b[j] = 0.1 * tnmtl_rng_normal(&rng);
    }
    c.x = malloc((size_t)(B * n_in) * sizeof(double));
    for (int64_t i = 0; i < B * n_in; i++) c.x[i] = tnmtl_rng_normal(&rng);
    c.y = malloc((size_t)B * sizeof(int));
    for (int b = 0; b < B; b++) c.y[b] = (int)tnmtl_rng_below(&rng, (uint64_t)n_out);

    double *grad = calloc((size_t)n, sizeof(double)), *dz = malloc((size_t)(B * n_out) * sizeof(double));
    double *dx = malloc((size_t)(B * n_in) * sizeof(double));
    tnmtl_layer_params_f64 *g = calloc((size_t)L, sizeof *g);
    tnmtl_net_bind_f64(c.net, grad, g);
    const double *z = tnmtl_net_forward_f64(c.net, c.p, c.ws, c.x, B);
    assert_non_null(z);
    tnmtl_softmax_xent_f64(z, c.y, B, n_out, dz);
    tnmtl_net_backward_f64(c.net, c.p, g, c.ws, dz, dx, B);

    /* parameter tensor by parameter tensor */
    for (int i = 0; i < L; i++) {
        const tnmtl_layer_info *I = tnmtl_net_layer(c.net, i);
        if (!I->n_weight) continue;
        char name[32];
        snprintf(name, sizeof name, "layer %d w", i);
        gc_result r = gc_check(net_loss, &c, c.p[i].w, g[i].w, I->n_weight, 1e-6, 1e-9, 1e-6, 300);
        gc_print(name, &r);
        assert_true(gc_ok(&r));
        snprintf(name, sizeof name, "layer %d b", i);
        r = gc_check(net_loss, &c, c.p[i].b, g[i].b, I->n_bias, 1e-6, 1e-9, 1e-6, 300);
        gc_print(name, &r);
        assert_true(gc_ok(&r));
    }
    gc_result r = gc_check(net_loss, &c, c.x, dx, B * n_in, 1e-6, 1e-9, 1e-6, 300);
    gc_print("input", &r);
    assert_true(gc_ok(&r));

    /* without dx, the parameter gradients are the same */
    double *grad2 = calloc((size_t)n, sizeof(double));
    tnmtl_layer_params_f64 *g2 = calloc((size_t)L, sizeof *g2);
    tnmtl_net_bind_f64(c.net, grad2, g2);
    z = tnmtl_net_forward_f64(c.net, c.p, c.ws, c.x, B);
    tnmtl_softmax_xent_f64(z, c.y, B, n_out, dz);
    tnmtl_net_backward_f64(c.net, c.p, g2, c.ws, dz, NULL, B);
    assert_true(tu_max_rel_err(grad2, grad, (size_t)n, 1e-14, 1e-12) <= 1);

    free(grad2), free(g2), free(grad), free(dz), free(dx), free(g), free(theta32), free(p32);
    free(c.theta), free(c.p), free(c.x), free(c.y);
    tnmtl_workspace_free(c.ws);
    tnmtl_net_free(c.net);
}

static void test_net_gradcheck_cnn(void **state)
{
    (void)state;
    gradcheck_net("conv4x3,pool2,conv5x3:same,conv3x3,fc6", 11, 10, 2, 4, TNMTL_ACT_TANH, 3);
}

static void test_net_gradcheck_variants(void **state)
{
    (void)state;
    /* relu, explicit activations and flatten, pooling of an activation */
    gradcheck_net("conv3x3:same,relu,pool2,flatten,fc5,tanh,fc4", 6, 7, 2, 3, TNMTL_ACT_NONE, 2);
    gradcheck_net("pool2,tanh,conv3x1,fc5", 8, 8, 3, 3, TNMTL_ACT_TANH, 2);
    /* fused conv-pool groups: no activation, a direct conv (C <= 4, F = 8)
     * with a 3x3 pool that drops rows and columns */
    gradcheck_net("conv4x3,pool2,fc5", 9, 8, 2, 3, TNMTL_ACT_NONE, 2);
    gradcheck_net("conv8x3,pool3,fc5", 12, 11, 2, 3, TNMTL_ACT_TANH, 3);
    /* tabular input: a plain MLP, and the linear model of an empty string */
    gradcheck_net("fc7,fc5", 1, 1, 6, 3, TNMTL_ACT_TANH, 4);
    gradcheck_net("", 1, 1, 6, 3, TNMTL_ACT_TANH, 4);
}

/* ---- architecture parsing --------------------------------------------------------- */

static void test_parse_omniglot(void **state)
{
    (void)state;
    tnmtl_net *net = make_net("conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64", 105, 105, 1, 20,
                              TNMTL_ACT_TANH);
    const tnmtl_layer_kind kinds[] = {TNMTL_LAYER_CONV,    TNMTL_LAYER_TANH, TNMTL_LAYER_MAXPOOL,
                                      TNMTL_LAYER_CONV,    TNMTL_LAYER_TANH, TNMTL_LAYER_MAXPOOL,
                                      TNMTL_LAYER_CONV,    TNMTL_LAYER_TANH, TNMTL_LAYER_MAXPOOL,
                                      TNMTL_LAYER_FLATTEN, TNMTL_LAYER_FC,   TNMTL_LAYER_TANH,
                                      TNMTL_LAYER_FC};
    const int out_hwc[][3] = {{101, 101, 8}, {101, 101, 8}, {50, 50, 8}, {48, 48, 12}, {48, 48, 12},
                              {24, 24, 12},  {22, 22, 16},  {22, 22, 16}, {11, 11, 16}, {1, 1, 1936},
                              {1, 1, 64},    {1, 1, 64},    {1, 1, 20}};
    assert_int_equal(tnmtl_net_n_layers(net), 13);
    for (int i = 0; i < 13; i++) {
        const tnmtl_layer_info *I = tnmtl_net_layer(net, i);
        assert_int_equal(I->kind, kinds[i]);
        assert_int_equal(I->out_h, out_hwc[i][0]);
        assert_int_equal(I->out_w, out_hwc[i][1]);
        assert_int_equal(I->out_c, out_hwc[i][2]);
        assert_int_equal(I->is_output, i == 12);
    }
    assert_null(tnmtl_net_layer(net, 13));
    assert_null(tnmtl_net_layer(net, -1));
    const tnmtl_layer_info *c1 = tnmtl_net_layer(net, 0), *f1 = tnmtl_net_layer(net, 10);
    assert_int_equal(c1->weight_ndim, 4);
    assert_int_equal(c1->weight_shape[0], 5);
    assert_int_equal(c1->weight_shape[2], 1);
    assert_int_equal(c1->weight_shape[3], 8);
    assert_int_equal(c1->n_weight, 200);
    assert_int_equal(c1->macs, 101 * 101 * 25 * 8);
    assert_int_equal(f1->weight_ndim, 2);
    assert_int_equal(f1->weight_shape[0], 1936);
    assert_int_equal(f1->weight_shape[1], 64);
    assert_int_equal(f1->in_c, 1936);
    /* 208 + 876 + 1744 + 123968 + 1300 */
    assert_int_equal(tnmtl_net_param_count(net), 128096);
    assert_int_equal(tnmtl_net_macs(net), 2040200 + 1990656 + 836352 + 123904 + 1280);
    assert_int_equal(tnmtl_net_n_in(net), 105 * 105);
    assert_int_equal(tnmtl_net_n_out(net), 20);
    char buf[4096];
    tnmtl_net_describe(net, buf, sizeof buf);
    printf("%s", buf);
    assert_non_null(strstr(buf, "conv8x5"));
    assert_non_null(strstr(buf, "1x1x1936"));
    assert_non_null(strstr(buf, "128096 parameters"));
    /* a short buffer is truncated, never overrun */
    char small[20];
    memset(small, 'x', sizeof small);
    tnmtl_net_describe(net, small, 10);
    assert_int_equal(strlen(small), 9);
    assert_true(small[10] == 'x');
    tnmtl_net_free(net);
}

static void test_parse_valid_strings(void **state)
{
    (void)state;
    struct {
        const char *arch;
        int h, w, c, n_out;
        tnmtl_activation act;
        int n_layers;
        int64_t params;
    } cases[] = {
        {"", 1, 1, 28, 1, TNMTL_ACT_TANH, 1, 29},                       /* linear model */
        {"", 4, 4, 2, 3, TNMTL_ACT_TANH, 2, 32 * 3 + 3},                /* flatten + fc */
        {"fc10", 1, 1, 28, 1, TNMTL_ACT_RELU, 3, 290 + 11},             /* fc relu fc */
        {"fc10", 1, 1, 28, 1, TNMTL_ACT_NONE, 2, 290 + 11},
        {"conv4x3:same,pool2", 8, 8, 3, 2, TNMTL_ACT_TANH, 5, 112 + 64 * 2 + 2},
        {"conv4x3,relu", 5, 5, 1, 2, TNMTL_ACT_TANH, 4, 40 + 36 * 2 + 2}, /* explicit relu replaces tanh */
        {"conv2x1,tanh,tanh,flatten,fc3", 2, 2, 2, 2, TNMTL_ACT_NONE, 6, 6 + 8 * 3 + 3 + 8},
        {"pool3", 7, 8, 2, 5, TNMTL_ACT_TANH, 3, 2 * 2 * 2 * 5 + 5},      /* floor: 2x2x2 */
        {"conv1x105", 105, 105, 1, 2, TNMTL_ACT_TANH, 3, 105 * 105 + 1 + 2 + 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tnmtl_net *net = make_net(cases[k].arch, cases[k].h, cases[k].w, cases[k].c, cases[k].n_out, cases[k].act);
        if (tnmtl_net_n_layers(net) != cases[k].n_layers || tnmtl_net_param_count(net) != cases[k].params)
            printf("'%s': %d layers, %lld params\n", cases[k].arch, tnmtl_net_n_layers(net),
                   (long long)tnmtl_net_param_count(net));
        assert_int_equal(tnmtl_net_n_layers(net), cases[k].n_layers);
        assert_int_equal(tnmtl_net_param_count(net), cases[k].params);
        tnmtl_net_free(net);
    }
    /* the explicit relu replaced the automatic tanh */
    tnmtl_net *net = make_net("conv4x3,relu", 5, 5, 1, 2, TNMTL_ACT_TANH);
    assert_int_equal(tnmtl_net_layer(net, 1)->kind, TNMTL_LAYER_RELU);
    tnmtl_net_free(net);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct {
        const char *arch;
        int h, w, c, n_out;
        const char *needles[3]; /* all must occur in the message */
    } cases[] = {
        {"conv8x5,banana", 28, 28, 1, 2, {"layer 2", "'banana'", "unknown"}},
        {"conv0x5", 28, 28, 1, 2, {"layer 1", "'conv0x5'", NULL}},
        {"conv8x0", 28, 28, 1, 2, {"'conv8x0'", NULL, NULL}},
        {"fc", 28, 28, 1, 2, {"'fc'", NULL, NULL}},
        {"fc0", 28, 28, 1, 2, {"'fc0'", NULL, NULL}},
        {"conv8x5x", 28, 28, 1, 2, {"'conv8x5x'", NULL, NULL}},
        {"conv8x", 28, 28, 1, 2, {"'conv8x'", NULL, NULL}},
        {"conv8", 28, 28, 1, 2, {"'conv8'", NULL, NULL}},
        {"convx5", 28, 28, 1, 2, {"'convx5'", NULL, NULL}},
        {"conv-8x5", 28, 28, 1, 2, {"'conv-8x5'", NULL, NULL}},
        {"conv8x5:valid", 28, 28, 1, 2, {"'conv8x5:valid'", NULL, NULL}},
        {"conv8x4:same", 28, 28, 1, 2, {"'conv8x4:same'", "odd", NULL}},
        {"pool", 28, 28, 1, 2, {"'pool'", NULL, NULL}},
        {"pool0", 28, 28, 1, 2, {"'pool0'", NULL, NULL}},
        {"pool2.5", 28, 28, 1, 2, {"'pool2.5'", NULL, NULL}},
        {"Conv8x5", 28, 28, 1, 2, {"'Conv8x5'", NULL, NULL}},
        {" conv8x5", 28, 28, 1, 2, {"' conv8x5'", NULL, NULL}},
        {"tanh2", 28, 28, 1, 2, {"'tanh2'", NULL, NULL}},
        {"conv8x5,,fc3", 28, 28, 1, 2, {"layer 2", "empty", NULL}},
        {",", 28, 28, 1, 2, {"layer 1", "empty", NULL}},
        {"conv8x5,", 28, 28, 1, 2, {"layer 2", "empty", NULL}},
        {"fc99999999999999999999", 28, 28, 1, 2, {"'fc99999999999999999999'", NULL, NULL}},
        {"conv4294967297x3", 28, 28, 1, 2, {"'conv4294967297x3'", NULL, NULL}},
        {"fc1048577", 28, 28, 1, 2, {"'fc1048577'", NULL, NULL}},
        {"fc1048576,fc1048576", 1, 1, 4, 2, {"layer 2", "too big", NULL}},
        {"conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,conv16x3", 28, 28, 1, 2,
         {"layer 7 'conv16x3'", "input 1x1x16", "3x3 kernel"}},
        {"conv8x5,pool2,conv12x3,conv16x3", 10, 10, 1, 2, {"layer 4 'conv16x3'", "input 1x1x12", NULL}},
        {"conv8x29", 28, 28, 1, 2, {"'conv8x29'", "28x28x1", "29x29"}},
        {"conv8x5", 28, 4, 1, 2, {"'conv8x5'", "28x4x1", NULL}},
        {"pool2,pool2,pool2", 5, 5, 1, 2, {"layer 3 'pool2'", "1x1x1", "empty"}},
        {"pool29", 28, 28, 1, 2, {"'pool29'", "28x28x1", NULL}},
        {"fc4,conv2x3", 28, 28, 1, 2, {"layer 2 'conv2x3'", "1x1x4", NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tnmtl_net_config cfg = {cases[k].arch, cases[k].h, cases[k].w, cases[k].c, cases[k].n_out, TNMTL_ACT_TANH};
        tnmtl_net *net = (tnmtl_net *)&cfg; /* must be reset to NULL */
        tnmtl_error err;
        tnmtl_error_clear(&err);
        tnmtl_status st = tnmtl_net_create(&cfg, &net, &err);
        printf("  '%s' -> %s\n", cases[k].arch, err.msg);
        assert_int_not_equal(st, TNMTL_OK);
        assert_int_equal(err.status, st);
        assert_null(net);
        for (int j = 0; j < 3; j++)
            if (cases[k].needles[j] && !strstr(err.msg, cases[k].needles[j])) {
                printf("  message lacks \"%s\"\n", cases[k].needles[j]);
                fail();
            }
    }
    /* bad configurations */
    struct {
        int h, w, c, n_out;
        int act;
        const char *needle;
    } bad[] = {
        {0, 28, 1, 2, TNMTL_ACT_TANH, "input shape 0x28x1"},
        {28, -1, 1, 2, TNMTL_ACT_TANH, "input shape 28x-1x1"},
        {28, 28, 0, 2, TNMTL_ACT_TANH, "input shape"},
        {100000, 100000, 1, 2, TNMTL_ACT_TANH, "input shape"},
        {28, 28, 1, 0, TNMTL_ACT_TANH, "output size 0"},
        {28, 28, 1, -3, TNMTL_ACT_TANH, "output size -3"},
        {28, 28, 1, 2, 17, "activation 17"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tnmtl_net_config cfg = {"conv8x5", bad[k].h, bad[k].w, bad[k].c, bad[k].n_out, (tnmtl_activation)bad[k].act};
        tnmtl_net *net = NULL;
        tnmtl_error err;
        assert_int_equal(tnmtl_net_create(&cfg, &net, &err), TNMTL_ERR_INVALID);
        printf("  config -> %s\n", err.msg);
        assert_non_null(strstr(err.msg, bad[k].needle));
        assert_null(net);
    }
    tnmtl_net *net = NULL;
    tnmtl_net_config cfg = {NULL, 28, 28, 1, 2, TNMTL_ACT_TANH};
    assert_int_equal(tnmtl_net_create(&cfg, &net, NULL), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_net_create(NULL, &net, NULL), TNMTL_ERR_INVALID);
    /* a very long string is refused up front */
    size_t len = 70000;
    char *longarch = malloc(len + 1);
    for (size_t i = 0; i < len; i++) longarch[i] = i % 5 == 4 ? ',' : "tanh"[i % 5];
    longarch[len] = '\0';
    cfg.arch = longarch;
    assert_int_equal(tnmtl_net_create(&cfg, &net, NULL), TNMTL_ERR_INVALID);
    /* 10000 explicit layers are fine */
    longarch[50000 - 1] = '\0';
    cfg.arch = longarch;
    assert_int_equal(tnmtl_net_create(&cfg, &net, NULL), TNMTL_OK);
    assert_int_equal(tnmtl_net_n_layers(net), 10000 + 2);
    tnmtl_net_free(net);
    free(longarch);
}

/* ---- the linear model and the workspace rules ----------------------------------------- */

static void silent_log(void *user, tnmtl_log_level level, const char *msg)
{
    (void)level, (void)msg;
    ++*(int *)user;
}

static void test_linear_model_and_workspace(void **state)
{
    (void)state;
    tnmtl_net *net = make_net("", 1, 1, 3, 2, TNMTL_ACT_TANH);
    tnmtl_net *big = make_net("fc16", 1, 1, 3, 2, TNMTL_ACT_TANH);
    const tnmtl_net *nets[2] = {net, big};
    tnmtl_workspace *ws = NULL;
    tnmtl_error err;
    assert_int_equal(tnmtl_workspace_create(nets, 2, 4, 0, &ws, &err), TNMTL_OK);
    /* w[3][2], b[2] */
    float theta[8] = {1, 2, 3, 4, 5, 6, 0.5f, -1}, grad[8] = {0};
    tnmtl_layer_params p[1], g[1];
    tnmtl_net_bind(net, theta, p);
    tnmtl_net_bind(net, grad, g);
    assert_ptr_equal(p[0].w, theta);
    assert_ptr_equal(p[0].b, theta + 6);
    float x[6] = {1, 0, 0, 1, 1, 1};
    const float *z = tnmtl_net_forward(net, p, ws, x, 2);
    assert_non_null(z);
    float want[4] = {1.5f, 1, 9.5f, 11};
    assert_memory_equal(z, want, sizeof want);
    float dz[4] = {1, 0, 0, 1}, dx[6];
    tnmtl_net_backward(net, p, g, ws, dz, dx, 2);
    float want_g[8] = {1, 1, 0, 1, 0, 1, 1, 1}, want_dx[6] = {1, 3, 5, 2, 4, 6};
    assert_memory_equal(grad, want_g, sizeof want_g);
    assert_memory_equal(dx, want_dx, sizeof want_dx);

    /* misuse: NULL output, never a crash */
    assert_null(tnmtl_net_forward(net, p, ws, x, 5));      /* batch over the maximum */
    assert_null(tnmtl_net_forward(net, p, ws, x, 0));
    assert_null(tnmtl_net_forward(net, p, ws, NULL, 1));
    double xd[3] = {1, 2, 3};
    tnmtl_layer_params_f64 pd[1];
    double thetad[8] = {0};
    tnmtl_net_bind_f64(net, thetad, pd);
    assert_null(tnmtl_net_forward_f64(net, pd, ws, xd, 1)); /* float workspace */
    /* a backward that does not follow a forward of this net does nothing and warns */
    int warnings = 0;
    tnmtl_set_log(silent_log, &warnings);
    memset(grad, 0, sizeof grad);
    tnmtl_net_backward(net, p, g, ws, dz, dx, 2);
    assert_int_equal(warnings, 1);
    for (int i = 0; i < 8; i++) assert_true(grad[i] == 0);
    /* a workspace too small for a net is refused */
    tnmtl_workspace *small = NULL;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)&net, 1, 4, 0, &small, &err), TNMTL_OK);
    float tb[3 * 16 + 16 + 16 * 2 + 2];
    tnmtl_layer_params pb[4];
    tnmtl_net_bind(big, tb, pb);
    assert_true(tnmtl_workspace_bytes(big, 4, 0) > tnmtl_workspace_bytes(net, 4, 0));
    assert_null(tnmtl_net_forward(big, pb, small, x, 2));
    tnmtl_set_log(NULL, NULL);
    tnmtl_workspace_free(small);
    /* the shared workspace serves the bigger net */
    memset(tb, 0, sizeof tb);
    assert_non_null(tnmtl_net_forward(big, pb, ws, x, 2));
    /* create refusals */
    assert_int_equal(tnmtl_workspace_create(nets, 2, 0, 0, &small, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_workspace_create(nets, 0, 4, 0, &small, &err), TNMTL_ERR_INVALID);
    assert_null(small);
    tnmtl_workspace_free(ws);
    tnmtl_net_free(net);
    tnmtl_net_free(big);
}

/* ---- determinism ------------------------------------------------------------------------ */

typedef struct trainer {
    tnmtl_net *net;
    tnmtl_workspace *ws;
    float *theta, *grad;
    tnmtl_layer_params *p, *g;
    tnmtl_optim opt;
} trainer;

static void trainer_init(trainer *t, uint64_t seed, int B)
{
    /* big enough for the kernels to use their threads */
    t->net = make_net("conv8x3,pool2,conv6x3:same,pool2,fc16", 28, 27, 1, 5, TNMTL_ACT_TANH);
    tnmtl_error err;
    assert_int_equal(tnmtl_workspace_create((const tnmtl_net *const *)&t->net, 1, B, 0, &t->ws, &err), TNMTL_OK);
    int64_t n = tnmtl_net_param_count(t->net);
    int L = tnmtl_net_n_layers(t->net);
    t->theta = calloc((size_t)n, sizeof(float));
    t->grad = calloc((size_t)n, sizeof(float));
    t->p = calloc((size_t)L, sizeof *t->p);
    t->g = calloc((size_t)L, sizeof *t->g);
    tnmtl_net_bind(t->net, t->theta, t->p);
    tnmtl_net_bind(t->net, t->grad, t->g);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, seed);
    tnmtl_net_init_params(t->net, t->p, &rng);
    tnmtl_optim_config cfg;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &cfg);
    cfg.lr = 1e-2;
    assert_int_equal(tnmtl_optim_init(&t->opt, &cfg, n, &err), TNMTL_OK);
}

static double trainer_step(trainer *t, const float *x, const int *y, int B)
{
    const float *z = tnmtl_net_forward(t->net, t->p, t->ws, x, B);
    float dz[64 * 5];
    double loss = tnmtl_softmax_xent(z, y, B, 5, dz);
    memset(t->grad, 0, (size_t)tnmtl_net_param_count(t->net) * sizeof(float));
    tnmtl_net_backward(t->net, t->p, t->g, t->ws, dz, NULL, B);
    tnmtl_optim_step(&t->opt, t->theta, t->grad);
    return loss;
}

static void trainer_free(trainer *t)
{
    tnmtl_optim_free(&t->opt);
    free(t->theta), free(t->grad), free(t->p), free(t->g);
    tnmtl_workspace_free(t->ws);
    tnmtl_net_free(t->net);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { B = 32 };
    trainer a, b, c;
    trainer_init(&a, 42, B);
    trainer_init(&b, 42, B);
    trainer_init(&c, 43, B);
    const size_t n = (size_t)tnmtl_net_param_count(a.net);
    assert_memory_equal(a.theta, b.theta, n * sizeof(float));
    assert_memory_not_equal(a.theta, c.theta, n * sizeof(float));
    /* initial scale: Glorot limit of the first conv is sqrt(6 / (9 + 72)) */
    const double lim = sqrt(6.0 / 81);
    double m = 0;
    for (int i = 0; i < 72; i++) m = fabs(a.theta[i]) > m ? fabs(a.theta[i]) : m;
    assert_true(m <= lim && m > 0.7 * lim);
    for (int i = 72; i < 80; i++) assert_true(a.theta[i] == 0); /* biases */

    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 5);
    float x[B * 28 * 27];
    int y[B];
    for (int i = 0; i < B * 28 * 27; i++) x[i] = (float)tnmtl_rng_uniform(&rng);
    for (int i = 0; i < B; i++) y[i] = (int)tnmtl_rng_below(&rng, 5);
    double first = 0, last = 0;
    for (int s = 0; s < 8; s++) {
        double la = trainer_step(&a, x, y, B), lb = trainer_step(&b, x, y, B);
        assert_memory_equal(&la, &lb, sizeof la);
        if (s == 0) first = la;
        last = la;
    }
    printf("  loss %.6f -> %.6f over 8 Adam steps\n", first, last);
    /* one thread gives the same bits (b's workspace set to 1 thread) */
    assert_int_equal(tnmtl_workspace_set_threads(b.ws, 1), 1);
    assert_int_equal(tnmtl_workspace_set_threads(b.ws, 1000) >= 1, 1);
    tnmtl_workspace_set_threads(b.ws, 1);
    double la = trainer_step(&a, x, y, B), lb = trainer_step(&b, x, y, B);
    assert_memory_equal(&la, &lb, sizeof la);
    assert_memory_equal(a.theta, b.theta, n * sizeof(float));
    /* changing the threads between forward and backward is harmless */
    const float *z = tnmtl_net_forward(b.net, b.p, b.ws, x, B);
    tnmtl_workspace_set_threads(b.ws, 8);
    float dz[B * 5];
    lb = tnmtl_softmax_xent(z, y, B, 5, dz);
    memset(b.grad, 0, n * sizeof(float));
    tnmtl_net_backward(b.net, b.p, b.g, b.ws, dz, NULL, B);
    tnmtl_optim_step(&b.opt, b.theta, b.grad);
    la = trainer_step(&a, x, y, B);
    assert_memory_equal(&la, &lb, sizeof la);
    assert_memory_equal(a.theta, b.theta, n * sizeof(float));
    assert_true(last < first);
    assert_memory_equal(a.theta, b.theta, n * sizeof(float));
    trainer_free(&a);
    trainer_free(&b);
    trainer_free(&c);
}

/* He-normal init for layers followed by relu: sample standard deviation */
static void test_init_relu(void **state)
{
    (void)state;
    tnmtl_net *net = make_net("fc400", 1, 1, 200, 3, TNMTL_ACT_RELU);
    int64_t n = tnmtl_net_param_count(net);
    float *theta = calloc((size_t)n, sizeof(float));
    tnmtl_layer_params p[3];
    tnmtl_net_bind(net, theta, p);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    tnmtl_net_init_params(net, p, &rng);
    double s = 0;
    for (int i = 0; i < 200 * 400; i++) s += (double)p[0].w[i] * p[0].w[i];
    const double sd = sqrt(s / (200 * 400));
    printf("  He sd %.5f (want %.5f)\n", sd, sqrt(2.0 / 200));
    assert_true(fabs(sd - sqrt(2.0 / 200)) < 0.01 * sqrt(2.0 / 200));
    /* the output layer (no relu after it) is Glorot-uniform */
    double m = 0;
    for (int i = 0; i < 400 * 3; i++) m = fabs(p[2].w[i]) > m ? fabs(p[2].w[i]) : m;
    assert_true(m <= sqrt(6.0 / 403) && m > 0.9 * sqrt(6.0 / 403));
    free(theta);
    tnmtl_net_free(net);
}

/* ---- optimisers against hand-computed steps ----------------------------------------------- */

static void test_sgd_momentum(void **state)
{
    (void)state;
    tnmtl_optim opt;
    tnmtl_optim_config cfg;
    tnmtl_optim_defaults(TNMTL_OPTIM_SGD, &cfg);
    assert_true(cfg.lr == 1e-2 && cfg.momentum == 0.9);
    cfg.lr = 0.1;
    cfg.momentum = 0.5;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 2, NULL), TNMTL_OK);
    assert_null(opt.v);
    float p[2] = {1, -2}, g1[2] = {1, 2}, g2[2] = {-1, 0.5f};
    tnmtl_optim_step(&opt, p, g1); /* m = g = (1, 2); p = (0.9, -2.2) */
    assert_true(fabsf(p[0] - 0.9f) < 1e-7f && fabsf(p[1] + 2.2f) < 1e-7f);
    tnmtl_optim_step(&opt, p, g2); /* m = (0.5 - 1, 1 + 0.5) = (-0.5, 1.5); p = (0.95, -2.35) */
    assert_true(fabsf(opt.m[0] + 0.5f) < 1e-7f && fabsf(opt.m[1] - 1.5f) < 1e-7f);
    assert_true(fabsf(p[0] - 0.95f) < 1e-6f && fabsf(p[1] + 2.35f) < 1e-6f);
    assert_int_equal(opt.step, 2);
    tnmtl_optim_free(&opt);
    /* plain SGD */
    cfg.momentum = 0;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 2, NULL), TNMTL_OK);
    p[0] = 1;
    tnmtl_optim_step(&opt, p, g1);
    tnmtl_optim_step(&opt, p, g1);
    assert_true(fabsf(p[0] - 0.8f) < 1e-7f);
    tnmtl_optim_free(&opt);
}

static void test_adam(void **state)
{
    (void)state;
    tnmtl_optim opt;
    tnmtl_optim_config cfg;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &cfg);
    assert_true(cfg.lr == 1e-3 && cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.eps == 1e-8);
    cfg.lr = 0.1;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 3, NULL), TNMTL_OK);
    float p[3] = {1, 1, 1}, g1[3] = {0.5f, -2, 0}, g2[3] = {1, 1, 0};
    /* step 1: m_hat = g, v_hat = g^2, update = lr * g / (|g| + eps) = lr * sign(g) */
    tnmtl_optim_step(&opt, p, g1);
    assert_true(fabsf(p[0] - 0.9f) < 1e-6f && fabsf(p[1] - 1.1f) < 1e-6f && p[2] == 1);
    /* step 2, by hand in double */
    tnmtl_optim_step(&opt, p, g2);
    for (int i = 0; i < 2; i++) {
        double m = 0.9 * 0.1 * g1[i] + 0.1 * g2[i];
        double v = 0.999 * 0.001 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i];
        double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
        double want = (i == 0 ? 0.9 : 1.1) - 0.1 * mh / (sqrt(vh) + 1e-8);
        printf("  adam p[%d] = %.7f (hand %.7f)\n", i, p[i], want);
        assert_true(fabs(p[i] - want) < 2e-6);
    }
    tnmtl_optim_free(&opt);
    /* 37 elements (vector loop + tail), 3 steps: the same bits as the
     * update written plainly in float */
    {
        enum { N = 37 };
        float pv[N], pr[N], mr[N] = {0}, vr[N] = {0}, gv[N];
        tnmtl_rng rng;
        tnmtl_rng_seed(&rng, 5);
        for (int i = 0; i < N; i++) pv[i] = pr[i] = (float)tnmtl_rng_normal(&rng);
        cfg.lr = 0.01;
        assert_int_equal(tnmtl_optim_init(&opt, &cfg, N, NULL), TNMTL_OK);
        for (int t = 1; t <= 3; t++) {
            for (int i = 0; i < N; i++) gv[i] = (float)tnmtl_rng_normal(&rng) * (i % 5 ? 1.0f : 1e-3f);
            tnmtl_optim_step(&opt, pv, gv);
            const float ss = (float)(0.01 / (1 - pow(0.9, t))), bc = (float)sqrt(1 - pow(0.999, t));
            for (int i = 0; i < N; i++) {
                mr[i] = mr[i] * 0.9f + gv[i] * (float)(1 - 0.9);
                vr[i] = vr[i] * 0.999f + (float)(1 - 0.999) * gv[i] * gv[i];
                pr[i] -= ss * (mr[i] / (sqrtf(vr[i]) / bc + 1e-8f));
            }
            assert_memory_equal(pv, pr, sizeof pv);
        }
        tnmtl_optim_free(&opt);
    }
    /* refusals */
    cfg.lr = -1;
    tnmtl_error err;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 3, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "learning rate"));
    cfg.lr = 0.1;
    cfg.beta1 = 1;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 3, &err), TNMTL_ERR_INVALID);
    cfg.beta1 = 0.9;
    cfg.eps = 0;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 3, &err), TNMTL_ERR_INVALID);
    cfg.eps = 1e-8;
    assert_int_equal(tnmtl_optim_init(&opt, &cfg, 0, &err), TNMTL_ERR_INVALID);
    tnmtl_optim_free(&opt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_gradcheck_cnn),
        cmocka_unit_test(test_net_gradcheck_variants),
        cmocka_unit_test(test_parse_omniglot),
        cmocka_unit_test(test_parse_valid_strings),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_linear_model_and_workspace),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_init_relu),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_adam),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
