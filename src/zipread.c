/* zipread.c - checked reads of zip members with libzip. */
#include "zipread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

tnmtl_status tnmtl_zip_open(const char *path, zip_t **za, tnmtl_error *err)
{
    int code = 0;
    *za = zip_open(path, ZIP_RDONLY, &code);
    if (*za) return TNMTL_OK;
    int sys_errno = errno;
    switch (code) {
    case ZIP_ER_NOENT:
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: no such file", path);
    case ZIP_ER_NOZIP:
        return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                          "%s: not a zip archive (no end-of-central-directory record: "
                          "not a zip, or truncated)", path);
    case ZIP_ER_INCONS:
        return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                          "%s: corrupt zip archive (central directory inconsistent: truncated or damaged)",
                          path);
    case ZIP_ER_MEMORY:
        return tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory reading the zip directory", path);
    case ZIP_ER_OPEN:
    case ZIP_ER_READ:
    case ZIP_ER_SEEK:
        return tnmtl_fail(err, TNMTL_ERR_IO, "%s: cannot read: %s", path, strerror(sys_errno));
    default: {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        tnmtl_status st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: cannot open zip archive: %s", path,
                                     zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    }
}

int64_t tnmtl_zip_find(zip_t *za, const char *name)
{
    zip_int64_t i = zip_name_locate(za, name, 0);
    return i < 0 ? -1 : (int64_t)i;
}

tnmtl_status tnmtl_zip_member_open(zip_t *za, uint64_t index, const char *zip_path,
                                   uint64_t max_size, tnmtl_zip_member *m, tnmtl_error *err)
{
    memset(m, 0, sizeof *m);
    m->zip_path = zip_path;
    m->name = zip_get_name(za, index, 0);
    if (!m->name) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no member #%llu", zip_path, (unsigned long long)index);
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, index, 0, &zs) != 0 || !(zs.valid & ZIP_STAT_SIZE))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s: size unknown: %s", zip_path, m->name,
                          zip_strerror(za));
    if (zs.size > max_size)
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG,
                          "%s: member %s declares %llu bytes, more than the limit of %llu (corrupt or not "
                          "the expected file)", zip_path, m->name, (unsigned long long)zs.size,
                          (unsigned long long)max_size);
    m->size = zs.size;
    m->zf = zip_fopen_index(za, index, 0);
    if (!m->zf)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s: cannot open: %s", zip_path, m->name,
                          zip_strerror(za));
    return TNMTL_OK;
}

static tnmtl_status read_fail(tnmtl_zip_member *m, tnmtl_error *err)
{
    tnmtl_status st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s: read failed at byte %llu: %s",
                                 m->zip_path, m->name, (unsigned long long)m->pos,
                                 zip_error_strerror(zip_file_get_error(m->zf)));
    tnmtl_zip_member_close(m);
    return st;
}

tnmtl_status tnmtl_zip_member_read(tnmtl_zip_member *m, void *buf, size_t n, tnmtl_error *err)
{
    if (!m->zf) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "%s: member read after close", m->zip_path);
    if (n > m->size - m->pos)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s ends at byte %llu, %zu bytes needed at %llu",
                          m->zip_path, m->name, (unsigned long long)m->size, n, (unsigned long long)m->pos);
    unsigned char *p = buf;
    while (n > 0) {
        zip_int64_t got = zip_fread(m->zf, p, n);
        if (got < 0) return read_fail(m, err);
        if (got == 0)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                              "%s: member %s: data ends at byte %llu, before its declared size %llu",
                              m->zip_path, m->name, (unsigned long long)m->pos, (unsigned long long)m->size);
        p += got;
        n -= (size_t)got;
        m->pos += (uint64_t)got;
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_zip_member_skip(tnmtl_zip_member *m, uint64_t n, tnmtl_error *err)
{
    unsigned char sink[16384];
    while (n > 0) {
        size_t k = n < sizeof sink ? (size_t)n : sizeof sink;
        tnmtl_status st = tnmtl_zip_member_read(m, sink, k, err);
        if (st) return st;
        n -= k;
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_zip_member_finish(tnmtl_zip_member *m, tnmtl_error *err)
{
    if (!m->zf) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "%s: member finished twice", m->zip_path);
    if (m->pos != m->size) {
        tnmtl_status st = tnmtl_fail(err, TNMTL_ERR_INTERNAL, "%s: member %s: %llu of %llu bytes read",
                                     m->zip_path, m->name, (unsigned long long)m->pos,
                                     (unsigned long long)m->size);
        tnmtl_zip_member_close(m);
        return st;
    }
    /* One more read: libzip checks the CRC when it reaches the end. */
    unsigned char extra;
    zip_int64_t got = zip_fread(m->zf, &extra, 1);
    if (got < 0) return read_fail(m, err);
    if (got > 0) {
        tnmtl_status st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: member %s holds more than its declared %llu bytes",
                                     m->zip_path, m->name, (unsigned long long)m->size);
        tnmtl_zip_member_close(m);
        return st;
    }
    tnmtl_zip_member_close(m);
    return TNMTL_OK;
}

void tnmtl_zip_member_close(tnmtl_zip_member *m)
{
    if (m->zf) zip_fclose(m->zf);
    m->zf = NULL;
}

tnmtl_status tnmtl_zip_read_member(zip_t *za, uint64_t index, const char *zip_path, uint64_t max_size,
                                   unsigned char **buf, size_t *cap, size_t *len, tnmtl_error *err)
{
    *len = 0;
    if (max_size >= SIZE_MAX) max_size = SIZE_MAX - 1;
    tnmtl_zip_member m;
    tnmtl_status st = tnmtl_zip_member_open(za, index, zip_path, max_size, &m, err);
    if (st) return st;
    size_t need = (size_t)m.size + 1;
    if (!*buf || *cap < need) {
        unsigned char *p = realloc(*buf, need);
        if (!p) {
            tnmtl_zip_member_close(&m);
            return tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory for member %s (%zu bytes)", zip_path,
                              m.name, need);
        }
        *buf = p;
        *cap = need;
    }
    st = tnmtl_zip_member_read(&m, *buf, (size_t)m.size, err);
    if (!st) st = tnmtl_zip_member_finish(&m, err);
    tnmtl_zip_member_close(&m);
    if (st) return st;
    (*buf)[m.size] = 0;
    *len = (size_t)m.size;
    return TNMTL_OK;
}
