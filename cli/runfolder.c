/* runfolder.c - locking, identity and replacement of run folders
 * (runfolder.h; the rules: docs/robustness.md, "Run folders"). */
#include "runfolder.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "tnmtl/checkpoint.h"
#include "tnmtl/safetensors.h"
#include "util.h"

#define LOCK_FILE ".lock"
#define MARKER_FILE ".replacing"
#define MANIFEST_FORMAT "tnmtl-run-folder"
#define MAX_JSON_BYTES ((size_t)1 << 24)
#define PATH_CAP (4096 + 512) /* a folder and a file name */

static void join(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static int is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int has_suffix(const char *s, const char *suffix)
{
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The files a training run writes beside its checkpoint (sharing report,
 * results) and the tables of a comparison. */
static int is_report_name(const char *name)
{
    return !strcmp(name, "results.json") || !strcmp(name, "sharing.json") || !strcmp(name, "history.csv") ||
           ((!strncmp(name, "similarity", 10) || !strncmp(name, "relatedness", 11)) && has_suffix(name, ".csv"));
}

static int is_table_name(const char *name)
{
    return !strcmp(name, "table.md") || !strcmp(name, "table.csv");
}

static void new_run_id(char *out)
{
    unsigned char r[RUNFOLDER_ID_LEN / 2];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* no entropy source: time, pid, address */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40) ^ (uintptr_t)out;
        for (size_t i = 0; i < sizeof r; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            r[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof r; i++) snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static void format_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

static time_t mtime_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_mtime : 0;
}

/* ---- JSON files ----------------------------------------------------------- */

static cJSON *read_json(const char *path)
{
    unsigned char *text = NULL;
    size_t len;
    if (tnmtl_read_file(path, MAX_JSON_BYTES, &text, &len, NULL) != TNMTL_OK) return NULL;
    cJSON *j = cJSON_Parse((const char *)text);
    free(text);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

static const char *json_string(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static tnmtl_status write_json(const char *path, const cJSON *j, tnmtl_error *err)
{
    char *text = cJSON_Print(j);
    if (!text) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory writing %s", path);
    tnmtl_status st = tnmtl_write_buffer_atomic(path, text, strlen(text), err);
    free(text);
    return st;
}

/* ---- what a checkpoint says about its run ----------------------------------- */

typedef struct checkpoint_info {
    int present;                 /* a regular file                 */
    int readable;                /* a tnmtl checkpoint we could read */
    long long step, steps;
    char method[32];
    char run_id[64];
    char signature[4096];
    time_t mtime;
} checkpoint_info;

static void read_checkpoint_info(const char *dir, checkpoint_info *ci)
{
    char path[PATH_CAP];
    join(path, sizeof path, dir, TNMTL_CHECKPOINT_FILE);
    memset(ci, 0, sizeof *ci);
    if (!(ci->present = is_regular(path))) return;
    ci->mtime = mtime_of(path);
    tnmtl_st_file *f;
    tnmtl_error e;
    if (tnmtl_st_load(path, TNMTL_ST_MAX_BYTES, &f, &e) != TNMTL_OK) return;
    const char *format = tnmtl_st_meta_get(f, "format"), *step = tnmtl_st_meta_get(f, "step");
    const char *config = tnmtl_st_meta_get(f, "config"), *sig = tnmtl_st_meta_get(f, "signature");
    cJSON *c = config ? cJSON_Parse(config) : NULL;
    if (format && !strcmp(format, TNMTL_CHECKPOINT_FORMAT) && step && c) {
        ci->readable = 1;
        ci->step = atoll(step);
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(c, "steps");
        ci->steps = cJSON_IsNumber(steps) ? (long long)steps->valuedouble : -1;
        const char *method = json_string(c, "method"), *id = json_string(c, "run_id");
        snprintf(ci->method, sizeof ci->method, "%s", method ? method : "?");
        snprintf(ci->run_id, sizeof ci->run_id, "%s", id ? id : "");
        snprintf(ci->signature, sizeof ci->signature, "%s", sig ? sig : "");
    }
    cJSON_Delete(c);
    tnmtl_st_free(f);
}

/* ---- describing what a folder holds ----------------------------------------- */

static const char *kind_noun(const char *kind)
{
    return !strcmp(kind, "compare") ? "comparison" : kind;
}

/* First file of dir for which pred holds (name into out[cap]), 0 if none. */
static int find_file(const char *dir, int (*pred)(const char *), char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d)))
        if (pred(de->d_name)) {
            snprintf(out, cap, "%s", de->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

/* 0 nothing, 1 a run, 2 a table folder. */
static int describe(const char *dir, char *desc, size_t cap)
{
    char path[PATH_CAP], when[64], name[256];
    checkpoint_info ci;
    read_checkpoint_info(dir, &ci);
    join(path, sizeof path, dir, RUNFOLDER_MANIFEST);
    cJSON *m = read_json(path);
    const char *kind = m ? json_string(m, "kind") : NULL;
    int what = 0;
    if (kind && strcmp(kind, "run")) {
        join(path, sizeof path, dir, "table.md");
        format_time(mtime_of(path) ? mtime_of(path) : mtime_of(dir), when, sizeof when);
        snprintf(desc, cap, "a %s (%s, %s)", kind_noun(kind), RUNFOLDER_MANIFEST, when);
        what = 2;
    } else if (ci.readable) {
        format_time(ci.mtime, when, sizeof when);
        snprintf(desc, cap, "%s %s run (step %lld of %lld, last checkpoint %s)",
                 ci.step >= ci.steps ? "a finished" : "an unfinished", ci.method, ci.step, ci.steps, when);
        what = 1;
    } else if (ci.present) {
        format_time(ci.mtime, when, sizeof when);
        snprintf(desc, cap, "a checkpoint that cannot be read (%s, %s)", TNMTL_CHECKPOINT_FILE, when);
        what = 1;
    } else if (m || find_file(dir, is_report_name, name, sizeof name)) {
        if (m) snprintf(name, sizeof name, "%s", RUNFOLDER_MANIFEST);
        join(path, sizeof path, dir, "results.json");
        cJSON *r = read_json(path);
        const char *method = r ? json_string(r, "method") : NULL;
        const cJSON *steps = r ? cJSON_GetObjectItemCaseSensitive(r, "steps") : NULL;
        join(path, sizeof path, dir, r ? "results.json" : name);
        format_time(mtime_of(path), when, sizeof when);
        if (method && cJSON_IsNumber(steps))
            snprintf(desc, cap, "the results of a %s run (%.0f steps, results.json of %s)", method, steps->valuedouble,
                     when);
        else
            snprintf(desc, cap, "files of a run (%s, %s)", r ? "results.json" : name, when);
        cJSON_Delete(r);
        what = 1;
    } else if (find_file(dir, is_table_name, name, sizeof name)) {
        join(path, sizeof path, dir, name);
        format_time(mtime_of(path), when, sizeof when);
        snprintf(desc, cap, "a comparison (%s, %s)", name, when);
        what = 2;
    }
    cJSON_Delete(m);
    return what;
}

int runfolder_describe(const char *dir, char *desc, size_t cap)
{
    return describe(dir, desc, cap) != 0;
}

/* ---- the lock ---------------------------------------------------------------- */

static long read_pid(int fd)
{
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* Takes DIR/.lock.  A lock file unlinked by its releasing holder between our
 * open and our flock is stale: open again. */
static tnmtl_status take_lock(runfolder *rf, tnmtl_error *err)
{
    char path[PATH_CAP];
    join(path, sizeof path, rf->dir, LOCK_FILE);
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == ENOENT && attempt < 99) { /* the folder went with its last holder */
                if (tnmtl_mkdir_p(rf->dir, err)) return err->status;
                continue;
            }
            return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot open the lock file: %s", path, strerror(errno));
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int e = errno;
            long pid = read_pid(fd);
            for (int k = 0; k < 200 && !pid && e == EWOULDBLOCK; k++) { /* the holder writes it just after locking */
                usleep(1000);
                pid = read_pid(fd);
            }
            close(fd);
            if (e == EWOULDBLOCK) {
                if (pid > 0)
                    return tnmtl_fail(err, TNMTL_ERR_INVALID,
                                      "%s is being written by another tnmtl process (pid %ld); wait for it to end, "
                                      "or choose another folder", rf->dir, pid);
                return tnmtl_fail(err, TNMTL_ERR_INVALID,
                                  "%s is being written by another tnmtl process (%s is locked); wait for it to end, "
                                  "or choose another folder", rf->dir, path);
            }
            return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        }
        struct stat held, now;
        if (fstat(fd, &held) != 0 || stat(path, &now) != 0 || held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
            close(fd); /* released and unlinked meanwhile */
            continue;
        }
        char pid[32];
        const int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
            const int e = errno;
            unlink(path);
            close(fd);
            return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(e));
        }
        rf->lock_fd = fd;
        return TNMTL_OK;
    }
    return tnmtl_fail(err, TNMTL_ERR_IO, "%s: the lock file keeps changing", path);
}

/* The pid of another live process holding dir's lock, 0 if none (readers:
 * this does not take the lock). */
static long lock_holder(const char *dir)
{
    char path[PATH_CAP];
    join(path, sizeof path, dir, LOCK_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const long pid = read_pid(fd);
    close(fd);
    return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM) ? pid : 0;
}

void runfolder_release(runfolder *rf)
{
    if (rf->lock_fd >= 0) {
        char path[PATH_CAP];
        join(path, sizeof path, rf->dir, LOCK_FILE);
        unlink(path); /* while still held: a waiter that opened it sees it gone and opens anew */
        close(rf->lock_fd);
        rf->lock_fd = -1;
    }
    if (rf->created) rmdir(rf->dir); /* only if nothing was written */
    free(rf->config);
    rf->config = NULL;
}

/* ---- the manifest -------------------------------------------------------------- */

static cJSON *load_manifest(const char *dir)
{
    char path[PATH_CAP];
    join(path, sizeof path, dir, RUNFOLDER_MANIFEST);
    return read_json(path);
}

static tnmtl_status save_manifest(const char *dir, const cJSON *m, tnmtl_error *err)
{
    char path[PATH_CAP];
    join(path, sizeof path, dir, RUNFOLDER_MANIFEST);
    return write_json(path, m, err);
}

/* This run's manifest: the one in rf->dir if it is this run's, else a new one. */
static cJSON *own_manifest(const runfolder *rf, const char *signature)
{
    cJSON *m = load_manifest(rf->dir);
    const char *id = m ? json_string(m, "run_id") : NULL;
    if (id && !strcmp(id, rf->run_id)) return m;
    cJSON_Delete(m);
    m = cJSON_CreateObject();
    char now[64];
    format_time(time(NULL), now, sizeof now);
    cJSON_AddStringToObject(m, "format", MANIFEST_FORMAT);
    cJSON_AddNumberToObject(m, "version", 1);
    cJSON_AddStringToObject(m, "kind", rf->kind);
    cJSON_AddStringToObject(m, "run_id", rf->run_id);
    if (signature) cJSON_AddStringToObject(m, "signature", signature);
    if (rf->config) cJSON_AddStringToObject(m, "config", rf->config);
    cJSON_AddStringToObject(m, "created", now);
    cJSON_AddArrayToObject(m, "files");
    cJSON_AddArrayToObject(m, "writing");
    return m;
}

static int crc_of_file(const char *path, long long *size, unsigned long *crc)
{
    unsigned char *data = NULL;
    size_t len;
    if (tnmtl_read_file(path, (size_t)1 << 32, &data, &len, NULL) != TNMTL_OK) return -1;
    *size = (long long)len;
    *crc = crc32(0L, data, (uInt)0);
    for (size_t off = 0; off < len;) { /* uInt chunks */
        const size_t k = len - off > (1u << 30) ? (1u << 30) : len - off;
        *crc = crc32(*crc, data + off, (uInt)k);
        off += k;
    }
    free(data);
    return 0;
}

/* The entry of files[] (array of {name, size, crc32}) named name, or NULL. */
static cJSON *file_entry(const cJSON *files, const char *name)
{
    cJSON *e;
    cJSON_ArrayForEach(e, files)
    {
        const char *n = json_string(e, "name");
        if (n && !strcmp(n, name)) return e;
    }
    return NULL;
}

static int in_list(const cJSON *list, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list) if (cJSON_IsString(e) && !strcmp(e->valuestring, name)) return 1;
    return 0;
}

tnmtl_status runfolder_files_begin(runfolder *rf, char *const *names, int n, tnmtl_error *err)
{
    if (!rf->run_id[0]) return TNMTL_OK;
    cJSON *m = own_manifest(rf, NULL);
    /* Added to the files being written: one a killed writer left there (a
     * history newer than the manifest's record) stays marked until it is
     * written again, whatever else is written meanwhile. */
    cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "writing");
    if (!cJSON_IsArray(w)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "writing");
        w = cJSON_AddArrayToObject(m, "writing");
    }
    for (int i = 0; i < n; i++)
        if (!in_list(w, names[i])) cJSON_AddItemToArray(w, cJSON_CreateString(names[i]));
    if (rf->config) cJSON_ReplaceItemInObjectCaseSensitive(m, "config", cJSON_CreateString(rf->config));
    tnmtl_status st = save_manifest(rf->dir, m, err);
    cJSON_Delete(m);
    return st;
}

tnmtl_status runfolder_files_end(runfolder *rf, char *const *names, int n, tnmtl_error *err)
{
    if (!rf->run_id[0]) return TNMTL_OK;
    cJSON *m = own_manifest(rf, NULL);
    cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    if (!cJSON_IsArray(files)) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "files");
        files = cJSON_AddArrayToObject(m, "files");
    }
    tnmtl_status st = TNMTL_OK;
    for (int i = 0; i < n && !st; i++) {
        char path[PATH_CAP], crc_hex[16];
        long long size;
        unsigned long crc;
        join(path, sizeof path, rf->dir, names[i]);
        if (crc_of_file(path, &size, &crc)) {
            st = tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot read it back for %s", path, RUNFOLDER_MANIFEST);
            break;
        }
        snprintf(crc_hex, sizeof crc_hex, "%08lx", crc);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", names[i]);
        cJSON_AddNumberToObject(e, "size", (double)size);
        cJSON_AddStringToObject(e, "crc32", crc_hex);
        int at = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, files)
        {
            const char *nm = json_string(x, "name");
            if (nm && !strcmp(nm, names[i])) break;
            at++;
        }
        if (at < cJSON_GetArraySize(files)) cJSON_ReplaceItemInArray(files, at, e);
        else cJSON_AddItemToArray(files, e);
    }
    cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "writing"), *next = cJSON_CreateArray(), *x;
    cJSON_ArrayForEach(x, w) /* these are written now; the others stay marked */
    {
        int done = 0;
        for (int i = 0; i < n; i++) done |= cJSON_IsString(x) && !strcmp(x->valuestring, names[i]);
        if (!done && cJSON_IsString(x)) cJSON_AddItemToArray(next, cJSON_CreateString(x->valuestring));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(m, "writing", next);
    if (!st) st = save_manifest(rf->dir, m, err);
    cJSON_Delete(m);
    return st;
}

/* ---- replacement ----------------------------------------------------------------- */

/* Removes an earlier run's files other than the checkpoint (which the new
 * one's has replaced): its manifest and its report files. */
static void remove_earlier_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[PATH_CAP];
    while ((de = readdir(d)))
        if (is_report_name(de->d_name) || !strcmp(de->d_name, RUNFOLDER_MANIFEST)) {
            join(path, sizeof path, dir, de->d_name);
            unlink(path);
        }
    closedir(d);
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void read_marker(const char *dir, char *id, size_t cap)
{
    char path[PATH_CAP];
    join(path, sizeof path, dir, MARKER_FILE);
    unsigned char *text = NULL;
    size_t len;
    id[0] = '\0';
    if (tnmtl_read_file(path, 256, &text, &len, NULL) != TNMTL_OK) return;
    snprintf(id, cap, "%s", (const char *)text);
    id[strcspn(id, "\r\n")] = '\0';
    free(text);
}

/* The switch to the new run: its checkpoint is in place (it carries the
 * marker's id); the earlier run's other files go, the new manifest is
 * written, the marker removed. */
static tnmtl_status finish_switch(runfolder *rf, const char *signature, tnmtl_error *err)
{
    remove_earlier_files(rf->dir);
    cJSON *m = own_manifest(rf, signature);
    tnmtl_status st = save_manifest(rf->dir, m, err);
    cJSON_Delete(m);
    if (st) return st;
    char path[PATH_CAP];
    join(path, sizeof path, rf->dir, MARKER_FILE);
    unlink(path);
    sync_dir(rf->dir);
    rf->replacing = 0;
    return TNMTL_OK;
}

/* A replacement a killed writer left: finished if the new run's checkpoint
 * is in place, undone (the earlier run is intact) if not. */
static tnmtl_status recover(runfolder *rf, tnmtl_error *err)
{
    char marker[64], path[PATH_CAP];
    read_marker(rf->dir, marker, sizeof marker);
    join(path, sizeof path, rf->dir, MARKER_FILE);
    if (!marker[0]) {
        unlink(path);
        return TNMTL_OK;
    }
    checkpoint_info ci;
    read_checkpoint_info(rf->dir, &ci);
    if (ci.readable && !strcmp(ci.run_id, marker)) {
        runfolder tmp = *rf;
        snprintf(tmp.run_id, sizeof tmp.run_id, "%.*s", (int)sizeof tmp.run_id - 1, marker);
        tmp.config = NULL;
        return finish_switch(&tmp, ci.signature, err);
    }
    unlink(path);
    sync_dir(rf->dir);
    return TNMTL_OK;
}

tnmtl_status runfolder_checkpoint_begin(runfolder *rf, tnmtl_error *err)
{
    if (!rf->replacing) return TNMTL_OK;
    char path[PATH_CAP];
    join(path, sizeof path, rf->dir, MARKER_FILE);
    char line[RUNFOLDER_ID_LEN + 8];
    const int n = snprintf(line, sizeof line, "%s\n", rf->run_id);
    return tnmtl_write_buffer_atomic(path, line, (size_t)n, err);
}

tnmtl_status runfolder_checkpoint_end(runfolder *rf, const char *signature, tnmtl_error *err)
{
    rf->created = 0; /* the folder holds a run now */
    if (!rf->run_id[0]) return TNMTL_OK;
    if (rf->replacing) return finish_switch(rf, signature, err);
    cJSON *m = load_manifest(rf->dir);
    const char *id = m ? json_string(m, "run_id") : NULL;
    const int mine = id && !strcmp(id, rf->run_id);
    /* the manifest may have been made by files written before the first
     * checkpoint (history.csv): it gains the signature now */
    const int complete = mine && (!signature || json_string(m, "signature"));
    if (complete) {
        cJSON_Delete(m);
        return TNMTL_OK;
    }
    if (!mine) {
        cJSON_Delete(m);
        m = own_manifest(rf, signature);
    } else {
        cJSON_AddStringToObject(m, "signature", signature);
    }
    tnmtl_status st = save_manifest(rf->dir, m, err);
    cJSON_Delete(m);
    return st;
}

/* ---- claiming ---------------------------------------------------------------------- */

void runfolder_fresh(runfolder *rf, int replace)
{
    char desc[512];
    new_run_id(rf->run_id);
    rf->replacing = replace && describe(rf->dir, desc, sizeof desc) != 0;
}

void runfolder_adopt(runfolder *rf, const char *run_id)
{
    snprintf(rf->run_id, sizeof rf->run_id, "%s", run_id ? run_id : "");
    rf->replacing = 0;
}

/* A table folder (kind != "run"): the same config continues it. */
static tnmtl_status claim_table(runfolder *rf, runfolder_mode mode, int what, const char *desc, tnmtl_error *err)
{
    if (what == 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds %s; a %s needs a folder of its own: choose another one",
                          rf->dir, desc, kind_noun(rf->kind));
    cJSON *m = what == 2 ? load_manifest(rf->dir) : NULL;
    const char *kind = m ? json_string(m, "kind") : NULL, *config = m ? json_string(m, "config") : NULL;
    const char *id = m ? json_string(m, "run_id") : NULL;
    const int same = kind && !strcmp(kind, rf->kind) && config && rf->config && !strcmp(config, rf->config) && id;
    tnmtl_status st = TNMTL_OK;
    if (what == 2 && mode == RUNFOLDER_NEW)
        st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s already holds %s; choose another folder", rf->dir, desc);
    else if (what == 2 && m && !same && mode != RUNFOLDER_OVERWRITE)
        st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                        "%s holds %s made with other options; choose another folder, or replace it with --overwrite "
                        "(its runs made with the same options are kept and reused)", rf->dir, desc);
    else if (same)
        runfolder_adopt(rf, id);
    else
        runfolder_fresh(rf, 0); /* an older table folder without a manifest is continued under a new id */
    cJSON_Delete(m);
    return st;
}

/* A run killed before its first checkpoint was complete: the history written
 * just before that checkpoint made a manifest, which gains the model's
 * signature only when the checkpoint is saved; there is no checkpoint and no
 * results.  Nothing of it can be resumed, so nothing is lost by starting
 * again. */
static int unsaved_start(const char *dir)
{
    checkpoint_info ci;
    read_checkpoint_info(dir, &ci);
    char path[PATH_CAP];
    join(path, sizeof path, dir, "results.json");
    struct stat sb;
    if (ci.present || stat(path, &sb) == 0) return 0;
    cJSON *m = load_manifest(dir);
    const char *kind = m ? json_string(m, "kind") : NULL;
    const int yes = kind && !strcmp(kind, "run") && json_string(m, "run_id") && !json_string(m, "signature");
    cJSON_Delete(m);
    return yes;
}

/* Removes an unsaved start: the files its manifest lists or was writing, then
 * the manifest (temp files of the killed writes go with the next write). */
static void drop_unsaved_start(const char *dir)
{
    cJSON *m = load_manifest(dir);
    char path[PATH_CAP];
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "files"))
    {
        const char *name = json_string(e, "name");
        if (!name || !is_report_name(name)) continue;
        join(path, sizeof path, dir, name);
        unlink(path);
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "writing"))
    {
        if (!cJSON_IsString(e) || !is_report_name(e->valuestring)) continue;
        join(path, sizeof path, dir, e->valuestring);
        unlink(path);
    }
    cJSON_Delete(m);
    join(path, sizeof path, dir, RUNFOLDER_MANIFEST);
    unlink(path);
    sync_dir(dir);
}

tnmtl_status runfolder_claim(runfolder *rf, const char *dir, const char *kind, runfolder_mode mode, const char *config,
                             tnmtl_error *err)
{
    memset(rf, 0, sizeof *rf);
    rf->lock_fd = -1;
    if ((size_t)snprintf(rf->dir, sizeof rf->dir, "%s", dir) >= sizeof rf->dir - 64)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: path too long", dir);
    snprintf(rf->kind, sizeof rf->kind, "%s", kind);
    const int is_run = !strcmp(kind, "run");
    struct stat sb;
    const int existed = stat(dir, &sb) == 0;
    tnmtl_status st;
    if (!is_run || mode != RUNFOLDER_RESUME) {
        if ((st = tnmtl_mkdir_p(dir, err))) return st;
        rf->created = !existed;
    } else if (!existed || !S_ISDIR(sb.st_mode)) {
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s/%s: cannot open: %s", dir, TNMTL_CHECKPOINT_FILE,
                          existed ? "not a folder" : strerror(ENOENT));
    }
    if (config && !(rf->config = strdup(config))) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    if ((st = take_lock(rf, err)) || (st = recover(rf, err))) {
        runfolder_release(rf);
        return st;
    }
    if (is_run && unsaved_start(dir)) {
        if (mode == RUNFOLDER_RESUME) {
            runfolder_release(rf);
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds a run killed before its first checkpoint: nothing of "
                              "it was saved to resume; start it again with its command, without --resume", dir);
        }
        drop_unsaved_start(dir);
    }
    char desc[1024];
    const int what = describe(dir, desc, sizeof desc);
    if (!is_run) st = claim_table(rf, mode, what, desc, err);
    else if (mode == RUNFOLDER_RESUME) st = TNMTL_OK; /* the caller adopts the run's identity */
    else if (what == 2)
        st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s holds %s, not a run; choose another folder", dir, desc);
    else if (what == 1 && mode == RUNFOLDER_NEW)
        st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                        "%s already holds %s; continue it with --resume %s, choose another folder, or replace it "
                        "with --overwrite (the earlier run is kept until the new one's first checkpoint)",
                        dir, desc, dir);
    else runfolder_fresh(rf, 1);
    if (st) runfolder_release(rf);
    return st;
}

/* ---- verifying -------------------------------------------------------------------------- */

static tnmtl_status verify_once(const char *dir, const char *run_id, const char *signature, tnmtl_error *err)
{
    char marker[64], path[PATH_CAP];
    read_marker(dir, marker, sizeof marker);
    if (marker[0] && !strcmp(marker, run_id))
        return tnmtl_fail(err, TNMTL_ERR_INVALID,
                          "%s: an --overwrite switching this folder to run %s stopped before removing the earlier "
                          "run's files; 'tnmtl train --resume %s' completes it", dir, run_id, dir);
    cJSON *m = load_manifest(dir);
    const char *mid = m ? json_string(m, "run_id") : NULL, *msig = m ? json_string(m, "signature") : NULL;
    tnmtl_status st = TNMTL_OK;
    if (m && (!mid || strcmp(mid, run_id)))
        st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                        "%s/%s (run %s) and %s/%s (run %s) are of two different runs: one of them does not belong "
                        "there", dir, TNMTL_CHECKPOINT_FILE, run_id, dir, RUNFOLDER_MANIFEST, mid ? mid : "(none)");
    else if (m && signature && msig && strcmp(msig, signature))
        st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                        "%s/%s does not belong to the run in %s/%s: it records another model (%s, not %s)", dir,
                        RUNFOLDER_MANIFEST, dir, TNMTL_CHECKPOINT_FILE, msig, signature);
    const cJSON *files = m ? cJSON_GetObjectItemCaseSensitive(m, "files") : NULL;
    const cJSON *writing = m ? cJSON_GetObjectItemCaseSensitive(m, "writing") : NULL;
    DIR *d = st ? NULL : opendir(dir);
    struct dirent *de;
    while (d && !st && (de = readdir(d))) {
        if (!is_report_name(de->d_name)) continue;
        join(path, sizeof path, dir, de->d_name);
        if (!strcmp(de->d_name, "results.json")) { /* carries its run's id itself */
            cJSON *r = read_json(path);
            const char *rid = r ? json_string(r, "run_id") : NULL;
            if (!rid || strcmp(rid, run_id))
                st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s does not belong to the run in %s/%s (run %s): %s%s; "
                                "the folder mixes two runs", path, dir, TNMTL_CHECKPOINT_FILE, run_id,
                                rid ? "it is from run " : "it carries no run id", rid ? rid : "");
            cJSON_Delete(r);
            if (st) break;
        }
        if (in_list(writing, de->d_name)) continue; /* being written by this run (or was, when it was killed) */
        const cJSON *e = file_entry(files, de->d_name);
        long long size;
        unsigned long crc;
        char crc_hex[16];
        if (!e) {
            st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s does not belong to the run in %s/%s (run %s): %s does not "
                            "record it; the folder mixes two runs", path, dir, TNMTL_CHECKPOINT_FILE, run_id,
                            m ? RUNFOLDER_MANIFEST : "no " RUNFOLDER_MANIFEST);
        } else if (crc_of_file(path, &size, &crc) == 0) {
            const cJSON *es = cJSON_GetObjectItemCaseSensitive(e, "size");
            const char *ec = json_string(e, "crc32");
            snprintf(crc_hex, sizeof crc_hex, "%08lx", crc);
            if (!cJSON_IsNumber(es) || (long long)es->valuedouble != size || !ec || strcmp(ec, crc_hex))
                st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s does not belong to the run in %s/%s (run %s): it differs "
                                "from the file the run wrote (%s records %.0f bytes, CRC-32 %s; it has %lld bytes, %s)",
                                path, dir, TNMTL_CHECKPOINT_FILE, run_id, RUNFOLDER_MANIFEST,
                                cJSON_IsNumber(es) ? es->valuedouble : -1.0, ec ? ec : "?", size, crc_hex);
        }
    }
    if (d) closedir(d);
    cJSON_Delete(m);
    return st;
}

tnmtl_status runfolder_verify(const char *dir, const char *run_id, const char *signature, int with_checkpoint,
                              tnmtl_error *err)
{
    char id[64];
    snprintf(id, sizeof id, "%s", run_id ? run_id : "");
    for (int attempt = 0;; attempt++) {
        tnmtl_status st = TNMTL_OK;
        if (with_checkpoint || !run_id) {
            checkpoint_info ci;
            read_checkpoint_info(dir, &ci);
            if (!run_id) { /* the folder's own: its checkpoint's, else its manifest's, else its results' */
                char path[PATH_CAP];
                join(path, sizeof path, dir, ci.readable ? TNMTL_CHECKPOINT_FILE : RUNFOLDER_MANIFEST);
                cJSON *j = ci.readable ? NULL : read_json(path);
                if (!ci.readable && !j) {
                    join(path, sizeof path, dir, "results.json");
                    j = read_json(path);
                }
                const char *found = ci.readable ? ci.run_id : j ? json_string(j, "run_id") : NULL;
                snprintf(id, sizeof id, "%s", found ? found : "");
                cJSON_Delete(j);
            }
            if (ci.readable && strcmp(ci.run_id, id))
                st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                                "%s/%s does not belong to the run in %s (run %s): it is from run %s; the folder mixes "
                                "two runs", dir, TNMTL_CHECKPOINT_FILE, dir, id[0] ? id : "(none)",
                                ci.run_id[0] ? ci.run_id : "(none)");
        }
        if (!st && !id[0]) { /* an older run without identity: nothing to check, unless a newer run's files are there */
            static const char *const carriers[] = {RUNFOLDER_MANIFEST, "results.json"};
            for (int k = 0; k < 2 && !st; k++) {
                char path[PATH_CAP];
                join(path, sizeof path, dir, carriers[k]);
                cJSON *j = read_json(path);
                const char *other = j ? json_string(j, "run_id") : NULL;
                if (other)
                    st = tnmtl_fail(err, TNMTL_ERR_INVALID, "%s does not belong to the run in %s/%s: it is from run "
                                    "%s, the checkpoint carries no run id; the folder mixes two runs", path, dir,
                                    TNMTL_CHECKPOINT_FILE, other);
                cJSON_Delete(j);
            }
            return st;
        }
        if (!st) st = verify_once(dir, id, signature, err);
        /* A writer between two of its atomic renames: wait for it. */
        if (!st || attempt >= 100 || !lock_holder(dir)) return st;
        usleep(50000);
    }
}
