/* testutil.h - helpers shared by the test programs (linked into each).
 * Tests use cmocka; include <setjmp.h>, <stdarg.h>, <stddef.h> before
 * <cmocka.h>.  Tests run from the repository root. */
#ifndef TNMTL_TESTUTIL_H
#define TNMTL_TESTUTIL_H

#include <stddef.h>

#include "tnmtl/dataset.h"

/* Folder of the shared test data: $TNMTL_SHARED_DATA or ../shared/data. */
const char *tu_shared_data(void);
/* Path "<shared data>/<rel>" in a static buffer (one at a time). */
const char *tu_shared_path(const char *rel);
/* The tnmtl CLI binary: $TNMTL_CLI or build/tnmtl. */
const char *tu_cli(void);
/* A fresh empty temporary directory (removed by tu_rmtree). */
const char *tu_tmpdir(void);
void tu_rmtree(const char *dir);
/* cmocka group fixtures: a fresh temporary directory for a whole test
 * group, its path in tu_group_dir, removed at the end.
 *   cmocka_run_group_tests(tests, tu_group_setup_tmpdir, tu_group_teardown_tmpdir) */
extern char tu_group_dir[256];
int tu_group_setup_tmpdir(void **state);
int tu_group_teardown_tmpdir(void **state);
/* Runs a shell command, captures stdout (and stderr if merge) into out[cap],
 * returns its exit status (or -1). */
int tu_run(const char *cmd, int merge_stderr, char *out, size_t cap);
/* Runs `<tnmtl CLI> ARGS` (ARGS formatted like printf), output into
 * out[cap] as tu_run does; returns the exit status. */
int tu_cli_run(int merge_stderr, char *out, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Processes: starts `<tnmtl CLI> ARGS` (ARGS formatted like printf, split
 * on spaces) with stdout to /dev/null and stderr to err_path (or /dev/null);
 * returns the pid, -1 if fork failed. */
#include <sys/types.h>
pid_t tu_spawn(const char *err_path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Waits for pid: its exit status, 1000 + signal if killed, -1 on error. */
int tu_wait_exit(pid_t pid);
/* Monotonic clock in seconds. */
double tu_now(void);
/* 1 if path exists. */
int tu_exists(const char *path);
/* The text of a file (up to cap-1 bytes) into buf; "" if unreadable. */
void tu_read_text(const char *path, char *buf, size_t cap);
/* How many times needle occurs in hay (overlapping occurrences counted). */
int tu_count(const char *hay, const char *needle);
/* The whole file in a malloc'd buffer, NUL-terminated (the terminator is
 * not counted in *len, which may be NULL); NULL if it cannot be read. */
char *tu_read_file(const char *path, size_t *len);
/* 1 when DIR_A/checkpoint.safetensors and DIR_B's hold the same step and
 * the same tensors bit for bit (parameters and optimiser state); else 0 with
 * the first difference in why[cap]. */
int tu_same_checkpoint(const char *dir_a, const char *dir_b, char *why, size_t cap);
/* In `tnmtl tune` folder dir, forgets the gamma path's confirmations (the
 * trials whose folder name does not end in -path): their ledger.json
 * entries and, with `folders`, their trial folders, so that the same tune
 * command makes them again.  0 on success. */
int tu_tune_forget_confirmations(const char *dir, int folders);
/* Multiplies the validation metric (4th column) of the history.csv at path
 * by factor on the rows that awk condition `when` selects ($1: the step).
 * 0 on success. */
int tu_history_scale_val(const char *path, const char *when, double factor);
/* Max |a-b| / (atol + rtol*|b|) over n doubles: <= 1 means within tolerance. */
double tu_max_rel_err(const double *a, const double *b, size_t n, double atol, double rtol);

/* A partial load's choice for tests: select returns [begin, end) and
 * counts its calls; agree_shape (when agree_c > 0) records the shape it is
 * offered in h, w, c and widens the channels to agree_c. */
typedef struct tu_task_range {
    int begin, end, calls;
    int agree_c, h, w, c;
} tu_task_range;
tnmtl_input_select tu_select_tasks(tu_task_range *r);
/* 0 if part is full with only the inputs of tasks [begin, end) kept:
 * every task's offsets, classes and labels, inputs_task_begin/end set (0, 0
 * for every task), and the same inputs (tnmtl_dataset_gather) for each
 * example of those tasks; else 1 with the first difference in why. */
int tu_partial_inputs_differ(const tnmtl_dataset *full, const tnmtl_dataset *part, int begin, int end, char *why,
                             size_t cap);

#endif
