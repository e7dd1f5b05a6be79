/* testutil.c - helpers shared by the test programs. */
#include "testutil.h"

#include <cJSON.h>
#include "tnmtl/checkpoint.h"
#include "tnmtl/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tu_shared_data(void)
{
    const char *e = getenv("TNMTL_SHARED_DATA");
    return e && *e ? e : "../shared/data";
}

const char *tu_shared_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", tu_shared_data(), rel);
    return buf;
}

const char *tu_cli(void)
{
    const char *e = getenv("TNMTL_CLI");
    return e && *e ? e : "build/tnmtl";
}

const char *tu_tmpdir(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/tnmtl-test-XXXXXX");
    if (!mkdtemp(buf)) return NULL;
    return buf;
}

void tu_rmtree(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/tnmtl-test-", 16) != 0) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

char tu_group_dir[256];

int tu_group_setup_tmpdir(void **state)
{
    (void)state;
    const char *d = tu_tmpdir();
    if (!d) return -1;
    snprintf(tu_group_dir, sizeof tu_group_dir, "%s", d);
    return 0;
}

int tu_group_teardown_tmpdir(void **state)
{
    (void)state;
    tu_rmtree(tu_group_dir);
    return 0;
}

int tu_run(const char *cmd, int merge_stderr, char *out, size_t cap)
{
    char full[8192];
    snprintf(full, sizeof full, "%s%s", cmd, merge_stderr ? " 2>&1" : "");
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = 0;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    }
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tu_cli_run(int merge_stderr, char *out, size_t cap, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s", tu_cli(), args);
    return tu_run(cmd, merge_stderr, out, cap);
}

int tu_tune_forget_confirmations(const char *dir, int folders)
{
    char path[4096], cmd[8192], out[256];
    if (folders) {
        snprintf(cmd, sizeof cmd, "cd '%s/trials' && rm -rf $(ls | grep -v -- -path)", dir);
        if (tu_run(cmd, 0, out, sizeof out)) return -1;
    }
    snprintf(path, sizeof path, "%s/ledger.json", dir);
    char *text = tu_read_file(path, NULL);
    cJSON *ledger = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!ledger) return -1;
    for (cJSON *rec = ledger->child, *next; rec; rec = next) {
        next = rec->next;
        if (!strstr(rec->string, "-path/")) cJSON_Delete(cJSON_DetachItemViaPointer(ledger, rec));
    }
    text = cJSON_Print(ledger);
    cJSON_Delete(ledger);
    FILE *f = text ? fopen(path, "w") : NULL;
    int bad = !f || fputs(text, f) < 0;
    if (f && fclose(f)) bad = 1;
    free(text);
    return bad ? -1 : 0;
}

int tu_history_scale_val(const char *path, const char *when, double factor)
{
    char cmd[8192], out[256];
    snprintf(cmd, sizeof cmd,
             "awk -F, -v OFS=, 'NR > 1 && (%s) && $4 != \"\" { $4 = %.17g * $4 } 1' '%s' > '%s.new' && "
             "mv '%s.new' '%s'",
             when, factor, path, path, path, path);
    return tu_run(cmd, 0, out, sizeof out);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        if (len) *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

double tu_max_rel_err(const double *a, const double *b, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / (atol + rtol * fabs(b[i]));
        if (!(e <= worst)) worst = e; /* NaN propagates as worst */
    }
    return worst;
}

pid_t tu_spawn(const char *err_path, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)tu_cli();
    for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok && argc < 63; tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        int e = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
        dup2(null, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int tu_wait_exit(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (WIFSIGNALED(st)) return 1000 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tu_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

void tu_read_text(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

int tu_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

int tu_same_checkpoint(const char *dir_a, const char *dir_b, char *why, size_t cap)
{
    tnmtl_st_file *f[2] = {NULL, NULL};
    const char *dirs[2] = {dir_a, dir_b};
    int same = 1;
    for (int k = 0; k < 2 && same; k++) {
        char path[1024];
        tnmtl_error err = {0};
        snprintf(path, sizeof path, "%s/%s", dirs[k], TNMTL_CHECKPOINT_FILE);
        if (tnmtl_st_load(path, 0, &f[k], &err)) {
            snprintf(why, cap, "%s", err.msg);
            same = 0;
        }
    }
    if (same) {
        const char *sa = tnmtl_st_meta_get(f[0], "step"), *sb = tnmtl_st_meta_get(f[1], "step");
        if (!sa || !sb || strcmp(sa, sb)) {
            snprintf(why, cap, "steps %s and %s", sa ? sa : "?", sb ? sb : "?");
            same = 0;
        } else if (tnmtl_st_count(f[0]) != tnmtl_st_count(f[1])) {
            snprintf(why, cap, "%d and %d tensors", tnmtl_st_count(f[0]), tnmtl_st_count(f[1]));
            same = 0;
        }
    }
    for (int i = 0; same && i < tnmtl_st_count(f[0]); i++) {
        const tnmtl_st_tensor *x = tnmtl_st_at(f[0], i), *y = tnmtl_st_at(f[1], i);
        const int64_t n = tnmtl_st_numel(x);
        if (strcmp(x->name, y->name) || n != tnmtl_st_numel(y) || x->dtype != y->dtype) {
            snprintf(why, cap, "tensor %d: %s and %s differ in name, size or type", i, x->name, y->name);
            same = 0;
        } else if (memcmp(x->data, y->data, (size_t)n * tnmtl_st_dtype_size(x->dtype))) {
            int64_t j = 0;
            if (x->dtype == TNMTL_ST_F32)
                while (j < n && ((const float *)x->data)[j] == ((const float *)y->data)[j]) j++;
            snprintf(why, cap, "tensor %s differs (first at element %lld)", x->name, (long long)j);
            same = 0;
        }
    }
    tnmtl_st_free(f[0]);
    tnmtl_st_free(f[1]);
    return same;
}

static tnmtl_status tu_select(void *user, const tnmtl_dataset *ds, int *begin, int *end, tnmtl_error *err)
{
    (void)ds;
    (void)err;
    tu_task_range *r = user;
    r->calls++;
    *begin = r->begin;
    *end = r->end;
    return TNMTL_OK;
}

static tnmtl_status tu_agree(void *user, int *h, int *w, int *c, tnmtl_error *err)
{
    (void)err;
    tu_task_range *r = user;
    r->h = *h;
    r->w = *w;
    r->c = *c;
    *c = r->agree_c;
    return TNMTL_OK;
}

tnmtl_input_select tu_select_tasks(tu_task_range *r)
{
    tnmtl_input_select s = {tu_select, r->agree_c > 0 ? tu_agree : NULL, r};
    return s;
}

int tu_partial_inputs_differ(const tnmtl_dataset *full, const tnmtl_dataset *part, int begin, int end, char *why,
                             size_t cap)
{
    if (part->n_tasks != full->n_tasks || part->n_examples != full->n_examples)
        return snprintf(why, cap, "%d tasks, %lld examples; want %d, %lld", part->n_tasks,
                        (long long)part->n_examples, full->n_tasks, (long long)full->n_examples), 1;
    const int whole = begin == 0 && end == full->n_tasks;
    if (part->inputs_task_begin != (whole ? 0 : begin) || part->inputs_task_end != (whole ? 0 : end))
        return snprintf(why, cap, "holds the inputs of tasks [%d, %d), want [%d, %d)", part->inputs_task_begin,
                        part->inputs_task_end, begin, end), 1;
    for (int t = 0; t <= full->n_tasks; t++)
        if (part->task_begin[t] != full->task_begin[t]) return snprintf(why, cap, "task %d's offset differs", t), 1;
    for (int t = 0; t < full->n_tasks; t++)
        if (part->n_classes[t] != full->n_classes[t]) return snprintf(why, cap, "task %d's classes differ", t), 1;
    if ((full->label && memcmp(part->label, full->label, (size_t)full->n_examples * sizeof *full->label)) ||
        (full->target && memcmp(part->target, full->target, (size_t)full->n_examples * sizeof *full->target)))
        return snprintf(why, cap, "the labels or targets differ"), 1;
    const int64_t d = tnmtl_dataset_example_size(full);
    float *a = malloc((size_t)d * sizeof *a), *b = malloc((size_t)d * sizeof *b);
    int differ = !a || !b;
    if (differ) snprintf(why, cap, "out of memory");
    for (int64_t e = full->task_begin[begin]; !differ && e < full->task_begin[end]; e++) {
        tnmtl_dataset_gather(full, &e, 1, a, NULL, NULL);
        tnmtl_dataset_gather(part, &e, 1, b, NULL, NULL);
        if ((differ = memcmp(a, b, (size_t)d * sizeof *a) != 0)) snprintf(why, cap, "example %lld's inputs differ",
                                                                         (long long)e);
    }
    free(a);
    free(b);
    return differ;
}
