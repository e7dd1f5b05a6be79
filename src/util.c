/* util.c - checked arithmetic, allocation, whole-file reads, atomic writes. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tnmtl_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int tnmtl_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

void *tnmtl_malloc(size_t bytes, const char *what, tnmtl_error *err)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *tnmtl_calloc(size_t n, size_t size, const char *what, tnmtl_error *err)
{
    size_t bytes;
    if (!tnmtl_mul_size(n, size, &bytes)) {
        tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "size overflow allocating %zu x %zu bytes for %s", n, size, what);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

tnmtl_status tnmtl_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                             tnmtl_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: file is %lld bytes, more than the limit of %zu",
                          path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = tnmtl_malloc(n + 1, path, err);
    if (!buf) {
        fclose(f);
        return TNMTL_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return TNMTL_OK;
}

static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
    } else if (slash == path) {
        snprintf(dir, cap, "/");
    } else {
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
    }
}

/* Removes the "<base>.tmp.<pid>" files that writers killed in the middle
 * of a write left in dir (their process no longer exists), so that a run
 * killed again and again does not fill the disk with partial files.  A
 * file whose writer may still be alive is left alone. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d) return;
    const size_t bl = strlen(base);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) continue;
        char *end;
        errno = 0;
        const long pid = strtol(name + bl + 5, &end, 10);
        if (*end || errno || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        unlinkat(dirfd(d), name, 0);
    }
    closedir(d);
}

tnmtl_status tnmtl_write_file_atomic(const char *path, tnmtl_write_fn fn, void *user,
                                     tnmtl_error *err)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = fn(f, user);
    if (rc == 0 && fflush(f) != 0) rc = -1;
    if (rc == 0 && fsync(fileno(f)) != 0) rc = -1;
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: write failed: %s", path, saved ? strerror(saved) : "writer error");
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot rename into place: %s", path, strerror(saved));
    }
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    remove_stale_temps(dir, slash ? slash + 1 : path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return TNMTL_OK;
}

struct buffer_writer { const void *data; size_t len; };

static int write_buffer(FILE *f, void *user)
{
    struct buffer_writer *b = user;
    return fwrite(b->data, 1, b->len, f) == b->len ? 0 : -1;
}

tnmtl_status tnmtl_write_buffer_atomic(const char *path, const void *data, size_t len,
                                       tnmtl_error *err)
{
    struct buffer_writer b = {data, len};
    return tnmtl_write_file_atomic(path, write_buffer, &b, err);
}

tnmtl_status tnmtl_mkdir_p(const char *path, tnmtl_error *err)
{
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: path too long", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: not a directory", path);
    return TNMTL_OK;
}

int64_t tnmtl_first_nonfinite_f32(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

int64_t tnmtl_first_nonfinite_f64(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

double tnmtl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
