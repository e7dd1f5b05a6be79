/* history.h - the per-step training history of a run folder (history.csv).
 *
 *   step,data_loss,regulariser,val_metric,elapsed_s
 *
 * One row per training step: the data loss (sum of the task losses) and the
 * regulariser value of that step, the mean validation metric (accuracy or
 * RMSE; empty except every ~1/20 of the run and at checkpoints, and always
 * empty without a validation part) and the seconds of training so far
 * (summed over resumed sessions).  Written atomically just before each
 * checkpoint, so it always reaches at least the checkpoint's step; a resumed
 * run drops the rows past its checkpoint and continues the file, so a killed
 * run never repeats a step.  The one place that writes the file: a run id or
 * other columns go here. */
#ifndef TNMTL_CLI_HISTORY_H
#define TNMTL_CLI_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

#define HISTORY_FILE "history.csv"

typedef struct history_row {
    int64_t step;
    double data_loss, reg, val_metric, elapsed; /* val_metric NaN when not measured */
} history_row;

typedef struct run_history {
    history_row *rows;          /* [n], steps increasing */
    size_t n, cap;
} run_history;

/* Reads dir/history.csv, keeping the rows with step <= upto; a missing file
 * is an empty history (runs made before the history existed). */
tnmtl_status history_load(run_history *h, const char *dir, int64_t upto, tnmtl_error *err);
tnmtl_status history_add(run_history *h, const history_row *row, tnmtl_error *err);
/* Seconds of training before this session (the last row's elapsed, or 0). */
double history_elapsed(const run_history *h);
tnmtl_status history_write(const run_history *h, const char *dir, tnmtl_error *err);
void history_free(run_history *h);

#endif
