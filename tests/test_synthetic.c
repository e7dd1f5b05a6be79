/* test_synthetic.c - the synthetic multi-task generator: shapes, determinism,
 * and that the promised structure is really in the data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tnmtl.h"
#include "tnmtl/synthetic.h"

static void test_shapes_and_names(void **state)
{
    (void)state;
    tnmtl_synthetic_options o;
    tnmtl_synthetic_options_init(&o);
    tnmtl_dataset ds;
    tnmtl_synthetic_info info;
    tnmtl_error err;
    assert_int_equal(tnmtl_synthetic_make_info(&o, &ds, &info, &err), TNMTL_OK);
    assert_int_equal(ds.n_tasks, 8);
    assert_int_equal(ds.n_examples, 8 * 5 * 20);
    assert_int_equal(ds.in_h, 16);
    assert_int_equal(ds.in_w, 16);
    assert_int_equal(ds.in_c, 1);
    assert_int_equal(ds.kind, TNMTL_TARGET_CLASS);
    assert_non_null(ds.features);
    assert_null(ds.pixels);
    const char *names[] = {"g1-t1", "g1-t2", "g1-t3", "g2-t1", "g2-t2", "g2-t3", "u1", "u2"};
    const int groups[] = {0, 0, 0, 1, 1, 1, -1, -1};
    for (int t = 0; t < 8; t++) {
        assert_string_equal(ds.task_names[t], names[t]);
        assert_int_equal(ds.n_classes[t], 5);
        assert_int_equal(ds.task_begin[t], t * 100);
        assert_int_equal(info.group[t], groups[t]);
        assert_int_equal(tnmtl_synthetic_task_group(&o, t), groups[t]);
        assert_int_equal(info.bank[t], t < 6 ? t / 3 : 2 + t - 6);
        for (int e = 0; e < 100; e++) assert_int_equal(ds.label[ds.task_begin[t] + e], e / 20);
    }
    assert_int_equal(tnmtl_synthetic_task_group(&o, 8), -2);
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);
    assert_int_equal(info.n_banks, 4);
    /* Patterns are orthonormal within a bank. */
    const int D = 256, K = info.rank;
    for (int b = 0; b < info.n_banks; b++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                double dot = 0;
                for (int p = 0; p < D; p++)
                    dot += (double)info.patterns[(b * K + i) * D + p] * info.patterns[(b * K + j) * D + p];
                assert_true(fabs(dot - (i == j)) < 1e-5);
            }
    /* Pixels have variance about 1 by construction. */
    double s = 0, s2 = 0;
    const int64_t n = ds.n_examples * D;
    for (int64_t i = 0; i < n; i++) {
        s += ds.features[i];
        s2 += (double)ds.features[i] * ds.features[i];
    }
    const double var = s2 / (double)n - (s / (double)n) * (s / (double)n);
    print_message("per-pixel variance %.3f\n", var);
    assert_true(var > 0.85 && var < 1.15);
    tnmtl_synthetic_info_free(&info);
    tnmtl_dataset_free(&ds);

    /* Other options change the shapes accordingly; NULL means defaults. */
    o.n_groups = 3;
    o.tasks_per_group = 2;
    o.n_unrelated = 0;
    o.n_classes = 3;
    o.examples_per_class = 7;
    o.size = 10;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_OK);
    assert_int_equal(ds.n_tasks, 6);
    assert_int_equal(ds.n_examples, 6 * 3 * 7);
    assert_int_equal(ds.in_h, 10);
    assert_string_equal(ds.task_names[5], "g3-t2");
    tnmtl_dataset_free(&ds);
    assert_int_equal(tnmtl_synthetic_make(NULL, &ds, &err), TNMTL_OK);
    assert_int_equal(ds.n_tasks, 8);
    tnmtl_dataset_free(&ds);

    /* Bad options are refused by name. */
    tnmtl_synthetic_options_init(&o);
    o.n_classes = 1;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "n_classes"));
    assert_null(ds.features);
    tnmtl_synthetic_options_init(&o);
    o.noise = NAN;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_ERR_INVALID);
    tnmtl_synthetic_options_init(&o);
    o.n_groups = 0;
    o.n_unrelated = 0;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_ERR_INVALID);
    tnmtl_synthetic_options_init(&o);
    o.rank = 300;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_ERR_INVALID);
    tnmtl_synthetic_options_init(&o);
    o.examples_per_class = 1000000;
    assert_int_equal(tnmtl_synthetic_make(&o, &ds, &err), TNMTL_ERR_TOO_BIG);
}

static void test_determinism(void **state)
{
    (void)state;
    tnmtl_synthetic_options o;
    tnmtl_synthetic_options_init(&o);
    o.seed = 99;
    tnmtl_dataset a, b, c;
    tnmtl_error err;
    assert_int_equal(tnmtl_synthetic_make(&o, &a, &err), TNMTL_OK);
    assert_int_equal(tnmtl_synthetic_make(&o, &b, &err), TNMTL_OK);
    o.seed = 100;
    assert_int_equal(tnmtl_synthetic_make(&o, &c, &err), TNMTL_OK);
    const size_t bytes = (size_t)a.n_examples * 256 * sizeof(float);
    assert_memory_equal(a.features, b.features, bytes);
    assert_memory_equal(a.label, b.label, (size_t)a.n_examples * sizeof(int));
    assert_memory_not_equal(a.features, c.features, bytes);
    tnmtl_dataset_free(&a);
    tnmtl_dataset_free(&b);
    tnmtl_dataset_free(&c);
}

/* Class means of task t over the examples idx[n] (or all when idx is NULL): m[C][D]. */
static void class_means(const tnmtl_dataset *ds, int t, const int64_t *idx, int64_t n, double *m)
{
    const int C = ds->n_classes[t];
    const int64_t D = tnmtl_dataset_example_size(ds);
    int cnt[64] = {0};
    memset(m, 0, (size_t)(C * D) * sizeof *m);
    if (!idx) n = ds->task_begin[t + 1] - ds->task_begin[t];
    for (int64_t j = 0; j < n; j++) {
        const int64_t e = idx ? idx[j] : ds->task_begin[t] + j;
        const int y = ds->label[e];
        cnt[y]++;
        for (int64_t i = 0; i < D; i++) m[y * D + i] += ds->features[e * D + i];
    }
    for (int c = 0; c < C; c++)
        for (int64_t i = 0; i < D; i++) m[c * D + i] /= cnt[c] ? cnt[c] : 1;
}

/* Nearest-class-mean accuracy of task t on examples idx[n]; when proj (an
 * orthonormal basis [K][D]) is given, distances are measured in its span. */
static double ncm_accuracy(const tnmtl_dataset *ds, int t, const double *m, const int64_t *idx, int64_t n,
                           const float *proj, int K)
{
    const int C = ds->n_classes[t], D = (int)tnmtl_dataset_example_size(ds);
    int right = 0;
    double diff[256];
    for (int64_t j = 0; j < n; j++) {
        const int64_t e = idx ? idx[j] : ds->task_begin[t] + j;
        int best = -1;
        double best_d = INFINITY;
        for (int c = 0; c < C; c++) {
            for (int i = 0; i < D; i++) diff[i] = ds->features[e * D + i] - m[c * D + i];
            double d = 0;
            if (proj) {
                for (int k = 0; k < K; k++) {
                    double z = 0;
                    for (int i = 0; i < D; i++) z += proj[k * D + i] * diff[i];
                    d += z * z;
                }
            } else {
                for (int i = 0; i < D; i++) d += diff[i] * diff[i];
            }
            if (d < best_d) best_d = d, best = c;
        }
        right += best == ds->label[e];
    }
    return (double)right / (double)n;
}

/* Fraction of the energy of the rows of v[m][D] outside their top-K
 * principal (uncentred) directions. */
static double residual_fraction(const double *v, int m, int D, int K)
{
    double *g = calloc((size_t)m * m, sizeof *g), w[64];
    assert_true(m <= 64);
    for (int i = 0; i < m; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int p = 0; p < D; p++) s += v[i * D + p] * v[j * D + p];
            g[i * m + j] = g[j * m + i] = s;
        }
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', m, g, m, w), 0); /* ascending */
    double total = 0, rest = 0;
    for (int i = 0; i < m; i++) {
        total += w[i];
        if (i < m - K) rest += w[i];
    }
    free(g);
    return rest / total;
}

/* Top-K principal (uncentred) directions u[K][D] of the rows of v[m][D]. */
static void top_directions(const double *v, int m, int D, int K, double *u)
{
    double g[64 * 64], w[64];
    assert_true(m <= 64 && K <= m);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int p = 0; p < D; p++) s += v[i * D + p] * v[j * D + p];
            g[i * m + j] = s;
        }
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', m, g, m, w), 0); /* ascending, vectors in columns */
    for (int k = 0; k < K; k++) {
        const int col = m - 1 - k;
        for (int p = 0; p < D; p++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += g[i * m + col] * v[i * D + p];
            u[k * D + p] = s / sqrt(w[col]);
        }
    }
}

/* Fraction of the energy of the rows of v[m][D] inside span(u[K][D]). */
static double captured(const double *u, int K, const double *v, int m, int D)
{
    double in = 0, total = 0;
    for (int i = 0; i < m; i++)
        for (int k = 0; k < K; k++) {
            double z = 0;
            for (int p = 0; p < D; p++) z += u[k * D + p] * v[i * D + p];
            in += z * z;
        }
    for (int i = 0; i < m * D; i++) total += v[i] * v[i];
    return in / total;
}

/* The structure: every task is learnable, class means of a group's tasks
 * share a rank-K subspace that a mix of unrelated tasks does not, and with
 * few examples knowing that subspace helps a lot. */
static void test_structure(void **state)
{
    (void)state;
    tnmtl_synthetic_options o;
    tnmtl_synthetic_options_init(&o);
    const int D = 256, C = 5, K = o.rank;
    double sum_all = 0, sum_full = 0, sum_oracle = 0, worst_group = 0, best_mixed = 1, min_same = 1, max_other = 0;
    int n_runs = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        o.seed = seed;
        tnmtl_dataset ds;
        tnmtl_synthetic_info info;
        tnmtl_error err;
        assert_int_equal(tnmtl_synthetic_make_info(&o, &ds, &info, &err), TNMTL_OK);
        double *means = malloc((size_t)ds.n_tasks * C * D * sizeof *means);
        for (int t = 0; t < ds.n_tasks; t++) {
            class_means(&ds, t, NULL, 0, means + (size_t)t * C * D);
            sum_all += ncm_accuracy(&ds, t, means + (size_t)t * C * D, NULL, 100, NULL, 0);
        }
        /* Same group: tasks 0-2 and 3-5; mixed: one task from each bank of g1, g2, u1 (and g1, u1, u2). */
        const int sets[4][3] = {{0, 1, 2}, {3, 4, 5}, {0, 3, 6}, {1, 6, 7}};
        double v[15 * 256], exact[15 * 256];
        for (int s = 0; s < 4; s++) {
            for (int j = 0; j < 3; j++) {
                memcpy(v + j * C * D, means + (size_t)sets[s][j] * C * D, (size_t)C * D * sizeof *v);
                for (int i = 0; i < C * D; i++) exact[j * C * D + i] = info.prototypes[(size_t)sets[s][j] * C * D + i];
            }
            const double r = residual_fraction(v, 15, D, K), rx = residual_fraction(exact, 15, D, K);
            if (s < 2) {
                assert_true(rx < 1e-9); /* the true prototypes are exactly rank K */
                if (r > worst_group) worst_group = r;
            } else {
                assert_true(rx > 0.15);
                if (r < best_mixed) best_mixed = r;
            }
        }
        /* Task similarity: how much of task b's class-mean energy lies in task a's
         * top-K class-mean subspace.  High within a group, near zero across banks. */
        double *u = malloc((size_t)K * D * sizeof *u);
        for (int a = 0; a < ds.n_tasks; a++) {
            top_directions(means + (size_t)a * C * D, C, D, K, u);
            for (int b = 0; b < ds.n_tasks; b++) {
                if (a == b) continue;
                const double f = captured(u, K, means + (size_t)b * C * D, C, D);
                if (seed == 1) print_message("%s%.2f%s", b == 0 || (a == 0 && b == 1) ? "similarity " : " ", f,
                                             b == ds.n_tasks - 1 || (a == ds.n_tasks - 1 && b == ds.n_tasks - 2) ? "\n" : "");
                if (info.bank[a] == info.bank[b] && f < min_same) min_same = f;
                if (info.bank[a] != info.bank[b] && f > max_other) max_other = f;
            }
        }
        free(u);
        /* Few labelled examples (20% per class = 4): full-space NCM vs NCM in the true subspace. */
        tnmtl_split sp;
        assert_int_equal(tnmtl_split_make(&ds, 0.2, 0.0, seed, &sp, &err), TNMTL_OK);
        double m[5 * 256];
        for (int t = 0; t < ds.n_tasks; t++) {
            const int64_t *tr = sp.idx[TNMTL_PART_TRAIN] + sp.begin[TNMTL_PART_TRAIN][t];
            const int64_t *te = sp.idx[TNMTL_PART_TEST] + sp.begin[TNMTL_PART_TEST][t];
            const int64_t ntr = tnmtl_split_count(&sp, TNMTL_PART_TRAIN, t), nte = tnmtl_split_count(&sp, TNMTL_PART_TEST, t);
            assert_int_equal(ntr, 20);
            class_means(&ds, t, tr, ntr, m);
            sum_full += ncm_accuracy(&ds, t, m, te, nte, NULL, 0);
            sum_oracle += ncm_accuracy(&ds, t, m, te, nte, info.patterns + (size_t)info.bank[t] * K * D, K);
            n_runs++;
        }
        tnmtl_split_free(&sp);
        free(means);
        tnmtl_synthetic_info_free(&info);
        tnmtl_dataset_free(&ds);
    }
    const double all = sum_all / n_runs, full = sum_full / n_runs, oracle = sum_oracle / n_runs;
    print_message("NCM on all examples %.3f; 4 per class: full space %.3f, true subspace %.3f (chance 0.2)\n", all,
                  full, oracle);
    print_message("residual outside top-%d directions: same group <= %.3f, mixed banks >= %.3f\n", K, worst_group,
                  best_mixed);
    assert_true(all > 0.9);
    assert_true(full > 0.5 && full < 0.9);
    assert_true(oracle > full + 0.1);
    print_message("share of a task's class means in another's top-%d subspace: same group >= %.3f, other banks <= %.3f\n",
                  K, min_same, max_other);
    assert_true(worst_group < 0.3);
    assert_true(best_mixed > worst_group + 0.1);
    assert_true(min_same > 0.25);
    assert_true(max_other < 0.1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_names),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_structure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
