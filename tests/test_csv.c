/* test_csv.c - the strict CSV loader: School data, quoting, label remapping,
 * and malformed files that must fail with messages naming line and column. */
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
#include "util.h" /* tnmtl_now */


/* Writes text[len] to <tu_group_dir>/name and returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *text, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tu_group_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Independent reading of school.csv (plain numbers, no quotes): per task
 * row counts in order of appearance, and sums of y and of every feature. */
static void school_reference(int *n_tasks, int64_t *count, double *sum_y, double *sum_x, int64_t *rows)
{
    FILE *f = fopen(tu_shared_path("school/school.csv"), "r");
    assert_non_null(f);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f));
    int last = -1;
    *n_tasks = 0;
    *rows = 0;
    *sum_y = 0;
    memset(sum_x, 0, 28 * sizeof *sum_x);
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        int task = (int)strtol(p, &p, 10);
        assert_true(*p == ',');
        if (task != last) { /* the file lists each school's rows together */
            count[(*n_tasks)++] = 0;
            last = task;
        }
        count[*n_tasks - 1]++;
        *sum_y += strtod(p + 1, &p);
        for (int j = 0; j < 28; j++) sum_x[j] += strtod(p + 1, &p);
        (*rows)++;
    }
    fclose(f);
}

static void test_school(void **state)
{
    (void)state;
    tnmtl_csv_options opt = {0};
    opt.kind = TNMTL_TARGET_REAL;
    tnmtl_dataset ds;
    tnmtl_error err;
    const double t0 = tnmtl_now();
    tnmtl_status st = tnmtl_csv_load(tu_shared_path("school/school.csv"), &opt, &ds, &err);
    const double dt = tnmtl_now() - t0;
    if (st) fail_msg("%s", err.msg);
    print_message("school.csv loaded in %.3f s\n", dt);
    assert_int_equal(ds.n_tasks, 139);
    assert_int_equal(ds.n_examples, 15362);
    assert_int_equal(ds.in_h, 1);
    assert_int_equal(ds.in_w, 1);
    assert_int_equal(ds.in_c, 28);
    assert_int_equal(ds.kind, TNMTL_TARGET_REAL);
    assert_non_null(ds.features);
    assert_null(ds.pixels);
    assert_null(ds.label);
    assert_string_equal(ds.task_names[0], "0");
    assert_string_equal(ds.task_names[138], "138");
    assert_non_null(strstr(ds.source, "school.csv"));
    /* First row: 0,17,1,0,0,24,18,0,1,... */
    assert_true(ds.target[0] == 17.0f);
    assert_true(ds.features[0] == 1.0f && ds.features[1] == 0.0f && ds.features[3] == 24.0f && ds.features[4] == 18.0f);

    static int64_t count[200];
    double sum_y, sum_x[28];
    int n_tasks;
    int64_t rows;
    school_reference(&n_tasks, count, &sum_y, sum_x, &rows);
    assert_int_equal(n_tasks, 139);
    assert_int_equal(rows, 15362);
    double got_y = 0, got_x[28] = {0};
    for (int t = 0; t < 139; t++) {
        assert_int_equal(ds.task_begin[t + 1] - ds.task_begin[t], count[t]);
        assert_int_equal(ds.n_classes[t], 1);
    }
    for (int64_t i = 0; i < ds.n_examples; i++) {
        got_y += ds.target[i];
        for (int j = 0; j < 28; j++) got_x[j] += ds.features[i * 28 + j];
    }
    assert_true(fabs(got_y - sum_y) <= 1e-9 * fabs(sum_y));
    assert_true(tu_max_rel_err(got_x, sum_x, 28, 1e-6, 1e-6) <= 1.0);
    assert_int_equal(tnmtl_dataset_validate(&ds, &err), TNMTL_OK);
    tnmtl_dataset_free(&ds);

    /* Selected features, in the order given. */
    const char *cols[] = {"x27", "x3"};
    opt.feature_columns = cols;
    opt.n_feature_columns = 2;
    st = tnmtl_csv_load(tu_shared_path("school/school.csv"), &opt, &ds, &err);
    if (st) fail_msg("%s", err.msg);
    assert_int_equal(ds.in_c, 2);
    assert_true(ds.features[0] == 1.0f && ds.features[1] == 24.0f);
    tnmtl_dataset_free(&ds);
}

static void test_classification_and_quoting(void **state)
{
    (void)state;
    /* BOM, CRLF, quoted names with commas, escaped quotes and a line break,
     * interleaved tasks, labels {1, 2, 5} in task "b", an ignored text
     * column, trailing blank lines. */
    const char text[] = "\xEF\xBB\xBF"
                        "label,note,task,f1,f2\r\n"
                        "0,hello,\"a, \"\"one\"\"\",1.5, 2\r\n"
                        "5,x,b,3,4\r\n"
                        "1,\"multi\nline\",\"a, \"\"one\"\"\",-1e-3,\t6\t\r\n"
                        "1,z,b,7,8\n"
                        "2.0,,b,9,10\n"
                        "\"2\",q,c,11,12\n"
                        "\n\r\n";
    const char *path = write_tmp("good.csv", text, sizeof text - 1);
    tnmtl_csv_options opt = {0};
    opt.target_column = "label";
    const char *cols[] = {"f1", "f2"};
    opt.feature_columns = cols;
    opt.n_feature_columns = 2;
    tnmtl_dataset ds;
    tnmtl_error err;
    tnmtl_status st = tnmtl_csv_load(path, &opt, &ds, &err);
    if (st) fail_msg("%s", err.msg);
    assert_int_equal(ds.n_tasks, 3);
    assert_int_equal(ds.n_examples, 6);
    assert_int_equal(ds.in_c, 2);
    assert_string_equal(ds.task_names[0], "a, \"one\"");
    assert_string_equal(ds.task_names[1], "b");
    assert_string_equal(ds.task_names[2], "c");
    const int64_t begin[] = {0, 2, 5, 6};
    for (int t = 0; t <= 3; t++) assert_int_equal(ds.task_begin[t], begin[t]);
    /* task a: labels {0, 1} kept; task b: {5, 1, 2} -> {2, 0, 1}; task c: {2} -> {0} */
    const int want_label[] = {0, 1, 2, 0, 1, 0};
    const int want_k[] = {2, 3, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(ds.label[i], want_label[i]);
    for (int t = 0; t < 3; t++) assert_int_equal(ds.n_classes[t], want_k[t]);
    const float want_x[] = {1.5f, 2, -1e-3f, 6, 3, 4, 7, 8, 9, 10, 11, 12};
    for (int i = 0; i < 12; i++) assert_true(ds.features[i] == want_x[i]);
    tnmtl_dataset_free(&ds);

    /* Default columns: every column but task and target -> "note" is a
     * feature and "hello" is not a number (line 2, column 2). */
    opt.feature_columns = NULL;
    opt.n_feature_columns = 0;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2, column 2 'note': 'hello': not a number"));
    assert_null(ds.features);
    assert_int_equal(ds.n_tasks, 0);
}

struct bad_case {
    const char *text;
    size_t len;                   /* 0: strlen(text) */
    tnmtl_target_kind kind;
    tnmtl_status want;
    const char *msg;
};

static void test_malformed(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "empty file"},
        {"\r\n\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "empty file"},
        {"task,y,x0\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "no data rows"},
        {"task,y,x0,x1\na,1,2,3\nb,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT,
         "line 3: 3 fields, expected 4 (column 4 'x1' is missing)"},
        {"task,y,x0,x1\na,1,2,3,4\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT,
         "line 2: more than 4 fields (extra field after column 4 'x1')"},
        {"task,y,x0,x1\na,1,2,3\na,1,abc,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT,
         "line 3, column 3 'x0': 'abc': not a number"},
        {"task,y,x0,x1\na,1,2,3\na,1,2,3x\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT,
         "line 3, column 4 'x1': '3x': not a number"},
        {"task,y,x0,x1\na,1,nan,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 3 'x0': 'nan': NaN/Inf"},
        {"task,y,x0,x1\na,1,2,-Inf\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 4 'x1': '-Inf': NaN/Inf"},
        {"task,y,x0,x1\na,NaN,2,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 2 'y': 'NaN': NaN/Inf"},
        {"task,y,x0,x1\na,1,1e999,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "column 3 'x0': '1e999': out of range"},
        {"task,y,x0,x1\na,1,1e39,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "column 3 'x0': '1e39': out of the float range"},
        {"task,y,x0,x1\na,1,0x10,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "'0x10': not a decimal number"},
        {"task,y,x0,x1\na,1,,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 3 'x0': '': empty field"},
        {"task,y,x0,x1\na,1,2,\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 4 'x1': '': empty field"},
        {"task,y,x,x\na,1,2,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 1: columns 3 and 4 are both named 'x'"},
        {"task,y,,x\na,1,2,3\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 1: column 3 has an empty name"},
        {"group,y,x\na,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "no task column 'task'"},
        {"task,target,x\na,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "no target column 'y'"},
        {"task,y\na,1\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "no feature column"},
        {"task,y,x0\n\"a,1,2\nb,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT,
         "line 2, column 1 'task': quote opened here is never closed"},
        {"task,y,x0\na\"b,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 1 'task': quote inside an unquoted field"},
        {"task,y,x0\n\"a\"b,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2, column 1 'task': text after the closing quote"},
        {"task,y,x0\na,1,2\n\nb,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 3 is empty"},
        {"task,y,x0\na,1,2\rb,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 2: carriage return not followed"},
        {"task,y,x0\na,1,2\n,1,2\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 3, column 1 'task': empty task name"},
        {"task,y,x0\na,1,2\na,1.5,2\n", 0, TNMTL_TARGET_CLASS, TNMTL_ERR_FORMAT,
         "line 3, column 2 'y': '1.5': not an integer class label"},
        {"task,y,x0\na,1,2\na,3e9,2\n", 0, TNMTL_TARGET_CLASS, TNMTL_ERR_FORMAT, "'3e9': not an integer class label"},
        {"task,y,x0\na,1,2\na,1,\"2\0\"\n", 25, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 3, column 3 'x0': NUL byte"},
        {"task,y,x0\n\"x\n\ny\",1,2\nb,1,zz\n", 0, TNMTL_TARGET_REAL, TNMTL_ERR_FORMAT, "line 5, column 3 'x0': 'zz'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct bad_case *bc = &cases[c];
        const char *path = write_tmp("bad.csv", bc->text, bc->len ? bc->len : strlen(bc->text));
        tnmtl_csv_options opt = {0};
        opt.kind = bc->kind;
        tnmtl_dataset ds;
        tnmtl_error err;
        tnmtl_error_clear(&err);
        tnmtl_status st = tnmtl_csv_load(path, &opt, &ds, &err);
        if (st != bc->want || !strstr(err.msg, bc->msg) || !strstr(err.msg, "bad.csv"))
            fail_msg("case %zu: status %d, message '%s'; expected %d and '%s'", c, (int)st, err.msg, (int)bc->want, bc->msg);
        assert_null(ds.task_begin);
    }
}

static void test_options_and_limits(void **state)
{
    (void)state;
    const char text[] = "task,y,x0,x1\na,1,2,3\nb,0,4,5\n";
    const char *path = write_tmp("ok.csv", text, sizeof text - 1);
    tnmtl_dataset ds;
    tnmtl_error err;
    tnmtl_csv_options opt = {0};
    const char *twice[] = {"x0", "x0"};
    opt.feature_columns = twice;
    opt.n_feature_columns = 2;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "feature column 'x0' is listed twice"));
    const char *missing[] = {"x9"};
    opt.feature_columns = missing;
    opt.n_feature_columns = 1;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no feature column 'x9'"));
    const char *target[] = {"y"};
    opt.feature_columns = target;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'y' is the target column"));
    opt.feature_columns = NULL;
    opt.n_feature_columns = 0;
    opt.target_column = "task";
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_INVALID);
    opt.target_column = NULL;

    /* Size cap: refused before reading. */
    opt.max_bytes = 10;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "ok.csv"));
    opt.max_bytes = sizeof text - 1;
    assert_int_equal(tnmtl_csv_load(path, &opt, &ds, &err), TNMTL_OK);
    assert_int_equal(ds.n_tasks, 2);
    assert_int_equal(ds.n_classes[0], 1);
    tnmtl_dataset_free(&ds);

    /* NULL options: classification with the default column names. */
    assert_int_equal(tnmtl_csv_load(path, NULL, &ds, &err), TNMTL_OK);
    assert_int_equal(ds.kind, TNMTL_TARGET_CLASS);
    assert_int_equal(ds.label[1], 0);
    tnmtl_dataset_free(&ds);

    char nofile[600];
    snprintf(nofile, sizeof nofile, "%s/missing.csv", tu_group_dir);
    assert_int_equal(tnmtl_csv_load(nofile, NULL, &ds, &err), TNMTL_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.csv"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_school),
        cmocka_unit_test(test_classification_and_quoting),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_options_and_limits),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
