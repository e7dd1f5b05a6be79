/* csv.c - strict CSV loader for multi-task tabular data (see tnmtl/csv.h). */
#include "tnmtl/csv.h"
#include "util.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROLE_IGNORED = -1, ROLE_TASK = -2, ROLE_TARGET = -3 }; /* >= 0: feature index */

typedef struct reader {
    const char *p, *end;
    int64_t line;                 /* 1-based line of p                       */
    const char *name;             /* file name for messages                  */
    char *buf;                    /* current field, NUL-terminated           */
    size_t len, cap;
    tnmtl_error *err;
} reader;

static int buf_push(reader *r, char c)
{
    if (r->len + 1 >= r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        char *b = realloc(r->buf, cap);
        if (!b) return 0;
        r->buf = b;
        r->cap = cap;
    }
    r->buf[r->len++] = c;
    r->buf[r->len] = '\0';
    return 1;
}

/* Fails with "NAME: line L, column C 'COL': WHAT" (no name in the header line). */
static tnmtl_status field_fail(const reader *r, int64_t line, int col, const char *col_name, const char *what)
{
    if (col_name)
        return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld, column %d '%.100s': %s", r->name, (long long)line,
                          col, col_name, what);
    return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld, column %d: %s", r->name, (long long)line, col, what);
}

/* Reads one field into r->buf.  *eol is set when it ends its record (line end
 * or end of file).  line0 is the line where the field starts. */
static tnmtl_status read_field(reader *r, int *eol, int col, const char *col_name)
{
    r->len = 0;
    if (!r->buf && !buf_push(r, '\0')) goto nomem;
    r->len = 0;
    r->buf[0] = '\0';
    const int64_t line0 = r->line;
    if (r->p < r->end && *r->p == '"') {
        r->p++;
        for (;;) {
            if (r->p >= r->end)
                return field_fail(r, line0, col, col_name, "quote opened here is never closed");
            char c = *r->p++;
            if (c == '"') {
                if (r->p < r->end && *r->p == '"') {
                    r->p++;
                } else {
                    break;
                }
            } else if (c == '\n') {
                r->line++;
            } else if (c == '\0') {
                goto nul;
            }
            if (!buf_push(r, c)) goto nomem;
        }
        if (r->p < r->end && *r->p != ',' && *r->p != '\n' && !(*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n'))
            return field_fail(r, r->line, col, col_name, "text after the closing quote");
    } else {
        while (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') {
            if (*r->p == '"')
                return field_fail(r, r->line, col, col_name, "quote inside an unquoted field");
            if (*r->p == '\0') goto nul;
            if (!buf_push(r, *r->p++)) goto nomem;
        }
    }
    if (r->p >= r->end) {
        *eol = 1;
    } else if (*r->p == ',') {
        r->p++;
        *eol = 0;
    } else if (*r->p == '\n') {
        r->p++;
        r->line++;
        *eol = 1;
    } else if (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n') {
        r->p += 2;
        r->line++;
        *eol = 1;
    } else {
        return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld: carriage return not followed by a line feed",
                          r->name, (long long)r->line);
    }
    return TNMTL_OK;
nomem:
    return tnmtl_fail(r->err, TNMTL_ERR_NOMEM, "%s: out of memory reading a field", r->name);
nul:
    return field_fail(r, r->line, col, col_name, "NUL byte (binary file?)");
}

/* True if only line ends remain from p. */
static int only_newlines(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != '\n' && *p != '\r') return 0;
    return 1;
}

/* Parses a decimal number (spaces/tabs around it allowed).  Returns NULL or
 * the reason it is not acceptable. */
static const char *parse_number(char *s, locale_t c_locale, double *out)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    if (n == 0) return "empty field";
    char *endp;
    errno = 0;
    double v = strtod_l(s, &endp, c_locale);
    if (endp != s + n) return "not a number";
    if (isnan(v) || (isinf(v) && errno != ERANGE)) return "NaN/Inf values are not allowed";
    if (!isfinite(v)) return "out of range";
    for (const char *q = s; *q; q++)
        if (!strchr("0123456789+-.eE", *q)) return "not a decimal number";
    *out = v;
    return NULL;
}

/* Task names -> ids: open addressing on FNV-1a. */
typedef struct task_table {
    char **names;                 /* [n] in order of first appearance        */
    int n, names_cap;
    int *slot;                    /* [cap] task id + 1, 0 = empty            */
    size_t cap;
} task_table;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static int table_grow(task_table *tt)
{
    size_t cap = tt->cap ? 2 * tt->cap : 64;
    int *slot = calloc(cap, sizeof *slot);
    if (!slot) return 0;
    for (int i = 0; i < tt->n; i++) {
        size_t h = (size_t)fnv1a(tt->names[i]) & (cap - 1);
        while (slot[h]) h = (h + 1) & (cap - 1);
        slot[h] = i + 1;
    }
    free(tt->slot);
    tt->slot = slot;
    tt->cap = cap;
    return 1;
}

/* Id of task `name`, added if new; -1 when out of memory or too many tasks. */
static int table_id(task_table *tt, const char *name)
{
    if ((size_t)tt->n * 2 >= tt->cap && !table_grow(tt)) return -1;
    size_t h = (size_t)fnv1a(name) & (tt->cap - 1);
    while (tt->slot[h]) {
        if (!strcmp(tt->names[tt->slot[h] - 1], name)) return tt->slot[h] - 1;
        h = (h + 1) & (tt->cap - 1);
    }
    if (tt->n == INT_MAX - 1) return -1;
    if (tt->n == tt->names_cap) {
        int cap = tt->names_cap ? (tt->names_cap > INT_MAX / 2 ? INT_MAX - 1 : 2 * tt->names_cap) : 64;
        char **names = realloc(tt->names, (size_t)cap * sizeof *names);
        if (!names) return -1;
        tt->names = names;
        tt->names_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return -1;
    tt->names[tt->n] = copy;
    tt->slot[h] = tt->n + 1;
    return tt->n++;
}

static void table_free(task_table *tt)
{
    for (int i = 0; i < tt->n; i++) free(tt->names[i]);
    free(tt->names);
    free(tt->slot);
    memset(tt, 0, sizeof *tt);
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Everything the parse builds before it becomes a dataset. */
typedef struct csv_state {
    char **cols;                  /* [ncols] header names                    */
    int ncols;
    int *role;                    /* [ncols]                                 */
    int d;                        /* feature columns                         */
    int64_t n, max_rows;
    int *row_task;                /* [max_rows]                              */
    int *row_label;               /* [max_rows] classification               */
    float *row_target;            /* [max_rows] regression                   */
    float *row_x;                 /* [max_rows][d]                           */
    task_table tasks;
} csv_state;

static void state_free(csv_state *s)
{
    for (int j = 0; j < s->ncols; j++) free(s->cols[j]);
    free(s->cols);
    free(s->role);
    free(s->row_task);
    free(s->row_label);
    free(s->row_target);
    free(s->row_x);
    table_free(&s->tasks);
}

static tnmtl_status read_header(reader *r, csv_state *s)
{
    int cap = 0;
    for (int eol = 0; !eol;) {
        tnmtl_status st = read_field(r, &eol, s->ncols + 1, NULL);
        if (st) return st;
        if (s->ncols == cap) {
            if (cap > INT_MAX / 4) return tnmtl_fail(r->err, TNMTL_ERR_TOO_BIG, "%s: too many columns", r->name);
            cap = cap ? 2 * cap : 32;
            char **c = realloc(s->cols, (size_t)cap * sizeof *c);
            if (!c) return tnmtl_fail(r->err, TNMTL_ERR_NOMEM, "%s: out of memory reading the header", r->name);
            s->cols = c;
        }
        s->cols[s->ncols] = strdup(r->buf);
        if (!s->cols[s->ncols]) return tnmtl_fail(r->err, TNMTL_ERR_NOMEM, "%s: out of memory reading the header", r->name);
        s->ncols++;
        if (r->len == 0)
            return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line 1: column %d has an empty name", r->name, s->ncols);
        for (int j = 0; j < s->ncols - 1; j++)
            if (!strcmp(s->cols[j], r->buf))
                return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line 1: columns %d and %d are both named '%s'", r->name,
                                  j + 1, s->ncols, r->buf);
    }
    return TNMTL_OK;
}

static int find_column(const csv_state *s, const char *name)
{
    for (int j = 0; j < s->ncols; j++)
        if (!strcmp(s->cols[j], name)) return j;
    return -1;
}

static tnmtl_status assign_roles(const reader *r, csv_state *s, const tnmtl_csv_options *opt)
{
    const char *task = opt->task_column ? opt->task_column : "task";
    const char *target = opt->target_column ? opt->target_column : "y";
    s->role = malloc((size_t)s->ncols * sizeof *s->role);
    if (!s->role) return tnmtl_fail(r->err, TNMTL_ERR_NOMEM, "%s: out of memory", r->name);
    for (int j = 0; j < s->ncols; j++) s->role[j] = ROLE_IGNORED;
    const int jt = find_column(s, task), jy = find_column(s, target);
    if (jt < 0) return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: no task column '%s' in the header", r->name, task);
    if (jy < 0) return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: no target column '%s' in the header", r->name, target);
    if (jt == jy)
        return tnmtl_fail(r->err, TNMTL_ERR_INVALID, "%s: column '%s' cannot be both the task and the target", r->name, task);
    s->role[jt] = ROLE_TASK;
    s->role[jy] = ROLE_TARGET;
    if (opt->feature_columns) {
        if (opt->n_feature_columns < 1)
            return tnmtl_fail(r->err, TNMTL_ERR_INVALID, "%s: %d feature columns requested", r->name, opt->n_feature_columns);
        for (int f = 0; f < opt->n_feature_columns; f++) {
            const char *name = opt->feature_columns[f] ? opt->feature_columns[f] : "(null)";
            const int j = find_column(s, name);
            if (j < 0) return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: no feature column '%s' in the header", r->name, name);
            if (s->role[j] == ROLE_TASK || s->role[j] == ROLE_TARGET)
                return tnmtl_fail(r->err, TNMTL_ERR_INVALID, "%s: column '%s' is the %s column, not a feature", r->name,
                                  name, s->role[j] == ROLE_TASK ? "task" : "target");
            if (s->role[j] >= 0)
                return tnmtl_fail(r->err, TNMTL_ERR_INVALID, "%s: feature column '%s' is listed twice", r->name, name);
            s->role[j] = f;
        }
        s->d = opt->n_feature_columns;
    } else {
        for (int j = 0; j < s->ncols; j++)
            if (s->role[j] == ROLE_IGNORED) s->role[j] = s->d++;
        if (s->d == 0)
            return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: no feature column besides '%s' and '%s'", r->name, task, target);
    }
    return TNMTL_OK;
}

static tnmtl_status read_rows(reader *r, csv_state *s, tnmtl_target_kind kind, locale_t c_locale)
{
    /* Rows are at most the remaining line count (+1 for a missing last newline). */
    int64_t max_rows = 1;
    for (const char *q = r->p; q < r->end; q++) max_rows += *q == '\n';
    size_t cells;
    if (!tnmtl_mul_size((size_t)max_rows, (size_t)s->d, &cells))
        return tnmtl_fail(r->err, TNMTL_ERR_TOO_BIG, "%s: too many values", r->name);
    s->max_rows = max_rows;
    s->row_task = tnmtl_malloc((size_t)max_rows * sizeof(int), "task ids", r->err);
    if (kind == TNMTL_TARGET_CLASS)
        s->row_label = tnmtl_malloc((size_t)max_rows * sizeof(int), "labels", r->err);
    else
        s->row_target = tnmtl_malloc((size_t)max_rows * sizeof(float), "targets", r->err);
    s->row_x = tnmtl_calloc(cells, sizeof(float), "features", r->err);
    if (!s->row_task || !(s->row_label || s->row_target) || !s->row_x) return TNMTL_ERR_NOMEM;

    while (r->p < r->end) {
        if (*r->p == '\n' || *r->p == '\r') {
            if (only_newlines(r->p, r->end)) break;
            return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld is empty", r->name, (long long)r->line);
        }
        const int64_t i = s->n, line = r->line;
        int eol = 0;
        for (int j = 0; j < s->ncols; j++) {
            if (eol)
                return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld: %d fields, expected %d (column %d '%s' is missing)",
                                  r->name, (long long)line, j, s->ncols, j + 1, s->cols[j]);
            tnmtl_status st = read_field(r, &eol, j + 1, s->cols[j]);
            if (st) return st;
            const int role = s->role[j];
            if (role == ROLE_IGNORED) continue;
            if (role == ROLE_TASK) {
                if (r->len == 0) return field_fail(r, line, j + 1, s->cols[j], "empty task name");
                const int id = table_id(&s->tasks, r->buf);
                if (id < 0) return tnmtl_fail(r->err, TNMTL_ERR_NOMEM, "%s: out of memory for task names", r->name);
                s->row_task[i] = id;
                continue;
            }
            double v;
            const char *why = parse_number(r->buf, c_locale, &v);
            const int is_label = role == ROLE_TARGET && kind == TNMTL_TARGET_CLASS;
            if (!why && !is_label && fabs(v) > FLT_MAX) why = "out of the float range";
            if (!why && is_label && (v != floor(v) || v < INT_MIN || v > INT_MAX)) why = "not an integer class label";
            if (why) {
                char what[128];
                snprintf(what, sizeof what, "'%.40s%s': %s", r->buf, r->len > 40 ? "..." : "", why);
                return field_fail(r, line, j + 1, s->cols[j], what);
            }
            if (role >= 0)
                s->row_x[i * s->d + role] = (float)v;
            else if (kind == TNMTL_TARGET_CLASS)
                s->row_label[i] = (int)v;
            else
                s->row_target[i] = (float)v;
        }
        if (!eol)
            return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: line %lld: more than %d fields (extra field after column %d '%s')",
                              r->name, (long long)line, s->ncols, s->ncols, s->cols[s->ncols - 1]);
        s->n++;
    }
    if (s->n == 0) return tnmtl_fail(r->err, TNMTL_ERR_FORMAT, "%s: no data rows after the header", r->name);
    return TNMTL_OK;
}

/* Builds the dataset: rows grouped by task (file order kept), labels remapped. */
static tnmtl_status build_dataset(const reader *r, const csv_state *s, tnmtl_target_kind kind, tnmtl_dataset *out)
{
    const int T = s->tasks.n;
    tnmtl_status st = tnmtl_dataset_init(out, T, s->n, 1, 1, s->d, kind, 0, r->err);
    if (st) return st;
    for (int64_t i = 0; i < s->n; i++) out->task_begin[s->row_task[i] + 1]++;
    for (int t = 0; t < T; t++) out->task_begin[t + 1] += out->task_begin[t];
    int64_t *fill = tnmtl_malloc((size_t)T * sizeof *fill, "row order", r->err);
    if (!fill) return TNMTL_ERR_NOMEM;
    memcpy(fill, out->task_begin, (size_t)T * sizeof *fill);
    for (int64_t i = 0; i < s->n; i++) {
        const int64_t e = fill[s->row_task[i]]++;
        memcpy(out->features + e * s->d, s->row_x + i * s->d, (size_t)s->d * sizeof(float));
        if (kind == TNMTL_TARGET_CLASS)
            out->label[e] = s->row_label[i];
        else
            out->target[e] = s->row_target[i];
    }
    free(fill);
    for (int t = 0; t < T && !st; t++) st = tnmtl_dataset_set_task_name(out, t, s->tasks.names[t], r->err);
    if (st || kind != TNMTL_TARGET_CLASS) return st;
    /* Per task: distinct labels sorted ascending -> 0..k-1. */
    int64_t most = 0;
    for (int t = 0; t < T; t++)
        if (out->task_begin[t + 1] - out->task_begin[t] > most) most = out->task_begin[t + 1] - out->task_begin[t];
    int *vals = tnmtl_malloc((size_t)most * sizeof *vals, "label values", r->err);
    if (!vals) return TNMTL_ERR_NOMEM;
    for (int t = 0; t < T; t++) {
        int *lab = out->label + out->task_begin[t];
        const int64_t n = out->task_begin[t + 1] - out->task_begin[t];
        memcpy(vals, lab, (size_t)n * sizeof *vals);
        qsort(vals, (size_t)n, sizeof *vals, cmp_int);
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            if (k == 0 || vals[i] != vals[k - 1]) vals[k++] = vals[i];
        out->n_classes[t] = (int)k;
        for (int64_t i = 0; i < n; i++)
            lab[i] = (int)((int *)bsearch(&lab[i], vals, (size_t)k, sizeof *vals, cmp_int) - vals);
    }
    free(vals);
    return TNMTL_OK;
}

tnmtl_status tnmtl_csv_parse(const char *text, size_t len, const char *name, const tnmtl_csv_options *opt,
                             tnmtl_dataset *out, tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    const tnmtl_csv_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!name) name = "csv";
    if (opt->kind != TNMTL_TARGET_CLASS && opt->kind != TNMTL_TARGET_REAL)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: unknown target kind %d", name, (int)opt->kind);
    reader r = {text, text + len, 1, name, NULL, 0, 0, err};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r.p += 3;
    if (only_newlines(r.p, r.end)) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: empty file (no header line)", name);
    csv_state s;
    memset(&s, 0, sizeof s);
    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    tnmtl_status st = c_locale ? TNMTL_OK : tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: cannot create the C locale", name);
    if (!st) st = read_header(&r, &s);
    if (!st) st = assign_roles(&r, &s, opt);
    if (!st) st = read_rows(&r, &s, opt->kind, c_locale);
    if (!st) st = build_dataset(&r, &s, opt->kind, out);
    if (!st) {
        st = tnmtl_dataset_validate(out, err);
        if (st) tnmtl_error_prefix(err, "%s", name);
    }
    if (!st) snprintf(out->source, sizeof out->source, "csv:%s", name);
    if (c_locale) freelocale(c_locale);
    free(r.buf);
    state_free(&s);
    if (st) tnmtl_dataset_free(out);
    return st;
}

tnmtl_status tnmtl_csv_load(const char *path, const tnmtl_csv_options *opt, tnmtl_dataset *out,
                            tnmtl_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len;
    const size_t cap = opt && opt->max_bytes ? opt->max_bytes : TNMTL_CSV_MAX_BYTES;
    tnmtl_status st = tnmtl_read_file(path, cap, &data, &len, err);
    if (st) return st;
    st = tnmtl_csv_parse((const char *)data, len, path, opt, out, err);
    free(data);
    return st;
}
