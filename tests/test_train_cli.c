/* test_train_cli.c - end to end through the tnmtl program: training on the
 * synthetic problem, TNRMTL beating STL, hard sharing giving rho = 1, exact
 * resume, divergence, and refusal of bad input before training starts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "tnmtl/safetensors.h"

static char out[1 << 16];

/* `tnmtl ARGS`: exit code; stdout (and stderr if merge) in out. */
#define tnmtl(merge, ...) tu_cli_run(merge, out, sizeof out, __VA_ARGS__)

static double json_number(const cJSON *root, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static double test_accuracy(const char *method, const char *extra)
{
    assert_int_equal(tnmtl(0, "train --data synthetic --method %s --steps 150 --quiet %s", method, extra), 0);
    cJSON *r = cJSON_Parse(out);
    assert_non_null(r);
    double acc = json_number(r, "test", "mean_accuracy");
    cJSON_Delete(r);
    return acc;
}

/* Mean relatedness within the synthetic groups (tasks "gK-..") and between
 * other task pairs, from a relatedness CSV. */
static void group_contrast(const char *path, double *within, double *between)
{
    char cmd[512], text[1 << 14];
    snprintf(cmd, sizeof cmd, "cat %s", path);
    assert_int_equal(tu_run(cmd, 0, text, sizeof text), 0);
    char group[16][8];
    double S[16][16];
    int n = 0, row = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), row++) {
        char *cs = NULL;
        int col = -1;
        for (char *f = strtok_r(line, ",", &cs); f; f = strtok_r(NULL, ",", &cs), col++) {
            if (row < 0 && col >= 0) snprintf(group[n++], sizeof group[0], "%.2s", f + 1); /* "g1-t1" -> g1 */
            if (row >= 0 && col >= 0) S[row][col] = atof(f);
        }
    }
    assert_int_equal(row, n);
    double w = 0, b = 0;
    int nw = 0, nb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (group[i][0] == 'g' && !strcmp(group[i], group[j])) {
                w += S[i][j];
                nw++;
            } else {
                b += S[i][j];
                nb++;
            }
        }
    *within = w / nw;
    *between = b / nb;
}

static void test_report_shows_groups(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    char path[512];
    double within, between;
    assert_int_equal(tnmtl(1, "train --data synthetic --method tucker --out %s", dir), 0);
    /* The printed summary names fc's most related pair: two tasks of one group. */
    const char *fc = strstr(out, "fc 288x32"), *top = fc ? strstr(fc, "most related: ") : NULL;
    assert_non_null(top);
    char a[16], b[16];
    assert_int_equal(sscanf(top, "most related: %15s ~ %15s", a, b), 2);
    fprintf(stderr, "tucker fc most related pair: %s ~ %s\n", a, b);
    assert_true(a[0] == 'g' && !strncmp(a, b, 3));
    snprintf(path, sizeof path, "%s/relatedness_layer4.csv", dir);
    group_contrast(path, &within, &between);
    fprintf(stderr, "tucker fc relatedness: within groups %.3f, otherwise %.3f\n", within, between);
    assert_true(within > 2 * between);
    /* Independent training shows no groups. */
    assert_int_equal(tnmtl(0, "train --data synthetic --method stl --quiet --overwrite --out %s", dir), 0);
    group_contrast(path, &within, &between);
    fprintf(stderr, "stl fc relatedness: within groups %.3f, otherwise %.3f\n", within, between);
    assert_true(within < 1.5 * between);
    tu_rmtree(dir);
}

static void test_tnrmtl_beats_stl(void **state)
{
    (void)state;
    const double stl = test_accuracy("stl", "");
    const double tucker = test_accuracy("tucker", "");
    const double laf = test_accuracy("laf", "");
    fprintf(stderr, "held-out accuracy: stl %.4f tucker %.4f laf %.4f\n", stl, tucker, laf);
    assert_true(stl > 0.3);      /* learns something (chance is 0.2) */
    assert_true(tucker > stl);
    assert_true(laf > stl);
}

static void test_output_files_and_hard_sharing(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    assert_int_equal(tnmtl(0, "train --data synthetic --method ud --share 1 --steps 20 --quiet --out %s", dir), 0);
    cJSON *r = cJSON_Parse(out);
    assert_non_null(r);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(r, "sharing");
    assert_int_equal(cJSON_GetArraySize(sh), 2);
    const cJSON *l0 = cJSON_GetArrayItem(sh, 0), *l1 = cJSON_GetArrayItem(sh, 1);
    assert_true(fabs(cJSON_GetObjectItem(l0, "rho")->valuedouble - 1) < 1e-9);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(l0, "hard_shared")));
    assert_true(fabs(cJSON_GetObjectItem(l1, "rho")->valuedouble) < 0.2); /* independent */
    /* conv is layer 0; fc32 is layer 4 (after tanh, pool and flatten). */
    assert_int_equal(cJSON_GetObjectItem(l1, "layer")->valueint, 4);
    cJSON_Delete(r);
    const char *files[] = {"checkpoint.safetensors", "results.json", "sharing.json", "similarity.csv",
                           "similarity_layer0.csv", "similarity_layer4.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &sb) != 0) fprintf(stderr, "missing %s\n", path);
        assert_int_equal(stat(path, &sb), 0);
    }
    /* eval reproduces the numbers of train. */
    assert_int_equal(tnmtl(0, "eval --model %s", dir), 0);
    cJSON *e = cJSON_Parse(out);
    char path[512];
    snprintf(path, sizeof path, "cat %s/results.json", dir);
    char saved[1 << 15];
    assert_int_equal(tu_run(path, 0, saved, sizeof saved), 0);
    cJSON *t = cJSON_Parse(saved);
    assert_true(json_number(e, "test", "mean_accuracy") == json_number(t, "test", "mean_accuracy"));
    cJSON_Delete(e);
    cJSON_Delete(t);
    tu_rmtree(dir);
}

static void load_params(const char *dir, tnmtl_st_file **f)
{
    char path[512];
    tnmtl_error err;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    assert_int_equal(tnmtl_st_load(path, 1 << 30, f, &err), 0);
}

static void assert_same_tensors(tnmtl_st_file *a, tnmtl_st_file *b)
{
    assert_int_equal(tnmtl_st_count(a), tnmtl_st_count(b));
    for (int i = 0; i < tnmtl_st_count(a); i++) {
        const tnmtl_st_tensor *x = tnmtl_st_at(a, i), *y = tnmtl_st_at(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(tnmtl_st_numel(x), tnmtl_st_numel(y));
        assert_memory_equal(x->data, y->data, (size_t)tnmtl_st_numel(x) * 4);
    }
}

/* The checkpoints in dirs a and b hold the same tensors, bit for bit. */
static void assert_same_checkpoints(const char *a, const char *b)
{
    tnmtl_st_file *fa, *fb;
    load_params(a, &fa);
    load_params(b, &fb);
    assert_same_tensors(fa, fb);
    tnmtl_st_free(fa);
    tnmtl_st_free(fb);
}

static void test_resume_is_exact(void **state)
{
    (void)state;
    const char *d1 = tu_tmpdir();
    char a[256];
    snprintf(a, sizeof a, "%s", d1);
    const char *d2 = tu_tmpdir();
    const char *common = "--data synthetic --method tt --steps 40 --batch 7 --save-every 10 --quiet";
    assert_int_equal(tnmtl(0, "train %s --out %s", common, a), 0);
    /* The same run stopped at step 17, then resumed to 40. */
    assert_int_equal(tnmtl(0, "train %s --out %s --steps 17", common, d2), 0);
    assert_int_equal(tnmtl(0, "train --resume %s --steps 40 --quiet", d2), 0);
    assert_same_checkpoints(a, d2);
    tu_rmtree(a);
    tu_rmtree(d2);
}

/* --reg-every K: stored in the run's configuration, used again on resume
 * (bit-exact when stopped at a multiple of K). */
static void test_reg_every_option(void **state)
{
    (void)state;
    char a[256], b[256];
    snprintf(a, sizeof a, "%s", tu_tmpdir());
    snprintf(b, sizeof b, "%s", tu_tmpdir());
    const char *common = "--data synthetic --method tucker --steps 30 --batch 7 --quiet --reg-every 5";
    assert_int_equal(tnmtl(0, "train %s --out %s", common, a), 0);
    cJSON *r = cJSON_Parse(out);
    assert_non_null(r);
    assert_int_equal((int)json_number(r, "config", "reg_every"), 5);
    const double approx = json_number(r, "test", "mean_accuracy");
    cJSON_Delete(r);
    assert_int_equal(tnmtl(0, "train %s --out %s --steps 10", common, b), 0);
    assert_int_equal(tnmtl(0, "train --resume %s --steps 30 --quiet", b), 0);
    assert_same_checkpoints(a, b);
    /* K = 1 is the exact default and is not written to the configuration */
    assert_int_equal(tnmtl(0, "train --data synthetic --method tucker --steps 30 --batch 7 --quiet --reg-every 1"), 0);
    r = cJSON_Parse(out);
    assert_non_null(r);
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "config"), "reg_every"));
    fprintf(stderr, "test accuracy after 30 steps: reg-every 5 %.4f, exact %.4f\n", approx,
            json_number(r, "test", "mean_accuracy"));
    cJSON_Delete(r);
    tu_rmtree(a);
    tu_rmtree(b);
}

/* --weight-decay WD: stored in the run's configuration (absent at 0), used
 * again on resume (bit-exact), and it changes the model it trains. */
static void test_weight_decay_option(void **state)
{
    (void)state;
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s", tu_tmpdir());
    snprintf(b, sizeof b, "%s", tu_tmpdir());
    snprintf(c, sizeof c, "%s", tu_tmpdir());
    const char *common = "--data synthetic --method stl --steps 30 --batch 7 --quiet";
    assert_int_equal(tnmtl(0, "train %s --weight-decay 0.5 --out %s", common, a), 0);
    cJSON *r = cJSON_Parse(out);
    assert_non_null(r);
    assert_true(json_number(r, "config", "weight_decay") == 0.5);
    cJSON_Delete(r);
    assert_int_equal(tnmtl(0, "train %s --weight-decay 0.5 --out %s --steps 10", common, b), 0);
    assert_int_equal(tnmtl(0, "train --resume %s --steps 30 --quiet", b), 0);
    assert_same_checkpoints(a, b);
    assert_int_equal(tnmtl(0, "train %s --out %s", common, c), 0);
    r = cJSON_Parse(out);
    assert_non_null(r);
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "config"), "weight_decay"));
    cJSON_Delete(r);
    char why[512] = "";
    assert_false(tu_same_checkpoint(a, c, why, sizeof why)); /* the penalty acted */
    tu_rmtree(a);
    tu_rmtree(b);
    tu_rmtree(c);
}

static void test_divergence_keeps_checkpoint(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    /* Linear layers and a huge SGD step: the weights blow up within a few steps. */
    int code = tnmtl(1, "train --data synthetic --method laf --act none --optim sgd --lr 10 --steps 50 --save-every 1 "
                        "--out %s", dir);
    assert_int_equal(code, 3);
    assert_non_null(strstr(out, "diverged at step"));
    /* The last checkpoint holds finite parameters of an earlier step. */
    tnmtl_st_file *f;
    char path[512];
    tnmtl_error err;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    assert_int_equal(tnmtl_st_load(path, 1 << 30, &f, &err), 0);
    {
        for (int i = 0; i < tnmtl_st_count(f); i++) {
            const tnmtl_st_tensor *t = tnmtl_st_at(f, i);
            const float *x = t->data;
            for (int64_t j = 0; j < tnmtl_st_numel(t); j++) assert_true(isfinite(x[j]));
        }
        tnmtl_st_free(f);
    }
    tu_rmtree(dir);
}

static void test_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"train --bogus", "unknown option '--bogus'"},
        {"train --method tuker", "unknown method 'tuker'"},
        {"train --steps -3", "--steps"},
        {"train --lr nan", "--lr"},
        {"train --arch conv8x99 --steps 1", "conv8x99"},
        {"train --arch conv8x5,fc --steps 1", "fc"},
        {"train --data csv:/nonexistent.csv --steps 1", "/nonexistent.csv"},
        {"train --data omniglot:/nonexistent --steps 1", "/nonexistent"},
        {"train --data mnist", "--data"},
        {"train --method ud --share 5 --steps 1", "shareable"},
        {"train --resume /nonexistent", "/nonexistent"},
        {"eval", "--model"},
        {"compare --methods stl,stl", "twice"},
        {"compare --seeds 3-1", "--seeds"},
        {"train --reg-every 0", "--reg-every"},
        {"train --reg-every x", "--reg-every"},
        {"train --weight-decay -0.1", "--weight-decay"},
        {"train --weight-decay nan", "--weight-decay"},
        {"compare --weight-decay inf", "--weight-decay"},
        {"frobnicate", "unknown command"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = tnmtl(1, "%s", cases[i].args);
        if (code != 2 || !strstr(out, cases[i].needle))
            fprintf(stderr, "case '%s': exit %d, output:\n%s\n", cases[i].args, code, out);
        assert_int_equal(code, 2);
        assert_non_null(strstr(out, cases[i].needle));
    }
}

static void test_foreign_checkpoint(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "printf 'not a checkpoint at all' > %s/checkpoint.safetensors", dir);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    assert_int_equal(tnmtl(1, "eval --model %s", dir), 2);
    assert_non_null(strstr(out, "checkpoint.safetensors"));
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_foreign_checkpoint),
        cmocka_unit_test(test_output_files_and_hard_sharing),
        cmocka_unit_test(test_resume_is_exact),
        cmocka_unit_test(test_reg_every_option),
        cmocka_unit_test(test_weight_decay_option),
        cmocka_unit_test(test_divergence_keeps_checkpoint),
        cmocka_unit_test(test_tnrmtl_beats_stl),
        cmocka_unit_test(test_report_shows_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
