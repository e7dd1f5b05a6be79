/* test_cli_norm.c - `tnmtl norm` end to end: JSON values on good files,
 * exit code 2 with a message naming the problem on bad ones. */
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
#include "tnmtl/norm.h"
#include "tnmtl/npy.h"
#include "util.h"
#include "fixtures/norm/norm_ref.h"

static char out[1 << 16];

static const char *path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_group_dir, name);
    return buf[k];
}

/* `tnmtl norm ARGS`: exit code; stdout (and stderr if merge) in out. */
#define run_norm(merge, fmt, ...) tu_cli_run(merge, out, sizeof out, "norm " fmt, ##__VA_ARGS__)

/* The number after "key": in the JSON line. */
static double json_number(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    if (!p) fail_msg("no %s in '%s'", key, json);
    return strtod(p + strlen(pat), NULL);
}

/* Entries of the "terms" array. */
static int json_terms(const char *json, double *t, int cap)
{
    const char *p = strstr(json, "\"terms\": [");
    if (!p) fail_msg("no terms in '%s'", json);
    p += strlen("\"terms\": [");
    int n = 0;
    while (n < cap && *p && *p != ']') {
        char *end;
        t[n++] = strtod(p, &end);
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}

static const norm_ref_case *ref_case(const char *name)
{
    for (size_t i = 0; i < sizeof norm_ref_cases / sizeof norm_ref_cases[0]; i++)
        if (!strcmp(norm_ref_cases[i].name, name)) return &norm_ref_cases[i];
    fail_msg("no reference case %s", name);
    return NULL;
}

static void save_case(const char *file, const norm_ref_case *c, int f64)
{
    int64_t n = 1;
    for (int i = 0; i < c->ndim; i++) n *= c->shape[i];
    tnmtl_error err = {0};
    if (f64) {
        double *w = malloc((size_t)n * sizeof *w);
        for (int64_t i = 0; i < n; i++) w[i] = norm_ref_value(c->seed, i);
        assert_int_equal(tnmtl_npy_save(file, TNMTL_DTYPE_F64, c->ndim, c->shape, w, &err), TNMTL_OK);
        free(w);
    } else {
        float *w = malloc((size_t)n * sizeof *w);
        for (int64_t i = 0; i < n; i++) w[i] = norm_ref_value(c->seed, i);
        assert_int_equal(tnmtl_npy_save(file, TNMTL_DTYPE_F32, c->ndim, c->shape, w, &err), TNMTL_OK);
        free(w);
    }
}

/* ---- good files ---------------------------------------------------------- */

static void test_values_match_numpy(void **state)
{
    (void)state;
    static const char *const names[] = {"t3x4x5", "t2x3x4x5", "conv1"};
    static const char *const mname[3] = {"laf", "tucker", "tt"};
    for (size_t k = 0; k < 3; k++) {
        const norm_ref_case *c = ref_case(names[k]);
        for (int f64 = 0; f64 <= 1; f64++) {
            save_case(path("w.npy"), c, f64);
            for (int m = 0; m < 3; m++) {
                int nt = m == 0 ? 1 : m == 1 ? c->ndim : c->ndim - 1;
                char gam[256] = "";
                for (int i = 0; i < nt; i++)
                    snprintf(gam + strlen(gam), sizeof gam - strlen(gam), "%s%g", i ? "," : "", 0.5 + 0.25 * i);
                int rc = run_norm(0, "--method %s --gamma %s %s", mname[m], gam, path("w.npy"));
                if (rc != 0) fail_msg("exit %d: %s", rc, out);
                assert_non_null(strstr(out, mname[m]));
                double v = json_number(out, "value"), t[8];
                assert_int_equal(json_terms(out, t, 8), nt);
                if (fabs(v - c->value[m]) > 1e-9 * fabs(c->value[m]))
                    fail_msg("%s %s f64=%d: value %.17g, numpy %.17g", names[k], mname[m], f64, v, c->value[m]);
                for (int i = 0; i < nt; i++)
                    if (fabs(t[i] - c->terms[m][i]) > 1e-9 * fabs(c->terms[m][i]))
                        fail_msg("%s %s term %d: %.17g vs %.17g", names[k], mname[m], i, t[i], c->terms[m][i]);
                assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1); /* one line */
            }
        }
    }
}

static void test_shape_gamma_and_grad(void **state)
{
    (void)state;
    const norm_ref_case *c = ref_case("t2x3x4x5");
    save_case(path("w.npy"), c, 0);
    int rc = run_norm(0, "--method tucker %s", path("w.npy"));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "{\"method\": \"tucker\", \"shape\": [2, 3, 4, 5], \"value\": "));
    double t[8], v1 = json_number(out, "value"), sum = 0;
    assert_int_equal(json_terms(out, t, 8), 4);
    for (int i = 0; i < 4; i++) sum += t[i];
    assert_true(fabs(v1 - sum) <= 1e-12 * sum);
    /* One gamma applies to every term; --opt=value works too. */
    rc = run_norm(0, "--gamma=2.5 %s --method=tucker", path("w.npy"));
    assert_int_equal(rc, 0);
    assert_true(fabs(json_number(out, "value") - 2.5 * sum) <= 1e-12 * sum);

    /* --grad: a .npy of the same shape and dtype with the library's subgradient. */
    rc = run_norm(0, "--method tt --gamma 0.5,0.75,1 %s --grad %s", path("w.npy"), path("g.npy"));
    if (rc != 0) fail_msg("exit %d: %s", rc, out);
    tnmtl_npy_header h;
    float *g;
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_npy_load_f32(path("g.npy"), &h, &g, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_F32);
    assert_int_equal(h.ndim, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(h.shape[i], c->shape[i]);
    for (int k = 0; k < c->n_grad; k++)
        if (fabs(g[c->grad_idx[k]] - c->grad[2][k]) > 1e-5)
            fail_msg("grad[%lld] %.9g vs numpy %.9g", (long long)c->grad_idx[k], g[c->grad_idx[k]], c->grad[2][k]);
    free(g);
    /* float64 in, float64 out: the double path's subgradient, unrounded. */
    save_case(path("w64.npy"), c, 1);
    rc = run_norm(0, "--method tt --gamma 0.5,0.75,1 %s --grad %s", path("w64.npy"), path("g64.npy"));
    if (rc != 0) fail_msg("exit %d: %s", rc, out);
    void *g64;
    assert_int_equal(tnmtl_npy_load(path("g64.npy"), &h, &g64, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_F64);
    assert_int_equal(h.ndim, 4);
    for (int k = 0; k < c->n_grad; k++) {
        const double gk = ((const double *)g64)[c->grad_idx[k]];
        if (fabs(gk - c->grad[2][k]) > 1e-10)
            fail_msg("float64 grad[%lld] %.17g vs numpy %.17g", (long long)c->grad_idx[k], gk, c->grad[2][k]);
    }
    free(g64);

    /* --help */
    rc = run_norm(0, "--help");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "usage: tnmtl norm"));
    assert_non_null(strstr(out, "--grad"));
}

/* ---- bad input: exit 2, message on stderr, nothing on stdout, no file ----- */

static void write_bytes(const char *file, const void *data, size_t len)
{
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_write_buffer_atomic(file, data, len, &err), TNMTL_OK);
}

static void expect_bad(const char *substr, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    remove(path("bad_grad.npy"));
    int rc = run_norm(1, "%s --grad %s", args, path("bad_grad.npy"));
    if (rc != 2 || !strstr(out, substr) || !strstr(out, "error"))
        fail_msg("'tnmtl norm %s': exit %d, output '%s' (wanted 2 and '%s')", args, rc, out, substr);
    if (strstr(out, "\"value\"")) fail_msg("'%s' printed a result: %s", args, out);
    struct stat st;
    if (stat(path("bad_grad.npy"), &st) == 0) fail_msg("'%s' wrote a gradient file", args);
    /* stdout alone is empty */
    rc = run_norm(0, "%s 2>/dev/null", args);
    assert_int_equal(rc, 2);
    assert_string_equal(out, "");
}

static void test_bad_files(void **state)
{
    (void)state;
    const norm_ref_case *c = ref_case("t3x4x5");
    save_case(path("good.npy"), c, 0);
    unsigned char *buf;
    size_t len;
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_read_file(path("good.npy"), 1 << 20, &buf, &len, &err), TNMTL_OK);

    write_bytes(path("trunc.npy"), buf, len - 7);
    expect_bad("truncated", "--method tucker %s", path("trunc.npy"));
    write_bytes(path("trunc_header.npy"), buf, 40);
    expect_bad("truncated .npy header", "--method tucker %s", path("trunc_header.npy"));
    write_bytes(path("empty.npy"), buf, 0);
    expect_bad("not an .npy file", "--method tucker %s", path("empty.npy"));

    /* NaN and Inf values. */
    float *data = (float *)(buf + 128);
    data[17] = NAN;
    write_bytes(path("nan.npy"), buf, len);
    expect_bad("element 17 is NaN", "--method laf %s", path("nan.npy"));
    data[17] = INFINITY;
    write_bytes(path("inf.npy"), buf, len);
    expect_bad("element 17 is infinite", "--method tt %s", path("inf.npy"));
    free(buf);

    expect_bad("Fortran", "--method tucker tests/fixtures/npy/f4_2x3_fortran.npy");
    expect_bad("big-endian", "--method tucker tests/fixtures/npy/f4_2x3_bigendian.npy");
    expect_bad("dtype |u1", "--method tucker tests/fixtures/npy/u1_2x2x2.npy");
    expect_bad("dtype <i4", "--method tucker tests/fixtures/npy/i4_3x2x2.npy");
    expect_bad("unsupported dtype '<c8'", "--method tucker tests/fixtures/npy/c8_2.npy");
    expect_bad("dimension 0 of the tensor is 0", "--method tucker tests/fixtures/npy/f4_empty_0x3.npy");
    expect_bad("scalar", "--method laf tests/fixtures/npy/f8_scalar.npy");
    expect_bad("at least 2 dimensions", "--method tt tests/fixtures/npy/f8_4.npy");
    expect_bad("cannot open", "--method tucker %s", path("missing.npy"));
    expect_bad("not a regular file", "--method tucker %s", tu_group_dir);

    /* 9 dimensions, hand-written header. */
    char hdr[128];
    int n = snprintf(hdr + 10, sizeof hdr - 10,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }\n");
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)n;
    hdr[9] = 0;
    float one = 1;
    memcpy(hdr + 10 + n, &one, 4);
    write_bytes(path("nine.npy"), hdr, (size_t)(10 + n + 4));
    expect_bad("more than 8 dimensions", "--method tucker %s", path("nine.npy"));
}

static void test_bad_options(void **state)
{
    (void)state;
    const norm_ref_case *c = ref_case("t3x4x5");
    char g[512];
    snprintf(g, sizeof g, "%s", path("good.npy"));
    save_case(g, c, 0);
    expect_bad("has 3 terms", "--method tucker --gamma 1,2 %s", g);
    expect_bad("has 2 terms", "--method tt --gamma 1,2,3 %s", g);
    expect_bad("has 1 term ", "--method laf --gamma 1,2 %s", g);
    expect_bad("negative", "--method tucker --gamma 1,-2,3 %s", g);
    expect_bad("not a finite number", "--method tucker --gamma 1,x,3 %s", g);
    expect_bad("not a finite number", "--method tucker --gamma nan %s", g);
    expect_bad("bad list", "--method tucker --gamma 1,,3 %s", g);
    expect_bad("unknown norm method 'svd'", "--method svd %s", g);
    expect_bad("--method is required", "%s", g);
    expect_bad("unknown option '--gama'", "--method laf --gama 1 %s", g);
    expect_bad("no input", "--method laf");
    expect_bad("more than one input", "--method laf %s %s", g, g);
    expect_bad("given twice", "--method laf --method tt %s", g);

    /* --grad without a value, and into a folder that does not exist. */
    int rc = run_norm(1, "--method laf %s --grad", g);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--grad needs a value"));
    rc = run_norm(1, "--method laf %s --grad %s/no/such/dir/g.npy", g, tu_group_dir);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "cannot create"));
    assert_null(strstr(out, "\"value\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_match_numpy),
        cmocka_unit_test(test_shape_gamma_and_grad),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
