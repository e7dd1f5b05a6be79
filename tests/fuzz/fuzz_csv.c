/* fuzz_csv.c - the multi-task CSV parser from memory (tnmtl_csv_parse).
 * The first byte picks the options (target kind, explicit feature
 * columns, other task/target column names, a small size cap through the
 * file loader); the rest is the file.  An accepted file must give a valid
 * dataset that can be split and gathered. */
#include "fuzz_util.h"
#include "tnmtl/csv.h"

static void csv_use(const tnmtl_dataset *ds)
{
    tnmtl_error err = {0};
    if (tnmtl_dataset_validate(ds, &err) != TNMTL_OK) abort(); /* the parser promised a valid dataset */
    tnmtl_split split;
    tnmtl_status st = tnmtl_split_make(ds, 0.5, 0.2, 7, &split, &err);
    fz_check_error(st, &err);
    if (st) return;
    const int64_t d = tnmtl_dataset_example_size(ds);
    float *x = malloc((size_t)d * sizeof *x);
    int label;
    float target;
    for (int p = 0; p < 3 && x; p++)
        for (int64_t i = 0; i < split.begin[p][ds->n_tasks]; i++) {
            if (split.idx[p][i] < 0 || split.idx[p][i] >= ds->n_examples) abort();
            tnmtl_dataset_gather(ds, &split.idx[p][i], 1, x, &label, &target);
        }
    free(x);
    tnmtl_split_free(&split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    static const char *const features[] = {"x1", "x0"};
    tnmtl_csv_options opt = {0};
    opt.kind = mode & 1 ? TNMTL_TARGET_REAL : TNMTL_TARGET_CLASS;
    if (mode & 2) {
        opt.feature_columns = features;
        opt.n_feature_columns = 2;
    }
    if (mode & 4) {
        opt.task_column = "g";
        opt.target_column = "v";
    }
    tnmtl_dataset ds;
    tnmtl_error err = {0};
    tnmtl_status st;
    if (mode & 8) {
        opt.max_bytes = 64 + (mode >> 4) * 16;
        st = tnmtl_csv_load(fz_write("in.csv", text, len), &opt, &ds, &err);
    } else {
        st = tnmtl_csv_parse(text, len, "fuzz.csv", &opt, &ds, &err);
    }
    fz_check_error(st, &err);
    if (st == TNMTL_OK) csv_use(&ds);
    tnmtl_dataset_free(&ds);
    return 0;
}
