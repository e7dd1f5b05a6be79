/* dataset.c - multi-task datasets: allocation, validation, batch gathering,
 * and seeded stratified train/validation/test splits. */
#include "tnmtl/dataset.h"
#include "tnmtl/rng.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "task 3 ('g1-t2')" or "task 3" when the task has no name. */
static const char *task_label(const tnmtl_dataset *ds, int t, char *buf, size_t cap)
{
    if (ds->task_names && ds->task_names[t])
        snprintf(buf, cap, "task %d ('%.200s')", t, ds->task_names[t]);
    else
        snprintf(buf, cap, "task %d", t);
    return buf;
}

tnmtl_status tnmtl_dataset_init(tnmtl_dataset *ds, int n_tasks, int64_t n_examples, int in_h, int in_w,
                                int in_c, tnmtl_target_kind kind, int use_pixels, tnmtl_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (n_tasks < 1 || n_examples < 0 || in_h < 1 || in_w < 1 || in_c < 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "bad dataset shape: %d tasks, %lld examples of %dx%dx%d", n_tasks,
                          (long long)n_examples, in_h, in_w, in_c);
    size_t d, cells;
    if (!tnmtl_mul_size((size_t)in_h, (size_t)in_w, &d) || !tnmtl_mul_size(d, (size_t)in_c, &d) ||
        !tnmtl_mul_size(d, (size_t)n_examples, &cells) || cells > (size_t)INT64_MAX / sizeof(float))
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "dataset of %lld examples of %dx%dx%d is too big",
                          (long long)n_examples, in_h, in_w, in_c);
    ds->n_tasks = n_tasks;
    ds->in_h = in_h;
    ds->in_w = in_w;
    ds->in_c = in_c;
    ds->kind = kind;
    ds->n_examples = n_examples;
    ds->pixel_scale = 1.0f;
    ds->pixel_offset = 0.0f;
    ds->task_begin = tnmtl_calloc((size_t)n_tasks + 1, sizeof(int64_t), "task offsets", err);
    ds->n_classes = tnmtl_calloc((size_t)n_tasks, sizeof(int), "class counts", err);
    ds->task_names = tnmtl_calloc((size_t)n_tasks, sizeof(char *), "task names", err);
    int ok = ds->task_begin && ds->n_classes && ds->task_names;
    if (ok && kind == TNMTL_TARGET_CLASS)
        ok = (ds->label = tnmtl_calloc((size_t)n_examples, sizeof(int), "labels", err)) != NULL;
    else if (ok)
        ok = (ds->target = tnmtl_calloc((size_t)n_examples, sizeof(float), "targets", err)) != NULL;
    if (ok && use_pixels)
        ok = (ds->pixels = tnmtl_calloc(cells, 1, "pixels", err)) != NULL;
    else if (ok)
        ok = (ds->features = tnmtl_calloc(cells, sizeof(float), "features", err)) != NULL;
    if (!ok) {
        tnmtl_dataset_free(ds);
        return TNMTL_ERR_NOMEM;
    }
    if (kind == TNMTL_TARGET_REAL)
        for (int t = 0; t < n_tasks; t++) ds->n_classes[t] = 1;
    return TNMTL_OK;
}

tnmtl_status tnmtl_dataset_set_task_name(tnmtl_dataset *ds, int t, const char *name, tnmtl_error *err)
{
    if (!ds->task_names || t < 0 || t >= ds->n_tasks)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "no task %d to name", t);
    size_t n = strlen(name);
    char *copy = tnmtl_malloc(n + 1, "task name", err);
    if (!copy) return TNMTL_ERR_NOMEM;
    memcpy(copy, name, n + 1);
    free(ds->task_names[t]);
    ds->task_names[t] = copy;
    return TNMTL_OK;
}

tnmtl_status tnmtl_dataset_set_class_name(tnmtl_dataset *ds, int t, int k, const char *name, tnmtl_error *err)
{
    if (!ds->n_classes || t < 0 || t >= ds->n_tasks || k < 0 || k >= ds->n_classes[t])
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "no class %d of task %d to name", k, t);
    if (!ds->class_names &&
        !(ds->class_names = tnmtl_calloc((size_t)ds->n_tasks, sizeof(char **), "class names", err)))
        return TNMTL_ERR_NOMEM;
    if (!ds->class_names[t] &&
        !(ds->class_names[t] = tnmtl_calloc((size_t)ds->n_classes[t], sizeof(char *), "class names", err)))
        return TNMTL_ERR_NOMEM;
    size_t n = strlen(name);
    char *copy = tnmtl_malloc(n + 1, "class name", err);
    if (!copy) return TNMTL_ERR_NOMEM;
    memcpy(copy, name, n + 1);
    free(ds->class_names[t][k]);
    ds->class_names[t][k] = copy;
    return TNMTL_OK;
}

void tnmtl_dataset_free(tnmtl_dataset *ds)
{
    if (!ds) return;
    if (ds->class_names)
        for (int t = 0; t < ds->n_tasks; t++) {
            if (!ds->class_names[t]) continue;
            for (int k = 0; k < ds->n_classes[t]; k++) free(ds->class_names[t][k]);
            free(ds->class_names[t]);
        }
    free(ds->class_names);
    free(ds->part);
    if (ds->task_names)
        for (int t = 0; t < ds->n_tasks; t++) free(ds->task_names[t]);
    free(ds->task_names);
    free(ds->task_begin);
    free(ds->n_classes);
    free(ds->label);
    free(ds->target);
    free(ds->pixels);
    free(ds->features);
    memset(ds, 0, sizeof *ds);
}

/* The first example whose inputs ds holds (0 for a full load). */
static int64_t inputs_first_example(const tnmtl_dataset *ds)
{
    return ds->inputs_task_end ? ds->task_begin[ds->inputs_task_begin] : 0;
}

int tnmtl_dataset_has_inputs(const tnmtl_dataset *ds, int t)
{
    if (t < 0 || t >= ds->n_tasks) return 0;
    return !ds->inputs_task_end || (t >= ds->inputs_task_begin && t < ds->inputs_task_end);
}

tnmtl_status tnmtl_dataset_keep_inputs(tnmtl_dataset *ds, int begin, int end, tnmtl_error *err)
{
    if (begin < 0 || end > ds->n_tasks || begin >= end)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tasks %d..%d: not a range of the dataset's %d tasks", begin,
                          end - 1, ds->n_tasks);
    if (!tnmtl_dataset_has_inputs(ds, begin) || !tnmtl_dataset_has_inputs(ds, end - 1))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tasks %d..%d: the dataset holds the inputs of tasks %d..%d only",
                          begin, end - 1, ds->inputs_task_begin, ds->inputs_task_end - 1);
    if (begin == 0 && end == ds->n_tasks) return TNMTL_OK;
    const int64_t d = tnmtl_dataset_example_size(ds), skip = ds->task_begin[begin] - inputs_first_example(ds);
    const size_t cell = ds->pixels ? 1 : sizeof(float);
    const size_t bytes = (size_t)((ds->task_begin[end] - ds->task_begin[begin]) * d) * cell;
    void *kept = tnmtl_malloc(bytes ? bytes : 1, "inputs", err);
    if (!kept) return TNMTL_ERR_NOMEM;
    char *held = ds->pixels ? (char *)ds->pixels : (char *)ds->features;
    memcpy(kept, held + (size_t)(skip * d) * cell, bytes);
    free(held);
    if (ds->pixels) ds->pixels = kept;
    else ds->features = kept;
    ds->inputs_task_begin = begin;
    ds->inputs_task_end = end;
    return TNMTL_OK;
}

tnmtl_status tnmtl_dataset_select_inputs(tnmtl_dataset *ds, const tnmtl_input_select *sel, int *begin, int *end,
                                         tnmtl_error *err)
{
    *begin = 0;
    *end = ds->n_tasks;
    if (!sel || !sel->select) return TNMTL_OK;
    tnmtl_status st = sel->select(sel->user, ds, begin, end, err);
    return st ? st : tnmtl_dataset_keep_inputs(ds, *begin, *end, err);
}

int64_t tnmtl_dataset_example_size(const tnmtl_dataset *ds)
{
    return (int64_t)ds->in_h * ds->in_w * ds->in_c;
}

static tnmtl_status validate_labels(const tnmtl_dataset *ds, tnmtl_error *err)
{
    char name[256];
    int max_k = 0;
    for (int t = 0; t < ds->n_tasks; t++) {
        if (ds->n_classes[t] < 1)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s has %d classes", task_label(ds, t, name, sizeof name),
                              ds->n_classes[t]);
        if (ds->n_classes[t] > max_k) max_k = ds->n_classes[t];
    }
    int64_t *count = tnmtl_calloc((size_t)max_k, sizeof *count, "class counts", err);
    if (!count) return TNMTL_ERR_NOMEM;
    tnmtl_status st = TNMTL_OK;
    for (int t = 0; t < ds->n_tasks && !st; t++) {
        const int k = ds->n_classes[t];
        memset(count, 0, (size_t)k * sizeof *count);
        for (int64_t i = ds->task_begin[t]; i < ds->task_begin[t + 1]; i++) {
            const int y = ds->label[i];
            if (y < 0 || y >= k) {
                st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s, example %lld (global %lld): label %d out of range 0..%d",
                                task_label(ds, t, name, sizeof name), (long long)(i - ds->task_begin[t]), (long long)i,
                                y, k - 1);
                break;
            }
            count[y]++;
        }
        for (int c = 0; c < k && !st; c++)
            if (count[c] == 0)
                st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: class %d of %d has no example",
                                task_label(ds, t, name, sizeof name), c, k);
    }
    free(count);
    return st;
}

tnmtl_status tnmtl_dataset_validate(const tnmtl_dataset *ds, tnmtl_error *err)
{
    char name[256];
    if (!ds) return tnmtl_fail(err, TNMTL_ERR_INVALID, "no dataset");
    if (ds->n_tasks < 1) return tnmtl_fail(err, TNMTL_ERR_INVALID, "the dataset has no task");
    if (ds->in_h < 1 || ds->in_w < 1 || ds->in_c < 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "bad example shape %dx%dx%d", ds->in_h, ds->in_w, ds->in_c);
    if (!ds->task_begin || !ds->n_classes)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the dataset has no task offsets or class counts");
    if (!ds->pixels == !ds->features)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the dataset must have either pixels or features (has %s)",
                          ds->pixels ? "both" : "neither");
    if (ds->kind == TNMTL_TARGET_CLASS ? !ds->label : !ds->target)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the dataset has no %s",
                          ds->kind == TNMTL_TARGET_CLASS ? "labels" : "targets");
    if (ds->task_begin[0] != 0 || ds->task_begin[ds->n_tasks] != ds->n_examples)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "task offsets run from %lld to %lld, expected 0 to %lld examples",
                          (long long)ds->task_begin[0], (long long)ds->task_begin[ds->n_tasks],
                          (long long)ds->n_examples);
    for (int t = 0; t < ds->n_tasks; t++)
        if (ds->task_begin[t + 1] <= ds->task_begin[t])
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s has no example", task_label(ds, t, name, sizeof name));
    if (ds->kind == TNMTL_TARGET_CLASS) {
        tnmtl_status st = validate_labels(ds, err);
        if (st) return st;
    } else {
        for (int t = 0; t < ds->n_tasks; t++) {
            if (ds->n_classes[t] != 1)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: a regression task has 1 output, not %d",
                                  task_label(ds, t, name, sizeof name), ds->n_classes[t]);
            const int64_t b = ds->task_begin[t], n = ds->task_begin[t + 1] - b;
            int64_t bad = tnmtl_first_nonfinite_f32(ds->target + b, (size_t)n);
            if (bad >= 0)
                return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "%s, example %lld (global %lld): target is %g",
                                  task_label(ds, t, name, sizeof name), (long long)bad, (long long)(b + bad),
                                  (double)ds->target[b + bad]);
        }
    }
    if (ds->inputs_task_end &&
        (ds->inputs_task_begin < 0 || ds->inputs_task_end > ds->n_tasks || ds->inputs_task_begin >= ds->inputs_task_end))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the dataset holds the inputs of tasks %d..%d, not a range of its %d",
                          ds->inputs_task_begin, ds->inputs_task_end - 1, ds->n_tasks);
    const int64_t d = tnmtl_dataset_example_size(ds), first = inputs_first_example(ds);
    if (ds->features) {
        for (int t = 0; t < ds->n_tasks; t++) {
            if (!tnmtl_dataset_has_inputs(ds, t)) continue;
            const int64_t b = ds->task_begin[t], n = ds->task_begin[t + 1] - b;
            const float *x = ds->features + (b - first) * d;
            int64_t bad = tnmtl_first_nonfinite_f32(x, (size_t)(n * d));
            if (bad >= 0)
                return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "%s, example %lld (global %lld): feature %lld is %g",
                                  task_label(ds, t, name, sizeof name), (long long)(bad / d),
                                  (long long)(b + bad / d), (long long)(bad % d), (double)x[bad]);
        }
    } else if (!isfinite(ds->pixel_scale) || !isfinite(ds->pixel_offset)) {
        return tnmtl_fail(err, TNMTL_ERR_NUMERIC, "pixel scale %g / offset %g not finite", (double)ds->pixel_scale,
                          (double)ds->pixel_offset);
    }
    return TNMTL_OK;
}

void tnmtl_dataset_gather(const tnmtl_dataset *ds, const int64_t *idx, int n,
                          float *x, int *labels, float *targets)
{
    const int64_t d = tnmtl_dataset_example_size(ds), first = inputs_first_example(ds);
    for (int i = 0; i < n; i++) {
        const int64_t e = idx[i];
        if (x) {
            float *xi = x + (int64_t)i * d;
            if (ds->features) {
                memcpy(xi, ds->features + (e - first) * d, (size_t)d * sizeof *xi);
            } else {
                const uint8_t *p = ds->pixels + (e - first) * d;
                const float s = ds->pixel_scale, o = ds->pixel_offset;
                for (int64_t j = 0; j < d; j++) xi[j] = (float)p[j] * s + o;
            }
        }
        if (labels && ds->label) labels[i] = ds->label[e];
        if (targets && ds->target) targets[i] = ds->target[e];
    }
}

/* ---- splits ---- */

int64_t tnmtl_split_count(const tnmtl_split *s, tnmtl_part p, int t)
{
    return s->begin[p][t + 1] - s->begin[p][t];
}

void tnmtl_split_free(tnmtl_split *s)
{
    if (!s) return;
    for (int p = 0; p < 3; p++) {
        free(s->begin[p]);
        free(s->idx[p]);
    }
    memset(s, 0, sizeof *s);
}

/* Sizes of one stratum (a class of a task, or a regression task) of n
 * examples: n_val from the training share, then n_train, then n_rest_val of
 * the others (at least one left for test), then test. */
static void stratum_sizes(int64_t n, double train_frac, double val_frac, int val_from_rest, int64_t *n_train,
                          int64_t *n_val, int64_t *n_rest_val)
{
    int64_t tr = (int64_t)round(train_frac * (double)n);
    if (tr < 1) tr = 1;
    if (tr > n) tr = n;
    int64_t va = (int64_t)round(val_frac * (double)tr);
    if (va > tr - 1) va = tr - 1;
    if (va < 0) va = 0;
    int64_t rv = val_from_rest;
    if (rv > n - tr - 1) rv = n - tr - 1;
    if (rv < 0) rv = 0;
    *n_train = tr - va;
    *n_val = va;
    *n_rest_val = rv;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The split stored in ds->part (ascending within each part and task). */
static tnmtl_status split_fixed(const tnmtl_dataset *ds, tnmtl_split *out, tnmtl_error *err)
{
    const int T = ds->n_tasks;
    out->n_tasks = T;
    for (int p = 0; p < 3; p++) {
        out->begin[p] = tnmtl_calloc((size_t)T + 1, sizeof(int64_t), "split offsets", err);
        out->idx[p] = tnmtl_calloc((size_t)ds->n_examples + 1, sizeof(int64_t), "split indices", err);
        if (!out->begin[p] || !out->idx[p]) {
            tnmtl_split_free(out);
            return TNMTL_ERR_NOMEM;
        }
    }
    int64_t fill[3] = {0, 0, 0};
    for (int t = 0; t < T; t++) {
        for (int p = 0; p < 3; p++) out->begin[p][t] = fill[p];
        for (int64_t i = ds->task_begin[t]; i < ds->task_begin[t + 1]; i++) {
            if (ds->part[i] > TNMTL_PART_TEST) {
                tnmtl_split_free(out);
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "example %lld: split part %d is not 0, 1 or 2",
                                  (long long)i, ds->part[i]);
            }
            out->idx[ds->part[i]][fill[ds->part[i]]++] = i;
        }
        if (fill[TNMTL_PART_TRAIN] == out->begin[TNMTL_PART_TRAIN][t]) {
            char name[256];
            tnmtl_split_free(out);
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s has no training example in its fixed split",
                              task_label(ds, t, name, sizeof name));
        }
    }
    for (int p = 0; p < 3; p++) out->begin[p][T] = fill[p];
    return TNMTL_OK;
}

/* Allocates out's offsets [T + 1] and indices [n_idx] for the three parts,
 * and the scratch: class offsets [max_k + 1], one task's examples [max_n].
 * On failure everything is freed. */
static tnmtl_status split_alloc(tnmtl_split *out, int T, int64_t n_idx, int max_k, int64_t max_n, int64_t **cbeg,
                                int64_t **bucket, tnmtl_error *err)
{
    tnmtl_status st = TNMTL_OK;
    *cbeg = tnmtl_calloc((size_t)max_k + 1, sizeof **cbeg, "split scratch", err);
    *bucket = tnmtl_calloc((size_t)max_n + 1, sizeof **bucket, "split scratch", err);
    out->n_tasks = T;
    for (int p = 0; p < 3; p++) {
        out->begin[p] = tnmtl_calloc((size_t)T + 1, sizeof(int64_t), "split offsets", err);
        out->idx[p] = tnmtl_calloc((size_t)n_idx + 1, sizeof(int64_t), "split indices", err);
        if (!out->begin[p] || !out->idx[p]) st = TNMTL_ERR_NOMEM;
    }
    if (!*cbeg || !*bucket || st) {
        free(*cbeg);
        free(*bucket);
        tnmtl_split_free(out);
        return TNMTL_ERR_NOMEM;
    }
    return TNMTL_OK;
}

/* Counting sort of task t's examples ex[n] (NULL: the task's own range) by
 * class into bucket, keeping their order within a class; class c's examples
 * are then bucket[cbeg[c] .. cbeg[c+1]).  Returns the number of classes. */
static int bucket_by_class(const tnmtl_dataset *ds, int t, const int64_t *ex, int64_t n, int64_t *cbeg,
                           int64_t *bucket)
{
    const int classify = ds->kind == TNMTL_TARGET_CLASS;
    const int k = classify ? ds->n_classes[t] : 1;
    const int64_t b = ds->task_begin[t];
    memset(cbeg, 0, ((size_t)k + 1) * sizeof *cbeg);
    for (int64_t i = 0; i < n; i++) cbeg[(classify ? ds->label[ex ? ex[i] : b + i] : 0) + 1]++;
    for (int c = 0; c < k; c++) cbeg[c + 1] += cbeg[c];
    for (int64_t i = 0; i < n; i++) {
        const int64_t e = ex ? ex[i] : b + i;
        bucket[cbeg[classify ? ds->label[e] : 0]++] = e;
    }
    for (int c = k; c > 0; c--) cbeg[c] = cbeg[c - 1];
    cbeg[0] = 0;
    return k;
}

static void shuffle_i64(tnmtl_rng *rng, int64_t *a, int64_t n)
{
    for (int64_t i = n; i > 1; i--) { /* Fisher-Yates, as tnmtl_rng_shuffle */
        const int64_t j = (int64_t)tnmtl_rng_below(rng, (uint64_t)i);
        const int64_t tmp = a[i - 1];
        a[i - 1] = a[j];
        a[j] = tmp;
    }
}

/* Task t's indices of parts 0..n_parts-1, from start[p] to fill[p], ascending. */
static void close_task(tnmtl_split *out, int t, int n_parts, const int64_t *start, const int64_t *fill)
{
    for (int p = 0; p < n_parts; p++) {
        qsort(out->idx[p] + start[p], (size_t)(fill[p] - start[p]), sizeof(int64_t), cmp_i64);
        out->begin[p][t + 1] = fill[p];
    }
}

tnmtl_status tnmtl_split_make(const tnmtl_dataset *ds, double train_frac, double val_frac,
                              uint64_t seed, tnmtl_split *out, tnmtl_error *err)
{
    return tnmtl_split_make_holdout(ds, train_frac, val_frac, 0, seed, out, err);
}

tnmtl_status tnmtl_split_make_holdout(const tnmtl_dataset *ds, double train_frac, double val_frac,
                                      int val_from_rest, uint64_t seed, tnmtl_split *out, tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    if (val_from_rest < 0)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "validation examples taken from the test part: %d is < 0",
                          val_from_rest);
    if (!(train_frac > 0.0 && train_frac <= 1.0))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "training fraction %g is not in (0, 1]", train_frac);
    if (!(val_frac >= 0.0 && val_frac < 1.0))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "validation fraction %g is not in [0, 1)", val_frac);
    tnmtl_status st = tnmtl_dataset_validate(ds, err);
    if (st) return st;
    if (ds->part) return split_fixed(ds, out, err);
    const int T = ds->n_tasks;
    const int classify = ds->kind == TNMTL_TARGET_CLASS;
    int max_k = 1;
    int64_t max_n = 0;
    for (int t = 0; t < T; t++) {
        if (classify && ds->n_classes[t] > max_k) max_k = ds->n_classes[t];
        if (ds->task_begin[t + 1] - ds->task_begin[t] > max_n) max_n = ds->task_begin[t + 1] - ds->task_begin[t];
    }
    int64_t *cbeg, *bucket;
    if ((st = split_alloc(out, T, ds->n_examples, max_k, max_n, &cbeg, &bucket, err))) return st;
    tnmtl_rng root;
    tnmtl_rng_seed(&root, seed);
    int64_t fill[3] = {0, 0, 0};
    for (int t = 0; t < T; t++) {
        const int k = bucket_by_class(ds, t, NULL, ds->task_begin[t + 1] - ds->task_begin[t], cbeg, bucket);
        tnmtl_rng rng = tnmtl_rng_split(&root, (uint64_t)t);
        const int64_t start[3] = {fill[0], fill[1], fill[2]};
        for (int c = 0; c < k; c++) {
            int64_t *a = bucket + cbeg[c];
            const int64_t n = cbeg[c + 1] - cbeg[c];
            shuffle_i64(&rng, a, n);
            int64_t n_train, n_val, n_rest_val;
            stratum_sizes(n, train_frac, val_frac, val_from_rest, &n_train, &n_val, &n_rest_val);
            for (int64_t i = 0; i < n; i++) {
                const int p = i < n_val                           ? TNMTL_PART_VAL
                              : i < n_val + n_train              ? TNMTL_PART_TRAIN
                              : i < n_val + n_train + n_rest_val ? TNMTL_PART_VAL
                                                                 : TNMTL_PART_TEST;
                out->idx[p][fill[p]++] = a[i];
            }
        }
        close_task(out, t, 3, start, fill);
    }
    free(cbeg);
    free(bucket);
    return TNMTL_OK;
}

tnmtl_status tnmtl_split_fold(const tnmtl_dataset *ds, const tnmtl_split *base, int k, int fold, uint64_t seed,
                              tnmtl_split *out, tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    if (k < 2) return tnmtl_fail(err, TNMTL_ERR_INVALID, "cross-validation needs at least 2 folds, not %d", k);
    if (fold < 0 || fold >= k) return tnmtl_fail(err, TNMTL_ERR_INVALID, "fold %d is not in 0..%d", fold, k - 1);
    const int T = base->n_tasks;
    if (T != ds->n_tasks) return tnmtl_fail(err, TNMTL_ERR_INVALID, "the split has %d tasks, the data %d", T, ds->n_tasks);
    const int classify = ds->kind == TNMTL_TARGET_CLASS;
    const int64_t *tb = base->begin[TNMTL_PART_TRAIN], *ti = base->idx[TNMTL_PART_TRAIN];
    int max_k = 1;
    int64_t max_n = 0;
    for (int t = 0; t < T; t++) {
        const int64_t n = tb[t + 1] - tb[t];
        if (n < k)
            return tnmtl_fail(err, TNMTL_ERR_INVALID,
                              "%d folds need at least %d training examples per task; task %d (%s) has %lld", k, k, t,
                              ds->task_names && ds->task_names[t] ? ds->task_names[t] : "?", (long long)n);
        if (classify && ds->n_classes[t] > max_k) max_k = ds->n_classes[t];
        if (n > max_n) max_n = n;
    }
    int64_t *cbeg, *bucket;
    tnmtl_status st = split_alloc(out, T, tb[T], max_k, max_n, &cbeg, &bucket, err);
    if (st) return st;
    tnmtl_rng root;
    tnmtl_rng_seed(&root, seed);
    int64_t fill[2] = {0, 0};
    for (int t = 0; t < T; t++) {
        const int kc = bucket_by_class(ds, t, ti + tb[t], tb[t + 1] - tb[t], cbeg, bucket);
        tnmtl_rng rng = tnmtl_rng_split(&root, (uint64_t)t);
        const int64_t start[2] = {fill[0], fill[1]};
        int64_t pos = 0; /* position in the task's round robin over the folds */
        for (int c = 0; c < kc; c++) {
            int64_t *a = bucket + cbeg[c];
            const int64_t m = cbeg[c + 1] - cbeg[c];
            shuffle_i64(&rng, a, m);
            for (int64_t i = 0; i < m; i++, pos++) {
                const int p = pos % k == fold ? TNMTL_PART_VAL : TNMTL_PART_TRAIN;
                out->idx[p][fill[p]++] = a[i];
            }
        }
        close_task(out, t, 2, start, fill);
    }
    free(cbeg);
    free(bucket);
    return TNMTL_OK;
}
