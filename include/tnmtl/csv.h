/* tnmtl/csv.h - multi-task tabular data from a CSV file.
 *
 * One row per example; one column names the task, one holds the target and
 * the feature columns hold numbers.  For example (School data):
 *
 *   task,y,x0,x1,...,x27
 *   0,17,1,0,...,1
 *
 *   tnmtl_csv_options opt = {0};
 *   opt.kind = TNMTL_TARGET_REAL;          // task "task", target "y" by default
 *   tnmtl_dataset ds;
 *   if (tnmtl_csv_load("school.csv", &opt, &ds, &err)) ...
 *
 * The format is strict (a bad file fails; nothing is skipped or guessed):
 * - The first line is a header of unique, non-empty column names.
 * - Fields are separated by ','; a field may be quoted RFC-4180 style
 *   ("a,b" and "say ""hi""", a quoted field may span lines).  A quote
 *   inside an unquoted field, text after a closing quote, or a quote left
 *   open at the end of the file is an error.
 * - Lines end with LF or CRLF; the last line may lack its end.  A UTF-8
 *   byte-order mark at the start is skipped.  Empty lines are errors,
 *   except at the very end of the file.
 * - Every row has exactly as many fields as the header.
 * - Feature and target fields are decimal numbers (spaces and tabs around
 *   them are allowed; hexadecimal, NaN, Inf and values that overflow a
 *   float are not).  Task names are taken verbatim (not trimmed) and must
 *   not be empty.  Columns not selected are not parsed.
 * Errors name the file, the line (1-based, the header is line 1) and the
 * column (1-based index and name), e.g.
 *   "school.csv: line 17, column 5 'x2': 'abc' is not a number".
 *
 * The resulting dataset is tabular: in_h = in_w = 1, in_c = the number of
 * feature columns, float features.  Tasks are numbered in order of first
 * appearance in the file and task_names[t] is the task column's value;
 * within a task the rows keep their file order.
 * Classification: the target must hold integers (e.g. "3" or "3.0"); per
 * task the distinct values, sorted ascending, are mapped to 0..k-1, so
 * labels that already are 0..k-1 are kept as they are, and labels
 * {1, 2, 5} become {0, 1, 2}.  Regression: the target is a float.
 */
#ifndef TNMTL_CSV_H
#define TNMTL_CSV_H

#include <stddef.h>

#include "tnmtl/dataset.h"
#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default size cap (bytes) of a CSV file. */
#define TNMTL_CSV_MAX_BYTES ((size_t)1 << 30)

typedef struct tnmtl_csv_options {
    const char *task_column;      /* NULL: "task"                                   */
    const char *target_column;    /* NULL: "y"                                      */
    const char *const *feature_columns; /* [n_feature_columns] in this order; NULL: */
    int n_feature_columns;        /*   every column but the task and target ones    */
    tnmtl_target_kind kind;       /* TNMTL_TARGET_CLASS (0) or TNMTL_TARGET_REAL     */
    size_t max_bytes;             /* files larger than this fail with TNMTL_ERR_TOO_BIG; 0: TNMTL_CSV_MAX_BYTES */
} tnmtl_csv_options;

/* Loads path into out (zeroed on failure; free with tnmtl_dataset_free).
 * opt may be NULL (all defaults: classification).  The result is validated
 * (tnmtl_dataset_validate). */
tnmtl_status tnmtl_csv_load(const char *path, const tnmtl_csv_options *opt, tnmtl_dataset *out,
                            tnmtl_error *err);

/* The same from memory: text[len] (need not be NUL-terminated); name is used
 * in messages and in out->source. */
tnmtl_status tnmtl_csv_parse(const char *text, size_t len, const char *name, const tnmtl_csv_options *opt,
                             tnmtl_dataset *out, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
