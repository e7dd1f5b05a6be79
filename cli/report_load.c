/* report_load.c - reads run, compare and tune folders for `tnmtl report`. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report.h"
#include "runfolder.h"
#include "util.h"

enum { MAX_JSON = 64 << 20, MAX_CSV = 64 << 20, MAX_RUNS = 1000 };

static int is_file(const char *dir, const char *name)
{
    char path[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name parsed as JSON, its path in path[4096]; a truncated or malformed
 * file names the byte. */
static tnmtl_status read_json(const char *dir, const char *name, char *path, cJSON **out, tnmtl_error *err)
{
    snprintf(path, 4096, "%s/%s", dir, name);
    unsigned char *text;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, MAX_JSON, &text, &len, err);
    if (st) return st;
    *out = cJSON_ParseWithLength((const char *)text, len);
    if (!*out) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= (const char *)text && at <= (const char *)text + len ? (long)(at - (const char *)text) : -1;
        free(text);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not valid JSON (truncated or damaged) near byte %ld of %zu", path,
                          off, len);
    }
    free(text);
    return TNMTL_OK;
}

static tnmtl_status need(const cJSON *o, const char *key, int type, const char *file, const cJSON **v,
                         tnmtl_error *err)
{
    *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!*v || !((*v)->type & type))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: missing or wrong field \"%s\"", file, key);
    return TNMTL_OK;
}

static double number_or_nan(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* results.json: method, data, architecture, steps, metrics. */
static tnmtl_status load_results(rep_run *r, tnmtl_error *err)
{
    char file[4096];
    cJSON *j;
    tnmtl_status st = read_json(r->dir, "results.json", file, &j, err);
    if (st) return st;
    const cJSON *v;
    if (!(st = need(j, "method", cJSON_String, file, &v, err))) snprintf(r->method, sizeof r->method, "%s", v->valuestring);
    if (!st && !(st = need(j, "data", cJSON_String, file, &v, err))) snprintf(r->data, sizeof r->data, "%s", v->valuestring);
    if (!st && !(st = need(j, "arch", cJSON_String, file, &v, err))) snprintf(r->arch, sizeof r->arch, "%s", v->valuestring);
    if (!st && !(st = need(j, "metric", cJSON_String, file, &v, err)))
        snprintf(r->metric, sizeof r->metric, "%s", v->valuestring);
    if (!st && !(st = need(j, "tasks", cJSON_Number, file, &v, err))) {
        r->T = v->valueint;
        if (r->T < 1 || r->T > 100000) st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %d tasks", file, r->T);
    }
    if (!st && !(st = need(j, "steps", cJSON_Number, file, &v, err))) r->steps = (long long)v->valuedouble;
    if (!st) {
        r->seed = (long long)number_or_nan(cJSON_GetObjectItem(j, "seed"));
        r->train_seconds = number_or_nan(cJSON_GetObjectItem(j, "train_seconds"));
        r->gamma = number_or_nan(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "gamma"));
        const char *mean = !strcmp(r->metric, "rmse") ? "mean_rmse" : "mean_accuracy";
        r->val_mean = number_or_nan(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "val"), mean));
        const cJSON *test = NULL;
        st = need(j, "test", cJSON_Object, file, &test, err);
        if (!st) {
            r->test_mean = number_or_nan(cJSON_GetObjectItem(test, mean));
            const cJSON *per = cJSON_GetObjectItem(test, "per_task");
            if (!cJSON_IsArray(per) || cJSON_GetArraySize(per) != r->T)
                st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: test.per_task is not an array of %d numbers", file, r->T);
        }
        if (!st && !(r->test = tnmtl_malloc((size_t)r->T * sizeof *r->test, "metrics", err))) st = TNMTL_ERR_NOMEM;
        for (int t = 0; t < r->T && !st; t++)
            r->test[t] = number_or_nan(cJSON_GetArrayItem(cJSON_GetObjectItem(test, "per_task"), t));
    }
    if (!st) snprintf(r->label, sizeof r->label, "%s seed %lld", r->method, r->seed);
    cJSON_Delete(j);
    return st;
}

/* One spectrum from a JSON array of numbers. */
static tnmtl_status load_spectrum(rep_spectrum *s, const cJSON *a, const char *file, tnmtl_error *err)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: \"singular_values\" is not a non-empty array", file);
    s->n = cJSON_GetArraySize(a);
    if (!(s->sv = tnmtl_malloc((size_t)s->n * sizeof *s->sv, "spectrum", err))) return TNMTL_ERR_NOMEM;
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e)) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: a singular value is not a number", file);
        s->sv[i] = e->valuedouble;
    }
    return TNMTL_OK;
}

/* The unfoldings' spectra, or the task mode's alone (runs made before the
 * unfoldings were recorded). */
static tnmtl_status load_spectra(rep_run *r, rep_layer *L, const cJSON *l, const char *file, tnmtl_error *err)
{
    const cJSON *unf = cJSON_GetObjectItem(l, "unfoldings");
    const int n = cJSON_IsArray(unf) ? cJSON_GetArraySize(unf) : 1;
    if (!(L->unf = tnmtl_calloc((size_t)n, sizeof *L->unf, "spectra", err))) return TNMTL_ERR_NOMEM;
    if (!cJSON_IsArray(unf)) {
        L->n_unf = 1;
        rep_spectrum *s = &L->unf[0];
        snprintf(s->name, sizeof s->name, "task mode");
        snprintf(s->used_by, sizeof s->used_by, "laf, tucker, tt");
        s->rows = r->T;
        return load_spectrum(s, cJSON_GetObjectItem(l, "singular_values"), file, err);
    }
    for (const cJSON *u = unf->child; u; u = u->next) {
        rep_spectrum *s = &L->unf[L->n_unf++];
        const cJSON *v;
        tnmtl_status st = need(u, "name", cJSON_String, file, &v, err);
        if (st) return st;
        snprintf(s->name, sizeof s->name, "%s", v->valuestring);
        s->rows = (long long)number_or_nan(cJSON_GetObjectItem(u, "rows"));
        s->cols = (long long)number_or_nan(cJSON_GetObjectItem(u, "cols"));
        const cJSON *by = cJSON_GetObjectItem(u, "used_by");
        for (const cJSON *b = cJSON_IsArray(by) ? by->child : NULL; b; b = b->next)
            if (cJSON_IsString(b)) {
                size_t k = strlen(s->used_by);
                snprintf(s->used_by + k, sizeof s->used_by - k, "%s%s", k ? ", " : "", b->valuestring);
            }
        if ((st = load_spectrum(s, cJSON_GetObjectItem(u, "singular_values"), file, err))) return st;
    }
    return TNMTL_OK;
}

/* Splits one CSV line into at most cap fields in place (double-quoted
 * fields with "" escapes); returns the count, -1 on too many or bad quotes. */
static int split_csv(char *line, char **field, int cap)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == cap) return -1;
        char *out = p;
        field[n++] = p;
        if (*p == '"') {
            char *q = p + 1;
            for (;;) {
                if (!*q) return -1;
                if (*q == '"' && q[1] == '"') *out++ = '"', q += 2;
                else if (*q == '"') break;
                else *out++ = *q++;
            }
            p = q + 1;
            if (*p && *p != ',' && *p != '\n' && *p != '\r') return -1;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') out++, p++;
        }
        const char c = *p;
        *out = '\0';
        if (c != ',') return n;
        p++;
    }
}

/* dir/relatedness_layer<k>.csv: T task names and the T x T matrix. */
static tnmtl_status load_relatedness(rep_run *r, rep_layer *L, tnmtl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/relatedness_layer%d.csv", r->dir, L->layer);
    unsigned char *text;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, MAX_CSV, &text, &len, err);
    if (st) return st;
    const int T = r->T;
    char **field = tnmtl_malloc((size_t)(T + 2) * sizeof *field, "CSV fields", err);
    L->rel = tnmtl_malloc((size_t)T * T * sizeof *L->rel, "relatedness", err);
    if (!field || !L->rel) st = TNMTL_ERR_NOMEM;
    char *line = (char *)text;
    for (int row = -1; row < T && !st; row++) {
        char *next = line ? strchr(line, '\n') : NULL;
        if (next) *next++ = '\0';
        if (!line || split_csv(line, field, T + 2) != T + 1) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d does not have %d fields (truncated?)", path, row + 2,
                            T + 1);
            break;
        }
        for (int t = 0; t < T && row < 0 && !r->task_names[t]; t++)
            if (!(r->task_names[t] = strdup(field[t + 1]))) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
        for (int t = 0; t < T && row >= 0 && !st; t++) {
            char *end;
            double v = strtod(field[t + 1], &end);
            if (end == field[t + 1] || *end || !isfinite(v))
                st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d, column %d: '%s' is not a number", path, row + 2,
                                t + 2, field[t + 1]);
            L->rel[row * T + t] = v;
        }
        line = next;
    }
    free(field);
    free(text);
    return st;
}

/* sharing.json and the relatedness matrices of its layers. */
static tnmtl_status load_sharing(rep_run *r, tnmtl_error *err)
{
    char file[4096];
    cJSON *j;
    tnmtl_status st = read_json(r->dir, "sharing.json", file, &j, err);
    if (st) return st;
    const cJSON *v, *layers = NULL;
    if (!(st = need(j, "n_tasks", cJSON_Number, file, &v, err)) && v->valueint != r->T)
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %d tasks, results.json says %d", file, v->valueint, r->T);
    if (!st) st = need(j, "layers", cJSON_Array, file, &layers, err);
    if (!st) {
        r->n_layers = cJSON_GetArraySize(layers);
        r->layers = tnmtl_calloc((size_t)(r->n_layers ? r->n_layers : 1), sizeof *r->layers, "layers", err);
        r->task_names = tnmtl_calloc((size_t)r->T, sizeof *r->task_names, "task names", err);
        if (!r->layers || !r->task_names) st = TNMTL_ERR_NOMEM;
    }
    int k = 0;
    for (const cJSON *l = layers ? layers->child : NULL; l && !st; l = l->next, k++) {
        rep_layer *L = &r->layers[k];
        if (!(st = need(l, "layer", cJSON_Number, file, &v, err))) L->layer = v->valueint;
        if (!st && !(st = need(l, "name", cJSON_String, file, &v, err))) snprintf(L->name, sizeof L->name, "%s", v->valuestring);
        if (!st && !(st = need(l, "rho", cJSON_Number, file, &v, err))) L->rho = v->valuedouble;
        if (!st && !(st = need(l, "effective_rank", cJSON_Number, file, &v, err))) L->eff_rank = v->valuedouble;
        L->shared = cJSON_IsTrue(cJSON_GetObjectItem(l, "shared"));
        if (!st) st = load_spectra(r, L, l, file, err);
        if (!st) st = load_relatedness(r, L, err);
    }
    for (int t = 0; t < r->T && !st; t++)
        if (!r->task_names[t]) {
            char name[32];
            snprintf(name, sizeof name, "task %d", t);
            if (!(r->task_names[t] = strdup(name))) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
        }
    cJSON_Delete(j);
    return st;
}

static tnmtl_status add_run(rep_input *in, const char *dir, tnmtl_error *err)
{
    if (in->n_runs >= MAX_RUNS) return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "more than %d runs in one report", MAX_RUNS);
    rep_run *runs = realloc(in->runs, (size_t)(in->n_runs + 1) * sizeof *runs);
    if (!runs) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    in->runs = runs;
    rep_run *r = &runs[in->n_runs++];
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    /* one run: no file of another run (or changed since it was written) */
    tnmtl_status st = runfolder_verify(dir, NULL, NULL, 1, err);
    if (!st) st = load_results(r, err);
    if (!st) st = load_sharing(r, err);
    if (!st) st = history_load(&r->history, dir, INT64_MAX, err);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The run folders directly inside dir, in name order. */
static tnmtl_status add_subruns(rep_input *in, const char *dir, int *found, tnmtl_error *err)
{
    *found = 0;
    DIR *d = opendir(dir);
    if (!d) return tnmtl_fail(err, TNMTL_ERR_IO, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    tnmtl_status st = TNMTL_OK;
    for (struct dirent *e; (e = readdir(d)) && !st;) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (!is_file(sub, "results.json")) continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (!nn || !(nn[n] = strdup(sub))) {
            if (nn) names = nn;
            st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && !st; i++) st = add_run(in, names[i], err);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    *found = n;
    return st;
}

/* A tune folder's trials.csv, as tune writes it (cli/cmd_tune.c):
 *   method,gamma,weight_decay,share,batch,steps,val_accuracy_pct|val_rmse,seconds,chosen
 * gamma empty for STL and UD; weight_decay STL's searched one, for other
 * methods the tune's --weight-decay (empty when none); share empty but for
 * UD; batch absent in the folders of tunes made before it was searched,
 * weight_decay in those before STL searched it (its steps).  Each
 * candidate's rows stand together (its evaluations in order of steps), and
 * the path search's from-scratch confirmations follow the path; so a run of
 * rows whose method, gamma, weight decay, share and batch an earlier run
 * already had is a confirmation
 * (scratch), and one with fewer steps than its method's first row (the path's
 * start) stopped behind it. */
enum { TRIAL_METHOD, TRIAL_GAMMA, TRIAL_SHARE, TRIAL_STEPS, TRIAL_VAL, TRIAL_CHOSEN, TRIAL_COLUMNS };
enum { TRIAL_BATCH = TRIAL_COLUMNS, TRIAL_WD }; /* optional: after the required ones */

static int same_candidate(const rep_trial *a, const rep_trial *b)
{
    return a->tune == b->tune && !strcmp(a->method, b->method) && a->share == b->share && a->batch == b->batch &&
           (a->gamma == b->gamma || (isnan(a->gamma) && isnan(b->gamma))) &&
           (a->weight_decay == b->weight_decay || (isnan(a->weight_decay) && isnan(b->weight_decay)));
}

static tnmtl_status parse_trial(char **field, const int *col, rep_trial *t, const char *path, int lineno, tnmtl_error *err)
{
    char *e[4];
    const char *g = field[col[TRIAL_GAMMA]], *sh = field[col[TRIAL_SHARE]], *c = field[col[TRIAL_CHOSEN]];
    snprintf(t->method, sizeof t->method, "%s", field[col[TRIAL_METHOD]]);
    t->gamma = *g ? strtod(g, &e[0]) : NAN;
    const long share = *sh ? strtol(sh, &e[1], 10) : -1;
    t->steps = strtoll(field[col[TRIAL_STEPS]], &e[2], 10);
    t->val = strtod(field[col[TRIAL_VAL]], &e[3]);
    t->share = (int)share;
    t->chosen = !strcmp(c, "1");
    t->batch = -1;
    t->weight_decay = NAN;
    if (col[TRIAL_WD] >= 0 && *field[col[TRIAL_WD]]) { /* an optional column, empty but for STL */
        const char *w = field[col[TRIAL_WD]];
        char *ew;
        t->weight_decay = strtod(w, &ew);
        if (*ew || !(t->weight_decay >= 0) || !isfinite(t->weight_decay))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d: weight_decay '%s' is not a number >= 0", path,
                              lineno, w);
    }
    if (col[TRIAL_BATCH] >= 0) { /* an optional column */
        const char *b = field[col[TRIAL_BATCH]];
        char *eb;
        const long batch = strtol(b, &eb, 10);
        if (!*b || *eb || batch < 0 || batch > (1L << 20))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d: batch '%s' is not a batch size", path, lineno, b);
        t->batch = (int)batch;
    }
    if (!t->method[0] || (*g && (*e[0] || !(t->gamma > 0))) || (*sh && (*e[1] || share < 0 || share > 1000)) ||
        *e[2] || e[2] == field[col[TRIAL_STEPS]] || t->steps < 0 || *e[3] || e[3] == field[col[TRIAL_VAL]] ||
        !(strcmp(c, "0") == 0 || t->chosen))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d: a method, gamma, share, steps, validation or chosen field is not valid",
                          path, lineno);
    return TNMTL_OK;
}

static tnmtl_status load_trials(rep_input *in, const char *dir, tnmtl_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/trials.csv", dir);
    char **dirs = realloc(in->tune_dirs, (size_t)(in->n_tunes + 1) * sizeof *dirs);
    if (!dirs) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    in->tune_dirs = dirs;
    if (!(dirs[in->n_tunes] = strdup(dir))) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    const int tune = in->n_tunes++;
    unsigned char *text;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, MAX_CSV, &text, &len, err);
    if (st) return st;
    enum { MAXF = 64 };
    static const char *const want[TRIAL_COLUMNS] = {"method", "gamma", "share", "steps", "val_accuracy_pct|val_rmse", "chosen"};
    char *field[MAXF], *line = (char *)text;
    int col[TRIAL_COLUMNS + 2] = {-1, -1, -1, -1, -1, -1, -1, -1}, n_head = 0, lineno = 0, cls = -1;
    const int first = in->n_trials;
    while (line && *line && !st) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        lineno++;
        int n = split_csv(line, field, MAXF);
        if (lineno == 1) {
            n_head = n;
            for (int i = 0; i < n; i++) {
                for (int k = 0; k < TRIAL_COLUMNS; k++)
                    if (k != TRIAL_VAL && !strcmp(field[i], want[k])) col[k] = i;
                if (!strcmp(field[i], "val_accuracy_pct") || !strcmp(field[i], "val_rmse"))
                    col[TRIAL_VAL] = i, cls = field[i][4] == 'a';
                if (!strcmp(field[i], "batch")) col[TRIAL_BATCH] = i;
                if (!strcmp(field[i], "weight_decay")) col[TRIAL_WD] = i;
            }
            for (int k = 0; k < TRIAL_COLUMNS && !st; k++)
                if (col[k] < 0) st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no column '%s' in the header", path, want[k]);
            if (!st && in->n_trials && cls != in->trials_cls)
                st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tune folders with different metrics (accuracy and RMSE)", path);
            in->trials_cls = cls;
        } else if (n != n_head) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: line %d has %d fields, the header %d", path, lineno, n, n_head);
        } else {
            rep_trial t = {.tune = tune};
            if ((st = parse_trial(field, col, &t, path, lineno, err))) break;
            if (cls) t.val /= 100; /* the file has percent */
            const rep_trial *prev = in->n_trials > first ? &in->trials[in->n_trials - 1] : NULL;
            if (prev && same_candidate(prev, &t) && t.steps > prev->steps) t.scratch = prev->scratch; /* a later rung */
            else
                for (int i = first; i < in->n_trials && !t.scratch; i++) t.scratch = same_candidate(&in->trials[i], &t);
            for (int i = first; i < in->n_trials && t.scratch; i++)
                if (!strcmp(in->trials[i].method, t.method) && in->trials[i].batch == t.batch) {
                    t.stopped = t.steps < in->trials[i].steps;
                    break;
                }
            rep_trial *tr = realloc(in->trials, (size_t)(in->n_trials + 1) * sizeof *tr);
            if (!tr) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
            else (in->trials = tr)[in->n_trials++] = t;
        }
        line = next;
    }
    if (!st && in->n_trials == first) st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no trials", path);
    free(text);
    return st;
}

tnmtl_status report_load(rep_input *in, const char *dir, tnmtl_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: not a folder", dir);
    if (is_file(dir, "results.json")) return add_run(in, dir, err);
    const int tune = is_file(dir, "trials.csv");
    tnmtl_status st = tune ? load_trials(in, dir, err) : TNMTL_OK;
    int found = 0;
    if (!st) st = add_subruns(in, dir, &found, err);
    if (!st && !tune && !found)
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT,
                        "%s is not a run folder (no results.json), a compare folder (no run folders inside) "
                        "or a tune folder (no trials.csv)",
                        dir);
    return st;
}

static int method_rank(const char *m)
{
    static const char *const order[] = {"stl", "ud", "laf", "tucker", "tt"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(m, order[i])) return i;
    return 5;
}

static int cmp_run(const void *a, const void *b)
{
    const rep_run *r = a, *s = b;
    const int dm = method_rank(r->method) - method_rank(s->method);
    if (dm) return dm;
    if (r->seed != s->seed) return r->seed < s->seed ? -1 : 1;
    return strcmp(r->dir, s->dir);
}

void report_sort_runs(rep_input *in)
{
    if (in->n_runs > 1) qsort(in->runs, (size_t)in->n_runs, sizeof *in->runs, cmp_run);
}

tnmtl_status report_check_same_data(const rep_input *in, tnmtl_error *err)
{
    for (int i = 1; i < in->n_runs; i++) {
        const rep_run *a = &in->runs[0], *b = &in->runs[i];
        int same = !strcmp(a->data, b->data) && a->T == b->T && !strcmp(a->metric, b->metric);
        for (int t = 0; t < a->T && same; t++) same = !strcmp(a->task_names[t], b->task_names[t]);
        if (!same)
            return tnmtl_fail(err, TNMTL_ERR_INVALID,
                              "runs of different data in one report: %s (%s, %d tasks) and %s (%s, %d tasks)", a->dir,
                              a->data, a->T, b->dir, b->data, b->T);
    }
    return TNMTL_OK;
}

void report_input_free(rep_input *in)
{
    for (int i = 0; i < in->n_runs; i++) {
        rep_run *r = &in->runs[i];
        for (int k = 0; k < r->n_layers; k++) {
            for (int u = 0; u < r->layers[k].n_unf; u++) free(r->layers[k].unf[u].sv);
            free(r->layers[k].unf);
            free(r->layers[k].rel);
        }
        free(r->layers);
        for (int t = 0; t < r->T && r->task_names; t++) free(r->task_names[t]);
        free(r->task_names);
        free(r->test);
        history_free(&r->history);
    }
    free(in->runs);
    free(in->trials);
    for (int i = 0; i < in->n_tunes; i++) free(in->tune_dirs[i]);
    free(in->tune_dirs);
    memset(in, 0, sizeof *in);
}
