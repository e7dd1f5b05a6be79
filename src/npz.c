/* npz.c - a numpy .npz of x, y, task (and task_names, split) as a
 * multi-task dataset.  See tnmtl/npz.h.  The small arrays are read whole;
 * x is checked against the memory limit from its header and streamed row
 * by row into the row's place in the task-sorted dataset. */
#include "tnmtl/npz.h"
#include "tnmtl/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util.h"
#include "zipread.h"

#define NPZ_DEFAULT_MAX_BYTES ((size_t)4 << 30)
#define NPZ_MAX_HEADER ((size_t)1 << 17)
#define NPZ_MAX_TASKS 100000
#define NPZ_MAX_CLASSES 1000000

enum { A_X, A_Y, A_TASK, A_NAMES, A_SPLIT, N_ARRAYS };
static const char *const array_name[N_ARRAYS] = {"x", "y", "task", "task_names", "split"};

typedef struct npz_array {
    int present;
    uint64_t index;            /* member index                               */
    tnmtl_npy_header h;
    unsigned char *buf;        /* whole member (not for x)                   */
    size_t len;
} npz_array;

static void shape_text(const tnmtl_npy_header *h, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < h->ndim && o + 24 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
    if (h->ndim == 1 && o + 2 < cap) snprintf(out + o, cap - o, ",");
}

static int is_int(tnmtl_dtype d)
{
    return d == TNMTL_DTYPE_I32 || d == TNMTL_DTYPE_I64 || d == TNMTL_DTYPE_U8;
}

static int64_t get_int(const npz_array *a, int64_t i)
{
    const unsigned char *p = a->buf + a->h.data_offset;
    if (a->h.dtype == TNMTL_DTYPE_U8) return p[i];
    if (a->h.dtype == TNMTL_DTYPE_I32) {
        int32_t v;
        memcpy(&v, p + 4 * (size_t)i, 4);
        return v;
    }
    int64_t v;
    memcpy(&v, p + 8 * (size_t)i, 8);
    return v;
}

static double get_real(const npz_array *a, int64_t i)
{
    const unsigned char *p = a->buf + a->h.data_offset;
    if (a->h.dtype == TNMTL_DTYPE_F32) {
        float v;
        memcpy(&v, p + 4 * (size_t)i, 4);
        return v;
    }
    double v;
    memcpy(&v, p + 8 * (size_t)i, 8);
    return v;
}

/* String element i as UTF-8 into out[cap] (trailing NULs dropped).  0 if it
 * is not valid text or does not fit. */
static int get_string(const npz_array *a, int64_t i, char *out, size_t cap)
{
    const unsigned char *p = a->buf + a->h.data_offset + a->h.item_size * (size_t)i;
    size_t o = 0;
    if (a->h.dtype == TNMTL_DTYPE_BYTES) {
        size_t n = a->h.item_size;
        while (n && p[n - 1] == 0) n--;
        if (n + 1 > cap || memchr(p, 0, n)) return 0;
        memcpy(out, p, n);
        out[n] = '\0';
        return 1;
    }
    size_t n = a->h.item_size / 4;
    while (n && !p[4 * n - 1] && !p[4 * n - 2] && !p[4 * n - 3] && !p[4 * n - 4]) n--;
    for (size_t k = 0; k < n; k++) {
        uint32_t c = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 | (uint32_t)p[4 * k + 2] << 16 |
                     (uint32_t)p[4 * k + 3] << 24;
        if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || o + 5 > cap) return 0;
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6), out[o++] = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xe0 | c >> 12), out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | c >> 18), out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f)), out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = '\0';
    return 1;
}

/* Finds the members; anything but the five known arrays is refused. */
static tnmtl_status find_members(zip_t *za, const char *path, npz_array *arr, tnmtl_error *err)
{
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        if (!name) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member #%lld has no name", path, (long long)i);
        int k = -1;
        for (int a = 0; a < N_ARRAYS && k < 0; a++) {
            size_t l = strlen(array_name[a]);
            if (!strncmp(name, array_name[a], l) && !strcmp(name + l, ".npy")) k = a;
        }
        if (k < 0)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: unexpected member '%.100s' (expected the arrays x, y, "
                              "task and optionally task_names, split)", path, name);
        if (arr[k].present) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: array %s is there twice", path, name);
        arr[k].present = 1;
        arr[k].index = (uint64_t)i;
    }
    for (int a = 0; a <= A_TASK; a++)
        if (!arr[a].present)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no array '%s' (needed: x, y and task)", path, array_name[a]);
    return TNMTL_OK;
}

/* Reads x's header without its data. */
static tnmtl_status read_x_header(zip_t *za, const char *path, npz_array *x, uint64_t *member_size, tnmtl_error *err)
{
    tnmtl_zip_member m;
    tnmtl_status st = tnmtl_zip_member_open(za, x->index, path, UINT64_MAX, &m, err);
    if (st) return st;
    size_t got = m.size < NPZ_MAX_HEADER ? (size_t)m.size : NPZ_MAX_HEADER;
    unsigned char *head = tnmtl_malloc(got ? got : 1, "npy header", err);
    st = head ? tnmtl_zip_member_read(&m, head, got, err) : TNMTL_ERR_NOMEM;
    *member_size = m.size;
    tnmtl_zip_member_close(&m);
    if (!st && (st = tnmtl_npy_parse(head, got, 1, &x->h, err)) != TNMTL_OK) tnmtl_error_prefix(err, "%s: x", path);
    free(head);
    if (!st && (uint64_t)x->h.data_offset + x->h.data_bytes != *member_size)
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: x is %llu bytes but its header declares %zu + %zu (truncated or "
                        "padded)", path, (unsigned long long)*member_size, x->h.data_offset, x->h.data_bytes);
    return st;
}

/* Reads a small array whole and checks it is 1-D of length n. */
static tnmtl_status read_small(zip_t *za, const char *path, npz_array *a, const char *name, int64_t n,
                               const char *n_from, tnmtl_error *err)
{
    size_t cap = 0;
    uint64_t max = (uint64_t)n * 4 * 4096 + NPZ_MAX_HEADER;
    tnmtl_status st = tnmtl_zip_read_member(za, a->index, path, max, &a->buf, &cap, &a->len, err);
    if (!st && (st = tnmtl_npy_parse(a->buf, a->len, 0, &a->h, err)) != TNMTL_OK)
        tnmtl_error_prefix(err, "%s: %s", path, name);
    if (st) return st;
    if (a->h.ndim != 1 || a->h.shape[0] != n) {
        char shape[128];
        shape_text(&a->h, shape, sizeof shape);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %s has shape (%s), expected (%lld,): %s", path, name, shape,
                          (long long)n, n_from);
    }
    return TNMTL_OK;
}

static tnmtl_status bad_dtype(const char *path, const char *name, const npz_array *a, const char *want,
                              tnmtl_error *err)
{
    return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %s has dtype %s%s, expected %s", path, name,
                      tnmtl_dtype_name(a->h.dtype),
                      a->h.dtype == TNMTL_DTYPE_UNICODE || a->h.dtype == TNMTL_DTYPE_BYTES ? " (strings)" : "", want);
}

/* Part of a split entry: 0 train, 1 validation, 2 test, -1 unknown. */
static int split_part(const npz_array *a, int64_t i)
{
    if (is_int(a->h.dtype)) {
        int64_t v = get_int(a, i);
        return v >= 0 && v <= 2 ? (int)v : -1;
    }
    char s[32];
    if (!get_string(a, i, s, sizeof s)) return -1;
    return !strcmp(s, "train") ? TNMTL_PART_TRAIN
         : !strcmp(s, "validation") || !strcmp(s, "val") ? TNMTL_PART_VAL
         : !strcmp(s, "test") ? TNMTL_PART_TEST : -1;
}

/* Streams x's rows into their places: row r goes to example dest[r]. */
static tnmtl_status fill_x(zip_t *za, const char *path, const npz_array *x, const int64_t *dest, int64_t row_elems,
                           tnmtl_dataset *ds, tnmtl_error *err)
{
    const size_t isz = x->h.item_size, row_bytes = (size_t)row_elems * isz;
    unsigned char *row = tnmtl_malloc(row_bytes ? row_bytes : 1, "x row", err);
    if (!row) return TNMTL_ERR_NOMEM;
    tnmtl_zip_member m;
    tnmtl_status st = tnmtl_zip_member_open(za, x->index, path, UINT64_MAX, &m, err);
    if (!st) st = tnmtl_zip_member_skip(&m, x->h.data_offset, err);
    for (int64_t r = 0; r < x->h.shape[0] && !st; r++) {
        if ((st = tnmtl_zip_member_read(&m, row, row_bytes, err)) != TNMTL_OK) break;
        const int64_t e = dest[r];
        if (ds->pixels) {
            memcpy(ds->pixels + e * row_elems, row, row_bytes);
            continue;
        }
        float *f = ds->features + e * row_elems;
        for (int64_t k = 0; k < row_elems; k++) {
            if (x->h.dtype == TNMTL_DTYPE_F32) {
                memcpy(&f[k], row + 4 * k, 4);
            } else {
                double v;
                memcpy(&v, row + 8 * k, 8);
                f[k] = (float)v;
            }
        }
    }
    if (!st) st = tnmtl_zip_member_finish(&m, err);
    tnmtl_zip_member_close(&m);
    free(row);
    return st;
}

static tnmtl_status load(zip_t *za, const char *path, size_t max_bytes, npz_array *arr, tnmtl_dataset *out,
                         tnmtl_error *err)
{
    npz_array *x = &arr[A_X], *y = &arr[A_Y], *task = &arr[A_TASK], *names = &arr[A_NAMES], *split = &arr[A_SPLIT];
    tnmtl_status st = find_members(za, path, arr, err);
    uint64_t x_size = 0;
    if (!st) st = read_x_header(za, path, x, &x_size, err);
    if (st) return st;
    char shape[160], from[200];
    shape_text(&x->h, shape, sizeof shape);
    const int pixels = x->h.dtype == TNMTL_DTYPE_U8;
    if (!pixels && x->h.dtype != TNMTL_DTYPE_F32 && x->h.dtype != TNMTL_DTYPE_F64)
        return bad_dtype(path, "x", x, "uint8 (pixels), float32 or float64", err);
    if (x->h.ndim < 2 || x->h.ndim > 4 || x->h.shape[0] < 1)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: x has shape (%s), expected (N, H, W), (N, H, W, C) or (N, D) "
                          "with N >= 1", path, shape);
    int in_h = 1, in_w = 1, in_c = 1;
    for (int i = 1; i < x->h.ndim; i++)
        if (x->h.shape[i] < 1 || x->h.shape[i] > (1 << 24))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: x has shape (%s): dimension %d is out of range 1..%d", path,
                              shape, i, 1 << 24);
    if (x->h.ndim == 2) in_c = (int)x->h.shape[1];
    else in_h = (int)x->h.shape[1], in_w = (int)x->h.shape[2];
    if (x->h.ndim == 4) in_c = (int)x->h.shape[3];
    if (x->h.shape[0] > ((int64_t)1 << 36))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: x has shape (%s): too many rows", path, shape);
    const int64_t n = x->h.shape[0], row_elems = (int64_t)in_h * in_w * in_c;
    snprintf(from, sizeof from, "x has %lld rows (shape (%s))", (long long)n, shape);

    /* The small arrays. */
    if ((st = read_small(za, path, y, "y", n, from, err)) || (st = read_small(za, path, task, "task", n, from, err)))
        return st;
    if (!is_int(y->h.dtype) && y->h.dtype != TNMTL_DTYPE_F32 && y->h.dtype != TNMTL_DTYPE_F64)
        return bad_dtype(path, "y", y, "integers (class labels) or floats (regression targets)", err);
    if (!is_int(task->h.dtype)) return bad_dtype(path, "task", task, "integers (task ids 0..T-1)", err);
    if (split->present) {
        if ((st = read_small(za, path, split, "split", n, from, err))) return st;
        if (!is_int(split->h.dtype) && split->h.dtype != TNMTL_DTYPE_UNICODE && split->h.dtype != TNMTL_DTYPE_BYTES)
            return bad_dtype(path, "split", split, "strings (train, validation, test) or integers 0, 1, 2", err);
    }
    int64_t n_tasks = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = get_int(task, i);
        if (t < 0 || t >= NPZ_MAX_TASKS)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: task[%lld] is %lld, expected a task id 0..%d", path,
                              (long long)i, (long long)t, NPZ_MAX_TASKS - 1);
        if (t + 1 > n_tasks) n_tasks = t + 1;
    }
    if (names->present) {
        snprintf(from, sizeof from, "one name per task, and task ids go up to %lld", (long long)n_tasks - 1);
        if ((st = read_small(za, path, names, "task_names", n_tasks, from, err))) return st;
        if (names->h.dtype != TNMTL_DTYPE_UNICODE && names->h.dtype != TNMTL_DTYPE_BYTES)
            return bad_dtype(path, "task_names", names, "strings", err);
    }
    const int classify = is_int(y->h.dtype);
    int64_t *count = tnmtl_calloc((size_t)n_tasks + 1, sizeof *count, "task counts", err);
    int64_t *dest = tnmtl_malloc((size_t)n * sizeof *dest, "row map", err);
    if (!count || !dest) {
        free(count);
        free(dest);
        return TNMTL_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) count[get_int(task, i) + 1]++;
    for (int64_t t = 0; t < n_tasks && !st; t++)
        if (count[t + 1] == 0)
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: task %lld has no rows (task ids must be 0..T-1, each used)",
                            path, (long long)t);
    for (int64_t t = 0; t < n_tasks; t++) count[t + 1] += count[t];
    int64_t *begin = st ? NULL : tnmtl_malloc(((size_t)n_tasks + 1) * sizeof *begin, "task offsets", err);
    if (!st && !begin) st = TNMTL_ERR_NOMEM;
    if (!st) memcpy(begin, count, ((size_t)n_tasks + 1) * sizeof *begin);
    for (int64_t i = 0; i < n && !st; i++) {   /* stable: rows keep their order within a task */
        if (classify && (get_int(y, i) < 0 || get_int(y, i) >= NPZ_MAX_CLASSES))
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: y[%lld] is %lld, expected a class label 0..%d", path,
                            (long long)i, (long long)get_int(y, i), NPZ_MAX_CLASSES - 1);
        else if (split->present && split_part(split, i) < 0)
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: split[%lld] is not train, validation (val) or test (nor 0, 1, "
                            "2)", path, (long long)i);
        else
            dest[i] = count[get_int(task, i)]++;
    }
    free(count);
    if (!st) {
        const char *hint = "use fewer rows or smaller images";
        st = pixels ? tnmtl_image_memory_check(path, n, in_h, in_w, in_c, max_bytes, hint, err)
                    : tnmtl_image_memory_check(path, n, in_h, in_w, in_c * (int)sizeof(float), max_bytes, hint, err);
    }
    if (!st)
        st = tnmtl_dataset_init(out, (int)n_tasks, n, in_h, in_w, in_c,
                                classify ? TNMTL_TARGET_CLASS : TNMTL_TARGET_REAL, pixels, err);
    if (!st && split->present && !(out->part = tnmtl_malloc((size_t)n, "split", err))) st = TNMTL_ERR_NOMEM;
    if (st) {
        free(dest);
        free(begin);
        return st;
    }
    if (pixels) out->pixel_scale = 1.0f / 255.0f;
    snprintf(out->source, sizeof out->source, "npz:%.190s (%.55s)", path, shape);
    for (int64_t i = 0; i < n; i++) {
        const int64_t e = dest[i];
        if (classify) out->label[e] = (int)get_int(y, i);
        else out->target[e] = (float)get_real(y, i);
        if (out->part) out->part[e] = (uint8_t)split_part(split, i);
    }
    for (int64_t t = 0; t <= n_tasks; t++) out->task_begin[t] = begin[t];
    free(begin);
    for (int t = 0; classify && t < n_tasks; t++)
        for (int64_t i = out->task_begin[t]; i < out->task_begin[t + 1]; i++)
            if (out->label[i] + 1 > out->n_classes[t]) out->n_classes[t] = out->label[i] + 1;
    for (int t = 0; names->present && t < n_tasks && !st; t++) {
        char name[1024];
        if (!get_string(names, t, name, sizeof name))
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: task_names[%d] is not valid text", path, t);
        else
            st = tnmtl_dataset_set_task_name(out, t, name, err);
    }
    if (!st) st = fill_x(za, path, x, dest, row_elems, out, err);
    free(dest);
    return st;
}

tnmtl_status tnmtl_npz_load(const char *path, size_t max_bytes, tnmtl_dataset *out, tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    if (!path || !*path) return tnmtl_fail(err, TNMTL_ERR_INVALID, "npz: no file given");
    zip_t *za;
    tnmtl_status st = tnmtl_zip_open(path, &za, err);
    if (st) return st;
    npz_array arr[N_ARRAYS];
    memset(arr, 0, sizeof arr);
    st = load(za, path, max_bytes ? max_bytes : NPZ_DEFAULT_MAX_BYTES, arr, out, err);
    for (int a = 0; a < N_ARRAYS; a++) free(arr[a].buf);
    zip_discard(za);
    if (st) tnmtl_dataset_free(out);
    return st;
}
