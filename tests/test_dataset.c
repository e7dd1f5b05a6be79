/* test_dataset.c - dataset validation, gathering and seeded stratified splits. */
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
#include "tnmtl.h"

/* A classification dataset: task 0 has classes of 20, 7 and 1 examples,
 * task 1 classes of 13 and 5, task 2 one class of 2; labels interleaved so
 * the classes are not contiguous.  Features: x[i][j] = i + j / 10. */
static const int toy_counts[3][3] = {{20, 7, 1}, {13, 5, 0}, {2, 0, 0}};
static const int toy_k[3] = {3, 2, 1};

static void make_toy(tnmtl_dataset *ds, int use_pixels)
{
    int64_t n = 0;
    for (int t = 0; t < 3; t++)
        for (int c = 0; c < toy_k[t]; c++) n += toy_counts[t][c];
    tnmtl_error err;
    assert_int_equal(tnmtl_dataset_init(ds, 3, n, 1, 2, 2, TNMTL_TARGET_CLASS, use_pixels, &err), TNMTL_OK);
    int64_t i = 0;
    for (int t = 0; t < 3; t++) {
        ds->task_begin[t] = i;
        ds->n_classes[t] = toy_k[t];
        int left[3];
        memcpy(left, toy_counts[t], sizeof left);
        for (int any = 1; any;) { /* round-robin over the classes */
            any = 0;
            for (int c = 0; c < toy_k[t]; c++)
                if (left[c] > 0) {
                    ds->label[i++] = c;
                    left[c]--;
                    any = 1;
                }
        }
        char name[16];
        snprintf(name, sizeof name, "toy%d", t);
        assert_int_equal(tnmtl_dataset_set_task_name(ds, t, name, &err), TNMTL_OK);
    }
    ds->task_begin[3] = i;
    assert_int_equal(i, n);
    for (int64_t e = 0; e < n; e++)
        for (int j = 0; j < 4; j++) {
            if (use_pixels)
                ds->pixels[e * 4 + j] = (uint8_t)((e * 4 + j) % 256);
            else
                ds->features[e * 4 + j] = (float)e + (float)j / 10.0f;
        }
}

static int64_t round_half_away(double x) { return (int64_t)floor(x + 0.5); } /* x >= 0 */

static void expected_sizes(int64_t n, double tf, double vf, int64_t *tr, int64_t *va, int64_t *te)
{
    int64_t pool = round_half_away(tf * (double)n);
    if (pool < 1) pool = 1;
    if (pool > n) pool = n;
    int64_t v = round_half_away(vf * (double)pool);
    if (v > pool - 1) v = pool - 1;
    *tr = pool - v;
    *va = v;
    *te = n - pool;
}

/* Every example in exactly one part, in its own task, ascending within (part, task). */
static void check_partition(const tnmtl_dataset *ds, const tnmtl_split *s)
{
    int *seen = calloc((size_t)ds->n_examples, sizeof *seen);
    assert_non_null(seen);
    assert_int_equal(s->n_tasks, ds->n_tasks);
    for (int p = 0; p < 3; p++) {
        assert_int_equal(s->begin[p][0], 0);
        for (int t = 0; t < ds->n_tasks; t++) {
            assert_true(s->begin[p][t + 1] >= s->begin[p][t]);
            for (int64_t j = s->begin[p][t]; j < s->begin[p][t + 1]; j++) {
                const int64_t e = s->idx[p][j];
                assert_true(e >= ds->task_begin[t] && e < ds->task_begin[t + 1]);
                if (j > s->begin[p][t]) assert_true(e > s->idx[p][j - 1]);
                seen[e]++;
            }
        }
    }
    for (int64_t e = 0; e < ds->n_examples; e++) assert_int_equal(seen[e], 1);
    free(seen);
}

/* Per task and class: counts in each part match the documented formula. */
static void check_class_counts(const tnmtl_dataset *ds, const tnmtl_split *s, double tf, double vf)
{
    for (int t = 0; t < ds->n_tasks; t++)
        for (int c = 0; c < ds->n_classes[t]; c++) {
            int64_t n = 0, got[3] = {0, 0, 0};
            for (int64_t e = ds->task_begin[t]; e < ds->task_begin[t + 1]; e++) n += ds->label[e] == c;
            for (int p = 0; p < 3; p++)
                for (int64_t j = s->begin[p][t]; j < s->begin[p][t + 1]; j++) got[p] += ds->label[s->idx[p][j]] == c;
            int64_t tr, va, te;
            expected_sizes(n, tf, vf, &tr, &va, &te);
            assert_int_equal(got[TNMTL_PART_TRAIN], tr);
            assert_int_equal(got[TNMTL_PART_VAL], va);
            assert_int_equal(got[TNMTL_PART_TEST], te);
        }
}

static int splits_equal(const tnmtl_split *a, const tnmtl_split *b, int p)
{
    if (a->begin[p][a->n_tasks] != b->begin[p][b->n_tasks]) return 0;
    return memcmp(a->begin[p], b->begin[p], (size_t)(a->n_tasks + 1) * sizeof(int64_t)) == 0 &&
           memcmp(a->idx[p], b->idx[p], (size_t)a->begin[p][a->n_tasks] * sizeof(int64_t)) == 0;
}

static void test_split_partition_and_counts(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 0);
    tnmtl_error err;
    const double fracs[][2] = {{0.2, 0.0}, {0.2, 0.5}, {0.5, 0.25}, {0.9, 0.1}, {1.0, 0.0}, {0.01, 0.3}};
    for (size_t f = 0; f < sizeof fracs / sizeof fracs[0]; f++) {
        tnmtl_split s;
        assert_int_equal(tnmtl_split_make(&ds, fracs[f][0], fracs[f][1], 7, &s, &err), TNMTL_OK);
        check_partition(&ds, &s);
        check_class_counts(&ds, &s, fracs[f][0], fracs[f][1]);
        tnmtl_split_free(&s);
    }
    /* Spot values of the formula: class of 20 at 0.2/0.5 -> 4 pool, 2 val, 2 train, 16 test;
     * the single example of task 0 class 2 always trains. */
    tnmtl_split s;
    assert_int_equal(tnmtl_split_make(&ds, 0.2, 0.5, 7, &s, &err), TNMTL_OK);
    /* task 0: 20->(2,2,16), 7->round(1.4)=1 pool ->(1,0,6), 1->(1,0,0) */
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TRAIN, 0), 2 + 1 + 1);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_VAL, 0), 2);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TEST, 0), 16 + 6);
    /* task 1: 13 -> round(2.6)=3 pool, round(1.5)=2 val -> (1,2,10); 5 -> 1 pool -> (1,0,4) */
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TRAIN, 1), 2);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_VAL, 1), 2);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TEST, 1), 14);
    tnmtl_split_free(&s);
    tnmtl_dataset_free(&ds);
}

static void test_split_seed(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 0);
    tnmtl_error err;
    tnmtl_split a, b, c;
    assert_int_equal(tnmtl_split_make(&ds, 0.3, 0.2, 123, &a, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(&ds, 0.3, 0.2, 123, &b, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(&ds, 0.3, 0.2, 124, &c, &err), TNMTL_OK);
    for (int p = 0; p < 3; p++) assert_true(splits_equal(&a, &b, p));
    assert_false(splits_equal(&a, &c, TNMTL_PART_TEST));
    /* Golden values pin the algorithm (xoshiro256** + Fisher-Yates): the same on
     * every platform.  Training examples of task 1 for seed 123. */
    const int64_t golden[] = {35, 37, 40, 42, 43};
    const int64_t ng = (int64_t)(sizeof golden / sizeof golden[0]);
    assert_int_equal(tnmtl_split_count(&a, TNMTL_PART_TRAIN, 1), ng);
    for (int64_t j = 0; j < ng; j++) assert_int_equal(a.idx[TNMTL_PART_TRAIN][a.begin[TNMTL_PART_TRAIN][1] + j], golden[j]);
    tnmtl_split_free(&a);
    tnmtl_split_free(&b);
    tnmtl_split_free(&c);
    tnmtl_dataset_free(&ds);
}

/* Validation examples come out of the training pool: the test part does not
 * depend on val_frac and train + val equals the training part without validation. */
static void test_split_val_from_train(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 0);
    tnmtl_error err;
    tnmtl_split s0, s1;
    assert_int_equal(tnmtl_split_make(&ds, 0.6, 0.0, 5, &s0, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(&ds, 0.6, 0.4, 5, &s1, &err), TNMTL_OK);
    assert_true(splits_equal(&s0, &s1, TNMTL_PART_TEST));
    assert_int_equal(s0.begin[TNMTL_PART_VAL][3], 0);
    assert_true(s1.begin[TNMTL_PART_VAL][3] > 0);
    for (int t = 0; t < 3; t++) {
        const int64_t n0 = tnmtl_split_count(&s0, TNMTL_PART_TRAIN, t);
        const int64_t ntr = tnmtl_split_count(&s1, TNMTL_PART_TRAIN, t);
        const int64_t nva = tnmtl_split_count(&s1, TNMTL_PART_VAL, t);
        assert_int_equal(n0, ntr + nva);
        assert_true(ntr >= 1);
        int64_t *u = malloc((size_t)n0 * sizeof *u);
        memcpy(u, s1.idx[0] + s1.begin[0][t], (size_t)ntr * sizeof *u);
        memcpy(u + ntr, s1.idx[1] + s1.begin[1][t], (size_t)nva * sizeof *u);
        for (int64_t i = 0; i < n0; i++) { /* same set: every pooled index is in s0's train */
            int found = 0;
            for (int64_t j = 0; j < n0; j++) found |= u[i] == s0.idx[0][s0.begin[0][t] + j];
            assert_true(found);
        }
        free(u);
    }
    tnmtl_split_free(&s0);
    tnmtl_split_free(&s1);
    tnmtl_dataset_free(&ds);
}

/* Validation taken from the examples not used for training: the training part
 * is unchanged, the test part gives up exactly those examples. */
static void test_split_holdout_from_rest(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 0);
    tnmtl_error err;
    tnmtl_split s0, s1;
    assert_int_equal(tnmtl_split_make(&ds, 0.1, 0.0, 3, &s0, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make_holdout(&ds, 0.1, 0.0, 2, 3, &s1, &err), TNMTL_OK);
    check_partition(&ds, &s1);
    assert_true(splits_equal(&s0, &s1, TNMTL_PART_TRAIN));
    /* task 0: classes 20 (2 train, 2 val, 16 test), 7 (1, 2, 4), 1 (1, 0, 0);
     * task 2: one class of 2 (1 train, 0 val: one stays for test, 1 test). */
    assert_int_equal(tnmtl_split_count(&s1, TNMTL_PART_VAL, 0), 4);
    assert_int_equal(tnmtl_split_count(&s1, TNMTL_PART_TEST, 0), 20);
    assert_int_equal(tnmtl_split_count(&s1, TNMTL_PART_VAL, 2), 0);
    assert_int_equal(tnmtl_split_count(&s1, TNMTL_PART_TEST, 2), 1);
    for (int t = 0; t < 3; t++) /* val + test of the holdout = test without it */
        assert_int_equal(tnmtl_split_count(&s1, TNMTL_PART_VAL, t) + tnmtl_split_count(&s1, TNMTL_PART_TEST, t),
                         tnmtl_split_count(&s0, TNMTL_PART_TEST, t));
    tnmtl_split_free(&s1);
    assert_int_equal(tnmtl_split_make_holdout(&ds, 0.1, 0.0, -1, 3, &s1, &err), TNMTL_ERR_INVALID);
    tnmtl_split_free(&s0);
    tnmtl_dataset_free(&ds);
}

/* K folds inside the training part: each fold's train + val is the base
 * training part, the folds partition it, sizes are balanced per task and per
 * class, the test part is empty; bad k are refused. */
static void test_split_folds(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 0);
    tnmtl_error err;
    tnmtl_split base, f;
    assert_int_equal(tnmtl_split_make(&ds, 1.0, 0.0, 11, &base, &err), TNMTL_OK); /* task 2 has 2 examples */
    const int T = 3;
    for (int k = 2; k <= 2; k++) {
        int *seen = calloc((size_t)ds.n_examples, sizeof *seen);
        for (int fold = 0; fold < k; fold++) {
            assert_int_equal(tnmtl_split_fold(&ds, &base, k, fold, 11, &f, &err), TNMTL_OK);
            assert_int_equal(f.begin[TNMTL_PART_TEST][T], 0);
            for (int t = 0; t < T; t++) {
                const int64_t n = tnmtl_split_count(&base, TNMTL_PART_TRAIN, t);
                const int64_t nv = tnmtl_split_count(&f, TNMTL_PART_VAL, t);
                assert_int_equal(tnmtl_split_count(&f, TNMTL_PART_TRAIN, t) + nv, n);
                assert_true(nv == n / k || nv == n / k + 1);
                /* every validation example is one of the base's training examples */
                for (int64_t i = f.begin[1][t]; i < f.begin[1][t + 1]; i++) {
                    int found = 0;
                    for (int64_t j = base.begin[0][t]; j < base.begin[0][t + 1]; j++) found |= base.idx[0][j] == f.idx[1][i];
                    assert_true(found);
                    seen[f.idx[1][i]]++;
                }
            }
            /* Stratified: task 0's class 0 (20 training examples) and class 1 (7) are split evenly. */
            int c0 = 0, c1 = 0;
            for (int64_t i = f.begin[1][0]; i < f.begin[1][1]; i++) {
                c0 += ds.label[f.idx[1][i]] == 0;
                c1 += ds.label[f.idx[1][i]] == 1;
            }
            assert_int_equal(c0, 20 / k);
            assert_true(c1 == 7 / k || c1 == 7 / k + 1);
            tnmtl_split_free(&f);
        }
        for (int64_t e = 0; e < ds.n_examples; e++) { /* each training example validated once */
            int in_train = 0;
            for (int64_t j = 0; j < base.begin[0][T]; j++) in_train |= base.idx[0][j] == e;
            assert_int_equal(seen[e], in_train);
        }
        free(seen);
    }
    /* Deterministic for a seed, different for another. */
    tnmtl_split a, b;
    assert_int_equal(tnmtl_split_fold(&ds, &base, 2, 1, 11, &a, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_fold(&ds, &base, 2, 1, 11, &b, &err), TNMTL_OK);
    assert_true(splits_equal(&a, &b, TNMTL_PART_VAL));
    tnmtl_split_free(&b);
    assert_int_equal(tnmtl_split_fold(&ds, &base, 2, 1, 12, &b, &err), TNMTL_OK);
    assert_false(splits_equal(&a, &b, TNMTL_PART_VAL));
    tnmtl_split_free(&a);
    tnmtl_split_free(&b);
    /* k < 2, a fold out of range, more folds than a task's examples
     * (task 2 has 1 training example). */
    assert_int_equal(tnmtl_split_fold(&ds, &base, 1, 0, 11, &f, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "at least 2 folds"));
    assert_int_equal(tnmtl_split_fold(&ds, &base, 3, 3, 11, &f, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_split_fold(&ds, &base, 3, 0, 11, &f, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "toy2"));
    tnmtl_split_free(&base);
    tnmtl_dataset_free(&ds);
}

static void test_split_regression(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_error err;
    assert_int_equal(tnmtl_dataset_init(&ds, 2, 30, 1, 1, 3, TNMTL_TARGET_REAL, 0, &err), TNMTL_OK);
    ds.task_begin[1] = 21;
    ds.task_begin[2] = 30;
    for (int i = 0; i < 30; i++) ds.target[i] = (float)i;
    tnmtl_split s;
    assert_int_equal(tnmtl_split_make(&ds, 0.5, 0.2, 9, &s, &err), TNMTL_OK);
    check_partition(&ds, &s);
    /* 21 -> round(10.5) = 11 pool, round(2.2) = 2 val; 9 -> round(4.5) = 5 pool, 1 val */
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TRAIN, 0), 9);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_VAL, 0), 2);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TEST, 0), 10);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TRAIN, 1), 4);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_VAL, 1), 1);
    assert_int_equal(tnmtl_split_count(&s, TNMTL_PART_TEST, 1), 4);
    tnmtl_split_free(&s);
    /* Bad fractions are refused. */
    assert_int_equal(tnmtl_split_make(&ds, 0.0, 0.0, 9, &s, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_split_make(&ds, 1.5, 0.0, 9, &s, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_split_make(&ds, 0.5, 1.0, 9, &s, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_split_make(&ds, NAN, 0.0, 9, &s, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "training fraction"));
    tnmtl_dataset_free(&ds);
}

/* A partial load: keep_inputs keeps one block of tasks' inputs, gather and
 * validate see the rest of the dataset unchanged. */
static void test_keep_inputs(void **state)
{
    (void)state;
    tnmtl_error err;
    char why[256];
    for (int use_pixels = 0; use_pixels < 2; use_pixels++) {
        tnmtl_dataset full, part;
        make_toy(&full, use_pixels);
        make_toy(&part, use_pixels);
        assert_true(tnmtl_dataset_has_inputs(&part, 0) && tnmtl_dataset_has_inputs(&part, 2));
        assert_false(tnmtl_dataset_has_inputs(&part, 3));
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 0, 3, &err), TNMTL_OK); /* all: no-op */
        assert_int_equal(part.inputs_task_end, 0);
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 1, 3, &err), TNMTL_OK);
        if (tu_partial_inputs_differ(&full, &part, 1, 3, why, sizeof why)) fail_msg("%s", why);
        assert_false(tnmtl_dataset_has_inputs(&part, 0));
        assert_true(tnmtl_dataset_has_inputs(&part, 1));
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 2, 3, &err), TNMTL_OK); /* narrowed again */
        if (tu_partial_inputs_differ(&full, &part, 2, 3, why, sizeof why)) fail_msg("%s", why);
        /* Widening, an empty or an outside range: refused, the inputs kept. */
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 1, 3, &err), TNMTL_ERR_INVALID);
        assert_non_null(strstr(err.msg, "holds the inputs of tasks 2..2 only"));
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 2, 2, &err), TNMTL_ERR_INVALID);
        assert_int_equal(tnmtl_dataset_keep_inputs(&part, 2, 4, &err), TNMTL_ERR_INVALID);
        if (tu_partial_inputs_differ(&full, &part, 2, 3, why, sizeof why)) fail_msg("%s", why);
        assert_int_equal(tnmtl_dataset_validate(&part, &err), TNMTL_OK);
        if (!use_pixels) { /* a NaN among the held features is found, named by its global index */
            const int64_t e = full.task_begin[2] + 1;
            part.features[(e - full.task_begin[2]) * 4 + 3] = NAN;
            assert_int_equal(tnmtl_dataset_validate(&part, &err), TNMTL_ERR_NUMERIC);
            assert_non_null(strstr(err.msg, "task 2 ('toy2'), example 1 (global"));
        }
        /* A select callback: the loaders' step between labels and inputs. */
        tnmtl_dataset sel;
        make_toy(&sel, use_pixels);
        tu_task_range r = {.begin = 0, .end = 2};
        tnmtl_input_select is = tu_select_tasks(&r);
        int b, e;
        assert_int_equal(tnmtl_dataset_select_inputs(&sel, &is, &b, &e, &err), TNMTL_OK);
        assert_int_equal(r.calls, 1);
        assert_true(b == 0 && e == 2);
        if (tu_partial_inputs_differ(&full, &sel, 0, 2, why, sizeof why)) fail_msg("%s", why);
        tnmtl_dataset_free(&sel);
        tnmtl_dataset_free(&full);
        tnmtl_dataset_free(&part);
    }
}

static void test_gather(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    make_toy(&ds, 1);
    ds.pixel_scale = 1.0f / 255.0f;
    ds.pixel_offset = -0.5f;
    const int64_t idx[3] = {47, 0, 12};
    float x[12];
    int y[3];
    float tg[3] = {-7, -7, -7};
    tnmtl_dataset_gather(&ds, idx, 3, x, y, tg);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) {
            const double want = (double)((idx[i] * 4 + j) % 256) / 255.0 - 0.5;
            assert_true(fabs(x[i * 4 + j] - want) < 1e-6);
        }
        assert_int_equal(y[i], ds.label[idx[i]]);
        assert_true(tg[i] == -7.0f); /* classification: targets untouched */
    }
    assert_int_equal(y[0], 0); /* example 47 is task 2's first: its only class */
    tnmtl_dataset_free(&ds);

    make_toy(&ds, 0);
    tnmtl_dataset_gather(&ds, idx, 3, x, NULL, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) assert_true(x[i * 4 + j] == (float)idx[i] + (float)j / 10.0f);
    tnmtl_dataset_free(&ds);

    tnmtl_error err;
    assert_int_equal(tnmtl_dataset_init(&ds, 1, 4, 1, 1, 1, TNMTL_TARGET_REAL, 0, &err), TNMTL_OK);
    ds.task_begin[1] = 4;
    for (int i = 0; i < 4; i++) ds.target[i] = 0.5f * (float)i;
    y[0] = y[1] = -3;
    tnmtl_dataset_gather(&ds, (const int64_t[]){3, 1}, 2, NULL, y, tg);
    assert_true(tg[0] == 1.5f && tg[1] == 0.5f);
    assert_int_equal(y[0], -3); /* regression: labels untouched */
    tnmtl_dataset_free(&ds);
}

static void expect_invalid(const tnmtl_dataset *ds, tnmtl_status want, const char *s1, const char *s2)
{
    tnmtl_error err;
    tnmtl_error_clear(&err);
    assert_int_equal(tnmtl_dataset_validate(ds, &err), want);
    if (!strstr(err.msg, s1) || (s2 && !strstr(err.msg, s2))) fail_msg("message '%s' lacks '%s' / '%s'", err.msg, s1, s2 ? s2 : "");
}

static void test_validate(void **state)
{
    (void)state;
    tnmtl_dataset ds;
    tnmtl_error err;
    make_toy(&ds, 0);
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);

    /* Label out of range: task 1, its example 3. */
    ds.label[ds.task_begin[1] + 3] = 2;
    expect_invalid(&ds, TNMTL_ERR_INVALID, "task 1 ('toy1'), example 3", "label 2 out of range 0..1");
    ds.label[ds.task_begin[1] + 3] = -1;
    expect_invalid(&ds, TNMTL_ERR_INVALID, "task 1 ('toy1'), example 3", "label -1");
    ds.label[ds.task_begin[1] + 3] = 1;
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);

    /* A class with no example: declare a 4th class in task 0. */
    ds.n_classes[0] = 4;
    expect_invalid(&ds, TNMTL_ERR_INVALID, "task 0 ('toy0')", "class 3 of 4 has no example");
    ds.n_classes[0] = 3;

    /* NaN feature: task 2, example 1, feature 2. */
    ds.features[(ds.task_begin[2] + 1) * 4 + 2] = NAN;
    expect_invalid(&ds, TNMTL_ERR_NUMERIC, "task 2 ('toy2'), example 1", "feature 2");
    ds.features[(ds.task_begin[2] + 1) * 4 + 2] = INFINITY;
    expect_invalid(&ds, TNMTL_ERR_NUMERIC, "task 2 ('toy2'), example 1", "feature 2 is inf");
    ds.features[(ds.task_begin[2] + 1) * 4 + 2] = 0;

    /* Empty task: task 1 takes task 2's examples. */
    const int64_t keep = ds.task_begin[2];
    ds.task_begin[2] = ds.task_begin[1];
    expect_invalid(&ds, TNMTL_ERR_INVALID, "task 1 ('toy1') has no example", NULL);
    ds.task_begin[2] = keep;

    /* Offsets that do not end at n_examples. */
    ds.n_examples--;
    expect_invalid(&ds, TNMTL_ERR_INVALID, "task offsets", NULL);
    ds.n_examples++;
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);

    /* Split refuses an invalid dataset with the same message. */
    tnmtl_split s;
    ds.label[5] = 9;
    assert_int_equal(tnmtl_split_make(&ds, 0.5, 0.0, 1, &s, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "label 9"));
    assert_null(s.idx[0]);
    tnmtl_dataset_free(&ds);

    /* A regression dataset with a NaN target, and one with no task. */
    assert_int_equal(tnmtl_dataset_init(&ds, 2, 4, 1, 1, 1, TNMTL_TARGET_REAL, 0, &err), TNMTL_OK);
    ds.task_begin[1] = 2;
    ds.task_begin[2] = 4;
    ds.target[3] = NAN;
    expect_invalid(&ds, TNMTL_ERR_NUMERIC, "task 1, example 1 (global 3): target", NULL);
    ds.target[3] = 1;
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);
    ds.n_tasks = 0;
    expect_invalid(&ds, TNMTL_ERR_INVALID, "no task", NULL);
    ds.n_tasks = 2;
    tnmtl_dataset_free(&ds);
    tnmtl_dataset_free(&ds); /* safe on a zeroed struct */
    assert_null(ds.task_begin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_partition_and_counts),
        cmocka_unit_test(test_split_seed),
        cmocka_unit_test(test_split_val_from_train),
        cmocka_unit_test(test_split_regression),
        cmocka_unit_test(test_split_holdout_from_rest),
        cmocka_unit_test(test_split_folds),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_keep_inputs),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
