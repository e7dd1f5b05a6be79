/* test_data_bad_input.c - bad image folders and npz files through the CLI:
 * every case must exit 2 with a message naming the file, print nothing on
 * stdout and leave no run folder; data-info names every bad file.  Trees
 * are built here with libpng / libjpeg, npz files with tnmtl_npy_save and
 * libzip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>   /* before jpeglib.h */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zip.h>

#include "testutil.h"
#include "tnmtl/npy.h"

static char D[600];   /* the case's data folder (or npz) */

static const char *p(const char *rel)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", D, rel);
    return buf[k];
}

static void mkdirs(const char *rel)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p(rel));
    assert_int_equal(system(cmd), 0);
}

static void write_bytes(const char *rel, const void *data, size_t n)
{
    FILE *f = fopen(p(rel), "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A w x h grey PNG with a gradient (libpng's simplified writer). */
static void write_png(const char *rel, int w, int h)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_GRAY;
    uint8_t px[64 * 64];
    for (int i = 0; i < w * h; i++) px[i] = (uint8_t)(i * 7);
    assert_true(png_image_write_to_file(&im, p(rel), 0, px, w, NULL));
}

static void write_jpeg(const char *rel, int w, int h, int colour)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *f = fopen(p(rel), "wb");
    assert_non_null(f);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = colour ? 3 : 1;
    c.in_color_space = colour ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[64 * 3];
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < w * c.input_components; i++) row[i] = (uint8_t)(i * 5 + c.next_scanline * 11);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void truncate_file(const char *rel, long keep)
{
    assert_int_equal(truncate(p(rel), keep), 0);
}

/* T1/{c1,c2}/{a,b}.png and T2/{c1,c2}/{a,b}.png, 8x8 grey. */
static void good_tree(void)
{
    const char *files[] = {"T1/c1/a.png", "T1/c1/b.png", "T1/c2/a.png", "T1/c2/b.png",
                           "T2/c1/a.png", "T2/c1/b.png", "T2/c2/a.png", "T2/c2/b.png"};
    mkdirs("T1/c1"), mkdirs("T1/c2"), mkdirs("T2/c1"), mkdirs("T2/c2");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) write_png(files[i], 8, 8);
}

/* ---- image-folder cases ---- */
static void c_no_tasks(void) {}
static void c_empty_task(void) { good_tree(), mkdirs("T3"); }
static void c_empty_class(void) { good_tree(), mkdirs("T1/c3"), write_bytes("T1/c3/.keep", "x", 1); }
static void c_truncated_png(void) { good_tree(), truncate_file("T1/c2/a.png", 60); }
static void c_corrupt_png(void)
{
    good_tree();
    FILE *f = fopen(p("T2/c1/b.png"), "r+b");
    assert_non_null(f);
    fseek(f, 45, SEEK_SET);   /* inside IDAT: the CRC no longer matches */
    fputs("garbage!", f);
    fclose(f);
}
static void c_non_image(void) { good_tree(), write_bytes("T1/c2/notes.txt", "hello\n", 6); }
static void c_sizes(void) { good_tree(), write_png("T2/c2/b.png", 9, 8); }
static void c_bad_name(void) { good_tree(), mkdirs("T1/\xff\xfe"), write_png("T1/\xff\xfe/a.png", 8, 8); }
static void c_loop(void)
{
    good_tree();
    assert_int_equal(symlink("..", p("T1/c1/loop")), 0);
}
static void c_self_loop(void)
{
    good_tree();
    assert_int_equal(symlink("self.png", p("T2/c2/self.png")), 0);
}
static void c_zero_bytes(void) { good_tree(), write_bytes("T1/c1/zero.png", "", 0); }
static void c_one_class(void) { good_tree(), mkdirs("T3/only"), write_png("T3/only/a.png", 8, 8); }
static void c_task_file(void) { good_tree(), write_bytes("readme.txt", "hi", 2); }
static void c_corrupt_jpeg(void) { good_tree(), write_jpeg("T1/c1/c.jpg", 8, 8, 0), truncate_file("T1/c1/c.jpg", 200); }

/* ---- npz cases: arrays written with tnmtl_npy_save, zipped with libzip ---- */
typedef struct arr {
    const char *name;
    tnmtl_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} arr;

static void write_npz(const arr *a, int n)
{
    int code;
    zip_t *z = zip_open(p("d.npz"), ZIP_CREATE | ZIP_TRUNCATE, &code);
    assert_non_null(z);
    for (int i = 0; i < n; i++) {
        char member[64];
        snprintf(member, sizeof member, "%s.npy", a[i].name);
        tnmtl_error err;
        if (tnmtl_npy_save(p(member), a[i].dtype, a[i].ndim, a[i].shape, a[i].data, &err)) fail_msg("%s", err.msg);
        zip_source_t *src = zip_source_file(z, p(member), 0, -1);
        assert_non_null(src);
        assert_true(zip_file_add(z, member, src, ZIP_FL_OVERWRITE) >= 0);
    }
    assert_int_equal(zip_close(z), 0);
}

static const uint8_t X[6 * 4] = {0};
static const int64_t Y[6] = {0, 1, 0, 1, 0, 1}, TASK[6] = {0, 0, 0, 1, 1, 1}, TASK_GAP[6] = {0, 0, 0, 2, 2, 2};
static const float TASKF[6] = {0};
static const int32_t SPLIT[6] = {0, 2, 7, 0, 1, 2};

#define XA_OK {"x", TNMTL_DTYPE_U8, 3, {6, 2, 2}, X}
#define YA_OK {"y", TNMTL_DTYPE_I64, 1, {6}, Y}
#define TA_OK {"task", TNMTL_DTYPE_I64, 1, {6}, TASK}
static void n_length(void)
{
    arr a[] = {XA_OK, {"y", TNMTL_DTYPE_I64, 1, {5}, Y}, TA_OK};
    write_npz(a, 3);
}
static void n_dtype(void)
{
    arr a[] = {{"x", TNMTL_DTYPE_BOOL, 3, {6, 2, 2}, X}, YA_OK, TA_OK};
    write_npz(a, 3);
}
static void n_task_dtype(void)
{
    arr a[] = {XA_OK, YA_OK, {"task", TNMTL_DTYPE_F32, 1, {6}, TASKF}};
    write_npz(a, 3);
}
static void n_missing(void)
{
    arr a[] = {XA_OK, YA_OK};
    write_npz(a, 2);
}
static void n_unknown(void)
{
    arr a[] = {XA_OK, YA_OK, TA_OK, {"labels", TNMTL_DTYPE_I64, 1, {6}, Y}};
    write_npz(a, 4);
}
static void n_split(void)
{
    arr a[] = {XA_OK, YA_OK, TA_OK, {"split", TNMTL_DTYPE_I32, 1, {6}, SPLIT}};
    write_npz(a, 4);
}
static void n_gap(void)
{
    arr a[] = {XA_OK, YA_OK, {"task", TNMTL_DTYPE_I64, 1, {6}, TASK_GAP}};
    write_npz(a, 3);
}
static void n_names(void)
{
    arr a[] = {XA_OK, YA_OK, TA_OK, {"task_names", TNMTL_DTYPE_U8, 1, {2}, X}};
    write_npz(a, 4);
}
static void n_not_zip(void) { write_bytes("d.npz", "PK\3\4 not really a zip", 22); }

typedef struct bad_case {
    const char *name;
    void (*make)(void);
    int npz;                 /* --data npz:D/d.npz, else images:D */
    const char *expect[2];   /* substrings of stderr */
} bad_case;

static const bad_case cases[] = {
    {"no tasks", c_no_tasks, 0, {"no task folders", NULL}},
    {"empty task folder", c_empty_task, 0, {"/T3: empty task folder", NULL}},
    {"class without images", c_empty_class, 0, {"/T1/c3: class folder holds no images", NULL}},
    {"truncated PNG", c_truncated_png, 0, {"/T1/c2/a.png: not a valid PNG (truncated or corrupt)", NULL}},
    {"corrupt PNG", c_corrupt_png, 0, {"/T2/c1/b.png: not a valid PNG (truncated or corrupt)", NULL}},
    {"non-image file", c_non_image, 0, {"/T1/c2/notes.txt: not a PNG or JPEG image", NULL}},
    {"sizes differ", c_sizes, 0, {"/T2/c2/b.png is 9x8 pixels but", "/T1/c1/a.png is 8x8: give a size (--size S)"}},
    {"name not UTF-8", c_bad_name, 0, {"/T1/\xff\xfe: folder name is not valid UTF-8", NULL}},
    {"symbolic-link loop", c_loop, 0, {"/T1/c1/loop: symbolic-link loop (leads back to", NULL}},
    {"self link", c_self_loop, 0, {"/T2/c2/self.png: symbolic-link loop", NULL}},
    {"0-byte file", c_zero_bytes, 0, {"/T1/c1/zero.png: empty file (0 bytes)", NULL}},
    {"one class", c_one_class, 0, {"/T3: the task has one class (only)", NULL}},
    {"file beside the tasks", c_task_file, 0, {"/readme.txt: not a folder", NULL}},
    {"truncated JPEG", c_corrupt_jpeg, 0, {"/T1/c1/c.jpg: truncated or corrupt JPEG", NULL}},
    {"npz lengths differ", n_length, 1, {"d.npz: y has shape (5,), expected (6,)", "x has 6 rows"}},
    {"npz x dtype", n_dtype, 1, {"d.npz: x has dtype |b1, expected uint8", NULL}},
    {"npz task dtype", n_task_dtype, 1, {"d.npz: task has dtype <f4, expected integers", NULL}},
    {"npz no task", n_missing, 1, {"d.npz: no array 'task'", NULL}},
    {"npz unknown array", n_unknown, 1, {"d.npz: unexpected member 'labels.npy'", NULL}},
    {"npz bad split", n_split, 1, {"d.npz: split[2] is not train, validation", NULL}},
    {"npz task gap", n_gap, 1, {"d.npz: task 1 has no rows", NULL}},
    {"npz task_names dtype", n_names, 1, {"d.npz: task_names has dtype |u1, expected strings", NULL}},
    {"npz not a zip", n_not_zip, 1, {"d.npz: not a zip archive", NULL}},
};

static int read_text(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return (int)n;
}

/* Runs `tnmtl ARGS` with stdout and stderr captured separately. */
static int run_cli(const char *args, char *out, size_t cap, char *errtxt, size_t ecap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>'%s/stderr.txt'", tu_cli(), args, tu_group_dir);
    int rc = tu_run(cmd, 0, out, cap);
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", tu_group_dir);
    if (read_text(path, errtxt, ecap) < 0) errtxt[0] = '\0';
    return rc;
}

static void fresh_case_dir(int k)
{
    snprintf(D, sizeof D, "%s/case%02d", tu_group_dir, k);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", D, D);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_cases(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bad_case *c = &cases[k];
        fresh_case_dir((int)k);
        c->make();
        char args[4096], out[4096], errtxt[4096], run[700];
        snprintf(run, sizeof run, "%s.run", D);
        for (int cmd = 0; cmd < 2; cmd++) {
            if (cmd == 0)
                snprintf(args, sizeof args, "train --data '%s:%s' --out '%s' --steps 2 --quiet",
                         c->npz ? "npz" : "images", c->npz ? p("d.npz") : D, run);
            else
                snprintf(args, sizeof args, "data-info --data '%s:%s'", c->npz ? "npz" : "images",
                         c->npz ? p("d.npz") : D);
            int rc = run_cli(args, out, sizeof out, errtxt, sizeof errtxt);
            struct stat sb;
            int ok = rc == 2 && out[0] == '\0' && stat(run, &sb) != 0;
            for (int e = 0; e < 2 && ok; e++) ok = !c->expect[e] || strstr(errtxt, c->expect[e]) != NULL;
            if (!ok) {
                fprintf(stderr, "case '%s' (%s): exit %d, stdout '%.200s', stderr '%s'\n", c->name,
                        cmd ? "data-info" : "train", rc, out, errtxt);
                failed++;
            }
        }
    }
    assert_int_equal(failed, 0);
}

/* data-info names every bad file, then exits 2 with nothing on stdout;
 * train stops at the first and says how many there are. */
static void test_every_bad_file_named(void **state)
{
    (void)state;
    fresh_case_dir(90);
    good_tree();
    write_bytes("T1/c1/zero.png", "", 0);
    truncate_file("T1/c2/b.png", 45);
    write_bytes("T2/c2/readme.md", "# notes", 7);
    mkdirs("T3");
    char args[1024], out[4096], errtxt[4096];
    snprintf(args, sizeof args, "data-info --data 'images:%s'", D);
    assert_int_equal(run_cli(args, out, sizeof out, errtxt, sizeof errtxt), 2);
    assert_string_equal(out, "");
    const char *want[] = {"/T3: empty task folder", "/T1/c1/zero.png: empty file", "/T1/c2/b.png: not a valid PNG",
                          "/T2/c2/readme.md: not a PNG or JPEG", "4 problems in images:"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(errtxt, want[i])) fail_msg("'%s' not in: %s", want[i], errtxt);
    snprintf(args, sizeof args, "train --data 'images:%s' --quiet", D);
    assert_int_equal(run_cli(args, out, sizeof out, errtxt, sizeof errtxt), 2);
    assert_non_null(strstr(errtxt, "empty task folder"));
    /* Without the structural problem, train names the first bad file and counts the others its header pass found. */
    assert_int_equal(rmdir(p("T3")), 0);
    assert_int_equal(run_cli(args, out, sizeof out, errtxt, sizeof errtxt), 2);
    if (!strstr(errtxt, "/T1/c1/zero.png: empty file (0 bytes) (and 1 more problem)")) fail_msg("%s", errtxt);
}

/* What must load: different sizes with --size, JPEG (grey and colour),
 * names with spaces, UTF-8 and a leading dash. */
static void test_good_variants(void **state)
{
    (void)state;
    char args[1024], out[8192], errtxt[4096];
    fresh_case_dir(91);
    good_tree();
    write_png("T2/c2/b.png", 9, 8);
    snprintf(args, sizeof args, "data-info --data 'images:%s' --size 6", D);
    int rc = run_cli(args, out, sizeof out, errtxt, sizeof errtxt);
    if (rc) fail_msg("exit %d: %s", rc, errtxt);
    assert_non_null(strstr(out, "\"example_shape\":\t[6, 6, 1]"));

    fresh_case_dir(92);
    good_tree();
    write_jpeg("T1/c1/c.jpg", 8, 8, 0);
    write_jpeg("T2/c2/c.jpeg", 8, 8, 1);
    snprintf(args, sizeof args, "data-info --data 'images:%s'", D);
    rc = run_cli(args, out, sizeof out, errtxt, sizeof errtxt);
    if (rc) fail_msg("exit %d: %s", rc, errtxt);
    assert_non_null(strstr(out, "\"example_shape\":\t[8, 8, 3]"));
    assert_non_null(strstr(out, "\"n_examples\":\t10"));

    fresh_case_dir(93);
    mkdirs("-t one/caf\xc3\xa9 noir"), mkdirs("-t one/--x");
    write_png("-t one/caf\xc3\xa9 noir/-a.png", 8, 8), write_png("-t one/--x/b b.png", 8, 8);
    mkdirs("t two/a"), mkdirs("t two/b");
    write_png("t two/a/1.png", 8, 8), write_png("t two/b/2.png", 8, 8);
    snprintf(args, sizeof args, "train --data 'images:%s' --steps 2 --train-frac 1 --quiet", D);
    rc = run_cli(args, out, sizeof out, errtxt, sizeof errtxt);
    if (rc) fail_msg("exit %d: %s", rc, errtxt);
    assert_non_null(strstr(out, "[[\"--x\", \"caf\xc3\xa9 noir\"], [\"a\", \"b\"]]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_cases),
        cmocka_unit_test(test_every_bad_file_named),
        cmocka_unit_test(test_good_variants),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
