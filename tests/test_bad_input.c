/* test_bad_input.c - hostile and malformed input through the tnmtl program:
 * every case must exit 2 with a message naming the problem, without a
 * crash and without leaving anything behind (no new, changed or
 * half-written file, no "*.tmp.*" file, in the case's folder, which holds
 * the inputs and the --out / --grad destinations).
 *
 * Formats: .npy (tnmtl norm), CSV, Omniglot .npz + ranges and PNG zips,
 * checkpoints (eval --model, train --resume), options, and models too big
 * for the machine (refused up front with the memory estimate). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "testutil.h"

static char out[1 << 16];
static char base_ckpt[512];    /* a valid checkpoint (synthetic, small model) */

/* ---- writing inputs ------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A v1.0 .npy: header dict with descr, fortran_order and shape (a Python
 * tuple literal); hlen != 0 overrides the declared header length. */
static size_t npy_bytes(unsigned char *buf, const char *descr, int fortran, const char *shape, const void *data,
                        size_t len, unsigned hlen)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                     fortran ? "True" : "False", shape);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    unsigned h = hlen ? hlen : (unsigned)(total - 10);
    buf[8] = (unsigned char)(h & 0xff);
    buf[9] = (unsigned char)(h >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 10 - (size_t)n - 1);
    buf[total - 1] = '\n';
    if (len) memcpy(buf + total, data, len);
    return total + len;
}

static void write_npy(const char *dir, const char *name, const char *descr, int fortran, const char *shape,
                      const void *data, size_t len, unsigned hlen)
{
    unsigned char buf[1024];
    assert_true(len < 512);
    write_file(dir, name, buf, npy_bytes(buf, descr, fortran, shape, data, len, hlen));
}

typedef struct member {
    const char *name;
    const void *data;
    size_t len;
} member;

/* A zip (an .npz or a zip of PNGs) of the members m[n], stored uncompressed
 * when store is set (so that tests can find and flip data bytes). */
static void write_zip(const char *dir, const char *name, const member *m, int n, int store)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int code;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    assert_non_null(za);
    for (int i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(za, m[i].data, m[i].len, 0);
        assert_non_null(src);
        zip_int64_t idx = zip_file_add(za, m[i].name, src, ZIP_FL_OVERWRITE);
        assert_true(idx >= 0);
        if (store) assert_int_equal(zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0), 0);
    }
    assert_int_equal(zip_close(za), 0);
}

#define OG 105
#define OG_PX (OG * OG)

/* images_background.npz with `rows` characters of 20 drawings (descr of
 * images.npy given), optional labels.npy (labels[r][d] = r + bad at [1][0]),
 * and its alphabet_ranges.tsv. */
static void write_npz(const char *dir, int rows, const char *descr, int with_labels, int bad_label, const char *tsv,
                      int store)
{
    const size_t n_img = (size_t)rows * 20 * OG_PX;
    unsigned char *img = malloc(n_img + 256);
    unsigned char *pix = malloc(n_img);
    assert_non_null(img);
    assert_non_null(pix);
    memset(pix, 1, n_img); /* True = background */
    for (size_t i = 0; i < n_img; i += 97) pix[i] = 0;
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, 20, %d, %d)", rows, OG, OG);
    unsigned char hdr[256];
    size_t hl = npy_bytes(hdr, descr, 0, shape, NULL, 0, 0);
    memcpy(img, hdr, hl);
    memcpy(img + hl, pix, n_img);
    free(pix);
    int64_t lab[64 * 20];
    assert_true(rows <= 64);
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < 20; d++) lab[r * 20 + d] = r;
    if (bad_label) lab[20] = 7;
    unsigned char labels[64 * 20 * 8 + 256];
    snprintf(shape, sizeof shape, "(%d, 20)", rows);
    size_t ll = npy_bytes(labels, "<i8", 0, shape, lab, (size_t)rows * 20 * 8, 0);
    member m[2] = {{"images.npy", img, hl + n_img}, {"labels.npy", labels, ll}};
    write_zip(dir, "images_background.npz", m, with_labels ? 2 : 1, store);
    free(img);
    write_text(dir, "alphabet_ranges.tsv", tsv);
}

static const char good_tsv[] = "background\tA\t1\t1\t1\nbackground\tB\t2\t3\t2\n";

/* A w x h grey PNG with a stroke, in a malloc'd buffer. */
static void *png_bytes(int w, int h, size_t *len)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)w;
    pi.height = (png_uint_32)h;
    pi.format = PNG_FORMAT_GRAY;
    unsigned char *px = malloc((size_t)w * h);
    assert_non_null(px);
    memset(px, 255, (size_t)w * h);
    for (int i = 10; i < h - 10; i++) px[i * w + w / 2] = 0;
    png_alloc_size_t n = 0;
    assert_true(png_image_write_to_memory(&pi, NULL, &n, 0, px, 0, NULL));
    void *buf = malloc(n);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&pi, buf, &n, 0, px, 0, NULL));
    free(px);
    *len = n;
    return buf;
}

/* in.zip of PNG members named names[n]; member `odd` (or -1) gets `odd_data`. */
static void write_png_zip(const char *dir, const char *const *names, int n, int odd, const void *odd_data,
                          size_t odd_len)
{
    size_t len;
    void *png = png_bytes(OG, OG, &len);
    member m[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        m[i].name = names[i];
        m[i].data = i == odd ? odd_data : png;
        m[i].len = i == odd ? odd_len : len;
    }
    write_zip(dir, "in.zip", m, n, 0);
    free(png);
}

static const char *const good_pngs[] = {"top/Alpha/character01/0001_01.png", "top/Alpha/character01/0001_02.png",
                                        "top/Beta/character01/0002_01.png", "top/Beta/character01/0002_02.png"};

/* ---- checkpoints ----------------------------------------------------------- */

/* Copies the base checkpoint into DIR/run/, with its JSON header changed
 * by mutate (NULL: unchanged). */
static void write_ckpt(const char *dir, void (*mutate)(cJSON *root))
{
    char path[1024];
    snprintf(path, sizeof path, "%s/run", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    size_t len;
    unsigned char *b = read_all(base_ckpt, &len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    assert_true(8 + n <= len);
    char *json = strndup((const char *)b + 8, (size_t)n);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    if (mutate) mutate(root);
    char *text = cJSON_PrintUnformatted(root);
    size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
    unsigned char *nb = malloc(8 + padded + (len - 8 - n));
    for (int i = 0; i < 8; i++) nb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(nb + 8, text, tl);
    memset(nb + 8 + tl, ' ', padded - tl);
    memcpy(nb + 8 + padded, b + 8 + n, len - 8 - n);
    write_file(path, "checkpoint.safetensors", nb, 8 + padded + (len - 8 - n));
    free(nb);
    free(text);
    free(json);
    cJSON_Delete(root);
    free(b);
}

static void set_meta(cJSON *root, const char *key, const char *value)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_non_null(meta);
    if (value) cJSON_ReplaceItemInObjectCaseSensitive(meta, key, cJSON_CreateString(value));
    else cJSON_DeleteItemFromObjectCaseSensitive(meta, key);
}

/* Sets a field of the run configuration stored in the metadata. */
static void set_config(cJSON *root, const char *key, cJSON *value)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    cJSON *config = cJSON_Parse(cJSON_GetObjectItemCaseSensitive(meta, "config")->valuestring);
    assert_non_null(config);
    if (value) cJSON_ReplaceItemInObjectCaseSensitive(config, key, value);
    else cJSON_DeleteItemFromObjectCaseSensitive(config, key);
    char *text = cJSON_PrintUnformatted(config);
    set_meta(root, "config", text);
    free(text);
    cJSON_Delete(config);
}

static void mut_version2(cJSON *r) { set_meta(r, "version", "2"); }
static void mut_foreign(cJSON *r) { set_meta(r, "format", "pytorch"); }
static void mut_no_signature(cJSON *r) { set_meta(r, "signature", NULL); }
static void mut_signature(cJSON *r) { set_meta(r, "signature", "arch=fc9;act=0;in=1x1x3;kind=0;method=stl;share=0;n_out=2"); }
static void mut_step(cJSON *r) { set_meta(r, "step", "-4"); }
static void mut_config_json(cJSON *r) { set_meta(r, "config", "{\"data\": "); }
static void mut_config_data(cJSON *r) { set_config(r, "data", cJSON_CreateString("csv:/nonexistent/train.csv")); }
static void mut_config_arch(cJSON *r) { set_config(r, "arch", NULL); }
static void mut_config_lr(cJSON *r) { set_config(r, "lr", cJSON_CreateNumber(-1)); }

/* Offset of tensor `name`'s data in the file. */
static size_t tensor_offset(const unsigned char *b, const char *name)
{
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    char *json = strndup((const char *)b + 8, (size_t)n);
    cJSON *root = cJSON_Parse(json);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, name), "data_offsets");
    assert_non_null(off);
    size_t at = 8 + (size_t)n + (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    cJSON_Delete(root);
    free(json);
    return at;
}

/* The base checkpoint with bytes changed: a NaN at the start of a tensor,
 * or the file cut / its header length replaced. */
static void write_ckpt_bytes(const char *dir, const char *nan_tensor, size_t cut, uint64_t header_len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/run", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    size_t len;
    unsigned char *b = read_all(base_ckpt, &len);
    if (nan_tensor) {
        const float nan = (float)NAN;
        memcpy(b + tensor_offset(b, nan_tensor), &nan, 4);
    }
    if (header_len)
        for (int i = 0; i < 8; i++) b[i] = (unsigned char)(header_len >> (8 * i));
    write_file(path, "checkpoint.safetensors", b, cut ? cut : len);
    free(b);
}

/* ---- the cases ---------------------------------------------------------------- */

static void s_npy_truncated(const char *d) { write_npy(d, "in.npy", "<f4", 0, "(2, 3)", "0123456789", 10, 0); }
static void s_npy_header_len(const char *d) { write_npy(d, "in.npy", "<f4", 0, "(2, 3)", "0123456789abcdefghijklmn", 24, 60000); }
static void s_npy_huge(const char *d) { write_npy(d, "in.npy", "<f4", 0, "(1099511627776, 1099511627776)", "0123", 4, 0); }
static void s_npy_declared(const char *d) { write_npy(d, "in.npy", "<f4", 0, "(4000000000,)", "01234567", 8, 0); }
static void s_npy_int(const char *d) { write_npy(d, "in.npy", "<i4", 0, "(2, 2)", "0123456789abcdef", 16, 0); }
static void s_npy_nan(const char *d)
{
    const float x[4] = {1, NAN, 2, 3};
    write_npy(d, "in.npy", "<f4", 0, "(2, 2)", x, sizeof x, 0);
}
static void s_npy_inf(const char *d)
{
    const double x[4] = {1, 2, -INFINITY, 3};
    write_npy(d, "in.npy", "<f8", 0, "(2, 2)", x, sizeof x, 0);
}
static void s_npy_be(const char *d) { write_npy(d, "in.npy", ">f4", 0, "(2, 2)", "0123456789abcdef", 16, 0); }
static void s_npy_fortran(const char *d) { write_npy(d, "in.npy", "<f4", 1, "(2, 2)", "0123456789abcdef", 16, 0); }
static void s_npy_text(const char *d) { write_text(d, "in.npy", "weights = [[1, 2], [3, 4]]\n"); }
static void s_npy_empty(const char *d) { write_text(d, "in.npy", ""); }
static void s_npy_scalar(const char *d)
{
    const float x = 1;
    write_npy(d, "in.npy", "<f4", 0, "()", &x, 4, 0);
}
static void s_npy_zero(const char *d) { write_npy(d, "in.npy", "<f4", 0, "(0, 3)", NULL, 0, 0); }
static void s_npy_ok(const char *d)
{
    const float x[6] = {1, 2, 3, 4, 5, 6};
    write_npy(d, "in.npy", "<f4", 0, "(2, 3)", x, sizeof x, 0);
}
static void s_npy_ok_gdir(const char *d)
{
    s_npy_ok(d);
    char path[1024];
    snprintf(path, sizeof path, "%s/g.npy", d);
    assert_int_equal(mkdir(path, 0777), 0);
}

#define CSV_CASE(fn, text) static void fn(const char *d) { write_text(d, "in.csv", text); }
CSV_CASE(s_csv_dup, "task,y,x0,x0\na,1,2,3\na,0,1,1\n")
CSV_CASE(s_csv_notask, "group,y,x0\na,1,2\n")
CSV_CASE(s_csv_noy, "task,target,x0\na,1,2\n")
CSV_CASE(s_csv_word, "task,y,x0\na,1,2\na,0,abc\n")
CSV_CASE(s_csv_nan, "task,y,x0\na,1,2\na,0,NaN\n")
CSV_CASE(s_csv_inf_target, "task,y,x0\na,1,2\na,-inf,3\n")
CSV_CASE(s_csv_missing, "task,y,x0,x1\na,1,2,3\na,1,2\n")
CSV_CASE(s_csv_extra, "task,y,x0\na,1,2\na,0,2,3\n")
CSV_CASE(s_csv_empty, "")
CSV_CASE(s_csv_header_only, "task,y,x0\r\n")
CSV_CASE(s_csv_frac_label, "task,y,x0\na,1,2\na,2.5,1\n")
CSV_CASE(s_csv_quote, "task,y,x0\na,1,2\n\"b,0,1\n")
CSV_CASE(s_csv_big, "task,y,x0\na,1,2\na,0,1e39\n")
CSV_CASE(s_csv_empty_task, "task,y,x0\na,1,2\n,0,1\n")
CSV_CASE(s_csv_hex, "task,y,x0\na,1,0x1p3\n")
CSV_CASE(s_csv_ok, "task,y,x0,x1\na,0,1,2\na,1,2,1\na,0,1,1\na,1,3,3\nb,0,1,0\nb,1,0,1\n")
static void s_csv_nul(const char *d) { write_file(d, "in.csv", "task,y,x0\na,1,\0002\n", 17); }

/* A one-task CSV big enough for a huge batch: 200000 rows. */
static void s_csv_rows(const char *d)
{
    enum { ROWS = 200000 };
    char *text = malloc(ROWS * 8 + 16);
    assert_non_null(text);
    size_t n = (size_t)sprintf(text, "task,y,x0\n");
    for (int i = 0; i < ROWS; i++) n += (size_t)sprintf(text + n, "t,%d,%d\n", i % 2, i % 10);
    write_file(d, "in.csv", text, n);
    free(text);
}

/* The bytes of d/images_background.npz (malloc'd). */
static unsigned char *read_npz(const char *d, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/images_background.npz", d);
    return read_all(path, len);
}

static void s_npz_truncated(const char *d)
{
    write_npz(d, 3, "|b1", 1, 0, good_tsv, 0);
    size_t len;
    unsigned char *b = read_npz(d, &len);
    write_file(d, "images_background.npz", b, len / 2); /* the central directory is gone */
    free(b);
}
static void s_npz_ranges_mismatch(const char *d) { write_npz(d, 2, "|b1", 1, 0, good_tsv, 0); }
static void s_npz_tsv_fields(const char *d) { write_npz(d, 3, "|b1", 1, 0, "background\tA\t1\t1\nbackground\tB\t2\t3\t2\n", 0); }
static void s_npz_label(const char *d) { write_npz(d, 3, "|b1", 1, 1, good_tsv, 0); }
static void s_npz_overlap(const char *d) { write_npz(d, 3, "|b1", 1, 0, "background\tA\t1\t2\t2\nbackground\tB\t2\t3\t2\n", 0); }
static void s_npz_dtype(const char *d)
{
    /* images.npy declared float32: same bytes, so the sizes do not match either */
    write_npz(d, 3, "<f4", 0, 0, good_tsv, 0);
}
static void s_npz_ok(const char *d) { write_npz(d, 3, "|b1", 1, 0, good_tsv, 0); }
static void s_npz_no_images(const char *d)
{
    member m[1] = {{"pictures.npy", "x", 1}};
    write_zip(d, "images_background.npz", m, 1, 0);
    write_text(d, "alphabet_ranges.tsv", good_tsv);
}
static void s_npz_crc(const char *d)
{
    write_npz(d, 3, "|b1", 1, 0, good_tsv, 1);
    size_t len;
    unsigned char *b = read_npz(d, &len);
    /* labels.npy is stored: flip a byte of its data (the CRC no longer matches) */
    unsigned char *p = memmem(b, len, "'<i8'", 5);
    assert_non_null(p);
    p = memchr(p, '\n', len - (size_t)(p - b));
    assert_non_null(p);
    p[1 + 8 * 30] ^= 0x40;
    write_file(d, "images_background.npz", b, len);
    free(b);
}
static void s_png_corrupt(const char *d) { write_png_zip(d, good_pngs, 4, 2, "\x89PNG\r\n\x1a\nnot really", 18); }
static void s_png_small(const char *d)
{
    size_t len;
    void *png = png_bytes(50, 50, &len);
    write_png_zip(d, good_pngs, 4, 1, png, len);
    free(png);
}
static void s_png_name(const char *d)
{
    const char *names[] = {"top/Alpha/character01/0001_01.png", "top/Alpha/character01/first.png"};
    write_png_zip(d, names, 2, -1, NULL, 0);
}
static void s_png_ok(const char *d) { write_png_zip(d, good_pngs, 4, -1, NULL, 0); }
static void s_png_none(const char *d)
{
    const char *names[] = {"top/readme.txt"};
    write_png_zip(d, names, 1, -1, NULL, 0);
}
static void s_png_dup(const char *d)
{
    const char *names[] = {"top/Alpha/character01/0001_01.png", "top/Alpha/character02/0001_01.png"};
    write_png_zip(d, names, 2, -1, NULL, 0);
}
static void s_png_flat(const char *d)
{
    const char *names[] = {"0001_01.png"};
    write_png_zip(d, names, 1, -1, NULL, 0);
}

static void s_ck_version2(const char *d) { write_ckpt(d, mut_version2); }
static void s_ck_foreign(const char *d) { write_ckpt(d, mut_foreign); }
static void s_ck_no_signature(const char *d) { write_ckpt(d, mut_no_signature); }
static void s_ck_signature(const char *d) { write_ckpt(d, mut_signature); }
static void s_ck_step(const char *d) { write_ckpt(d, mut_step); }
static void s_ck_config_json(const char *d) { write_ckpt(d, mut_config_json); }
static void s_ck_config_data(const char *d) { write_ckpt(d, mut_config_data); }
static void s_ck_config_arch(const char *d) { write_ckpt(d, mut_config_arch); }
static void s_ck_config_lr(const char *d) { write_ckpt(d, mut_config_lr); }
static void s_ck_ok(const char *d) { write_ckpt(d, NULL); }
static void s_ck_nan_param(const char *d) { write_ckpt_bytes(d, "layer0.weight", 0, 0); }
static void s_ck_nan_moment(const char *d) { write_ckpt_bytes(d, "optim.v", 0, 0); }
static void s_ck_truncated(const char *d) { write_ckpt_bytes(d, NULL, 3000, 0); }
static void s_ck_header_len(const char *d) { write_ckpt_bytes(d, NULL, 0, (uint64_t)1 << 40); }
static void s_ck_text(const char *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/run", d);
    assert_int_equal(mkdir(path, 0777), 0);
    write_text(path, "checkpoint.safetensors", "{\"params\": [1, 2, 3]}\n");
}
static void s_out_file(const char *d) { write_text(d, "out", "a file, not a folder\n"); }
static void s_out_ckpt_dir(const char *d)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/out", d);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/out/checkpoint.safetensors", d);
    assert_int_equal(mkdir(path, 0777), 0);
}

#define TRAIN_CSV "train --data csv:{D}/in.csv --classification --steps 2 --quiet --out {D}/out"
#define TRAIN_SYN "train --data synthetic --arch conv2x5,pool2,fc4 --steps 2 --quiet --out {D}/out"
#define NORM "norm --method tucker {D}/in.npy --grad {D}/g.npy"

typedef struct bad_case {
    void (*setup)(const char *dir);   /* writes the inputs into the case's folder (or NULL) */
    const char *args;                 /* "{D}" stands for the folder */
    const char *needle;               /* the message must contain it */
} bad_case;

static const bad_case cases[] = {
    /* .npy through tnmtl norm */
    {s_npy_truncated, NORM, "truncated .npy data: header declares 24 bytes, 10 present"},
    {s_npy_header_len, NORM, "header length 60000"},
    {s_npy_huge, NORM, "element count overflows"},
    {s_npy_declared, NORM, "header declares 16000000000 bytes"},
    {s_npy_int, NORM, "dtype <i4 is not supported"},
    {s_npy_nan, NORM, "tensor element 1 is NaN"},
    {s_npy_inf, NORM, "tensor element 2 is infinite"},
    {s_npy_be, NORM, "big-endian"},
    {s_npy_fortran, NORM, "Fortran-order"},
    {s_npy_text, NORM, "bad magic"},
    {s_npy_empty, NORM, "only 0 bytes"},
    {s_npy_scalar, NORM, "scalar"},
    {s_npy_zero, NORM, "dimension 0 of the tensor is 0"},
    {NULL, NORM, "in.npy"},   /* missing file */
    {s_npy_ok, "norm --method tucker {D}/in.npy --gamma -1 --grad {D}/g.npy", "--gamma: -1 is negative"},
    {s_npy_ok, "norm --method tucker {D}/in.npy --gamma abc --grad {D}/g.npy", "'abc' is not a finite number"},
    {s_npy_ok, "norm --method tucker {D}/in.npy --gamma 1,2,3 --grad {D}/g.npy", "3 values"},
    {s_npy_ok, "norm --method svd {D}/in.npy --grad {D}/g.npy", "svd"},
    {s_npy_ok, "norm --method tucker {D}/in.npy --grad {D}/missing/g.npy", "cannot create"},
    {s_npy_ok_gdir, "norm --method tucker {D}/in.npy --grad {D}/g.npy", "cannot rename into place"},
    /* CSV */
    {s_csv_dup, TRAIN_CSV, "columns 3 and 4 are both named 'x0'"},
    {s_csv_notask, TRAIN_CSV, "no task column 'task'"},
    {s_csv_noy, TRAIN_CSV, "no target column 'y'"},
    {s_csv_word, TRAIN_CSV, "line 3, column 3 'x0': 'abc': not a number"},
    {s_csv_nan, TRAIN_CSV, "line 3, column 3 'x0': 'NaN': NaN/Inf values are not allowed"},
    {s_csv_inf_target, "train --data csv:{D}/in.csv --regression --steps 2 --quiet --out {D}/out",
     "line 3, column 2 'y': '-inf'"},
    {s_csv_missing, TRAIN_CSV, "line 3: 3 fields, expected 4"},
    {s_csv_extra, TRAIN_CSV, "line 3: more than 3 fields"},
    {s_csv_empty, TRAIN_CSV, "empty file"},
    {s_csv_header_only, TRAIN_CSV, "no data rows"},
    {s_csv_frac_label, TRAIN_CSV, "'2.5': not an integer class label"},
    {s_csv_quote, TRAIN_CSV, "line 3, column 1 'task': quote opened here is never closed"},
    {s_csv_nul, TRAIN_CSV, "NUL byte"},
    {s_csv_big, TRAIN_CSV, "'1e39': out of the float range"},
    {s_csv_empty_task, TRAIN_CSV, "line 3, column 1 'task': empty task name"},
    {s_csv_hex, TRAIN_CSV, "'0x1p3': not a decimal number"},
    {s_csv_ok, TRAIN_CSV " --features x1,x9", "no feature column 'x9'"},
    {s_csv_ok, TRAIN_CSV " --features x1,x1", "listed twice"},
    {s_csv_ok, TRAIN_CSV " --task-col y", "cannot be both the task and the target"},
    {s_csv_ok, TRAIN_CSV " --arch fc4,pool2", "pool2"},
    /* Omniglot numpy format */
    {s_npz_truncated, "omniglot-info {D}", "not a zip archive"},
    {s_npz_ranges_mismatch, "train --data omniglot:{D} --steps 1 --quiet --out {D}/out", "does not match"},
    {s_npz_tsv_fields, "omniglot-info {D}", "alphabet_ranges.tsv line 1: 4 tab-separated fields, expected 5"},
    {s_npz_label, "omniglot-info {D}", "labels.npy[1][0] is 7"},
    {s_npz_overlap, "omniglot-info {D}", "overlap"},
    {s_npz_dtype, "omniglot-info {D}", "images.npy has dtype <f4"},
    {s_npz_no_images, "omniglot-info {D}", "no member images.npy"},
    {s_npz_crc, "omniglot-info {D}", "CRC"},
    {s_npz_ranges_mismatch, "omniglot-info {D}/images_background.npz --size 0", "--size: 0 is out of range"},
    {s_npz_ok, "train --data omniglot:{D} --alphabets A,,B --steps 1 --quiet --out {D}/out", "empty name"},
    /* Omniglot PNG zips */
    {s_png_corrupt, "omniglot-info {D}/in.zip", "member top/Beta/character01/0002_01.png: not a valid PNG"},
    {s_png_small, "omniglot-info {D}/in.zip", "is 50x50 pixels, expected 105x105"},
    {s_png_name, "omniglot-info {D}/in.zip", "first.png: file name is not IIII_DD.png"},
    {s_png_none, "omniglot-info {D}/in.zip", "no alphabet/character/IIII_DD.png members found"},
    {s_png_dup, "omniglot-info {D}/in.zip", "are both drawing 1 of character 1"},
    {s_png_flat, "omniglot-info {D}/in.zip", "not inside alphabet/character/ folders"},
    {s_png_ok, "train --data omniglot:{D}/in.zip --alphabets Alpha,Nope --steps 1 --quiet --out {D}/out",
     "no alphabet 'Nope'"},
    /* checkpoints */
    {s_ck_version2, "eval --model {D}/run", "checkpoint version 2, this tnmtl reads version 1"},
    {s_ck_version2, "train --resume {D}/run --steps 3 --quiet", "checkpoint version 2"},
    {s_ck_foreign, "eval --model {D}/run", "not a tnmtl checkpoint"},
    {s_ck_text, "eval --model {D}/run", "checkpoint.safetensors"},
    {s_ck_no_signature, "train --resume {D}/run --quiet", "no metadata 'signature'"},
    {s_ck_signature, "eval --model {D}/run", "the checkpoint is of another model"},
    {s_ck_step, "train --resume {D}/run --quiet", "bad step '-4'"},
    {s_ck_config_json, "eval --model {D}/run", "the run configuration is not a JSON object"},
    {s_ck_config_data, "eval --model {D}/run", "/nonexistent/train.csv"},
    {s_ck_config_arch, "eval --model {D}/run", "configuration field 'arch'"},
    {s_ck_config_lr, "train --resume {D}/run --quiet", "configuration field 'lr'"},
    {s_ck_nan_param, "eval --model {D}/run", "is not finite"},
    {s_ck_nan_moment, "train --resume {D}/run --steps 4 --quiet", "optim.v[0] is not finite"},
    {s_ck_truncated, "eval --model {D}/run", "checkpoint.safetensors"},
    {s_ck_header_len, "train --resume {D}/run --quiet", "checkpoint.safetensors"},
    {NULL, "eval --model {D}/nothing", "nothing/checkpoint.safetensors"},
    {s_ck_ok, "train --resume {D}/run --lr 0.5", "--lr cannot be changed when resuming"},
    {s_ck_ok, "train --resume {D}/run --steps -1", "--steps: -1 is out of range"},
    /* options */
    {NULL, TRAIN_SYN " --steps abc", "--steps: 'abc' is not an integer"},
    {NULL, TRAIN_SYN " --batch -1", "--batch: -1 is out of range"},
    {NULL, TRAIN_SYN " --lr -0.1", "--lr: -0.1 is out of range"},
    {NULL, TRAIN_SYN " --gamma inf", "--gamma: 'inf' is not a finite number"},
    {NULL, TRAIN_SYN " --train-frac 0", "--train-frac: 0 is out of range"},
    {NULL, TRAIN_SYN " --save-every 1x", "--save-every: '1x' is not an integer"},
    {NULL, TRAIN_SYN " --val-frac 0.5 --train-frac 1", "--val-frac needs a training part"},
    {NULL, TRAIN_SYN " --threads 0", "--threads: 0 is out of range"},
    {NULL, TRAIN_SYN " --seed", "--seed needs a value"},
    {NULL, "compare --data synthetic --seeds 1-x --out {D}/out", "--seeds: 'x' is not an integer"},
    {s_out_file, TRAIN_SYN, "not a directory"},
    {s_out_ckpt_dir, TRAIN_SYN, "cannot rename into place"},
    /* more memory than any machine has: refused before allocating */
    {NULL, "train --data synthetic --arch fc1000,fc1000000,fc1000,fc1000000,fc1000,fc1000000,fc1000,fc1000000 "
           "--steps 1 --quiet --out {D}/out", "MB of memory available"},
    {s_csv_rows, "train --data csv:{D}/in.csv --arch fc1000000 --train-frac 1 --batch 150000 --steps 1 --quiet "
                 "--out {D}/out", "activations for batch 150000"},
};

/* ---- the folder before and after ---------------------------------------------- */

typedef struct entry {
    char path[512];
    long long size, mtime_ns;
    int is_dir;
} entry;

typedef struct listing {
    entry e[64];
    int n;
} listing;

static void list_tree(const char *root, const char *rel, listing *l)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        assert_true(l->n < 64);
        entry *e = &l->e[l->n++];
        snprintf(e->path, sizeof e->path, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        char full[1200];
        snprintf(full, sizeof full, "%s/%s", root, e->path);
        struct stat sb;
        assert_int_equal(lstat(full, &sb), 0);
        e->size = (long long)sb.st_size;
        e->mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
        e->is_dir = S_ISDIR(sb.st_mode);
        if (e->is_dir) list_tree(root, e->path, l);
    }
    closedir(d);
}

static const entry *find_entry(const listing *l, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].path, path)) return &l->e[i];
    return NULL;
}

/* Nothing new, nothing changed (folders may only stay as they were). */
static int same_tree(const listing *before, const listing *after, const char *what)
{
    int ok = before->n == after->n;
    for (int i = 0; i < after->n; i++) {
        const entry *a = &after->e[i], *b = find_entry(before, a->path);
        if (!b) {
            fprintf(stderr, "%s: left behind: %s (%lld bytes)\n", what, a->path, a->size);
            ok = 0;
        } else if (!a->is_dir && (a->size != b->size || a->mtime_ns != b->mtime_ns)) {
            fprintf(stderr, "%s: changed: %s\n", what, a->path);
            ok = 0;
        }
    }
    return ok;
}

static void substitute(const char *tmpl, const char *dir, char *dst, size_t cap)
{
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 1 < cap;) {
        if (!strncmp(p, "{D}", 3)) {
            n += (size_t)snprintf(dst + n, cap - n, "%s", dir);
            p += 3;
        } else {
            dst[n++] = *p++;
        }
    }
    dst[n < cap ? n : cap - 1] = '\0';
}

static void test_bad_inputs(void **state)
{
    (void)state;
    int failures = 0;
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    assert_true(n_cases >= 30);
    for (int i = 0; i < n_cases; i++) {
        const bad_case *c = &cases[i];
        char dir[256], args[4096], cmd[8192];
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
        if (c->setup) c->setup(dir);
        listing before = {0}, after = {0};
        list_tree(dir, "", &before);
        substitute(c->args, dir, args, sizeof args);
        snprintf(cmd, sizeof cmd, "%s %s", tu_cli(), args);
        int code = tu_run(cmd, 1, out, sizeof out);
        list_tree(dir, "", &after);
        int ok = code == 2 && strstr(out, c->needle) != NULL && strstr(out, "error: ") != NULL;
        char what[64];
        snprintf(what, sizeof what, "case %d", i);
        ok &= same_tree(&before, &after, what);
        if (!ok) {
            fprintf(stderr, "case %d FAILED: tnmtl %s\n  exit %d, expected 2 and '%s'; output:\n%s\n", i, c->args, code,
                    c->needle, out);
            failures++;
        }
        tu_rmtree(dir);
    }
    fprintf(stderr, "%d bad-input cases, %d failed\n", n_cases, failures);
    assert_int_equal(failures, 0);
}

/* The same inputs, made valid, are accepted: the cases fail for the reason
 * they name, not because the test's files are broken. */
static void test_valid_twins(void **state)
{
    (void)state;
    static const bad_case good[] = {
        {s_npy_ok, "norm --method tucker {D}/in.npy --grad {D}/g.npy", "\"value\""},
        {s_csv_ok, TRAIN_CSV, "\"mean_accuracy\""},
        {s_npz_ok, "omniglot-info {D} --size 28", "\"n_classes\":\t3"},
        {s_png_ok, "omniglot-info {D}/in.zip --size 28", "\"n_examples\":\t4"},
        {s_ck_ok, "eval --model {D}/run", "\"mean_accuracy\""},
        {s_ck_ok, "train --resume {D}/run --steps 2 --quiet", "\"steps\":\t2"},
        {NULL, TRAIN_SYN, "\"mean_accuracy\""},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char dir[256], args[4096], cmd[8192];
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
        if (good[i].setup) good[i].setup(dir);
        substitute(good[i].args, dir, args, sizeof args);
        snprintf(cmd, sizeof cmd, "%s %s", tu_cli(), args);
        int code = tu_run(cmd, 0, out, sizeof out);
        if (code != 0 || !strstr(out, good[i].needle))
            fprintf(stderr, "valid twin %zu: tnmtl %s: exit %d\n%s\n", i, good[i].args, code, out);
        assert_int_equal(code, 0);
        assert_non_null(strstr(out, good[i].needle));
        tu_rmtree(dir);
    }
}

static char base_dir[256];

static int make_base_checkpoint(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof base_dir, "%s", tu_tmpdir());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s train --data synthetic --arch conv2x5,pool2,fc4 --steps 1 --quiet --out %s", tu_cli(),
             base_dir);
    if (tu_run(cmd, 1, out, sizeof out) != 0) {
        fprintf(stderr, "could not make the base checkpoint:\n%s\n", out);
        return -1;
    }
    snprintf(base_ckpt, sizeof base_ckpt, "%s/checkpoint.safetensors", base_dir);
    return 0;
}

static int remove_base_checkpoint(void **state)
{
    (void)state;
    tu_rmtree(base_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_twins),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, make_base_checkpoint, remove_base_checkpoint);
}
