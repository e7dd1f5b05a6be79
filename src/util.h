/* util.h - internal helpers shared by the library modules (not installed). */
#ifndef TNMTL_UTIL_H
#define TNMTL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

/* Overflow-checked size arithmetic: return 0 and leave *out alone on overflow. */
int tnmtl_mul_size(size_t a, size_t b, size_t *out);
int tnmtl_add_size(size_t a, size_t b, size_t *out);

/* malloc/calloc that fill err (naming `what` and the size) on failure. */
void *tnmtl_malloc(size_t bytes, const char *what, tnmtl_error *err);
void *tnmtl_calloc(size_t n, size_t size, const char *what, tnmtl_error *err);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience,
 * the terminator is not counted in *len).  Files over max_bytes are refused
 * with TNMTL_ERR_TOO_BIG before anything is read. */
tnmtl_status tnmtl_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                             tnmtl_error *err);

/* Atomic write: the content goes to "path.tmp.<pid>", is fsync'ed, renamed
 * over path and the directory is fsync'ed, so a reader (or a killed run)
 * sees either the old file or the complete new one, never a partial file.
 * After the rename, temp files of this path left by writers that were
 * killed mid-write (dead pid) are removed.
 * The writer callback receives a FILE* and returns 0 on success. */
#include <stdio.h>
typedef int (*tnmtl_write_fn)(FILE *f, void *user);
tnmtl_status tnmtl_write_file_atomic(const char *path, tnmtl_write_fn fn, void *user,
                                     tnmtl_error *err);
/* Convenience: atomic write of one memory buffer. */
tnmtl_status tnmtl_write_buffer_atomic(const char *path, const void *data, size_t len,
                                       tnmtl_error *err);

/* Creates a directory (and its parents) if missing. */
tnmtl_status tnmtl_mkdir_p(const char *path, tnmtl_error *err);

/* Finite check of a float / double array: returns the index of the first
 * NaN or Inf, or -1 if all are finite. */
int64_t tnmtl_first_nonfinite_f32(const float *x, size_t n);
int64_t tnmtl_first_nonfinite_f64(const double *x, size_t n);

/* Monotonic wall clock in seconds. */
double tnmtl_now(void);

#endif
