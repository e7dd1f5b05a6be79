/* test_safetensors.c - safetensors round trip, a file written by Python,
 * corrupt files that must fail cleanly, and atomic replacement. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "testutil.h"
#include "tnmtl.h"
#include "tnmtl/safetensors.h"


static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tu_group_dir, name);
    return path;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

/* Number of "*.tmp.*" files left in tu_group_dir. */
static int temp_files_left(void)
{
    DIR *d = opendir(tu_group_dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    float w[6] = {1.5f, -2.25f, 0, 3e-8f, -1e30f, 7};
    double s = -0.1;
    int64_t ids[4] = {-5, 0, INT64_MAX, INT64_MIN};
    uint8_t bytes[5] = {0, 1, 2, 254, 255};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x7f80};
    tnmtl_st_tensor t[] = {
        {"u8 odd", TNMTL_ST_U8, 1, {5}, bytes},   /* 5 bytes: the writer must keep the others aligned */
        {"w", TNMTL_ST_F32, 2, {2, 3}, w},
        {"scalar", TNMTL_ST_F64, 0, {0}, &s},
        {"ids", TNMTL_ST_I64, 1, {4}, ids},
        {"none", TNMTL_ST_I32, 2, {0, 7}, NULL},
        {"bf", TNMTL_ST_BF16, 1, {3}, bf},
        {"name \"with\" quotes\\ and \xc3\xa9", TNMTL_ST_U8, 1, {2}, bytes},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    tnmtl_st_meta meta[] = {{"format", "tnmtl-checkpoint"}, {"config", "{\"a\": [1, 2], \"b\": \"x\\ny\"}"}, {"empty", ""}};
    tnmtl_error err;
    const char *path = tmp_path("rt.safetensors");
    assert_int_equal(tnmtl_st_save(path, t, n, meta, 3, &err), TNMTL_OK);
    assert_int_equal(temp_files_left(), 0);

    size_t len;
    unsigned char *raw = read_all(path, &len);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)raw[i] << (8 * i);
    assert_int_equal((8 + hl) % 8, 0);                       /* data area 8-aligned */
    assert_int_equal(len, 8 + hl + 5 + 24 + 8 + 32 + 6 + 2); /* every byte accounted for */
    assert_int_equal(raw[8], '{');
    free(raw);

    tnmtl_st_file *f;
    tnmtl_status st = tnmtl_st_load(path, 0, &f, &err);
    if (st) fail_msg("%s", err.msg);
    assert_int_equal(tnmtl_st_count(f), n);
    for (int i = 1; i < n; i++) assert_true(strcmp(tnmtl_st_at(f, i - 1)->name, tnmtl_st_at(f, i)->name) < 0);
    for (int i = 0; i < n; i++) {
        const tnmtl_st_tensor *g = tnmtl_st_get(f, t[i].name);
        assert_non_null(g);
        assert_int_equal(g->dtype, t[i].dtype);
        assert_int_equal(g->ndim, t[i].ndim);
        for (int d = 0; d < g->ndim; d++) assert_int_equal(g->shape[d], t[i].shape[d]);
        const size_t nb = (size_t)tnmtl_st_numel(g) * tnmtl_st_dtype_size(g->dtype);
        assert_int_equal((uintptr_t)g->data % tnmtl_st_dtype_size(g->dtype), 0);
        if (nb) assert_memory_equal(g->data, t[i].data, nb);
    }
    assert_int_equal(tnmtl_st_numel(tnmtl_st_get(f, "scalar")), 1);
    assert_int_equal(tnmtl_st_numel(tnmtl_st_get(f, "none")), 0);
    assert_null(tnmtl_st_get(f, "missing"));

    const float *pw;
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F32, 2, (const int64_t[]){2, 3}, (const void **)&pw, &err), TNMTL_OK);
    assert_true(pw[4] == -1e30f);
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F32, 2, (const int64_t[]){-1, 3}, (const void **)&pw, &err), TNMTL_OK);
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F32, -1, NULL, (const void **)&pw, &err), TNMTL_OK);
    const void *p;
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F64, 2, NULL, &p, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "rt.safetensors: tensor 'w' has dtype F32, expected F64"));
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F32, 2, (const int64_t[]){3, 2}, &p, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "tensor 'w' has shape [2, 3], expected [3, 2]"));
    assert_int_equal(tnmtl_st_find(f, "w", TNMTL_ST_F32, 1, NULL, &p, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "expected 1 dimensions"));
    assert_int_equal(tnmtl_st_find(f, "params", TNMTL_ST_F32, 1, NULL, &p, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no tensor named 'params'"));

    assert_int_equal(tnmtl_st_meta_count(f), 3);
    assert_string_equal(tnmtl_st_meta_get(f, "format"), "tnmtl-checkpoint");
    assert_string_equal(tnmtl_st_meta_get(f, "config"), meta[1].value);
    assert_string_equal(tnmtl_st_meta_get(f, "empty"), "");
    assert_null(tnmtl_st_meta_get(f, "nope"));
    assert_string_equal(tnmtl_st_meta_at(f, 0)->key, "config");
    const char *v;
    assert_int_equal(tnmtl_st_meta_find(f, "nope", &v, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no metadata 'nope'"));
    tnmtl_st_free(f);

    /* No tensors and no metadata: "{}" padded. */
    assert_int_equal(tnmtl_st_save(path, NULL, 0, NULL, 0, &err), TNMTL_OK);
    assert_int_equal(tnmtl_st_load(path, 0, &f, &err), TNMTL_OK);
    assert_int_equal(tnmtl_st_count(f), 0);
    assert_int_equal(tnmtl_st_meta_count(f), 0);
    assert_null(tnmtl_st_get(f, "x"));
    assert_null(tnmtl_st_meta_get(f, "x"));
    tnmtl_st_free(f);
}

static void test_bad_save_arguments(void **state)
{
    (void)state;
    float x[2] = {1, 2};
    tnmtl_error err;
    const char *path = tmp_path("bad_args.safetensors");
    struct { tnmtl_st_tensor t[2]; int n; const char *msg; } cases[] = {
        {{{"a", TNMTL_ST_F32, 1, {2}, x}, {"a", TNMTL_ST_F32, 1, {2}, x}}, 2, "two tensors are named 'a'"},
        {{{"__metadata__", TNMTL_ST_F32, 1, {2}, x}}, 1, "invalid name"},
        {{{"", TNMTL_ST_F32, 1, {2}, x}}, 1, "invalid name"},
        {{{"a", TNMTL_ST_F32, 1, {2}, NULL}}, 1, "tensor 'a' has no data"},
        {{{"a", TNMTL_ST_F32, 1, {-2}, x}}, 1, "invalid or too large shape [-2]"},
        {{{"a", TNMTL_ST_F32, 9, {2}, x}}, 1, "9 dimensions"},
        {{{"a", (tnmtl_st_dtype)99, 1, {2}, x}}, 1, "unknown dtype 99"},
        {{{"a", TNMTL_ST_F64, 3, {INT64_MAX, INT64_MAX, 2}, x}}, 1, "too large"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tnmtl_error_clear(&err);
        assert_int_equal(tnmtl_st_save(path, cases[c].t, cases[c].n, NULL, 0, &err), TNMTL_ERR_INVALID);
        if (!strstr(err.msg, cases[c].msg)) fail_msg("case %zu: '%s' lacks '%s'", c, err.msg, cases[c].msg);
    }
    tnmtl_st_meta dup[] = {{"k", "1"}, {"k", "2"}};
    assert_int_equal(tnmtl_st_save(path, NULL, 0, dup, 2, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "metadata key 'k' given twice"));
    FILE *f = fopen(path, "rb");
    assert_null(f); /* nothing was created */
    assert_int_equal(temp_files_left(), 0);
}

static void test_python_fixture(void **state)
{
    (void)state;
    tnmtl_st_file *f;
    tnmtl_error err;
    tnmtl_status st = tnmtl_st_load("tests/fixtures/safetensors/python.safetensors", 0, &f, &err);
    if (st) fail_msg("%s", err.msg);
    assert_int_equal(tnmtl_st_count(f), 7);
    const float *w, *bias;
    assert_int_equal(tnmtl_st_find(f, "weight", TNMTL_ST_F32, 2, (const int64_t[]){2, 3}, (const void **)&w, &err), TNMTL_OK);
    for (int i = 0; i < 6; i++) assert_true(w[i] == (float)i * 0.5f - 1.0f);
    assert_int_equal(tnmtl_st_find(f, "layer.0/bias", TNMTL_ST_F32, 1, (const int64_t[]){3}, (const void **)&bias, &err),
                     TNMTL_OK);
    assert_true(bias[0] == 0.25f && bias[1] == -0.125f && bias[2] == 3.0f);
    const int64_t *ids;
    assert_int_equal(tnmtl_st_find(f, "ids", TNMTL_ST_I64, 1, (const int64_t[]){3}, (const void **)&ids, &err), TNMTL_OK);
    assert_true(ids[0] == -1 && ids[1] == 0 && ids[2] == (int64_t)1 << 40);
    const uint8_t *mask;
    assert_int_equal(tnmtl_st_find(f, "mask", TNMTL_ST_U8, 2, (const int64_t[]){2, 2}, (const void **)&mask, &err), TNMTL_OK);
    assert_true(mask[0] == 0 && mask[1] == 1 && mask[2] == 255 && mask[3] == 7);
    const double *pi;
    assert_int_equal(tnmtl_st_find(f, "scalar", TNMTL_ST_F64, 0, NULL, (const void **)&pi, &err), TNMTL_OK);
    assert_true(*pi == M_PI);
    const uint16_t *half;
    assert_int_equal(tnmtl_st_find(f, "half", TNMTL_ST_F16, 1, (const int64_t[]){2}, (const void **)&half, &err), TNMTL_OK);
    assert_int_equal(half[0], 0x3E00); /* 1.5 */
    assert_int_equal(half[1], 0xC000); /* -2 */
    const void *e;
    assert_int_equal(tnmtl_st_find(f, "empty", TNMTL_ST_F32, 2, (const int64_t[]){0, 3}, &e, &err), TNMTL_OK);
    assert_string_equal(tnmtl_st_meta_get(f, "format"), "pt");
    assert_string_equal(tnmtl_st_meta_get(f, "note"), "h\xc3\xa9llo \"quoted\" \\ back");
    tnmtl_st_free(f);
}

/* A file from a header text and a data area: 8-byte length, header, data. */
static size_t make_file(unsigned char *out, const char *header, size_t data_len)
{
    const size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) out[8 + hl + i] = (unsigned char)(i * 37 + 11);
    return 8 + hl + data_len;
}

static void test_corrupt(void **state)
{
    (void)state;
    static const struct { const char *header; size_t data; tnmtl_status want; const char *msg; } cases[] = {
        {"{\"params\":{\"dtype\":\"F32\",\"shape\":[300],\"data_offsets\":[0,999999]}}", 1200, TNMTL_ERR_FORMAT,
         "bad.safetensors: tensor 'params' data_offsets [0, 999999] exceed the 1200-byte data area"},
        {"{\"a\":", 0, TNMTL_ERR_FORMAT, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, TNMTL_ERR_FORMAT, "unexpected bytes after the JSON"},
        {"[1, 2]", 0, TNMTL_ERR_FORMAT, "does not start with '{'"},
        {"{}", 4, TNMTL_ERR_FORMAT, "bytes [0, 4] of the data area belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT, "tensor 'a' has unknown dtype 'F33'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT, "shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, TNMTL_ERR_FORMAT, "begin <= end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, TNMTL_ERR_FORMAT, "data_offsets must be two integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, TNMTL_ERR_FORMAT, "needs a string dtype, a shape array and a data_offsets"},
        {"{\"a\":[1]}", 0, TNMTL_ERR_FORMAT, "tensor 'a' is not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, TNMTL_ERR_FORMAT,
         "tensor 'a' has 8 bytes of data but dtype F32 and shape [3] need 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, TNMTL_ERR_FORMAT, "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, TNMTL_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         20, TNMTL_ERR_FORMAT, "bytes [8, 12] of the data area belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 9, TNMTL_ERR_FORMAT,
         "bytes [8, 9] of the data area belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT,
         "shape [4294967296, 4294967296, 4294967296] is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, TNMTL_ERR_FORMAT, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, TNMTL_ERR_FORMAT,
         "9 dimensions (at most 8"},
        {"{\"__metadata__\":{\"k\":1}}", 0, TNMTL_ERR_FORMAT, "metadata 'k' is not a string"},
        {"{\"__metadata__\":[\"k\"]}", 0, TNMTL_ERR_FORMAT, "__metadata__ is not a JSON object"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, TNMTL_ERR_FORMAT, "metadata key 'k' appears twice"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, TNMTL_ERR_FORMAT, "__metadata__ appears twice"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, TNMTL_ERR_FORMAT, "tensor 'a' appears twice"},
        {"{\"\xff\":{}}", 0, TNMTL_ERR_FORMAT, "not valid UTF-8"},
        {"{\"\xc0\x80\":{}}", 0, TNMTL_ERR_FORMAT, "not valid UTF-8"},
    };
    unsigned char buf[4096];
    tnmtl_st_file *f;
    tnmtl_error err;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t len = make_file(buf, cases[c].header, cases[c].data);
        tnmtl_error_clear(&err);
        f = (tnmtl_st_file *)1;
        tnmtl_status st = tnmtl_st_parse(buf, len, "bad.safetensors", &f, &err);
        if (st != cases[c].want || !strstr(err.msg, cases[c].msg))
            fail_msg("case %zu: status %d '%s'; expected %d '%s'", c, (int)st, err.msg, (int)cases[c].want, cases[c].msg);
        assert_null(f);
    }

    /* Header length: lying (past the end), absurd, too small; file too short. */
    size_t len = make_file(buf, "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    assert_int_equal(tnmtl_st_parse(buf, len, "ok", &f, &err), TNMTL_OK);
    tnmtl_st_free(f);
    unsigned char bad[4096];
    memcpy(bad, buf, len);
    bad[0] = (unsigned char)(len - 7); /* one more than what follows the length */
    assert_int_equal(tnmtl_st_parse(bad, len, "lie", &f, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "lie: header length"));
    assert_non_null(strstr(err.msg, "exceeds"));
    memset(bad, 0xff, 8);
    assert_int_equal(tnmtl_st_parse(bad, len, "huge", &f, &err), TNMTL_ERR_FORMAT);
    memset(bad, 0, 8);
    bad[0] = 1;
    assert_int_equal(tnmtl_st_parse(bad, len, "tiny", &f, &err), TNMTL_ERR_FORMAT);
    assert_int_equal(tnmtl_st_parse(buf, 5, "short", &f, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "short: 5 bytes is too short"));

    /* Every truncation of a valid file fails cleanly, every single-byte
     * corruption either fails cleanly or loads a consistent file. */
    float w[3] = {1, 2, 3};
    int64_t k[2] = {7, 8};
    tnmtl_st_tensor t[] = {{"w", TNMTL_ST_F32, 1, {3}, w}, {"k", TNMTL_ST_I64, 2, {1, 2}, k}};
    tnmtl_st_meta m[] = {{"format", "x"}};
    const char *path = tmp_path("valid.safetensors");
    assert_int_equal(tnmtl_st_save(path, t, 2, m, 1, &err), TNMTL_OK);
    size_t flen;
    unsigned char *good = read_all(path, &flen);
    for (size_t cut = 0; cut < flen; cut++) {
        assert_int_not_equal(tnmtl_st_parse(good, cut, "cut", &f, &err), TNMTL_OK);
        assert_null(f);
    }
    int loaded = 0;
    for (size_t i = 0; i < flen; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(bad, good, flen);
            bad[i] ^= (unsigned char)(1u << bit);
            if (tnmtl_st_parse(bad, flen, "flip", &f, &err) == TNMTL_OK) {
                loaded++;
                for (int j = 0; j < tnmtl_st_count(f); j++) assert_non_null(tnmtl_st_at(f, j)->data);
                tnmtl_st_free(f);
            } else {
                assert_non_null(strstr(err.msg, "flip"));
            }
        }
    print_message("%d of %zu single-bit corruptions still load (data bytes, names)\n", loaded, 3 * flen);
    free(good);

    /* Size cap and missing file. */
    assert_int_equal(tnmtl_st_load(path, 16, &f, &err), TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "valid.safetensors"));
    assert_int_equal(tnmtl_st_load(tmp_path("missing.safetensors"), 0, &f, &err), TNMTL_ERR_IO);
}

/* A tensor not aligned to its element size in the file (odd header length,
 * odd offset) is still returned aligned. */
static void test_unaligned(void **state)
{
    (void)state;
    unsigned char buf[512];
    const char *h = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    size_t len = make_file(buf, h, 0);
    const float v[2] = {0.5f, -4.0f};
    buf[len] = 42;
    memcpy(buf + len + 1, v, sizeof v);
    len += 9;
    tnmtl_st_file *f;
    tnmtl_error err;
    assert_int_equal(tnmtl_st_parse(buf, len, "odd", &f, &err), TNMTL_OK);
    const float *p;
    assert_int_equal(tnmtl_st_find(f, "f", TNMTL_ST_F32, 1, (const int64_t[]){2}, (const void **)&p, &err), TNMTL_OK);
    assert_int_equal((uintptr_t)p % 4, 0);
    assert_true(p[0] == 0.5f && p[1] == -4.0f);
    assert_int_equal(*(const uint8_t *)tnmtl_st_get(f, "b")->data, 42);
    tnmtl_st_free(f);
}

/* A writer that fails half way (file size limit) leaves the old file intact
 * and no temporary file behind. */
static void test_atomic_write(void **state)
{
    (void)state;
    const char *path = tmp_path("ckpt.safetensors");
    float small[4] = {1, 2, 3, 4};
    tnmtl_st_tensor t1[] = {{"params", TNMTL_ST_F32, 1, {4}, small}};
    tnmtl_error err;
    assert_int_equal(tnmtl_st_save(path, t1, 1, NULL, 0, &err), TNMTL_OK);
    size_t len0;
    unsigned char *before = read_all(path, &len0);

    const size_t n = 1 << 20;
    float *big = calloc(n, sizeof *big);
    assert_non_null(big);
    tnmtl_st_tensor t2[] = {{"params", TNMTL_ST_F32, 1, {(int64_t)n}, big}};
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    tnmtl_status st = tnmtl_st_save(path, t2, 1, NULL, 0, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, TNMTL_ERR_IO);
    assert_non_null(strstr(err.msg, "ckpt.safetensors"));
    assert_int_equal(temp_files_left(), 0);
    size_t len1;
    unsigned char *after = read_all(path, &len1);
    assert_int_equal(len1, len0);
    assert_memory_equal(after, before, len0);
    free(after);

    /* Without the limit the same write replaces the file. */
    assert_int_equal(tnmtl_st_save(path, t2, 1, NULL, 0, &err), TNMTL_OK);
    assert_int_equal(temp_files_left(), 0);
    tnmtl_st_file *f;
    assert_int_equal(tnmtl_st_load(path, 0, &f, &err), TNMTL_OK);
    assert_int_equal(tnmtl_st_get(f, "params")->shape[0], (int64_t)n);
    tnmtl_st_free(f);

    /* A folder that does not exist: nothing is created. */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", tu_group_dir);
    assert_int_equal(tnmtl_st_save(nodir, t1, 1, NULL, 0, &err), TNMTL_ERR_IO);
    free(before);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_save_arguments),
        cmocka_unit_test(test_python_fixture),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_atomic_write),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
