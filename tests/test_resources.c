/* test_resources.c - the memory estimate of a model before it is built
 * (tnmtl_mtl_memory_estimate) against what tnmtl_mtl_create really lays
 * out, the refusal of models too big for the machine, and the memory
 * available to the process. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "tnmtl/mtl.h"
#include "tnmtl/resources.h"

static tnmtl_mtl_config config(const char *arch, int h, int w, int c, int T, const int *n_out, tnmtl_method method,
                               int share)
{
    tnmtl_mtl_config mc = {0};
    mc.arch = arch;
    mc.act = TNMTL_ACT_TANH;
    mc.in_h = h;
    mc.in_w = w;
    mc.in_c = c;
    mc.n_tasks = T;
    mc.n_out = n_out;
    mc.method = method;
    mc.ud_share = share;
    mc.gamma = 0.01;
    return mc;
}

/* Parameters, gradients and the stacked scratch are what mtl.c allocates. */
static void test_matches_the_model(void **state)
{
    (void)state;
    static const int same[4] = {5, 5, 5, 5}, differ[4] = {5, 3, 7, 2};
    static const struct {
        const char *arch;
        int h, w, c;
        const int *n_out;
        tnmtl_method method;
        int share;
    } cases[] = {
        {"conv8x5,pool2,fc32", 16, 16, 1, differ, TNMTL_METHOD_TUCKER, 0},
        {"conv8x5,pool2,fc32", 16, 16, 1, same, TNMTL_METHOD_STL, 0},
        {"conv8x5,pool2,fc32", 16, 16, 1, differ, TNMTL_METHOD_UD, 1},
        {"conv8x5,pool2,fc32", 16, 16, 1, same, TNMTL_METHOD_UD, 2},
        {"conv4x3:same,relu,pool2,conv6x3,fc8,fc8", 12, 12, 2, differ, TNMTL_METHOD_TT, 0},
        {"", 1, 1, 9, same, TNMTL_METHOD_LAF, 0},       /* linear: the output layer is stacked */
        {"", 1, 1, 9, same, TNMTL_METHOD_UD, 1},        /* linear, hard-shared */
        {"", 1, 1, 9, differ, TNMTL_METHOD_LAF, 0},     /* nothing shareable */
        {"fc16", 1, 1, 28, differ, TNMTL_METHOD_LAF, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tnmtl_mtl_config mc = config(cases[i].arch, cases[i].h, cases[i].w, cases[i].c, 4, cases[i].n_out,
                                     cases[i].method, cases[i].share);
        tnmtl_memory_estimate est;
        tnmtl_error err;
        assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 10, 2, 2, &est, &err), TNMTL_OK);
        tnmtl_mtl *m;
        assert_int_equal(tnmtl_mtl_create(&mc, &m, &err), TNMTL_OK);
        int64_t max_stack = 0, n_shared = 0;
        for (int b = 0; b < m->n_blocks; b++) {
            if (m->blocks[b].stacked && m->blocks[b].n_w * 4 > max_stack) max_stack = m->blocks[b].n_w * 4;
            if (m->blocks[b].shared) n_shared += m->blocks[b].n_w + m->blocks[b].n_b;
        }
        fprintf(stderr, "case %zu '%s' %s: %lld parameters, estimate %.2f MB\n", i, cases[i].arch,
                tnmtl_method_name(cases[i].method), (long long)m->n_params, est.total / 1e6);
        assert_int_equal(est.n_params, m->n_params);
        assert_int_equal(est.params, (uint64_t)m->n_params * 4);
        assert_int_equal(est.grads, (uint64_t)(m->n_params + 4 * n_shared) * 4);
        assert_int_equal(est.optim, 2 * est.params);
        assert_int_equal(est.stack, (uint64_t)max_stack * 2 * 4);
        /* two workers (4 tasks, 2 threads), each at least one workspace for batch 10 */
        assert_int_equal(est.threads, 2);
        assert_true(est.workspace >= 2 * tnmtl_workspace_bytes(m->nets[0], 10, 0));
        assert_true(est.total >= est.params + est.grads + est.optim + est.stack + est.workspace);
        tnmtl_mtl_free(m);
    }
}

static void test_threads_and_batch(void **state)
{
    (void)state;
    static const int n_out[3] = {4, 4, 4};
    tnmtl_mtl_config mc = config("conv8x3,fc16", 10, 10, 1, 3, n_out, TNMTL_METHOD_STL, 0);
    tnmtl_memory_estimate a, b, c;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 8, 1, 2, &a, &err), TNMTL_OK);
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 8, 64, 2, &b, &err), TNMTL_OK);
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 16, 1, 1, &c, &err), TNMTL_OK);
    assert_int_equal(b.threads, 3); /* never more workers than tasks */
    assert_int_equal(b.workspace, 3 * a.workspace);
    assert_true(c.workspace > a.workspace && c.workspace <= 2 * a.workspace + 1024);
    assert_int_equal(c.optim, a.optim / 2); /* SGD: one moment */
}

/* reg_every > 1 keeps one float subgradient per stacked weight: the
 * estimate grows by exactly that. */
static void test_reg_every_cache(void **state)
{
    (void)state;
    static const int n_out[3] = {4, 4, 4};
    tnmtl_mtl_config mc = config("conv8x3,fc16", 10, 10, 1, 3, n_out, TNMTL_METHOD_TUCKER, 0);
    tnmtl_memory_estimate exact, approx;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 8, 1, 2, &exact, &err), TNMTL_OK);
    mc.reg_every = 10;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 8, 1, 2, &approx, &err), TNMTL_OK);
    /* conv 3x3x1x8 and fc (8*8*8) x 16, three tasks each */
    const uint64_t stacked = 3 * (3 * 3 * 1 * 8 + 8 * 8 * 8 * 16);
    assert_int_equal(approx.stack - exact.stack, stacked * sizeof(float));
    assert_int_equal(approx.total - exact.total, stacked * sizeof(float));
}

static void test_refuses_too_big(void **state)
{
    (void)state;
    static const int n_out[8] = {5, 5, 5, 5, 5, 5, 5, 5};
    /* each layer is within the per-tensor limit, the whole is ~10^11 parameters */
    tnmtl_mtl_config mc = config("fc1000,fc1000000,fc1000,fc1000000,fc1000,fc1000000,fc1000,fc1000000", 16, 16, 1, 8,
                                 n_out, TNMTL_METHOD_TUCKER, 0);
    tnmtl_memory_estimate est;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 256, 0, 2, &est, &err), TNMTL_OK);
    assert_true(est.n_params > 50000000000LL);
    assert_true(est.total > ((uint64_t)1 << 40));   /* over a terabyte */
    assert_int_equal(tnmtl_memory_check(&est, 0, &err), TNMTL_ERR_TOO_BIG);
    fprintf(stderr, "%s\n", err.msg);
    assert_non_null(strstr(err.msg, "MB of memory available"));
    assert_non_null(strstr(err.msg, "parameters"));
    /* a small model fits, an explicit limit is honoured */
    static const int two[2] = {3, 3};
    tnmtl_mtl_config small = config("fc8", 1, 1, 4, 2, two, TNMTL_METHOD_LAF, 0);
    assert_int_equal(tnmtl_mtl_memory_estimate(&small, 32, 1, 2, &est, &err), TNMTL_OK);
    assert_true(est.total < 100000);
    assert_int_equal(tnmtl_memory_check(&est, 0, &err), TNMTL_OK);
    assert_int_equal(tnmtl_memory_check(&est, est.total, &err), TNMTL_OK);
    assert_int_equal(tnmtl_memory_check(&est, est.total - 1, &err), TNMTL_ERR_TOO_BIG);
    /* a huge batch alone */
    assert_int_equal(tnmtl_mtl_memory_estimate(&small, 2000000000, 1, 2, &est, &err), TNMTL_OK);
    assert_true(est.workspace > ((uint64_t)1 << 36));
    assert_int_equal(tnmtl_memory_check(&est, (uint64_t)1 << 36, &err), TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "batch 2000000000"));
}

static void test_bad_configuration(void **state)
{
    (void)state;
    static const int n_out[2] = {3, 0};
    tnmtl_mtl_config mc = config("conv8x5,pool13", 16, 16, 1, 1, n_out, TNMTL_METHOD_STL, 0);
    tnmtl_memory_estimate est;
    tnmtl_error err;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 4, 1, 2, &est, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "pool13"));
    mc.arch = "fc4";
    mc.n_tasks = 2; /* task 1 has 0 outputs */
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 4, 1, 2, &est, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "output size 0"));
    mc.n_tasks = 1;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 0, 1, 2, &est, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 4, 1, 3, &est, &err), TNMTL_ERR_INVALID);
    mc.n_tasks = 0;
    assert_int_equal(tnmtl_mtl_memory_estimate(&mc, 4, 1, 2, &est, &err), TNMTL_ERR_INVALID);
}

static void test_available(void **state)
{
    (void)state;
    const uint64_t avail = tnmtl_memory_available();
    fprintf(stderr, "memory available: %.0f MB\n", avail / 1e6);
    assert_true(avail > ((uint64_t)16 << 20));   /* this test itself runs */
    assert_true(avail < ((uint64_t)1 << 50));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_the_model),
        cmocka_unit_test(test_threads_and_batch),
        cmocka_unit_test(test_reg_every_cache),
        cmocka_unit_test(test_refuses_too_big),
        cmocka_unit_test(test_bad_configuration),
        cmocka_unit_test(test_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
