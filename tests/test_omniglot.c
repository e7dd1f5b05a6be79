/* test_omniglot.c - Omniglot loaders: the shared data in both formats,
 * downsampling, options, and every kind of bad input (built here with
 * libzip/libpng in a temporary folder). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"
#include "tnmtl.h"
#include "util.h"

#include <cJSON.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#define N 105
#define NP (N * N)


static const char *tmp_path(const char *rel)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_group_dir, rel);
    return buf[k];
}

/* ---- builders ------------------------------------------------------------ */

typedef struct member {
    const char *name;
    const void *data;
    size_t len;
} member;

static void write_zip(const char *path, const member *m, int n)
{
    int code = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    assert_non_null(za);
    for (int i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(za, m[i].data, m[i].len, 0);
        assert_non_null(src);
        assert_true(zip_file_add(za, m[i].name, src, ZIP_FL_OVERWRITE) >= 0);
    }
    assert_int_equal(zip_close(za), 0);
}

static void write_text(const char *path, const char *text)
{
    tnmtl_error e;
    assert_int_equal(tnmtl_write_buffer_atomic(path, text, strlen(text), &e), TNMTL_OK);
}

/* An .npy v1.0 file: descr, shape text like "(3, 20, 105, 105)", data. */
static unsigned char *make_npy(const char *descr, const char *shape, const void *data, size_t len, size_t *out_len)
{
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t hl = (size_t)dl + 1;
    while ((10 + hl) % 64) hl++;
    unsigned char *b = malloc(10 + hl + len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 255);
    b[9] = (unsigned char)(hl >> 8);
    memset(b + 10, ' ', hl);
    memcpy(b + 10, dict, (size_t)dl);
    b[10 + hl - 1] = '\n';
    if (len) memcpy(b + 10 + hl, data, len);
    *out_len = 10 + hl + len;
    return b;
}

/* 8-bit grey PNG of w x h pixels. */
static void *make_png(int w, int h, const uint8_t *grey, size_t *len)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)w;
    pi.height = (png_uint_32)h;
    pi.format = PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&pi, NULL, &size, 0, grey, w, NULL));
    void *buf = malloc(size);
    assert_non_null(buf);
    assert_true(png_image_write_to_memory(&pi, buf, &size, 0, grey, w, NULL));
    *len = size;
    return buf;
}

/* The synthetic set: alphabet "Zeta" = ids 1..2, "Alpha" = id 3 (so the id
 * order differs from the name order); drawing d of character c has ink
 * where (x*y + 7c + d) % 11 == 0. */
#define SYN_CHARS 3
static int syn_ink(int c, int d, int y, int x) { return (x * y + 7 * c + d) % 11 == 0; }
static const char *syn_tsv = "# set\talphabet\tfirst\tlast\tn\n"
                             "background\tZeta\t1\t2\t2\n"
                             "background\tAlpha\t3\t3\t1\n";

/* images.npy (|b1, 0 = ink) of the synthetic set. */
static uint8_t *syn_bool(void)
{
    uint8_t *b = malloc((size_t)SYN_CHARS * 20 * NP);
    assert_non_null(b);
    for (int c = 0; c < SYN_CHARS; c++)
        for (int d = 0; d < 20; d++)
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) b[((size_t)(c * 20 + d) * N + y) * N + x] = !syn_ink(c, d, y, x);
    return b;
}

static void write_syn_npz(const char *path, const char *descr, const char *shape, const void *data, size_t len,
                          int with_labels, int bad_label)
{
    size_t il, ll;
    unsigned char *img = make_npy(descr, shape, data, len, &il);
    int64_t lab[SYN_CHARS * 20];
    for (int i = 0; i < SYN_CHARS * 20; i++) lab[i] = i / 20;
    if (bad_label) lab[25] = 0;
    unsigned char *lb = make_npy("<i8", "(3, 20)", lab, sizeof lab, &ll);
    member m[2] = {{"images.npy", img, il}, {"labels.npy", lb, ll}};
    write_zip(path, m, with_labels ? 2 : 1);
    free(img);
    free(lb);
}

/* The synthetic set as a zip of PNGs, added in reverse order. */
static void write_syn_pngzip(const char *path, const char *top)
{
    member m[SYN_CHARS * 20];
    char names[SYN_CHARS * 20][128];
    uint8_t grey[NP];
    for (int c = 0; c < SYN_CHARS; c++)
        for (int d = 0; d < 20; d++) {
            int i = SYN_CHARS * 20 - 1 - (c * 20 + d);
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) grey[y * N + x] = syn_ink(c, d, y, x) ? 0 : 255;
            snprintf(names[i], sizeof names[i], "%s%s/character%02d/%04d_%02d.png", top, c < 2 ? "Zeta" : "Alpha",
                     c < 2 ? c + 1 : 1, c + 1, d + 1);
            m[i].name = names[i];
            m[i].data = make_png(N, N, grey, &m[i].len);
        }
    write_zip(path, m, SYN_CHARS * 20);
    for (int i = 0; i < SYN_CHARS * 20; i++) free((void *)m[i].data);
}

static void expect_fail(const char *path, const tnmtl_omniglot_options *opt, tnmtl_status want, const char *w1,
                        const char *w2)
{
    tnmtl_dataset ds;
    tnmtl_error e;
    memset(&e, 0, sizeof e);
    tnmtl_status st = tnmtl_omniglot_load(path, opt, &ds, &e);
    if (st != want || !strstr(e.msg, w1) || (w2 && !strstr(e.msg, w2)))
        fail_msg("load(%s): got %s '%s', want %s with '%s' and '%s'", path, tnmtl_status_name(st), e.msg,
                 tnmtl_status_name(want), w1, w2 ? w2 : "");
    if (getenv("OG_SHOW")) /* OG_SHOW=1 build/tests/test_omniglot lists the messages */
        print_message("  %s\n", e.msg);
    assert_null(ds.pixels);   /* freed and zeroed on failure */
    assert_int_equal(ds.n_tasks, 0);
}

static void load_ok(const char *path, const tnmtl_omniglot_options *opt, tnmtl_dataset *ds)
{
    tnmtl_error e;
    tnmtl_status st = tnmtl_omniglot_load(path, opt, ds, &e);
    if (st) fail_msg("load(%s): %s", path, e.msg);
    assert_int_equal(tnmtl_dataset_validate(ds, &e), TNMTL_OK);
}

static void assert_same(const tnmtl_dataset *a, const tnmtl_dataset *b)
{
    assert_int_equal(a->n_tasks, b->n_tasks);
    assert_int_equal(a->n_examples, b->n_examples);
    assert_int_equal(a->in_h, b->in_h);
    for (int t = 0; t < a->n_tasks; t++) {
        assert_string_equal(a->task_names[t], b->task_names[t]);
        assert_int_equal(a->n_classes[t], b->n_classes[t]);
        assert_int_equal(a->task_begin[t + 1], b->task_begin[t + 1]);
    }
    assert_memory_equal(a->label, b->label, (size_t)a->n_examples * sizeof(int));
    int64_t bytes = a->n_examples * tnmtl_dataset_example_size(a);
    int64_t diff = 0;
    for (int64_t i = 0; i < bytes; i++) diff += a->pixels[i] != b->pixels[i];
    assert_int_equal(diff, 0);
}

/* ---- the shared data ------------------------------------------------------- */

typedef struct range_row {
    char set[16], name[128];
    int first, last, n;
} range_row;

static int read_ranges(range_row *r, int cap)
{
    FILE *f = fopen(tu_shared_path("omniglot/alphabet_ranges.tsv"), "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        assert_true(n < cap);
        assert_int_equal(sscanf(line, "%15s\t%127s\t%d\t%d\t%d", r[n].set, r[n].name, &r[n].first, &r[n].last,
                                &r[n].n), 5);
        n++;
    }
    fclose(f);
    return n;
}

static void test_full_npz(void **state)
{
    range_row r[64];
    int nr = read_ranges(r, 64);
    assert_int_equal(nr, 50);

    tnmtl_dataset ds;
    double t0 = tnmtl_now();
    load_ok(tu_shared_path("omniglot"), NULL, &ds);
    double t1 = tnmtl_now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    print_message("full Omniglot (50 alphabets, 105x105, npz): %.2f s, peak RSS %ld MB\n", t1 - t0,
                  ru.ru_maxrss / 1024);
    assert_int_equal(ds.n_tasks, 50);
    assert_int_equal(ds.n_examples, 32460);
    assert_int_equal(ds.in_h, 105);
    assert_int_equal(ds.in_w, 105);
    assert_int_equal(ds.in_c, 1);
    assert_true(ds.pixel_scale == 1.0f / 255.0f && ds.pixel_offset == 0.0f);
    assert_null(ds.features);
    int total = 0, lo = 1000, hi = 0;
    for (int t = 0; t < 50; t++) {
        assert_string_equal(ds.task_names[t], r[t].name);   /* tsv order = id order */
        assert_int_equal(ds.n_classes[t], r[t].n);
        assert_int_equal(ds.task_begin[t + 1] - ds.task_begin[t], 20 * r[t].n);
        total += ds.n_classes[t];
        lo = ds.n_classes[t] < lo ? ds.n_classes[t] : lo;
        hi = ds.n_classes[t] > hi ? ds.n_classes[t] : hi;
    }
    assert_int_equal(total, 1623);
    assert_int_equal(lo, 14);
    assert_int_equal(hi, 55);
    assert_string_equal(ds.task_names[0], "Arcadian");
    assert_string_equal(ds.task_names[30], "Angelic");
    /* labels: class k of task t holds examples [begin + 20k, begin + 20k + 20) */
    assert_int_equal(ds.label[ds.task_begin[1] + 20 * 40 + 19], 40);   /* Armenian, last character */
    /* binary pixels, about 8% ink */
    int64_t ink = 0, other = 0, bytes = ds.n_examples * NP;
    for (int64_t i = 0; i < bytes; i++) {
        ink += ds.pixels[i] == 255;
        other += ds.pixels[i] != 0 && ds.pixels[i] != 255;
    }
    assert_int_equal(other, 0);
    double frac = (double)ink / (double)bytes;
    assert_true(frac > 0.07 && frac < 0.09);

    /* size 28: same tasks; area averaging keeps the mean ink */
    tnmtl_dataset s28;
    tnmtl_omniglot_options o = {.size = 28};
    t0 = tnmtl_now();
    load_ok(tu_shared_path("omniglot"), &o, &s28);
    print_message("full Omniglot at 28x28: %.2f s\n", tnmtl_now() - t0);
    assert_int_equal(s28.in_h, 28);
    assert_int_equal(s28.n_examples, 32460);
    assert_memory_equal(s28.label, ds.label, 32460 * sizeof(int));
    double sum = 0;
    for (int64_t i = 0; i < s28.n_examples * 28 * 28; i++) sum += s28.pixels[i];
    double mean = sum / 255.0 / (double)(s28.n_examples * 28 * 28);
    assert_true(fabs(mean - frac) < 2e-3);
    /* each 28x28 image equals the downsample of its 105x105 one */
    uint8_t small[28 * 28];
    for (int64_t i = 0; i < ds.n_examples; i += 997) {
        assert_int_equal(tnmtl_omniglot_downsample(ds.pixels + i * NP, N, small, 28, NULL), TNMTL_OK);
        assert_memory_equal(small, s28.pixels + i * 28 * 28, sizeof small);
    }
    tnmtl_dataset_free(&s28);
    tnmtl_dataset_free(&ds);
}

/* A partial load (one process of a distributed run): the selected tasks'
 * images only, the same bytes as a full load's; every task's labels.  In
 * the PNG zip the other alphabets' members are never decoded, so a corrupt
 * one outside the range does not stop the load. */
static void test_partial_load(void **state)
{
    (void)state;
    char why[256];
    static const char *five = "Balinese,Early_Aramaic,Greek,Korean,Latin";
    const char *paths[2] = {"omniglot", "omniglot/images_background_small1.zip"};
    static const int ranges[3][2] = {{1, 3}, {4, 5}, {0, 5}};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s", tu_shared_path(paths[k]));
        tnmtl_omniglot_options opt = {.size = 28, .alphabets = k ? NULL : five};
        tnmtl_dataset full;
        load_ok(path, &opt, &full);
        for (int i = 0; i < 3; i++) {
            tu_task_range r = {.begin = ranges[i][0], .end = ranges[i][1]};
            opt.inputs = tu_select_tasks(&r);
            tnmtl_dataset part;
            double t0 = tnmtl_now();
            load_ok(path, &opt, &part);
            print_message("%s, tasks %d..%d: %.2f s\n", k ? "png zip" : "npz", r.begin, r.end - 1, tnmtl_now() - t0);
            assert_int_equal(r.calls, 1);
            if (tu_partial_inputs_differ(&full, &part, r.begin, r.end, why, sizeof why)) fail_msg("%s", why);
            tnmtl_dataset_free(&part);
        }
        opt.inputs = (tnmtl_input_select){0};
        tnmtl_dataset_free(&full);
    }
    /* The synthetic zip with one of Alpha's PNGs corrupt: Zeta alone loads. */
    write_syn_pngzip(tmp_path("partial.zip"), "");
    char zip[1024];
    snprintf(zip, sizeof zip, "%s", tmp_path("partial.zip"));
    {
        int zerr = 0;
        zip_t *z = zip_open(zip, 0, &zerr);
        assert_non_null(z);
        static const char junk[] = "not a png";
        zip_source_t *src = zip_source_buffer(z, junk, sizeof junk, 0);
        assert_true(zip_file_add(z, "Alpha/character01/0003_05.png", src, ZIP_FL_OVERWRITE) >= 0);
        assert_int_equal(zip_close(z), 0);
    }
    tnmtl_omniglot_options opt = {.size = 0};
    expect_fail(zip, &opt, TNMTL_ERR_FORMAT, "0003_05.png", NULL);
    tu_task_range zeta = {.begin = 0, .end = 1}; /* tasks in id order: Zeta (ids 1-2), Alpha (3) */
    opt.inputs = tu_select_tasks(&zeta);
    tnmtl_dataset part;
    load_ok(zip, &opt, &part);
    assert_string_equal(part.task_names[0], "Zeta");
    assert_int_equal(part.inputs_task_end, 1);
    tnmtl_dataset_free(&part);
    tu_task_range alpha = {.begin = 1, .end = 2};
    opt.inputs = tu_select_tasks(&alpha);
    expect_fail(zip, &opt, TNMTL_ERR_FORMAT, "0003_05.png", NULL);
}

static void test_png_zip_equals_npz(void **state)
{
    static const char *five = "Balinese,Early_Aramaic,Greek,Korean,Latin";
    const int n_classes[5] = {24, 22, 24, 40, 26};
    for (int k = 0; k < 2; k++) {
        int size = k ? 28 : 0;
        tnmtl_omniglot_options on = {.size = size, .alphabets = five}, op = {.size = size};
        tnmtl_dataset a, b;
        double t0 = tnmtl_now();
        load_ok(tu_shared_path("omniglot/images_background_small1.zip"), &op, &b);
        double t1 = tnmtl_now();
        load_ok(tu_shared_path("omniglot"), &on, &a);
        print_message("5 alphabets, size %d: png zip %.2f s, npz %.2f s\n", size ? size : 105, t1 - t0,
                      tnmtl_now() - t1);
        assert_non_null(strstr(b.source, "png"));
        assert_non_null(strstr(a.source, "npz"));
        assert_int_equal(b.n_tasks, 5);
        assert_int_equal(b.n_examples, 2720);
        for (int t = 0; t < 5; t++) assert_int_equal(b.n_classes[t], n_classes[t]);
        assert_string_equal(b.task_names[0], "Balinese");
        assert_string_equal(b.task_names[4], "Latin");
        assert_same(&a, &b);
        tnmtl_dataset_free(&a);
        tnmtl_dataset_free(&b);
    }
}

static void test_options(void **state)
{
    const char *dir = tu_shared_path("omniglot");
    char path[512];
    snprintf(path, sizeof path, "%s", dir);
    tnmtl_dataset ds;
    tnmtl_omniglot_options o = {.first_alphabets = 3, .size = 14};
    load_ok(path, &o, &ds);
    assert_int_equal(ds.n_tasks, 3);
    assert_string_equal(ds.task_names[2], "Asomtavruli_(Georgian)");
    assert_int_equal(ds.n_examples, 20 * (26 + 41 + 40));
    assert_int_equal(ds.in_h, 14);
    tnmtl_dataset_free(&ds);

    tnmtl_omniglot_options ev = {.sets = TNMTL_OMNIGLOT_SETS_EVALUATION, .size = 7};
    load_ok(path, &ev, &ds);
    assert_int_equal(ds.n_tasks, 20);
    assert_string_equal(ds.task_names[0], "Angelic");
    assert_string_equal(ds.task_names[19], "ULOG");
    assert_int_equal(ds.n_examples, 20 * 659);
    tnmtl_dataset_free(&ds);

    /* listed order is task order; names are trimmed */
    tnmtl_omniglot_options li = {.alphabets = "ULOG, Arcadian", .size = 5};
    load_ok(path, &li, &ds);
    assert_int_equal(ds.n_tasks, 2);
    assert_string_equal(ds.task_names[0], "ULOG");
    assert_string_equal(ds.task_names[1], "Arcadian");
    assert_int_equal(ds.n_classes[0], 26);
    tnmtl_dataset_free(&ds);

    /* a .npz given directly */
    char npz[600];
    snprintf(npz, sizeof npz, "%s/images_background.npz", path);
    tnmtl_omniglot_options bg = {.first_alphabets = 1, .size = 3};
    load_ok(npz, &bg, &ds);
    assert_int_equal(ds.n_tasks, 1);
    assert_string_equal(ds.task_names[0], "Arcadian");
    tnmtl_dataset_free(&ds);

    tnmtl_omniglot_options bad;
    bad = (tnmtl_omniglot_options){.size = 106};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "size 106", NULL);
    bad = (tnmtl_omniglot_options){.size = -1};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "size -1", NULL);
    bad = (tnmtl_omniglot_options){.alphabets = "Latin,Klingon"};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "Klingon", NULL);
    bad = (tnmtl_omniglot_options){.alphabets = "Latin,Latin"};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "twice", NULL);
    bad = (tnmtl_omniglot_options){.alphabets = "Latin,,Greek"};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "empty name", NULL);
    bad = (tnmtl_omniglot_options){.alphabets = "Latin", .first_alphabets = 2};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "not both", NULL);
    bad = (tnmtl_omniglot_options){.first_alphabets = 51};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "holds 50", NULL);
    bad = (tnmtl_omniglot_options){.sets = TNMTL_OMNIGLOT_SETS_BACKGROUND, .alphabets = "ULOG"};
    expect_fail(path, &bad, TNMTL_ERR_INVALID, "ULOG", NULL);   /* an evaluation alphabet */
    bad = (tnmtl_omniglot_options){.max_bytes = 100000000};     /* 358 MB needed */
    expect_fail(path, &bad, TNMTL_ERR_TOO_BIG, "358 MB", "32460 images");
}

/* ---- downsampling ------------------------------------------------------------ */

/* Reference: replicate each pixel s x s times, average n x n blocks. */
static void ref_downsample(const uint8_t *src, int n, uint8_t *dst, int s)
{
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            long sum = 0;
            for (int u = i * n; u < (i + 1) * n; u++)
                for (int v = j * n; v < (j + 1) * n; v++) sum += src[(u / s) * n + v / s];
            dst[i * s + j] = (uint8_t)floor((double)sum / ((double)n * n) + 0.5);
        }
}

static void test_downsample(void **state)
{
    uint8_t src[NP], dst[NP], ref[NP];
    /* 2x2 -> 1 averages, halves round up */
    const uint8_t q1[4] = {0, 255, 255, 255}, q2[4] = {0, 0, 0, 255}, q3[4] = {1, 2, 3, 4}, q4[4] = {10, 20, 30, 40};
    assert_int_equal(tnmtl_omniglot_downsample(q1, 2, dst, 1, NULL), TNMTL_OK);
    assert_int_equal(dst[0], 191);   /* 191.25 */
    tnmtl_omniglot_downsample(q2, 2, dst, 1, NULL);
    assert_int_equal(dst[0], 64);    /* 63.75 */
    tnmtl_omniglot_downsample(q3, 2, dst, 1, NULL);
    assert_int_equal(dst[0], 3);     /* 2.5 */
    tnmtl_omniglot_downsample(q4, 2, dst, 1, NULL);
    assert_int_equal(dst[0], 25);
    /* 3x3 -> 2: fractional coverage, corner = (4a + 2b + 2d + e) / 9 */
    const uint8_t t3[9] = {90, 0, 0, 0, 0, 0, 0, 0, 0};
    tnmtl_omniglot_downsample(t3, 3, dst, 2, NULL);
    assert_int_equal(dst[0], 40);
    assert_int_equal(dst[1], 0);
    const uint8_t c3[9] = {0, 0, 0, 0, 81, 0, 0, 0, 0};   /* centre: weight 1/9 of each output */
    tnmtl_omniglot_downsample(c3, 3, dst, 2, NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(dst[i], 9);
    /* constant images stay constant; s = n is the identity */
    for (int v = 0; v < 256; v += 85) {
        memset(src, v, NP);
        for (int s = 1; s <= N; s += 13) {
            tnmtl_omniglot_downsample(src, N, dst, s, NULL);
            for (int i = 0; i < s * s; i++) assert_int_equal(dst[i], v);
        }
    }
    uint64_t x = 12345;
    for (int i = 0; i < NP; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        src[i] = (uint8_t)(x >> 56);
    }
    assert_int_equal(tnmtl_omniglot_downsample(src, N, dst, N, NULL), TNMTL_OK);
    assert_memory_equal(src, dst, NP);
    /* random images against the reference, several ratios */
    const int sizes[][2] = {{105, 28}, {105, 30}, {105, 104}, {105, 1}, {105, 52}, {10, 4}, {7, 3}, {64, 32}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k][0], s = sizes[k][1];
        assert_int_equal(tnmtl_omniglot_downsample(src, n, dst, s, NULL), TNMTL_OK);
        ref_downsample(src, n, ref, s);
        assert_memory_equal(dst, ref, (size_t)s * s);
    }
    tnmtl_error e;
    assert_int_equal(tnmtl_omniglot_downsample(src, 10, dst, 11, &e), TNMTL_ERR_INVALID);
    assert_int_equal(tnmtl_omniglot_downsample(src, 10, dst, 0, &e), TNMTL_ERR_INVALID);
}

/* ---- synthetic data and bad input ------------------------------------------- */

static void test_synthetic_formats(void **state)
{
    uint8_t *b = syn_bool();
    size_t len = (size_t)SYN_CHARS * 20 * NP;
    assert_int_equal(mkdir(tmp_path("syn_npz"), 0700), 0);
    assert_int_equal(mkdir(tmp_path("syn_png"), 0700), 0);
    write_syn_npz(tmp_path("syn_npz/images_background.npz"), "|b1", "(3, 20, 105, 105)", b, len, 1, 0);
    write_text(tmp_path("syn_npz/alphabet_ranges.tsv"), syn_tsv);
    write_syn_pngzip(tmp_path("syn_png/images_background.zip"), "images_background/");
    free(b);
    for (int size = 0; size <= 30; size += 30) {
        tnmtl_omniglot_options o = {.size = size};
        tnmtl_dataset a, p;
        load_ok(tmp_path("syn_npz"), &o, &a);
        load_ok(tmp_path("syn_png"), &o, &p);
        assert_int_equal(a.n_tasks, 2);
        assert_string_equal(a.task_names[0], "Zeta");   /* by id, not by name */
        assert_string_equal(a.task_names[1], "Alpha");
        assert_int_equal(a.n_classes[0], 2);
        assert_int_equal(a.n_classes[1], 1);
        assert_same(&a, &p);
        if (!size) {   /* drawing 5 of character 1: ink = 255 exactly where syn_ink */
            const uint8_t *img = a.pixels + (int64_t)(20 + 4) * NP;
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) assert_int_equal(img[y * N + x], syn_ink(1, 4, y, x) ? 255 : 0);
            assert_int_equal(a.label[20 + 4], 1);
        }
        tnmtl_dataset_free(&a);
        tnmtl_dataset_free(&p);
    }
    /* a folder holding both formats is read as npz */
    assert_int_equal(symlink(tmp_path("syn_png/images_background.zip"), tmp_path("syn_npz/images_background.zip")), 0);
    tnmtl_dataset a;
    load_ok(tmp_path("syn_npz"), NULL, &a);
    assert_non_null(strstr(a.source, "npz"));
    tnmtl_dataset_free(&a);
    /* evaluation asked for but absent */
    tnmtl_omniglot_options ev = {.sets = TNMTL_OMNIGLOT_SETS_EVALUATION};
    expect_fail(tmp_path("syn_npz"), &ev, TNMTL_ERR_IO, "images_evaluation", "no Omniglot data");

    /* grey PNGs keep their grey levels: g -> 255 - g */
    uint8_t grey[NP];
    for (int i = 0; i < NP; i++) grey[i] = (uint8_t)(i % 256);
    size_t pl;
    void *png = make_png(N, N, grey, &pl);
    member m[1] = {{"A/character01/0001_01.png", png, pl}};
    write_zip(tmp_path("grey.zip"), m, 1);
    free(png);
    load_ok(tmp_path("grey.zip"), NULL, &a);
    assert_int_equal(a.n_examples, 1);
    for (int i = 0; i < NP; i++) assert_int_equal(a.pixels[i], 255 - i % 256);
    tnmtl_dataset_free(&a);
}

static void test_bad_files(void **state)
{
    /* missing file or folder, empty folder */
    expect_fail(tmp_path("nothing-here"), NULL, TNMTL_ERR_IO, "nothing-here", "no such file");
    assert_int_equal(mkdir(tmp_path("empty"), 0700), 0);
    expect_fail(tmp_path("empty"), NULL, TNMTL_ERR_IO, "no Omniglot data", NULL);

    /* garbage bytes */
    write_text(tmp_path("garbage.zip"), "this is not a zip archive at all, just some text\n");
    expect_fail(tmp_path("garbage.zip"), NULL, TNMTL_ERR_FORMAT, "garbage.zip", "not a zip");

    /* truncated and damaged copies of the real PNG zip */
    unsigned char *z;
    size_t zl;
    tnmtl_error e;
    assert_int_equal(tnmtl_read_file(tu_shared_path("omniglot/images_background_small1.zip"), 1 << 24, &z, &zl, &e),
                     TNMTL_OK);
    assert_int_equal(tnmtl_write_buffer_atomic(tmp_path("trunc.zip"), z, zl / 2, &e), TNMTL_OK);
    expect_fail(tmp_path("trunc.zip"), NULL, TNMTL_ERR_FORMAT, "trunc.zip", "truncated");
    for (size_t i = zl / 3; i < zl / 3 + 20000; i++) z[i] ^= 0x5a;   /* damage member data */
    assert_int_equal(tnmtl_write_buffer_atomic(tmp_path("damaged.zip"), z, zl, &e), TNMTL_OK);
    free(z);
    expect_fail(tmp_path("damaged.zip"), NULL, TNMTL_ERR_FORMAT, "damaged.zip", "member");

    /* PNG members: one corrupt, one of the wrong size, one badly named */
    uint8_t grey[NP];
    memset(grey, 255, sizeof grey);
    size_t l1, l2;
    void *ok = make_png(N, N, grey, &l1), *small = make_png(50, 50, grey, &l2);
    unsigned char junk[300];
    memcpy(junk, ok, 40);   /* PNG signature and IHDR, then junk */
    for (size_t i = 40; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 37);
    member m1[2] = {{"top/Alpha/character01/0001_01.png", ok, l1}, {"top/Alpha/character01/0001_02.png", junk, sizeof junk}};
    write_zip(tmp_path("badpng.zip"), m1, 2);
    expect_fail(tmp_path("badpng.zip"), NULL, TNMTL_ERR_FORMAT, "0001_02.png", "PNG");
    member m2[2] = {{"top/Alpha/character01/0001_01.png", ok, l1}, {"top/Alpha/character01/0001_02.png", small, l2}};
    write_zip(tmp_path("smallpng.zip"), m2, 2);
    expect_fail(tmp_path("smallpng.zip"), NULL, TNMTL_ERR_FORMAT, "0001_02.png", "50x50");
    member m3[1] = {{"top/Alpha/character01/drawing.png", ok, l1}};
    write_zip(tmp_path("badname.zip"), m3, 1);
    expect_fail(tmp_path("badname.zip"), NULL, TNMTL_ERR_FORMAT, "drawing.png", "IIII_DD.png");
    member m4[1] = {{"character01/0001_01.png", ok, l1}};
    write_zip(tmp_path("flat.zip"), m4, 1);
    expect_fail(tmp_path("flat.zip"), NULL, TNMTL_ERR_FORMAT, "character01/0001_01.png", "alphabet/character/");
    member m5[2] = {{"A/character01/0001_01.png", ok, l1}, {"A/character02/0001_01.png", ok, l1}};
    write_zip(tmp_path("dup.zip"), m5, 2);
    expect_fail(tmp_path("dup.zip"), NULL, TNMTL_ERR_FORMAT, "both drawing 1 of character 1", NULL);
    member m6[1] = {{"readme.txt", "hello", 5}};
    write_zip(tmp_path("nopng.zip"), m6, 1);
    expect_fail(tmp_path("nopng.zip"), NULL, TNMTL_ERR_FORMAT, "nopng.zip", "no alphabet/character");
    free(ok);
    free(small);
}

static void test_bad_npz(void **state)
{
    uint8_t *b = syn_bool();
    size_t len = (size_t)SYN_CHARS * 20 * NP;
    const char *dir = tmp_path("npz");
    char npz[512], tsv[512];
    snprintf(npz, sizeof npz, "%s/images_background.npz", dir);
    snprintf(tsv, sizeof tsv, "%s/alphabet_ranges.tsv", dir);
    assert_int_equal(mkdir(dir, 0700), 0);

    /* no ranges file */
    write_syn_npz(npz, "|b1", "(3, 20, 105, 105)", b, len, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_IO, "alphabet_ranges.tsv", "missing");
    /* ranges that do not match the images */
    write_text(tsv, "background\tZeta\t1\t2\t2\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv lists 2 background characters",
                "images.npy holds 3");
    write_text(tsv, "background\tZeta\t1\t2\t2\nbackground\tAlpha\t4\t4\t1\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv", "gap");
    write_text(tsv, "background\tZeta\t1\t2\t2\nbackground\tAlpha\t2\t3\t2\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv", "overlap");
    write_text(tsv, "background\tZeta\t1\t2\t3\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv line 1", "n_chars");
    write_text(tsv, "background\tZeta\t1\t2\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv line 1", "4 tab-separated fields");
    write_text(tsv, "# header\nfoo\tZeta\t1\t2\t2\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv line 2", "'foo'");
    write_text(tsv, "evaluation\tZeta\t965\t967\t3\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "no background alphabets", NULL);
    write_text(tsv, "background\tZeta\t1\t2\t2\nbackground\tZeta\t3\t3\t1\n");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "alphabet_ranges.tsv line 2", "listed twice");
    write_text(tsv, syn_tsv);
    tnmtl_dataset ds;
    load_ok(dir, NULL, &ds);   /* now it is right */
    assert_int_equal(ds.n_examples, 60);
    tnmtl_dataset_free(&ds);

    /* wrong dtype, wrong shape, short data, bad labels, no images.npy */
    float f[4] = {0};
    write_syn_npz(npz, "<f4", "(1, 1, 2, 2)", f, sizeof f, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "images.npy has dtype <f4", "images_background.npz");
    write_syn_npz(npz, "|b1", "(3, 20, 28, 28)", b, (size_t)3 * 20 * 28 * 28, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "images.npy has shape (3, 20, 28, 28)", "images_background.npz");
    write_syn_npz(npz, "|b1", "(3, 105, 105)", b, (size_t)3 * NP, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "shape (3, 105, 105)", NULL);
    write_syn_npz(npz, "|b1", "(3, 20, 105, 105)", b, len - 1000, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "images.npy", "truncated");
    write_syn_npz(npz, "|b1", "(3, 20, 105, 105)", b, len, 1, 1);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "labels.npy[1][5] is 0", NULL);
    write_syn_npz(npz, "'|b1", "(3, 20, 105, 105)", b, len, 0, 0);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "images_background.npz: images.npy", NULL);
    member m[1] = {{"other.npy", b, 100}};
    write_zip(npz, m, 1);
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "no member images.npy", NULL);
    write_text(npz, "PK garbage");
    expect_fail(dir, NULL, TNMTL_ERR_FORMAT, "images_background.npz", "not a zip");
    free(b);
}

static void test_cli(void **state)
{
    if (access(tu_cli(), X_OK) != 0) {
        print_message("%s not built: CLI test skipped\n", tu_cli());
        skip();
    }
    char cmd[2048], out[65536];
    snprintf(cmd, sizeof cmd, "%s omniglot-info %s --size 28", tu_cli(),
             tu_shared_path("omniglot/images_background_small1.zip"));
    assert_int_equal(tu_run(cmd, 0, out, sizeof out), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "n_tasks")->valueint, 5);
    assert_int_equal(cJSON_GetObjectItem(j, "n_classes")->valueint, 136);
    assert_int_equal(cJSON_GetObjectItem(j, "n_examples")->valueint, 2720);
    assert_int_equal(cJSON_GetObjectItem(j, "size")->valueint, 28);
    const cJSON *t4 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tasks"), 4);
    assert_string_equal(cJSON_GetObjectItem(t4, "name")->valuestring, "Latin");
    assert_int_equal(cJSON_GetObjectItem(t4, "classes")->valueint, 26);
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "%s omniglot-info %s --size 0", tu_cli(), tu_shared_path("omniglot"));
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "--size"));
    snprintf(cmd, sizeof cmd, "%s omniglot-info %s", tu_cli(), tmp_path("nothing-here"));
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "no such file"));
}

/* The CI smoke run of the paper's experiment: 3 alphabets at 28x28, the
 * paper's network, all five methods, 300 steps, the defaults otherwise
 * (for Omniglot: the sum of the task losses; with the mean, Tucker and TT
 * collapse to ~3% here).  Every method learns (chance is about 4%), UD-MTL
 * hard-shares conv1-3 and the others do not.  About 3 s. */
static void test_smoke_all_methods(void **state)
{
    if (access(tu_cli(), X_OK) != 0) {
        print_message("%s not built: smoke test skipped\n", tu_cli());
        skip();
    }
    static char out[1 << 15];
    const char *dir = tmp_path("smoke");
    int code = tu_cli_run(1, out, sizeof out,
                          "compare --data omniglot:%s --alphabets 3 --size 28 --methods stl,ud,laf,tucker,tt "
                          "--steps 300 --batch 10 --train-frac 0.5 --quiet --out %s",
                          tu_shared_path("omniglot"), dir);
    if (code != 0) fprintf(stderr, "%s\n", out);
    assert_int_equal(code, 0);
    char path[1024], csv[1 << 14];
    snprintf(path, sizeof path, "cat %s/table.csv", dir);
    assert_int_equal(tu_run(path, 0, csv, sizeof csv), 0);
    static const char *const methods[5] = {"stl", "ud", "laf", "tucker", "tt"};
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "\n%s,", methods[i]);
        const char *row = strstr(csv, key);
        assert_non_null(row);
        /* method,seeds,mean_accuracy_pct,std,diff,diff_std,wins,train_s,val,rho0..rho3,erank0..erank3 */
        double f[17];
        const char *p = row + strlen(key);
        for (int k = 1; k < 17; k++) {
            f[k] = strtod(p, NULL);
            p = strchr(p, ',');
            if (!p && k < 16) fail_msg("short row for %s in table.csv", methods[i]);
            if (p) p++;
        }
        print_message("smoke: %-6s test accuracy %.2f%%, rho %.3f %.3f %.3f %.3f, rank %.2f %.2f %.2f %.2f\n",
                      methods[i], f[2], f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[16]);
        assert_true(f[2] > 15.0 && f[2] <= 100.0);
        for (int l = 0; l < 3; l++) { /* conv1-3: hard-shared by UD only (rank 1 of 3 tasks) */
            if (i == 1) assert_true(fabs(f[9 + l] - 1.0) < 1e-6 && fabs(f[13 + l] - 1.0) < 1e-6);
            else assert_true(f[9 + l] < 0.5 && f[13 + l] > 1.5);
        }
        assert_true(fabs(f[12]) < 0.5 && f[16] > 1.5); /* fc1 is task-specific in every method */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downsample),
        cmocka_unit_test(test_synthetic_formats),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_npz),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_png_zip_equals_npz),
        cmocka_unit_test(test_partial_load),
        cmocka_unit_test(test_full_npz),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_smoke_all_methods),
    };
    return cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir);
}
