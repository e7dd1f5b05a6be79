/* imagefolder.c - DIR/TASK/CLASS/FILE image trees as multi-task datasets.
 * See tnmtl/imagefolder.h for the layout and the rules.
 *
 * Three steps: a single-threaded walk lists the tasks, classes and files
 * (sorted); a parallel pass reads every file's header (kind, size, colour);
 * then, once the size, channels and memory are known and checked, a
 * parallel pass decodes each file straight into its place in the dataset.
 * Problems are collected per file, so that with a bad_input callback every
 * bad file is named, in order, before the load fails.
 */
#include "tnmtl/imagefolder.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#define IF_DEFAULT_MAX_BYTES ((size_t)4 << 30)
#define IF_MAX_FILE_BYTES ((size_t)256 << 20)   /* one image file               */
#define IF_MAX_FILES ((int64_t)1 << 26)
#define IF_MAX_DEPTH 32                         /* folders below a class folder */
#define IF_MAX_NAME 255
#define IF_MAX_THREADS 64

typedef struct if_file {
    char *path;
    int task, cls;             /* cls: index within the task                  */
    tnmtl_image_info info;
    char *bad;                 /* malloc'd problem, or NULL                   */
    int reported;              /* bad has been reported                       */
} if_file;

typedef struct if_tree {
    const char *dir;
    const tnmtl_imagefolder_options *opt;
    int n_tasks;
    char **task_name;          /* [n_tasks]                                   */
    int *n_classes;            /* [n_tasks]                                   */
    char ***class_name;        /* [n_tasks][n_classes]                        */
    int64_t n_files, cap;
    if_file *files;
    int64_t first, last;       /* the files whose images to read: [first, last),
                                * those of tasks [task_first, task_last)     */
    int task_first, task_last;
    int problems;              /* reported so far                             */
    tnmtl_error *err;          /* holds the first problem                     */
} if_tree;

static void tree_free(if_tree *t)
{
    for (int k = 0; k < t->n_tasks; k++) {
        free(t->task_name[k]);
        if (t->class_name && t->class_name[k])
            for (int c = 0; c < t->n_classes[k]; c++) free(t->class_name[k][c]);
        if (t->class_name) free(t->class_name[k]);
    }
    free(t->task_name);
    free(t->n_classes);
    free(t->class_name);
    for (int64_t i = 0; i < t->n_files; i++) {
        free(t->files[i].path);
        free(t->files[i].bad);
    }
    free(t->files);
}

/* Records a problem.  Returns 1 when the caller should go on (a bad_input
 * callback collects every problem), 0 when it should stop. */
static int problem(if_tree *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int problem(if_tree *t, const char *fmt, ...)
{
    char msg[sizeof t->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->problems++ == 0) tnmtl_fail(t->err, TNMTL_ERR_FORMAT, "%s", msg);
    if (t->opt->bad_input) t->opt->bad_input(t->opt->bad_input_user, msg);
    return t->opt->bad_input != NULL;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) snprintf(p, la + lb + 2, "%s%s%s", a, la && a[la - 1] == '/' ? "" : "/", b);
    return p;
}

/* Valid UTF-8 without control characters. */
static int good_name(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (strlen(s) > IF_MAX_NAME) return 0;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || c < 0x20 || c == 0x7f || c == 0xc0 || c == 0xc1 || c > 0xf4) return 0;
        for (int k = 1; k <= n; k++)
            if ((p[k] & 0xc0) != 0x80) return 0;
        p += n + 1;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The non-hidden entries of a folder, sorted.  -1: out of memory (err set),
 * -2: the folder cannot be read (reported as a problem). */
static int list_dir(if_tree *t, const char *path, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d) {
        problem(t, "%s: cannot open folder: %s", path, strerror(errno));
        return -2;
    }
    int cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;   /* hidden, "." and ".." */
        if (*n == cap) {
            int ncap = cap ? 2 * cap : 16;
            char **p = ncap < (1 << 26) ? realloc(*names, (size_t)ncap * sizeof *p) : NULL;
            if (!p) break;
            *names = p;
            cap = ncap;
        }
        if (!((*names)[*n] = strdup(e->d_name))) break;
        (*n)++;
    }
    int failed = errno == ENOMEM || (*n == cap && cap > 0 && readdir(d) != NULL);
    closedir(d);
    if (failed) {
        free_names(*names, *n);
        *names = NULL;
        *n = 0;
        tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "%s: out of memory listing the folder", path);
        return -1;
    }
    if (*n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

/* stat() that reports loops and broken links.  1 ok, 0 reported. */
static int stat_entry(if_tree *t, const char *path, struct stat *st)
{
    if (stat(path, st) == 0) return 1;
    int e = errno;
    struct stat lst;
    if (e == ELOOP) problem(t, "%s: symbolic-link loop (too many levels of symbolic links)", path);
    else if (e == ENOENT && lstat(path, &lst) == 0) problem(t, "%s: broken symbolic link", path);
    else problem(t, "%s: cannot read: %s", path, strerror(e));
    return 0;
}

typedef struct if_anc {   /* folders above the one being walked */
    dev_t dev[IF_MAX_DEPTH + 4];
    ino_t ino[IF_MAX_DEPTH + 4];
    const char *path[IF_MAX_DEPTH + 4];
    int n;
} if_anc;

/* Returns the ancestor this folder is, or NULL. */
static const char *anc_find(const if_anc *a, const struct stat *st)
{
    for (int i = 0; i < a->n; i++)
        if (a->dev[i] == st->st_dev && a->ino[i] == st->st_ino) return a->path[i];
    return NULL;
}

static void anc_push(if_anc *a, const struct stat *st, const char *path)
{
    a->dev[a->n] = st->st_dev;
    a->ino[a->n] = st->st_ino;
    a->path[a->n++] = path;
}

static tnmtl_status add_file(if_tree *t, char *path, int task, int cls)
{
    if (t->n_files == t->cap) {
        int64_t ncap = t->cap ? 2 * t->cap : 1024;
        if (ncap > IF_MAX_FILES) {
            free(path);
            return tnmtl_fail(t->err, TNMTL_ERR_TOO_BIG, "%s: more than %lld files", t->dir, (long long)t->cap);
        }
        if_file *p = realloc(t->files, (size_t)ncap * sizeof *p);
        if (!p) {
            free(path);
            return tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "%s: out of memory listing the files", t->dir);
        }
        t->files = p;
        t->cap = ncap;
    }
    if_file *f = &t->files[t->n_files++];
    memset(f, 0, sizeof *f);
    f->path = path;
    f->task = task;
    f->cls = cls;
    return TNMTL_OK;
}

/* Adds the files below a class folder: its files first, then its subfolders. */
static tnmtl_status walk_class(if_tree *t, const char *path, int task, int cls, if_anc *anc)
{
    char **names;
    int n, rc = list_dir(t, path, &names, &n);
    if (rc == -1) return TNMTL_ERR_NOMEM;
    if (rc == -2) return t->opt->bad_input ? TNMTL_OK : TNMTL_ERR_FORMAT;
    char **paths = calloc((size_t)n + 1, sizeof *paths);
    unsigned char *kind = calloc((size_t)n + 1, 1);   /* 0 bad, 1 file, 2 folder */
    tnmtl_status st = paths && kind ? TNMTL_OK : tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n && !st; i++) {
        struct stat sb;
        if (!(paths[i] = join(path, names[i]))) {
            st = tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "%s: out of memory", path);
        } else if (!stat_entry(t, paths[i], &sb)) {
            if (!t->opt->bad_input) st = TNMTL_ERR_FORMAT;
        } else if (S_ISREG(sb.st_mode)) {
            kind[i] = 1;
        } else if (!S_ISDIR(sb.st_mode)) {
            if (!problem(t, "%s: not a regular file or folder", paths[i])) st = TNMTL_ERR_FORMAT;
        } else {
            const char *loop = anc_find(anc, &sb);
            if (loop) {
                if (!problem(t, "%s: symbolic-link loop (leads back to %s)", paths[i], loop)) st = TNMTL_ERR_FORMAT;
            } else if (anc->n >= IF_MAX_DEPTH) {
                if (!problem(t, "%s: folders nested more than %d deep", paths[i], IF_MAX_DEPTH)) st = TNMTL_ERR_FORMAT;
            } else {
                kind[i] = 2;
            }
        }
    }
    for (int i = 0; i < n && !st; i++)
        if (kind[i] == 1) {
            st = add_file(t, paths[i], task, cls);
            paths[i] = NULL;
        }
    for (int i = 0; i < n && !st; i++)
        if (kind[i] == 2) {
            struct stat sb;
            if (stat(paths[i], &sb) != 0) continue;
            anc_push(anc, &sb, paths[i]);
            st = walk_class(t, paths[i], task, cls, anc);
            anc->n--;
        }
    for (int i = 0; paths && i < n; i++) free(paths[i]);
    free(paths);
    free(kind);
    free_names(names, n);
    return st;
}

/* Lists the folders of path (tasks or classes): names[n], sorted; a file
 * there is a problem. */
static tnmtl_status list_folders(if_tree *t, const char *path, const char *what, char ***names, int *n,
                                 const if_anc *anc)
{
    int rc = list_dir(t, path, names, n);
    if (rc == -1) return TNMTL_ERR_NOMEM;
    if (rc == -2) return t->opt->bad_input ? TNMTL_OK : TNMTL_ERR_FORMAT;
    int keep = 0;
    for (int i = 0; i < *n; i++) {
        char *p = join(path, (*names)[i]);
        struct stat sb;
        if (!p) {
            for (int j = i; j < *n; j++) free((*names)[j]);
            *n = keep;
            return tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "%s: out of memory", path);
        }
        int ok = stat_entry(t, p, &sb);
        const char *loop = ok && S_ISDIR(sb.st_mode) ? anc_find(anc, &sb) : NULL;
        if (ok && !S_ISDIR(sb.st_mode)) {
            problem(t, "%s: not a folder (%s)", p, what);
            ok = 0;
        } else if (loop) {
            problem(t, "%s: symbolic-link loop (leads back to %s)", p, loop);
            ok = 0;
        } else if (ok && !good_name((*names)[i])) {
            problem(t, "%s: folder name is not valid UTF-8, holds control characters or is longer than %d bytes",
                    p, IF_MAX_NAME);
            ok = 0;
        }
        free(p);
        if (ok) (*names)[keep++] = (*names)[i];
        else free((*names)[i]);
        if (!ok && !t->opt->bad_input) {
            for (int j = i + 1; j < *n; j++) free((*names)[j]);
            *n = keep;
            return TNMTL_ERR_FORMAT;
        }
    }
    *n = keep;
    return TNMTL_OK;
}

static tnmtl_status walk(if_tree *t)
{
    struct stat sb;
    if (stat(t->dir, &sb) != 0)
        return tnmtl_fail(t->err, TNMTL_ERR_IO, "%s: no such folder: %s", t->dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return tnmtl_fail(t->err, TNMTL_ERR_IO, "%s: not a folder", t->dir);
    if_anc anc = {.n = 0};
    anc_push(&anc, &sb, t->dir);
    char **tasks;
    int n_tasks;
    tnmtl_status st = list_folders(t, t->dir, "DIR must hold one folder per task", &tasks, &n_tasks, &anc);
    if (st) {
        free_names(tasks, n_tasks);
        return st;
    }
    if (n_tasks == 0 && t->problems == 0) {
        free(tasks);
        return tnmtl_fail(t->err, TNMTL_ERR_FORMAT, "%s: no task folders (expected DIR/TASK/CLASS/images)", t->dir);
    }
    t->task_name = tasks;
    t->n_tasks = n_tasks;
    t->n_classes = calloc((size_t)n_tasks + 1, sizeof(int));
    t->class_name = calloc((size_t)n_tasks + 1, sizeof(char **));
    if (!t->n_classes || !t->class_name) return tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_tasks && !st; k++) {
        char *tp = join(t->dir, tasks[k]);
        if (!tp) return tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "out of memory");
        struct stat tsb;
        if (stat(tp, &tsb) == 0) anc_push(&anc, &tsb, tp);
        st = list_folders(t, tp, "a task folder holds one folder per class", &t->class_name[k], &t->n_classes[k],
                          &anc);
        if (!st && t->n_classes[k] == 0 && !problem(t, "%s: empty task folder (no class folders)", tp))
            st = TNMTL_ERR_FORMAT;
        if (!st && t->n_classes[k] == 1 &&
            !problem(t, "%s: the task has one class (%s); a classifier needs at least two", tp,
                     t->class_name[k][0]))
            st = TNMTL_ERR_FORMAT;
        for (int c = 0; c < t->n_classes[k] && !st; c++) {
            char *cp = join(tp, t->class_name[k][c]);
            if (!cp) {
                st = tnmtl_fail(t->err, TNMTL_ERR_NOMEM, "out of memory");
                break;
            }
            struct stat csb;
            const int64_t before = t->n_files;
            if (stat(cp, &csb) == 0) anc_push(&anc, &csb, cp);
            st = walk_class(t, cp, k, c, &anc);
            anc.n = 2;
            if (!st && t->n_files == before && !problem(t, "%s: class folder holds no images", cp))
                st = TNMTL_ERR_FORMAT;
            free(cp);
        }
        anc.n = 1;
        free(tp);
    }
    return st;
}

/* ------------------------------------------------------------------------ */
/* Parallel passes over the files                                            */

typedef struct if_pass {
    if_tree *t;
    int decode;                /* 0: headers, 1: pixels                        */
    int h, w, c;               /* decode: the dataset's example shape          */
    uint8_t *pixels;           /* decode: destination, or NULL to check only   */
    atomic_llong next;
    pthread_mutex_t mu;
    int64_t done;
    atomic_int fatal;          /* out of memory in a worker (a tnmtl_status)   */
} if_pass;

typedef struct if_worker {
    uint8_t *img;              /* native-size decode                           */
    size_t img_cap;
    tnmtl_resizer rs;          /* for the last native size seen                */
} if_worker;

static void set_bad(if_file *f, const char *msg)
{
    if (!f->bad) f->bad = strdup(msg);
}

static void do_file(if_pass *ps, if_worker *wk, if_file *f, int64_t index)
{
    unsigned char *data = NULL;
    size_t len = 0;
    tnmtl_error e = {0};
    tnmtl_status st = tnmtl_read_file(f->path, IF_MAX_FILE_BYTES, &data, &len, &e);
    if (!st && !ps->decode) st = tnmtl_image_probe(data, len, f->path, &f->info, &e);
    if (!st && ps->decode) {
        const int nh = f->info.height, nw = f->info.width, c = ps->c;
        size_t need = (size_t)nh * (size_t)nw * (size_t)c;
        uint8_t *dst = ps->pixels ? ps->pixels + (size_t)(index - ps->t->first) * (size_t)ps->h * ps->w * c : NULL;
        int direct = dst && nh == ps->h && nw == ps->w;
        if (!direct && need > wk->img_cap) {
            free(wk->img);
            wk->img_cap = 0;
            if (!(wk->img = malloc(need))) st = tnmtl_fail(&e, TNMTL_ERR_NOMEM, "%s: out of memory", f->path);
            else wk->img_cap = need;
        }
        if (!st) st = tnmtl_image_decode(data, len, f->path, nw, nh, c, direct ? dst : wk->img, &e);
        if (!st && dst && !direct) {
            if (wk->rs.in_h != nh || wk->rs.in_w != nw || wk->rs.out_h != ps->h || wk->rs.out_w != ps->w || wk->rs.c != c) {
                tnmtl_resizer_free(&wk->rs);
                st = tnmtl_resizer_init(&wk->rs, nh, nw, ps->h, ps->w, c, &e);
                if (st) tnmtl_error_prefix(&e, "%s", f->path);
            }
            if (!st) tnmtl_resizer_apply(&wk->rs, wk->img, dst);
        }
        if (ps->t->opt->invert && dst && !st)
            for (size_t i = 0, n = (size_t)ps->h * ps->w * c; i < n; i++) dst[i] = (uint8_t)(255 - dst[i]);
    }
    free(data);
    if (st) set_bad(f, e.msg);
    if (st == TNMTL_ERR_NOMEM) atomic_store(&ps->fatal, (int)st);
}

static void *pass_main(void *arg)
{
    if_pass *ps = arg;
    if_worker wk;
    memset(&wk, 0, sizeof wk);
    const tnmtl_imagefolder_options *o = ps->t->opt;
    const int64_t first = ps->t->first, n = ps->t->last - first, every = n / 100 > 1 ? n / 100 : 1;
    for (;;) {
        int64_t i = first + (int64_t)atomic_fetch_add(&ps->next, 1);
        if (i >= first + n) break;
        if_file *f = &ps->t->files[i];
        if (!f->bad) do_file(ps, &wk, f, i);
        if (o->progress) {
            pthread_mutex_lock(&ps->mu);
            int64_t d = ++ps->done;
            if (d % every == 0 || d == n) o->progress(o->progress_user, ps->decode ? "decoding" : "checking", d, n);
            pthread_mutex_unlock(&ps->mu);
        }
    }
    free(wk.img);
    tnmtl_resizer_free(&wk.rs);
    return NULL;
}

static void run_pass(if_pass *ps)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = ps->t->opt->threads > 0 ? ps->t->opt->threads : cpus > 0 ? (int)cpus : 1;
    if (n > IF_MAX_THREADS) n = IF_MAX_THREADS;
    const int64_t files = ps->t->last - ps->t->first;
    if (n > files) n = files > 0 ? (int)files : 1;
    atomic_init(&ps->next, 0);
    pthread_mutex_init(&ps->mu, NULL);
    ps->done = 0;
    pthread_t th[IF_MAX_THREADS];
    int started = 0;
    for (int i = 1; i < n; i++, started++)
        if (pthread_create(&th[i], NULL, pass_main, ps) != 0) break;
    pass_main(ps);
    for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&ps->mu);
}

/* Reports the files marked bad since the last call, in order.  1: go on. */
static int report_bad(if_tree *t)
{
    int go = 1;
    for (int64_t i = 0; i < t->n_files; i++)
        if (t->files[i].bad && !t->files[i].reported) {
            t->files[i].reported = 1;
            if (go) go = problem(t, "%s", t->files[i].bad);
            else t->problems++;   /* counted for the message, not reported */
        }
    return go;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */

static tnmtl_status make_dataset(if_tree *t, int h, int w, int c, tnmtl_dataset *out, tnmtl_error *err)
{
    tnmtl_status st = tnmtl_dataset_init(out, t->n_tasks, t->n_files, h, w, c, TNMTL_TARGET_CLASS, 1, err);
    if (st) return st;
    out->pixel_scale = 1.0f / 255.0f;
    out->pixel_offset = 0.0f;
    snprintf(out->source, sizeof out->source, "images:%.200s (%dx%dx%d)", t->dir, h, w, c);
    for (int k = 0; k < t->n_tasks && !st; k++) {
        out->n_classes[k] = t->n_classes[k];
        st = tnmtl_dataset_set_task_name(out, k, t->task_name[k], err);
        for (int j = 0; j < t->n_classes[k] && !st; j++)
            st = tnmtl_dataset_set_class_name(out, k, j, t->class_name[k][j], err);
    }
    int task = 0;
    for (int64_t i = 0; i < t->n_files; i++) {
        while (task < t->files[i].task) out->task_begin[++task] = i;
        out->label[i] = t->files[i].cls;
    }
    while (task < t->n_tasks) out->task_begin[++task] = t->n_files;
    return st;
}

/* With opt->inputs.select: the tasks whose images to read, chosen on the
 * names and labels the folder listing gives (a 1x1x1 stand-in shape), as
 * t->files [first, last). */
static tnmtl_status select_files(if_tree *t, tnmtl_error *err)
{
    if (!t->opt->inputs.select) return TNMTL_OK;
    tnmtl_dataset listed;
    int tb, te;
    tnmtl_status st = make_dataset(t, 1, 1, 1, &listed, err);
    if (!st) st = tnmtl_dataset_select_inputs(&listed, &t->opt->inputs, &tb, &te, err);
    tnmtl_dataset_free(&listed);
    if (st) return st;
    t->task_first = tb;
    t->task_last = te;
    for (t->first = 0; t->first < t->n_files && t->files[t->first].task < tb; t->first++) {}
    for (t->last = t->first; t->last < t->n_files && t->files[t->last].task < te; t->last++) {}
    return TNMTL_OK;
}

tnmtl_status tnmtl_imagefolder_load(const char *dir, const tnmtl_imagefolder_options *opt_in, tnmtl_dataset *out,
                                    tnmtl_error *err)
{
    tnmtl_imagefolder_options opt = {0};
    if (opt_in) opt = *opt_in;
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return tnmtl_fail(err, TNMTL_ERR_INVALID, "images: no folder given");
    if (opt.size < 0 || opt.size > 4096)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "images: size %d is out of range 1..4096", opt.size);
    if (opt.channels != 0 && opt.channels != 1 && opt.channels != 3)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "images: channels %d (1 or 3)", opt.channels);
    size_t max_bytes = opt.max_bytes ? opt.max_bytes : IF_DEFAULT_MAX_BYTES;
    tnmtl_error local;
    if (!err) err = &local;

    if_tree t;
    memset(&t, 0, sizeof t);
    t.dir = dir;
    t.opt = &opt;
    t.err = err;
    tnmtl_status st = walk(&t);
    if (!st && t.problems && !opt.bad_input) st = TNMTL_ERR_FORMAT;
    t.last = t.n_files;
    t.task_last = t.n_tasks;
    if (!st && !t.problems) st = select_files(&t, err);

    if_pass ps;
    memset(&ps, 0, sizeof ps);
    ps.t = &t;
    if (!st) {
        run_pass(&ps);   /* headers */
        if (atomic_load(&ps.fatal)) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory reading the image headers");
        else if (!report_bad(&t)) st = TNMTL_ERR_FORMAT;
    }
    /* The example shape: the size asked for, or the one every image has. */
    int h = opt.size, w = opt.size, c = opt.channels;
    const if_file *first = NULL;
    for (int64_t i = t.first; !st && i < t.last; i++) {
        if_file *f = &t.files[i];
        if (f->bad) continue;
        if (!c && f->info.colour) c = 3;
        if (!first) {
            first = f;
            if (!opt.size) h = f->info.height, w = f->info.width;
        } else if (!opt.size && (f->info.height != h || f->info.width != w)) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s is %dx%d pixels but %s is %dx%d: give a size (--size S) to resize them all",
                     f->path, f->info.width, f->info.height, first->path, w, h);
            set_bad(f, msg);
        }
    }
    if (!c) c = 1;
    if (!st && !report_bad(&t)) st = TNMTL_ERR_FORMAT;
    if (!st && !t.problems && opt.inputs.agree_shape) st = opt.inputs.agree_shape(opt.inputs.user, &h, &w, &c, err);
    if (!st && !t.problems && t.last > t.first)
        st = tnmtl_image_memory_check(dir, t.last - t.first, h, w, c, max_bytes, "give a smaller --size or fewer tasks",
                                      err);
    if (!st && !t.problems) st = make_dataset(&t, h, w, c, out, err);
    if (!st && !t.problems) st = tnmtl_dataset_keep_inputs(out, t.task_first, t.task_last, err);
    if (!st) {   /* with problems so far (bad_input set): decode to check only */
        ps.decode = 1;
        ps.h = h, ps.w = w, ps.c = c;
        ps.pixels = t.problems ? NULL : out->pixels;
        run_pass(&ps);
        if (atomic_load(&ps.fatal)) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory decoding the images");
        else report_bad(&t);
    }
    if (!st && t.problems) st = TNMTL_ERR_FORMAT;
    if (st == TNMTL_ERR_FORMAT && t.problems > 1) {
        const size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (and %d more problem%s)", t.problems - 1,
                 t.problems > 2 ? "s" : "");
    }
    tree_free(&t);
    if (st) tnmtl_dataset_free(out);
    return st;
}
