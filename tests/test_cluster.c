/* test_cluster.c - average-linkage clustering: a hand-computed example,
 * planted block structures come out as contiguous blocks, bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tnmtl/cluster.h"
#include "tnmtl/rng.h"

/* Points 0, 1, 5, 6 on a line: {0,1} and {2,3} at height 1, then the two
 * clusters at the mean of the four cross distances (5 + 6 + 4 + 5) / 4. */
static void test_line(void **state)
{
    (void)state;
    const double x[4] = {0, 1, 5, 6};
    double D[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) D[i * 4 + j] = fabs(x[i] - x[j]);
    tnmtl_dendrogram d;
    tnmtl_error err;
    assert_int_equal(tnmtl_cluster_average(4, D, &d, &err), TNMTL_OK);
    assert_int_equal(d.merge[0][0], 0);
    assert_int_equal(d.merge[0][1], 1);
    assert_int_equal(d.merge[1][0], 2);
    assert_int_equal(d.merge[1][1], 3);
    assert_int_equal(d.merge[2][0], 4);
    assert_int_equal(d.merge[2][1], 5);
    assert_true(fabs(d.height[0] - 1) < 1e-12 && fabs(d.height[1] - 1) < 1e-12);
    assert_true(fabs(d.height[2] - 5) < 1e-12);
    for (int i = 0; i < 4; i++) assert_int_equal(d.order[i], i);
    tnmtl_dendrogram_free(&d);
}

/* Blocks of the given sizes, members shuffled over the indices, distances
 * 0.1-0.3 inside a block and 0.6-0.9 across: every block must be one
 * contiguous run of the order, and the merges inside blocks come first. */
static void check_planted(int n_blocks, const int *sizes, uint64_t seed)
{
    int n = 0;
    for (int b = 0; b < n_blocks; b++) n += sizes[b];
    if (n < 1 || n > 4096) fail_msg("planted clustering of %d points", n);
    int *block = malloc((size_t)n * sizeof *block);
    for (int b = 0, i = 0; b < n_blocks; b++)
        for (int k = 0; k < sizes[b]; k++) block[i++] = b;
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, seed);
    tnmtl_rng_shuffle(&rng, block, (size_t)n); /* which index belongs to which block */
    double *D = malloc((size_t)n * n * sizeof *D);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            const double u = tnmtl_rng_uniform(&rng);
            const double v = i == j ? 0 : block[i] == block[j] ? 0.1 + 0.2 * u : 0.6 + 0.3 * u;
            D[i * n + j] = D[j * n + i] = v;
        }
    tnmtl_dendrogram d;
    tnmtl_error err;
    assert_int_equal(tnmtl_cluster_average(n, D, &d, &err), TNMTL_OK);
    int *seen = calloc((size_t)n, sizeof *seen);
    for (int i = 0; i < n; i++) {
        assert_true(d.order[i] >= 0 && d.order[i] < n);
        assert_int_equal(seen[d.order[i]]++, 0);
        assert_int_equal(d.pos[d.order[i]], i);
    }
    for (int b = 0; b < n_blocks; b++) {
        int lo = n, hi = -1;
        for (int i = 0; i < n; i++)
            if (block[i] == b) {
                lo = d.pos[i] < lo ? d.pos[i] : lo;
                hi = d.pos[i] > hi ? d.pos[i] : hi;
            }
        assert_int_equal(hi - lo + 1, sizes[b]); /* contiguous */
    }
    for (int m = 0; m + 1 < n - 1; m++) assert_true(d.height[m] <= d.height[m + 1] + 1e-12);
    for (int m = 0; m < n - n_blocks; m++) assert_true(d.height[m] < 0.5);
    for (int m = n - n_blocks; m < n - 1; m++) assert_true(d.height[m] > 0.5);
    tnmtl_dendrogram_free(&d);
    free(seen);
    free(D);
    free(block);
}

static void test_planted_blocks(void **state)
{
    (void)state;
    const int a[] = {4, 7, 2, 1}, b[] = {10, 10, 10, 10, 10}, c[] = {1, 1}, e[] = {25, 3, 12, 10};
    check_planted(4, a, 1);
    check_planted(5, b, 2);
    check_planted(2, c, 3);
    check_planted(4, e, 4);
    check_planted(1, (const int[]){6}, 5);
}

static void test_one_item_and_bad_input(void **state)
{
    (void)state;
    tnmtl_dendrogram d;
    tnmtl_error err;
    double D1 = 0;
    assert_int_equal(tnmtl_cluster_average(1, &D1, &d, &err), TNMTL_OK);
    assert_int_equal(d.order[0], 0);
    tnmtl_dendrogram_free(&d);
    assert_int_equal(tnmtl_cluster_average(0, &D1, &d, &err), TNMTL_ERR_INVALID);
    double D[9] = {0, 1, 2, 1, 0, NAN, 2, NAN, 0};
    assert_int_equal(tnmtl_cluster_average(3, D, &d, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "items 1 and 2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_planted_blocks),
        cmocka_unit_test(test_one_item_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
