/* test_fuzz_regressions.c - replays the fuzzing inputs through the same
 * entry points as the libFuzzer harnesses (tests/fuzz/fuzz_*.c, compiled
 * in here with renamed entry points), in the ordinary build and under
 * sanitizers, without clang: every seed of tests/fuzz/corpus/NAME/ and
 * every input that once made a harness fail, tests/fuzz/regress/NAME/.
 * A harness aborts on a broken invariant, ASan/UBSan report memory
 * errors; the test checks that the inputs are there and were all run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* The CLI's configuration parser is not in the test programs' link. */
#define TNMTL_FUZZ_NO_CLI 1

#define LLVMFuzzerTestOneInput fuzz_npy_one
#include "fuzz/fuzz_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_csv_one
#include "fuzz/fuzz_csv.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_arch_one
#include "fuzz/fuzz_arch.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_checkpoint_one
#include "fuzz/fuzz_checkpoint.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npz_one
#include "fuzz/fuzz_npz.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pngzip_one
#include "fuzz/fuzz_pngzip.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_image_one
#include "fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_arrays_one
#include "fuzz/fuzz_arrays.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

/* Feeds every file of folder (if it exists) to fn; returns how many. */
static int replay(const char *folder, fuzz_fn fn)
{
    DIR *d = opendir(folder);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "README")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", folder, de->d_name);
        size_t len;
        char *buf = tu_read_file(path, &len);
        assert_non_null(buf);
        /* a copy of exactly len bytes: reads past the input are caught by ASan */
        uint8_t *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        free(buf);
        assert_int_equal(fn(exact, len), 0);
        free(exact);
        n++;
    }
    closedir(d);
    return n;
}

static void run_harness(const char *name, fuzz_fn fn)
{
    char corpus[256], regress[256];
    snprintf(corpus, sizeof corpus, "tests/fuzz/corpus/%s", name);
    snprintf(regress, sizeof regress, "tests/fuzz/regress/%s", name);
    const int a = replay(corpus, fn), b = replay(regress, fn);
    fprintf(stderr, "fuzz_%s: %d seed inputs, %d regression inputs\n", name, a, b);
    assert_true(a >= 3);
}

static void test_npy(void **state) { (void)state; run_harness("npy", fuzz_npy_one); }
static void test_csv(void **state) { (void)state; run_harness("csv", fuzz_csv_one); }
static void test_arch(void **state) { (void)state; run_harness("arch", fuzz_arch_one); }
static void test_checkpoint(void **state) { (void)state; run_harness("checkpoint", fuzz_checkpoint_one); }
static void test_npz(void **state) { (void)state; run_harness("npz", fuzz_npz_one); }
static void test_pngzip(void **state) { (void)state; run_harness("pngzip", fuzz_pngzip_one); }
static void test_image(void **state) { (void)state; run_harness("image", fuzz_image_one); }
static void test_arrays(void **state) { (void)state; run_harness("arrays", fuzz_arrays_one); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy),        cmocka_unit_test(test_csv), cmocka_unit_test(test_arch),
        cmocka_unit_test(test_checkpoint), cmocka_unit_test(test_npz), cmocka_unit_test(test_pngzip),
        cmocka_unit_test(test_image),      cmocka_unit_test(test_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
