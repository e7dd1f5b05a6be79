/* zipread.h - reading zip archives (and .npz files) with libzip (internal).
 *
 * Every size an archive declares is checked against a cap before anything is
 * allocated, every read must return exactly the declared bytes, and a member
 * is only accepted once libzip has seen its end (which runs the CRC check).
 * Messages name the archive and the member.
 */
#ifndef TNMTL_ZIPREAD_H
#define TNMTL_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

#include "tnmtl/error.h"

/* Opens path read-only; a missing file, a file that is not a zip (or whose
 * central directory was cut off) and a corrupt directory are told apart. */
tnmtl_status tnmtl_zip_open(const char *path, zip_t **za, tnmtl_error *err);

/* Index of the member with exactly this name, or -1. */
int64_t tnmtl_zip_find(zip_t *za, const char *name);

/* One member opened for sequential reading. */
typedef struct tnmtl_zip_member {
    zip_file_t *zf;
    const char *zip_path;   /* for messages (not owned) */
    const char *name;       /* member name (owned by the archive) */
    uint64_t size;          /* declared uncompressed size */
    uint64_t pos;           /* bytes read so far */
} tnmtl_zip_member;

/* Opens member index; refuses (TNMTL_ERR_TOO_BIG) a declared size over
 * max_size before reading anything. */
tnmtl_status tnmtl_zip_member_open(zip_t *za, uint64_t index, const char *zip_path,
                                   uint64_t max_size, tnmtl_zip_member *m, tnmtl_error *err);
/* Reads exactly n bytes (error if the member ends or fails first). */
tnmtl_status tnmtl_zip_member_read(tnmtl_zip_member *m, void *buf, size_t n, tnmtl_error *err);
/* Reads and drops n bytes. */
tnmtl_status tnmtl_zip_member_skip(tnmtl_zip_member *m, uint64_t n, tnmtl_error *err);
/* Checks that the member ends exactly at its declared size and passed its
 * CRC check, then closes it.  The member is closed even on failure. */
tnmtl_status tnmtl_zip_member_finish(tnmtl_zip_member *m, tnmtl_error *err);
/* Closes without checks (error paths; safe on a closed member). */
void tnmtl_zip_member_close(tnmtl_zip_member *m);

/* Reads a whole member into *buf (grown with realloc as needed, *cap its
 * size; start with *buf = NULL, *cap = 0 and free it at the end), so a loop
 * over many members reuses one buffer.  One byte more than the data is
 * allocated and set to 0.  Declared sizes over max_size are refused first. */
tnmtl_status tnmtl_zip_read_member(zip_t *za, uint64_t index, const char *zip_path, uint64_t max_size,
                                   unsigned char **buf, size_t *cap, size_t *len, tnmtl_error *err);

#endif
