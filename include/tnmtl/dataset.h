/* tnmtl/dataset.h - multi-task datasets and train/validation/test splits.
 *
 * A dataset holds the examples of all tasks, sorted by task: task t owns the
 * examples [task_begin[t], task_begin[t+1]).  Inputs are either uint8 pixels
 * (images stay 8-bit in memory and are converted per batch) or float
 * features; one example is in_h x in_w x in_c values in NHWC order (tabular
 * data: 1 x 1 x d).  Targets are class labels (classification, one label
 * space per task) or real values (regression).
 *
 * Loaders: omniglot.h (npz and official PNG zips), csv.h, synthetic.h.
 */
#ifndef TNMTL_DATASET_H
#define TNMTL_DATASET_H

#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnmtl_target_kind {
    TNMTL_TARGET_CLASS,   /* label[i] in 0 .. n_classes[task]-1 */
    TNMTL_TARGET_REAL     /* target[i], one real output per task */
} tnmtl_target_kind;

typedef struct tnmtl_dataset {
    int n_tasks;
    int in_h, in_w, in_c;        /* example shape, NHWC                       */
    tnmtl_target_kind kind;
    int64_t n_examples;
    int64_t *task_begin;         /* [n_tasks + 1]                              */
    int *n_classes;              /* [n_tasks]; 1 for regression                */
    int *label;                  /* [n_examples] (classification) or NULL      */
    float *target;               /* [n_examples] (regression) or NULL          */
    uint8_t *pixels;             /* [n_examples][in_h*in_w*in_c] or NULL       */
    float pixel_scale;           /* x = pixel * pixel_scale + pixel_offset     */
    float pixel_offset;
    float *features;             /* [n_examples][in_h*in_w*in_c] or NULL       */
    char **task_names;           /* [n_tasks], malloc'd strings                */
    char source[256];            /* e.g. "omniglot:../shared/data/omniglot"    */
    char ***class_names;         /* NULL, or [n_tasks][n_classes[t]] malloc'd
                                  * strings (image folders: the class folders) */
    uint8_t *part;               /* NULL, or [n_examples] a fixed split: each
                                  * example's tnmtl_part (npz with 'split')    */
    /* A partial load (a process of a distributed run holds its own tasks'
     * inputs only): pixels/features hold the inputs of tasks
     * [inputs_task_begin, inputs_task_end), example task_begin[
     * inputs_task_begin] first.  Labels, targets and names are every task's.
     * Both 0: every task's inputs (a full load). */
    int inputs_task_begin, inputs_task_end;
} tnmtl_dataset;

/* Which tasks' inputs a loader reads.  A loader given a select callback
 * first reads every task's names and labels (cheap: folder listings, zip
 * directories, label arrays), calls select with that dataset (inputs not
 * yet read) for the range [*begin, *end) of tasks whose inputs to read,
 * then reads only those: the other tasks' image files are never opened or
 * decoded.  Image loaders that infer the example shape from the files call
 * agree_shape (if set) with the shape their range's files give, so that
 * the processes of a distributed run agree on one (it may widen *c from 1
 * to 3, or fail).  A zeroed struct: every task's inputs. */
typedef struct tnmtl_input_select {
    tnmtl_status (*select)(void *user, const tnmtl_dataset *ds, int *begin, int *end, tnmtl_error *err);
    tnmtl_status (*agree_shape)(void *user, int *h, int *w, int *c, tnmtl_error *err);
    void *user;
} tnmtl_input_select;

/* Allocates the arrays of an empty dataset for loaders: task_begin (zeroed),
 * n_classes (0 for classification, 1 for regression), label or target,
 * pixels (use_pixels != 0; pixel_scale 1, offset 0) or features, and
 * task_names (all NULL).  The caller fills them.  ds is zeroed first; on
 * failure it is left zeroed. */
tnmtl_status tnmtl_dataset_init(tnmtl_dataset *ds, int n_tasks, int64_t n_examples, int in_h, int in_w,
                                int in_c, tnmtl_target_kind kind, int use_pixels, tnmtl_error *err);
/* Sets task_names[t] to a malloc'd copy of name (replacing any previous one). */
tnmtl_status tnmtl_dataset_set_task_name(tnmtl_dataset *ds, int t, const char *name, tnmtl_error *err);
/* Sets class k of task t's name (allocating class_names on first use;
 * n_classes[t] must be set already). */
tnmtl_status tnmtl_dataset_set_class_name(tnmtl_dataset *ds, int t, int k, const char *name, tnmtl_error *err);
/* Keeps only the inputs of tasks [begin, end) (0 <= begin < end <=
 * n_tasks), freeing the rest (see inputs_task_begin); a range outside what
 * ds holds fails (TNMTL_ERR_INVALID).  [0, n_tasks): no-op. */
tnmtl_status tnmtl_dataset_keep_inputs(tnmtl_dataset *ds, int begin, int end, tnmtl_error *err);
/* 1 if ds holds task t's inputs. */
int tnmtl_dataset_has_inputs(const tnmtl_dataset *ds, int t);
/* Runs sel (when it has a select callback) on ds, whose names and labels
 * are filled, and keeps the chosen tasks' inputs (tnmtl_dataset_keep_inputs):
 * the step every loader takes between reading labels and reading inputs.
 * *begin, *end <- the tasks to read (all, without a callback). */
tnmtl_status tnmtl_dataset_select_inputs(tnmtl_dataset *ds, const tnmtl_input_select *sel, int *begin, int *end,
                                         tnmtl_error *err);
/* Frees every array of ds and zeroes it (safe on a zeroed struct). */
void tnmtl_dataset_free(tnmtl_dataset *ds);
int64_t tnmtl_dataset_example_size(const tnmtl_dataset *ds); /* in_h*in_w*in_c */

/* Checks the invariants: tasks non-empty, offsets increasing, labels in
 * range, classes with no example, finite features and targets.  The message
 * names the task (and example) at fault. */
tnmtl_status tnmtl_dataset_validate(const tnmtl_dataset *ds, tnmtl_error *err);

/* Converts the examples idx[n] (global indices) into x[n][example_size]
 * floats (pixels: pixel * pixel_scale + pixel_offset; features: copied),
 * and labels[n] or targets[n].  x, labels and targets may each be NULL;
 * labels is filled only when the dataset has labels (classification) and
 * targets only when it has targets (regression), otherwise left alone.
 * idx must be valid (0 <= idx[i] < n_examples, and of a task whose inputs
 * ds holds when x is wanted): not checked here. */
void tnmtl_dataset_gather(const tnmtl_dataset *ds, const int64_t *idx, int n,
                          float *x, int *labels, float *targets);

typedef enum tnmtl_part { TNMTL_PART_TRAIN = 0, TNMTL_PART_VAL = 1, TNMTL_PART_TEST = 2 } tnmtl_part;

/* A split: for part p and task t, the global example indices
 * idx[p][begin[p][t] .. begin[p][t+1]). */
typedef struct tnmtl_split {
    int n_tasks;
    int64_t *begin[3];           /* [n_tasks + 1] each                         */
    int64_t *idx[3];
} tnmtl_split;

/* Random split from a seed.  Classification: per task and per class (the
 * paper's protocol: per character), n_train = max(1, round(train_frac * n))
 * examples go to training and the rest to test; then
 * n_val = round(val_frac * n_train) of those training examples are moved to
 * validation (keeping at least one for training).  Regression: the same per
 * task.  Identical for the same dataset and seed on every platform.
 *
 * Details: 0 < train_frac <= 1, 0 <= val_frac < 1; round() is half away
 * from zero.  Task t draws from its own stream tnmtl_rng_split(seed, t), so
 * a task's split does not depend on the other tasks; within a task the
 * classes are taken in order 0..k-1, each one's examples (ascending) are
 * shuffled (Fisher-Yates with tnmtl_rng_below), the first n_train go to
 * training and the rest to test, and the first n_val of the training ones
 * move to validation.  So the test part does not depend on val_frac, and
 * train(val_frac) + val(val_frac) = train(0).  Within each (part, task)
 * the indices are stored ascending.  The dataset is validated first.
 * A dataset with a fixed split (ds->part) gets that split instead: the
 * fractions are checked but not used, the seed is ignored, and every task
 * needs at least one training example. */
tnmtl_status tnmtl_split_make(const tnmtl_dataset *ds, double train_frac, double val_frac,
                              uint64_t seed, tnmtl_split *out, tnmtl_error *err);
/* As tnmtl_split_make, and besides: per class (per task for regression),
 * val_from_rest of the examples NOT chosen for training go to validation
 * instead of test (at least one stays for test).  The training part is that
 * of tnmtl_split_make; the test part shrinks by the validation examples.
 * It gives a validation part when the training part is too small to share
 * (Omniglot: 2 training drawings per character; docs/results.md).  Within a
 * stratum's shuffle the order is: val_frac's examples, training, these
 * validation examples, test. */
tnmtl_status tnmtl_split_make_holdout(const tnmtl_dataset *ds, double train_frac, double val_frac,
                                      int val_from_rest, uint64_t seed, tnmtl_split *out, tnmtl_error *err);
/* Fold `fold` of k-fold cross-validation inside base's training part: per
 * task and per class (stratified), the class's training examples are
 * shuffled with stream tnmtl_rng_split(seed, t) and dealt round robin to
 * the k folds, the deal continuing from class to class, so every fold gets
 * floor or ceil of n/k of each task's n examples and of each class nearly
 * its share.  out's training part is base's minus the fold, its validation
 * part the fold, its test part EMPTY (a model chosen on folds never sees
 * test data).  Over fold = 0..k-1 every training example is validated
 * exactly once.  Fails (TNMTL_ERR_INVALID) when k < 2, fold is not in
 * 0..k-1, or a task has fewer than k training examples. */
tnmtl_status tnmtl_split_fold(const tnmtl_dataset *ds, const tnmtl_split *base, int k, int fold, uint64_t seed,
                              tnmtl_split *out, tnmtl_error *err);
void tnmtl_split_free(tnmtl_split *s);
/* Number of examples of task t in part p. */
int64_t tnmtl_split_count(const tnmtl_split *s, tnmtl_part p, int t);

#ifdef __cplusplus
}
#endif
#endif
