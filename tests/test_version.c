/* test_version.c - the version macros and the linked library agree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tnmtl.h"

static void test_string_matches_numbers(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", TNMTL_VERSION_MAJOR, TNMTL_VERSION_MINOR, TNMTL_VERSION_PATCH);
    assert_string_equal(TNMTL_VERSION, want);
    assert_int_equal(TNMTL_VERSION_NUMBER,
                     TNMTL_VERSION_MAJOR * 10000 + TNMTL_VERSION_MINOR * 100 + TNMTL_VERSION_PATCH);
    assert_true(TNMTL_VERSION_MINOR < 100 && TNMTL_VERSION_PATCH < 100); /* the number stays comparable */
}

static void test_library_matches_header(void **state)
{
    (void)state;
    assert_string_equal(tnmtl_version(), TNMTL_VERSION);
    assert_int_equal(tnmtl_version_number(), TNMTL_VERSION_NUMBER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_matches_numbers),
        cmocka_unit_test(test_library_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
