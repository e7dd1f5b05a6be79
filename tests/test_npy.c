/* test_npy.c - .npy parser, loaders and writer.
 *
 * Good files come from numpy (scripts/make_npy_fixtures.py, element k of a
 * numeric array is k*0.25-3); malformed headers are built by hand here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "tnmtl/npy.h"
#include "util.h"

#define FIX "tests/fixtures/npy/"

/* ---- helpers ----------------------------------------------------------- */

/* Builds an .npy image: magic, version major.0, the dict text padded as
 * given, then data_bytes bytes of 0x11.  Returns the malloc'd buffer. */
static unsigned char *make_npy(int major, const char *dict, size_t data_bytes, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    *len = pre + dl + data_bytes;
    unsigned char *b = malloc(*len + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)(dl & 0xff);
    b[9] = (unsigned char)(dl >> 8);
    if (major != 1) {
        b[10] = (unsigned char)(dl >> 16);
        b[11] = (unsigned char)(dl >> 24);
    }
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, 0x11, data_bytes);
    return b;
}

/* Parses dict (v1.0) with the given amount of data; returns the status and
 * leaves the message in err. */
static tnmtl_status parse_dict_text(const char *dict, size_t data_bytes, int header_only,
                                    tnmtl_npy_header *h, tnmtl_error *err)
{
    size_t len;
    unsigned char *b = make_npy(1, dict, data_bytes, &len);
    tnmtl_status st = tnmtl_npy_parse(b, len, header_only, h, err);
    free(b);
    return st;
}

static void expect_fail(const char *dict, size_t data_bytes, tnmtl_status want, const char *substr)
{
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    tnmtl_status st = parse_dict_text(dict, data_bytes, 0, &h, &err);
    if (st != want || !strstr(err.msg, substr))
        fail_msg("dict %s: status %d msg '%s', wanted %d with '%s'", dict, (int)st, err.msg, (int)want, substr);
}

/* ---- numpy-written files ---------------------------------------------- */

static void check_f64_file(const char *name, int ndim, const int64_t *shape, tnmtl_dtype dtype)
{
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    double *d = NULL;
    if (tnmtl_npy_load_f64(name, &h, &d, &err)) fail_msg("%s: %s", name, err.msg);
    assert_int_equal(h.dtype, dtype);
    assert_int_equal(h.ndim, ndim);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        assert_int_equal(h.shape[i], shape[i]);
        count *= shape[i];
    }
    assert_int_equal(h.count, count);
    assert_int_equal(h.data_bytes, (size_t)count * tnmtl_dtype_size(dtype));
    assert_int_equal(h.data_offset % 64, 0);
    for (int64_t k = 0; k < count; k++) assert_true(d[k] == k * 0.25 - 3);
    free(d);

    float *f = NULL;
    if (tnmtl_npy_load_f32(name, &h, &f, &err)) fail_msg("%s: %s", name, err.msg);
    for (int64_t k = 0; k < count; k++) assert_true(f[k] == (float)(k * 0.25 - 3));
    free(f);
}

static void test_numpy_float_files(void **state)
{
    (void)state;
    check_f64_file(FIX "f4_2x3.npy", 2, (int64_t[]){2, 3}, TNMTL_DTYPE_F32);
    check_f64_file(FIX "f4_2x3_v2.npy", 2, (int64_t[]){2, 3}, TNMTL_DTYPE_F32);
    check_f64_file(FIX "f4_2x3_v3.npy", 2, (int64_t[]){2, 3}, TNMTL_DTYPE_F32);
    check_f64_file(FIX "f8_4.npy", 1, (int64_t[]){4}, TNMTL_DTYPE_F64);
    check_f64_file(FIX "f8_scalar.npy", 0, NULL, TNMTL_DTYPE_F64);
    check_f64_file(FIX "f4_empty_0x3.npy", 2, (int64_t[]){0, 3}, TNMTL_DTYPE_F32);
    check_f64_file(FIX "f4_8d.npy", 8, (int64_t[]){1, 2, 1, 2, 1, 2, 1, 2}, TNMTL_DTYPE_F32);
}

static void test_numpy_int_files(void **state)
{
    (void)state;
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    void *d;

    assert_int_equal(tnmtl_npy_load(FIX "i4_3x2x2.npy", &h, &d, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_I32);
    assert_int_equal(h.ndim, 3);
    assert_int_equal(h.count, 12);
    for (int k = 0; k < 12; k++) assert_int_equal(((int32_t *)d)[k], (int32_t)(k * 0.25 - 3));
    free(d);

    assert_int_equal(tnmtl_npy_load(FIX "i8_5.npy", &h, &d, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_I64);
    for (int k = 0; k < 5; k++) assert_int_equal(((int64_t *)d)[k], (int64_t)(k * 0.25 - 3));
    free(d);

    assert_int_equal(tnmtl_npy_load(FIX "u1_2x2x2.npy", &h, &d, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_U8);
    for (int k = 0; k < 8; k++) assert_int_equal(((uint8_t *)d)[k], (k * 7) % 256);
    free(d);

    assert_int_equal(tnmtl_npy_load(FIX "b1_7.npy", &h, &d, &err), TNMTL_OK);
    assert_int_equal(h.dtype, TNMTL_DTYPE_BOOL);
    assert_int_equal(h.shape[0], 7);
    for (int k = 0; k < 7; k++) assert_int_equal(((uint8_t *)d)[k], k % 3 == 0);
    free(d);

    /* The float loaders refuse integer data, naming the dtype. */
    double *f;
    assert_int_equal(tnmtl_npy_load_f64(FIX "i4_3x2x2.npy", &h, &f, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "<i4"));
    assert_null(f);
}

static void test_numpy_refused_files(void **state)
{
    (void)state;
    static const struct { const char *file, *msg; } cases[] = {
        {FIX "f4_2x3_fortran.npy", "Fortran"},
        {FIX "f4_2x3_bigendian.npy", "big-endian"},
        {FIX "c8_2.npy", "unsupported dtype '<c8'"},
        {FIX "f2_3.npy", "unsupported dtype '<f2'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tnmtl_npy_header h;
        tnmtl_error err = {0};
        double *d = (double *)&h;
        tnmtl_status st = tnmtl_npy_load_f64(cases[i].file, &h, &d, &err);
        if (st != TNMTL_ERR_FORMAT || !strstr(err.msg, cases[i].msg) || !strstr(err.msg, cases[i].file))
            fail_msg("%s: status %d msg '%s'", cases[i].file, (int)st, err.msg);
        assert_null(d);
    }
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    double *d;
    assert_int_equal(tnmtl_npy_load_f64(FIX "no_such_file.npy", &h, &d, &err), TNMTL_ERR_IO);
    assert_non_null(strstr(err.msg, "no_such_file.npy"));
}

/* ---- writer --------------------------------------------------------------- */

static void test_save_matches_numpy_bytes(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float v[6];
    for (int k = 0; k < 6; k++) v[k] = (float)(k * 0.25 - 3);
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F32, 2, (int64_t[]){2, 3}, v, &err), TNMTL_OK);

    unsigned char *mine, *ref;
    size_t ml, rl;
    assert_int_equal(tnmtl_read_file(path, 1 << 20, &mine, &ml, &err), TNMTL_OK);
    assert_int_equal(tnmtl_read_file(FIX "f4_2x3.npy", 1 << 20, &ref, &rl, &err), TNMTL_OK);
    assert_int_equal(ml, rl);
    assert_memory_equal(mine, ref, rl);   /* byte for byte what numpy.save writes */
    free(mine);
    free(ref);

    /* 1-d shape is written as "(4,)", like numpy. */
    double dv[4] = {-3, -2.75, -2.5, -2.25};
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F64, 1, (int64_t[]){4}, dv, &err), TNMTL_OK);
    assert_int_equal(tnmtl_read_file(path, 1 << 20, &mine, &ml, &err), TNMTL_OK);
    assert_int_equal(tnmtl_read_file(FIX "f8_4.npy", 1 << 20, &ref, &rl, &err), TNMTL_OK);
    assert_int_equal(ml, rl);
    assert_memory_equal(mine, ref, rl);
    free(mine);
    free(ref);
    tu_rmtree(dir);
}

static void test_save_roundtrip_all_dtypes(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/r.npy", dir);
    unsigned char raw[8 * 24];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)(i * 37 + 5);
    static const tnmtl_dtype all[] = {TNMTL_DTYPE_BOOL, TNMTL_DTYPE_U8, TNMTL_DTYPE_I32,
                                      TNMTL_DTYPE_I64, TNMTL_DTYPE_F32, TNMTL_DTYPE_F64};
    const int64_t shapes[][8] = {{24}, {2, 3, 4}, {1, 1, 1, 1, 2, 3, 2, 2}, {0, 5}};
    const int ndims[] = {1, 3, 8, 2};
    for (size_t d = 0; d < 6; d++) {
        for (int s = 0; s < 4; s++) {
            tnmtl_error err = {0};
            assert_int_equal(tnmtl_npy_save(path, all[d], ndims[s], shapes[s], raw, &err), TNMTL_OK);
            tnmtl_npy_header h;
            void *back;
            if (tnmtl_npy_load(path, &h, &back, &err)) fail_msg("%s", err.msg);
            assert_int_equal(h.dtype, all[d]);
            assert_int_equal(h.ndim, ndims[s]);
            for (int i = 0; i < ndims[s]; i++) assert_int_equal(h.shape[i], shapes[s][i]);
            assert_int_equal(h.data_bytes, (size_t)h.count * tnmtl_dtype_size(all[d]));
            assert_memory_equal(back, raw, h.data_bytes);
            free(back);
        }
    }
    /* A scalar. */
    tnmtl_error err = {0};
    double pi = 3.25;
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F64, 0, NULL, &pi, &err), TNMTL_OK);
    tnmtl_npy_header h;
    double *back;
    assert_int_equal(tnmtl_npy_load_f64(path, &h, &back, &err), TNMTL_OK);
    assert_int_equal(h.ndim, 0);
    assert_int_equal(h.count, 1);
    assert_true(back[0] == 3.25);
    free(back);
    tu_rmtree(dir);
}

static void test_save_errors(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/e.npy", dir);
    float v[4] = {0};
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, v, &err),
                     TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F32, 2, (int64_t[]){2, -2}, v, &err), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_npy_save(path, TNMTL_DTYPE_F32, 2, (int64_t[]){INT64_MAX, INT64_MAX}, v, &err),
                     TNMTL_ERR_INVALID);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing written */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/e.npy", dir);
    assert_int_equal(tnmtl_npy_save(bad, TNMTL_DTYPE_F32, 1, (int64_t[]){4}, v, &err), TNMTL_ERR_IO);
    tu_rmtree(dir);
}

/* ---- hand-written headers ---------------------------------------------- */

static void test_dict_variants_accepted(void **state)
{
    (void)state;
    static const struct { const char *dict; tnmtl_dtype dtype; int ndim; int64_t s0, s1; } ok[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", TNMTL_DTYPE_F32, 2, 2, 3},
        {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", TNMTL_DTYPE_F32, 2, 2, 3},
        {"{'fortran_order':False,'shape':(2,3,),'descr':'<f8',}\n", TNMTL_DTYPE_F64, 2, 2, 3},
        {"  {  \"descr\" : \"=f8\" ,\n 'fortran_order' : False , 'shape' : ( 6 , ) , }   \n", TNMTL_DTYPE_F64, 1, 6, 0},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (6L,), }", TNMTL_DTYPE_U8, 1, 6, 0},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (1, 6), }", TNMTL_DTYPE_BOOL, 2, 1, 6},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }", TNMTL_DTYPE_I32, 2, 3, 2},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2), }", TNMTL_DTYPE_I64, 2, 3, 2},
        {"{'descr': 'u1', 'fortran_order': False, 'shape': (2, 3), }", TNMTL_DTYPE_U8, 2, 2, 3},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tnmtl_npy_header h;
        tnmtl_error err = {0};
        size_t bytes = 6 * tnmtl_dtype_size(ok[i].dtype);
        if (parse_dict_text(ok[i].dict, bytes, 0, &h, &err)) fail_msg("%s: %s", ok[i].dict, err.msg);
        assert_int_equal(h.dtype, ok[i].dtype);
        assert_int_equal(h.ndim, ok[i].ndim);
        assert_int_equal(h.shape[0], ok[i].s0);
        if (ok[i].ndim > 1) assert_int_equal(h.shape[1], ok[i].s1);
        assert_int_equal(h.count, 6);
        assert_int_equal(h.data_bytes, bytes);
        assert_int_equal(h.data_offset, 10 + strlen(ok[i].dict));
    }
    /* v2.0 and v3.0 preambles (4-byte header length). */
    for (int major = 2; major <= 3; major++) {
        size_t len;
        unsigned char *b = make_npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 20, &len);
        tnmtl_npy_header h;
        tnmtl_error err = {0};
        assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_OK);
        assert_int_equal(h.count, 5);
        assert_int_equal(h.data_offset, len - 20);
        free(b);
    }
}

static void test_dict_malformed(void **state)
{
    (void)state;
    expect_fail("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "big-endian");
    expect_fail("{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", 16, TNMTL_ERR_FORMAT, "big-endian");
    expect_fail("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "byte order");
    expect_fail("{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "byte order");
    expect_fail("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, TNMTL_ERR_FORMAT, "Fortran");
    expect_fail("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "Fortran");
    expect_fail("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, TNMTL_ERR_FORMAT, "unsupported dtype");
    expect_fail("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, TNMTL_ERR_FORMAT, "unsupported dtype");
    expect_fail("{'descr': '<U0', 'fortran_order': False, 'shape': (2,), }", 24, TNMTL_ERR_FORMAT, "unsupported dtype");
    expect_fail("{'descr': '>U3', 'fortran_order': False, 'shape': (2,), }", 24, TNMTL_ERR_FORMAT, "unsupported dtype");
    expect_fail("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 23, TNMTL_ERR_FORMAT, "truncated");
    expect_fail("{'descr': '', 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "unsupported dtype");
    expect_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "structured");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 0, TNMTL_ERR_FORMAT, "negative");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", 0, TNMTL_ERR_FORMAT, "negative");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, TNMTL_ERR_FORMAT, "overflows");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, TNMTL_ERR_FORMAT, "overflows");
    expect_fail("{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807,), }", 0, TNMTL_ERR_FORMAT, "overflows");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, TNMTL_ERR_FORMAT, "more than 8");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", 8, TNMTL_ERR_FORMAT, "shape");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, TNMTL_ERR_FORMAT, "not a tuple");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 24, TNMTL_ERR_FORMAT, "shape");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", 8, TNMTL_ERR_FORMAT, "header dict");
    expect_fail("{'descr': '<f4', 'fortran_order': False}", 8, TNMTL_ERR_FORMAT, "missing key 'shape'");
    expect_fail("{'fortran_order': False, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "missing key 'descr'");
    expect_fail("{'descr': '<f4', 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "missing key 'fortran_order'");
    expect_fail("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "duplicate");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8, TNMTL_ERR_FORMAT, "unexpected key 'extra'");
    expect_fail("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "True or False");
    expect_fail("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "True or False");
    expect_fail("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "header dict");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, TNMTL_ERR_FORMAT, "after the dict");
    expect_fail("'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, TNMTL_ERR_FORMAT, "not a dict");
    expect_fail("", 8, TNMTL_ERR_FORMAT, "not a dict");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\xc3\xa9", 8, TNMTL_ERR_FORMAT, "non-ASCII");
    expect_fail("{'descr': '<f\xe9" "4', 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "non-ASCII");
    expect_fail("{'descr': '<f4',\x01 'fortran_order': False, 'shape': (2,), }", 8, TNMTL_ERR_FORMAT, "control");
    /* Declared data larger than the bytes present. */
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23, TNMTL_ERR_FORMAT, "truncated .npy data");
    expect_fail("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", 64, TNMTL_ERR_FORMAT, "truncated");
    /* ... which header_only accepts. */
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    assert_int_equal(parse_dict_text("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
                                     0, 1, &h, &err), TNMTL_OK);
    assert_int_equal(h.count, 1000000000000000000LL);
    assert_int_equal(h.data_bytes, 8000000000000000000ULL);
    /* Zero-size arrays are fine. */
    assert_int_equal(parse_dict_text("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", 0, 0, &h, &err),
                     TNMTL_OK);
    assert_int_equal(h.count, 0);
}

static void test_preamble_malformed(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    size_t len;
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    unsigned char *b = make_npy(1, dict, 8, &len);

    /* Every truncation of a valid file fails; with header_only, every
     * truncation that still holds the header succeeds. */
    for (size_t n = 0; n < len; n++) {
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, b, n);
        assert_int_equal(tnmtl_npy_parse(cut, n, 0, &h, &err), TNMTL_ERR_FORMAT);
        tnmtl_status st = tnmtl_npy_parse(cut, n, 1, &h, &err);
        assert_int_equal(st, n >= 10 + strlen(dict) ? TNMTL_OK : TNMTL_ERR_FORMAT);
        free(cut);
    }
    assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_OK);
    assert_int_equal(tnmtl_npy_parse(NULL, 0, 0, &h, &err), TNMTL_ERR_FORMAT);

    /* Header length lying beyond the buffer. */
    b[8] = 0xff;
    b[9] = 0xff;
    assert_int_equal(tnmtl_npy_parse(b, len, 1, &h, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "header length 65535"));
    free(b);
    b = make_npy(2, dict, 8, &len);
    b[11] = 0x80; /* 2 GiB header */
    assert_int_equal(tnmtl_npy_parse(b, len, 1, &h, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "header length"));
    b[8] = b[9] = b[10] = b[11] = 0xff; /* 4 GiB - 1 */
    assert_int_equal(tnmtl_npy_parse(b, len, 1, &h, &err), TNMTL_ERR_FORMAT);
    free(b);
    /* Header length shorter than the dict: the dict is cut. */
    b = make_npy(1, dict, 8, &len);
    b[8] = 20;
    assert_int_equal(tnmtl_npy_parse(b, len, 1, &h, &err), TNMTL_ERR_FORMAT);
    /* Bad magic and versions. */
    b[8] = (unsigned char)strlen(dict);
    b[0] = 0x92;
    assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    b[0] = 0x93;
    b[6] = 4;
    assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "version 4.0"));
    b[6] = 1;
    b[7] = 1;
    assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_ERR_FORMAT);
    b[6] = 0;
    b[7] = 0;
    assert_int_equal(tnmtl_npy_parse(b, len, 0, &h, &err), TNMTL_ERR_FORMAT);
    free(b);
}

/* Random corruptions of a valid file: the parser must never crash, never
 * read out of bounds (run under ASan) and, when it accepts, report sizes
 * consistent with the buffer. */
static void test_fuzz_mutations(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
    size_t len;
    unsigned char *good = make_npy(1, dict, 48, &len);
    uint64_t x = 88172645463325252ULL;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = len;
        unsigned char *b = malloc(len);
        memcpy(b, good, len);
        int muts = 1 + it % 4;
        for (int m = 0; m < muts; m++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t pos = (size_t)(x % len);
            unsigned char byte = (unsigned char)(x >> 32);
            if (x & (1ULL << 40)) byte = (unsigned char)"0123456789(),: '\"{}-L"[(x >> 41) % 21];
            b[pos] = byte;
        }
        if (it % 7 == 0) n = (size_t)(x % (len + 1));
        tnmtl_npy_header h;
        tnmtl_error err = {0};
        if (tnmtl_npy_parse(b, n, 0, &h, &err) == TNMTL_OK) {
            accepted++;
            assert_true(h.data_offset + h.data_bytes <= n);
            assert_true(h.ndim >= 0 && h.ndim <= TNMTL_NPY_MAX_NDIM);
            assert_int_equal(h.data_bytes, (size_t)h.count * tnmtl_dtype_size(h.dtype));
        } else {
            assert_true(err.msg[0] != '\0');
        }
        free(b);
    }
    assert_true(accepted > 0); /* mutations in the data or padding keep it valid */
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_float_files),
        cmocka_unit_test(test_numpy_int_files),
        cmocka_unit_test(test_numpy_refused_files),
        cmocka_unit_test(test_save_matches_numpy_bytes),
        cmocka_unit_test(test_save_roundtrip_all_dtypes),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_dict_variants_accepted),
        cmocka_unit_test(test_dict_malformed),
        cmocka_unit_test(test_preamble_malformed),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
