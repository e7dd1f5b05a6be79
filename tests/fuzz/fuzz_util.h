/* fuzz_util.h - helpers shared by the libFuzzer harnesses (tests/fuzz/).
 *
 * Loaders that only take a path get the fuzzer's bytes through a file in a
 * private folder under /dev/shm (memory, so a run does not wear the disk);
 * the folder is made once per process and removed at exit. */
#ifndef TNMTL_FUZZ_UTIL_H
#define TNMTL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tnmtl/error.h"

static char fz_dir[64];

static inline void fz_cleanup(void)
{
    char cmd[128];
    if (!fz_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fz_dir);
}

/* The private folder (created on first use). */
static inline const char *fz_tmpdir(void)
{
    if (!fz_dir[0]) {
        snprintf(fz_dir, sizeof fz_dir, "/dev/shm/tnmtl-fuzz-XXXXXX");
        if (!mkdtemp(fz_dir)) {
            snprintf(fz_dir, sizeof fz_dir, "/tmp/tnmtl-fuzz-XXXXXX");
            if (!mkdtemp(fz_dir)) abort();
        }
        atexit(fz_cleanup);
        tnmtl_set_log(NULL, NULL); /* warnings would flood the fuzzer's output */
    }
    return fz_dir;
}

/* Writes data[len] to <folder>/name; returns the path (static buffer). */
static inline const char *fz_write(const char *name, const void *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    if (fclose(f) != 0) abort();
    return path;
}

/* An error message must be a NUL-terminated, non-empty string after a
 * failure: checks the library's contract on every failing input. */
static inline void fz_check_error(tnmtl_status st, const tnmtl_error *err)
{
    if (st == TNMTL_OK) return;
    if (err->status != st || memchr(err->msg, '\0', sizeof err->msg) == NULL || err->msg[0] == '\0') {
        fprintf(stderr, "fuzz: status %d with a bad error message\n", (int)st);
        abort();
    }
}

/* Structure-aware modes: the harness writes the archive itself (with
 * correct CRCs) from members the fuzzer mutates, so that mutations reach
 * the members' contents, which CRCs and deflate would otherwise guard. */
#endif /* TNMTL_FUZZ_UTIL_H */

#if defined(FZ_WANT_ZIP) && !defined(TNMTL_FUZZ_UTIL_ZIP)
#define TNMTL_FUZZ_UTIL_ZIP
#include <zip.h>
#include <zlib.h>

#include "tnmtl/omniglot.h"

/* Loads Omniglot from path with the options of mode (bits 0-1 image size
 * 105/28/7/1, bit 2 the alphabet list `list`, bit 3 the first alphabet
 * only); an accepted load must give a valid dataset. */
static inline void fz_omniglot_load(const char *path, unsigned mode, const char *list)
{
    static const int sizes[4] = {0, 28, 7, 1};
    tnmtl_omniglot_options opt = {0};
    opt.size = sizes[mode & 3];
    if (mode & 4) opt.alphabets = list;
    else if (mode & 8) opt.first_alphabets = 1;
    opt.max_bytes = 64u << 20;
    tnmtl_dataset ds;
    tnmtl_error err = {0};
    tnmtl_status st = tnmtl_omniglot_load(path, &opt, &ds, &err);
    fz_check_error(st, &err);
    if (st == TNMTL_OK && tnmtl_dataset_validate(&ds, &err) != TNMTL_OK) abort();
    tnmtl_dataset_free(&ds);
}

/* Writes a zip of members name[i] / data[i][len[i]] (stored when store). */
static inline void fz_zip_write(const char *path, const char *const *name, const uint8_t *const *data,
                                const size_t *len, int n, int store)
{
    int code;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!za) abort();
    for (int i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(za, data[i], len[i], 0);
        if (!src) abort();
        zip_int64_t idx = zip_file_add(za, name[i], src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_RAW);
        if (idx < 0) {
            zip_source_free(src);
            continue;   /* a name libzip refuses (e.g. empty) */
        }
        if (store) zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
        else zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_DEFLATE, 1);
    }
    if (zip_close(za) != 0) zip_discard(za);
}

/* Recomputes the CRC of every chunk of a PNG in place (if it is one), so
 * that mutated headers reach the decoder instead of its CRC check. */
static inline void fz_png_fix_crcs(uint8_t *p, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(p, sig, 8)) return;
    for (size_t at = 8; at + 12 <= len;) {
        const uint32_t n = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
        if (n > len - at - 12) return;
        const uint32_t crc = (uint32_t)crc32(0, p + at + 4, (uInt)n + 4);
        p[at + 8 + n] = (uint8_t)(crc >> 24), p[at + 9 + n] = (uint8_t)(crc >> 16);
        p[at + 10 + n] = (uint8_t)(crc >> 8), p[at + 11 + n] = (uint8_t)crc;
        at += 12 + n;
    }
}

/* Structured input: members, each "NAME\n", 2 bytes (little-endian) =
 * length N, N bytes (at most 32 members), zipped into path (stored when
 * store, else deflated); fix_png: PNG chunk CRCs are recomputed first. */
static inline void fz_zip_members(const uint8_t *p, size_t n, const char *path, int store, int fix_png)
{
    enum { MAX_MEMBERS = 32 };
    char *names[MAX_MEMBERS];
    uint8_t *data[MAX_MEMBERS];
    size_t lens[MAX_MEMBERS];
    int k = 0;
    while (n > 0 && k < MAX_MEMBERS) {
        const uint8_t *nl = memchr(p, '\n', n);
        if (!nl || (size_t)(nl - p) + 3 > n) break;
        const size_t name_len = (size_t)(nl - p);
        size_t len = (size_t)nl[1] | (size_t)nl[2] << 8;
        const uint8_t *body = nl + 3;
        const size_t left = n - name_len - 3;
        if (len > left) len = left;
        names[k] = malloc(name_len + 1);
        data[k] = malloc(len ? len : 1);
        if (!names[k] || !data[k]) abort();
        memcpy(names[k], p, name_len);
        names[k][name_len] = '\0';
        memcpy(data[k], body, len);
        if (fix_png) fz_png_fix_crcs(data[k], len);
        lens[k++] = len;
        p = body + len, n = left - len;
    }
    fz_zip_write(path, (const char *const *)names, (const uint8_t *const *)data, lens, k, store);
    for (int i = 0; i < k; i++) free(names[i]), free(data[i]);
}
#endif
