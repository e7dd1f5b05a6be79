/* test_imagefolder.c - image folders (images:DIR) and numpy arrays (npz:FILE)
 * as multi-task data: an image tree written by scripts/make_image_tree.py
 * (every PNG kind, awkward names, hidden files) must load as the same
 * tasks, classes, counts and pixels as the npz of the same arrays, and
 * train the same model bit for bit; Omniglot's PNGs unzipped to a tree
 * must give the data and the model of omniglot:. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "testutil.h"
#include "tnmtl/imagefolder.h"
#include "tnmtl/npz.h"
#include "tnmtl/omniglot.h"
#include "tnmtl/safetensors.h"

static int have_tree;   /* the generator ran (it needs numpy) */
static char path_buf[1024];

static const char *at(const char *rel)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", tu_group_dir, rel);
    return path_buf;
}

static int setup(void **state)
{
    if (tu_group_setup_tmpdir(state)) return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "for p in python3 /usr/bin/python3; do if $p -c 'import numpy' 2>/dev/null; then "
             "exec $p scripts/make_image_tree.py '%s' --seed 7; fi; done; exit 77", tu_group_dir);
    int rc = tu_run(cmd, 1, NULL, 0);
    have_tree = rc == 0;
    if (rc != 0 && rc != 77) fprintf(stderr, "make_image_tree.py failed (%d)\n", rc);
    return rc == 0 || rc == 77 ? 0 : -1;
}

#define NEED_TREE()                                                                   \
    do {                                                                              \
        if (!have_tree) {                                                             \
            fprintf(stderr, "skipped: no python3 with numpy for make_image_tree.py\n"); \
            skip();                                                                   \
        }                                                                             \
    } while (0)

/* Same tasks, names, classes, counts, labels and pixels. */
static void assert_same_data(const tnmtl_dataset *a, const tnmtl_dataset *b)
{
    assert_int_equal(a->n_tasks, b->n_tasks);
    assert_int_equal(a->in_h, b->in_h);
    assert_int_equal(a->in_w, b->in_w);
    assert_int_equal(a->in_c, b->in_c);
    assert_int_equal(a->n_examples, b->n_examples);
    assert_true(a->pixel_scale == b->pixel_scale && a->pixel_offset == b->pixel_offset);
    for (int t = 0; t < a->n_tasks; t++) {
        assert_int_equal(a->task_begin[t + 1], b->task_begin[t + 1]);
        assert_int_equal(a->n_classes[t], b->n_classes[t]);
        assert_string_equal(a->task_names[t], b->task_names[t]);
    }
    assert_memory_equal(a->label, b->label, (size_t)a->n_examples * sizeof(int));
    assert_non_null(a->pixels);
    assert_non_null(b->pixels);
    assert_memory_equal(a->pixels, b->pixels, (size_t)(a->n_examples * tnmtl_dataset_example_size(a)));
}

static void test_tree_matches_npz(void **state)
{
    (void)state;
    NEED_TREE();
    tnmtl_dataset img, npz;
    tnmtl_error err;
    tnmtl_imagefolder_options opt = {.threads = 2};
    char tree[1024];
    snprintf(tree, sizeof tree, "%s", at("tree"));
    if (tnmtl_imagefolder_load(tree, &opt, &img, &err)) fail_msg("%s", err.msg);
    if (tnmtl_npz_load(at("rgb.npz"), 0, &npz, &err)) fail_msg("%s", err.msg);
    assert_int_equal(img.in_c, 3);   /* default: colour, since some images are */
    assert_int_equal(img.in_h, 10);
    assert_int_equal(img.in_w, 12);
    assert_same_data(&img, &npz);
    assert_string_equal(img.task_names[0], "-dash task");
    assert_string_equal(img.task_names[2], "z\xc3\xa8" "bre \xc3\xbcn\xc3\xaf" "code");
    assert_non_null(img.class_names);
    assert_string_equal(img.class_names[1][2], "red fox");
    assert_string_equal(img.class_names[2][1], "\xc3\xa9t\xc3\xa9");
    assert_null(npz.part);
    assert_int_equal(tnmtl_dataset_validate(&img, &err), TNMTL_OK);

    /* One thread gives the same bytes. */
    tnmtl_dataset one;
    opt.threads = 1;
    if (tnmtl_imagefolder_load(tree, &opt, &one, &err)) fail_msg("%s", err.msg);
    assert_same_data(&one, &img);
    tnmtl_dataset_free(&one);

    /* --size: each image through the area filter, and --invert. */
    tnmtl_dataset small;
    opt.size = 5;
    opt.invert = 1;
    if (tnmtl_imagefolder_load(tree, &opt, &small, &err)) fail_msg("%s", err.msg);
    assert_int_equal(small.in_h, 5);
    assert_int_equal(small.in_w, 5);
    tnmtl_resizer rs;
    assert_int_equal(tnmtl_resizer_init(&rs, 10, 12, 5, 5, 3, &err), TNMTL_OK);
    uint8_t want[75];
    for (int64_t i = 0; i < img.n_examples; i++) {
        tnmtl_resizer_apply(&rs, img.pixels + i * 360, want);
        for (int k = 0; k < 75; k++) assert_int_equal(small.pixels[i * 75 + k], 255 - want[k]);
    }
    tnmtl_resizer_free(&rs);
    tnmtl_dataset_free(&small);

    /* Memory: refused up front with the estimate (26 images of 10x12x3 = 9360 bytes). */
    tnmtl_imagefolder_options tight = {.max_bytes = 9000};
    assert_int_equal(tnmtl_imagefolder_load(tree, &tight, &small, &err), TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "26 images of 10x12x3 would need 0 MB, more than the limit of 0 MB"));
    assert_null(small.pixels);
    tight.max_bytes = 9360;
    assert_int_equal(tnmtl_imagefolder_load(tree, &tight, &small, &err), TNMTL_OK);
    tnmtl_dataset_free(&small);
    assert_int_equal(tnmtl_npz_load(at("rgb.npz"), 9000, &small, &err), TNMTL_ERR_TOO_BIG);
    assert_non_null(strstr(err.msg, "rgb.npz: 26 images of 10x12x3 would need"));
    tnmtl_dataset_free(&img);
    tnmtl_dataset_free(&npz);
}

/* A partial load (one process of a distributed run): only the selected
 * tasks' files are read, so a corrupt file in another task does not stop
 * it; the shape is agreed through agree_shape; the bytes are the full
 * load's. */
static void test_partial_load(void **state)
{
    (void)state;
    NEED_TREE();
    char tree[1024], copy[1024], bad[1200], why[256];
    snprintf(tree, sizeof tree, "%s", at("tree"));
    snprintf(copy, sizeof copy, "%s", at("partial"));
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", tree, copy);
    assert_int_equal(tu_run(cmd, 1, NULL, 0), 0);
    snprintf(bad, sizeof bad, "%s/-dash task/a/img_00.png", copy); /* task 0 */
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("not an image", f);
    fclose(f);
    tnmtl_dataset full, part;
    tnmtl_error err;
    tnmtl_imagefolder_options opt = {.threads = 2};
    if (tnmtl_imagefolder_load(tree, &opt, &full, &err)) fail_msg("%s", err.msg);
    assert_int_equal(tnmtl_imagefolder_load(copy, &opt, &part, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "img_00.png"));

    /* Tasks 1..2, their shape widened to the colour one process found. */
    tu_task_range r = {.begin = 1, .end = 3, .agree_c = 3};
    opt.inputs = tu_select_tasks(&r);
    if (tnmtl_imagefolder_load(copy, &opt, &part, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.calls, 1);
    assert_true(r.h == 10 && r.w == 12 && (r.c == 1 || r.c == 3));
    assert_int_equal(part.in_c, 3);
    if (tu_partial_inputs_differ(&full, &part, 1, 3, why, sizeof why)) fail_msg("%s", why);
    assert_string_equal(part.class_names[1][2], "red fox");
    assert_int_equal(tnmtl_dataset_validate(&part, &err), TNMTL_OK);
    tnmtl_dataset_free(&part);

    /* The corrupt task selected: it fails, naming the file. */
    tu_task_range first = {.begin = 0, .end = 1, .agree_c = 3};
    opt.inputs = tu_select_tasks(&first);
    assert_int_equal(tnmtl_imagefolder_load(copy, &opt, &part, &err), TNMTL_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "img_00.png"));
    assert_null(part.pixels);
    tnmtl_dataset_free(&full);
    tu_rmtree(copy);
}

static void test_grey_and_fixed_split(void **state)
{
    (void)state;
    NEED_TREE();
    tnmtl_dataset img, npz;
    tnmtl_error err;
    tnmtl_imagefolder_options opt = {.channels = 1};
    char tree[1024];
    snprintf(tree, sizeof tree, "%s", at("tree"));
    if (tnmtl_imagefolder_load(tree, &opt, &img, &err)) fail_msg("%s", err.msg);
    if (tnmtl_npz_load(at("grey.npz"), 0, &npz, &err)) fail_msg("%s", err.msg);
    assert_int_equal(img.in_c, 1);
    assert_same_data(&img, &npz);
    /* The npz's split column is the split, whatever the seed and fractions. */
    assert_non_null(npz.part);
    tnmtl_split s1, s2;
    assert_int_equal(tnmtl_split_make(&npz, 0.5, 0.0, 1, &s1, &err), TNMTL_OK);
    assert_int_equal(tnmtl_split_make(&npz, 0.9, 0.2, 99, &s2, &err), TNMTL_OK);
    for (int p = 0; p < 3; p++) {
        assert_memory_equal(s1.begin[p], s2.begin[p], sizeof(int64_t) * 4);
        for (int64_t k = 0; k < s1.begin[p][3]; k++) {
            assert_int_equal(s1.idx[p][k], s2.idx[p][k]);
            assert_int_equal(npz.part[s1.idx[p][k]], p);
        }
    }
    assert_true(s1.begin[TNMTL_PART_VAL][3] > 0 && s1.begin[TNMTL_PART_TEST][3] > 0);
    tnmtl_split_free(&s1);
    tnmtl_split_free(&s2);
    tnmtl_dataset_free(&img);
    tnmtl_dataset_free(&npz);
}

static tnmtl_st_file *open_checkpoint(const char *run)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    tnmtl_st_file *f;
    tnmtl_error err;
    tnmtl_status st = tnmtl_st_load(path, 0, &f, &err);
    if (st) fprintf(stderr, "%s: %s\n", path, err.msg);
    assert_int_equal(st, TNMTL_OK);
    return f;
}

/* Every tensor of the two checkpoints (weights and optimiser moments) is
 * the same, bit for bit. */
static void assert_same_model(const char *run_a, const char *run_b)
{
    tnmtl_st_file *a = open_checkpoint(run_a), *b = open_checkpoint(run_b);
    assert_int_equal(tnmtl_st_count(a), tnmtl_st_count(b));
    int64_t total = 0;
    for (int i = 0; i < tnmtl_st_count(a); i++) {
        const tnmtl_st_tensor *ta = tnmtl_st_at(a, i), *tb = tnmtl_st_at(b, i);
        assert_string_equal(ta->name, tb->name);
        assert_int_equal(tnmtl_st_numel(ta), tnmtl_st_numel(tb));
        assert_int_equal(ta->dtype, tb->dtype);
        size_t bytes = (size_t)tnmtl_st_numel(ta) * tnmtl_st_dtype_size(ta->dtype);
        assert_memory_equal(ta->data, tb->data, bytes);
        total += tnmtl_st_numel(ta);
    }
    assert_true(total > 100);
    tnmtl_st_free(a);
    tnmtl_st_free(b);
}

static void train_and_compare(const char *spec_a, const char *spec_b, const char *opts, const char *tag)
{
    char out[4096], run_a[1024], run_b[1024];
    snprintf(run_a, sizeof run_a, "%s/%s-a", tu_group_dir, tag);
    snprintf(run_b, sizeof run_b, "%s/%s-b", tu_group_dir, tag);
    int rc = tu_cli_run(1, out, sizeof out, "train --data '%s' %s --out '%s' --quiet", spec_a, opts, run_a);
    if (rc) fail_msg("train %s: exit %d: %s", spec_a, rc, out);
    rc = tu_cli_run(1, out, sizeof out, "train --data '%s' %s --out '%s' --quiet", spec_b, opts, run_b);
    if (rc) fail_msg("train %s: exit %d: %s", spec_b, rc, out);
    assert_same_model(run_a, run_b);
}

static void test_cli_same_model(void **state)
{
    (void)state;
    NEED_TREE();
    char img[1100], npz[1100];
    snprintf(img, sizeof img, "images:%s", at("tree"));
    snprintf(npz, sizeof npz, "npz:%s", at("rgb.npz"));
    train_and_compare(img, npz, "--steps 6 --seed 3 --method tucker", "rgb");
    /* Names reach results.json. */
    char out[8192];
    snprintf(out, sizeof out, "%s/rgb-a/results.json", tu_group_dir);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    assert_non_null(strstr(out, "\"task_names\":\t[\"-dash task\", \"task A\", \"z\xc3\xa8" "bre"));
    assert_non_null(strstr(out, "[\"cat\", \"dog\", \"red fox\"]"));
}

static void test_data_info(void **state)
{
    (void)state;
    NEED_TREE();
    char out[16384];
    int rc = tu_cli_run(0, out, sizeof out, "data-info --data 'images:%s'", at("tree"));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"n_examples\":\t26"));
    assert_non_null(strstr(out, "\"example_shape\":\t[10, 12, 3]"));
    assert_non_null(strstr(out, "\"memory_bytes\":\t9360"));
    assert_non_null(strstr(out, "\"name\":\t\"dog\",\n\t\t\t\t\t\"examples\":\t4"));   /* with the subfolder's image */
    rc = tu_cli_run(0, out, sizeof out, "data-info --data 'npz:%s'", at("grey.npz"));
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "\"fixed_split\":\ttrue"));
    assert_non_null(strstr(out, "\"example_shape\":\t[10, 12, 1]"));
}

/* Omniglot's official PNGs, unzipped to a tree of 3 alphabets. */
static void test_omniglot_tree(void **state)
{
    (void)state;
    const char *zip = tu_shared_path("omniglot/images_background_small1.zip");
    char zip_path[1024], cmd[4096], out[4096];
    snprintf(zip_path, sizeof zip_path, "%s", zip);
    FILE *probe = fopen(zip_path, "rb");
    if (!probe) {
        fprintf(stderr, "skipped: %s missing\n", zip_path);
        skip();
    }
    fclose(probe);
    const char *alphabets = "Balinese,Early_Aramaic,Greek";   /* the first three by name */
    snprintf(cmd, sizeof cmd,   /* python3's zipfile: unzip is not a dependency */
             "python3 -c 'import sys, zipfile\n"
             "z = zipfile.ZipFile(sys.argv[1])\n"
             "for n in z.namelist():\n"
             "    if n.split(\"/\")[1:2] and n.split(\"/\")[1] in sys.argv[3].split(\",\"): z.extract(n, sys.argv[2])' "
             "'%s' '%s' '%s'", zip_path, tu_group_dir, alphabets);
    assert_int_equal(tu_run(cmd, 1, out, sizeof out), 0);
    char tree[1100];
    snprintf(tree, sizeof tree, "%s/images_background_small1", tu_group_dir);

    tnmtl_dataset img, og;
    tnmtl_error err;
    tnmtl_imagefolder_options io = {.size = 28, .invert = 1};
    tnmtl_omniglot_options oo = {.size = 28, .alphabets = alphabets};
    if (tnmtl_imagefolder_load(tree, &io, &img, &err)) fail_msg("%s", err.msg);
    if (tnmtl_omniglot_load(zip_path, &oo, &og, &err)) fail_msg("%s", err.msg);
    assert_int_equal(img.n_tasks, 3);
    assert_int_equal(img.in_c, 1);
    assert_same_data(&img, &og);
    assert_string_equal(img.class_names[0][0], "character01");
    tnmtl_dataset_free(&img);
    tnmtl_dataset_free(&og);

    /* The same options but for --invert (images) and --alphabets (omniglot). */
    char a[1200], b[1200];
    snprintf(a, sizeof a, "images:%s", tree);
    snprintf(b, sizeof b, "omniglot:%s", zip_path);
    const char *opts = "--size 28 --steps 3 --seed 2 --method laf --arch conv8x5,pool2,conv12x3,pool2,conv16x3,"
                       "pool2,fc64 --train-frac 0.1 --task-loss sum";
    char run_a[1024], run_b[1024];
    snprintf(run_a, sizeof run_a, "%s/og-a", tu_group_dir);
    snprintf(run_b, sizeof run_b, "%s/og-b", tu_group_dir);
    int rc = tu_cli_run(1, out, sizeof out, "train --data '%s' --invert %s --out '%s' --quiet", a, opts, run_a);
    if (rc) fail_msg("train %s: exit %d: %s", a, rc, out);
    rc = tu_cli_run(1, out, sizeof out, "train --data '%s' --alphabets %s %s --out '%s' --quiet", b, alphabets, opts,
                    run_b);
    if (rc) fail_msg("train %s: exit %d: %s", b, rc, out);
    assert_same_model(run_a, run_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_matches_npz),
        cmocka_unit_test(test_partial_load),
        cmocka_unit_test(test_grey_and_fixed_split),
        cmocka_unit_test(test_cli_same_model),
        cmocka_unit_test(test_data_info),
        cmocka_unit_test(test_omniglot_tree),
    };
    return cmocka_run_group_tests(tests, setup, tu_group_teardown_tmpdir);
}
