/* tnmtl/npy.h - reading and writing numpy .npy arrays (format v1.0/2.0/3.0).
 *
 * The parser validates everything before it trusts anything: magic, version,
 * header length, the header dict (descr, fortran_order, shape), the dtype,
 * and that the declared data size fits in the bytes that are there (with
 * overflow-checked arithmetic).  Big-endian and Fortran-order arrays are
 * reported as such and refused by the loaders.
 */
#ifndef TNMTL_NPY_H
#define TNMTL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_NPY_MAX_NDIM 8

typedef enum tnmtl_dtype {
    TNMTL_DTYPE_BOOL,   /* |b1 */
    TNMTL_DTYPE_U8,     /* |u1 */
    TNMTL_DTYPE_I32,    /* <i4 */
    TNMTL_DTYPE_I64,    /* <i8 */
    TNMTL_DTYPE_F32,    /* <f4 */
    TNMTL_DTYPE_F64,    /* <f8 */
    TNMTL_DTYPE_UNICODE,/* <Un: n UTF-32LE code units per item (numpy str)   */
    TNMTL_DTYPE_BYTES   /* |Sn: n bytes per item, NUL-padded (numpy bytes)   */
} tnmtl_dtype;

size_t tnmtl_dtype_size(tnmtl_dtype d);        /* 0 for the string dtypes (see item_size) */
const char *tnmtl_dtype_name(tnmtl_dtype d);   /* numpy descr, e.g. "<f4"; "<U" / "|S" for strings */

typedef struct tnmtl_npy_header {
    tnmtl_dtype dtype;
    int ndim;                          /* 0 (scalar) .. TNMTL_NPY_MAX_NDIM */
    int64_t shape[TNMTL_NPY_MAX_NDIM];
    int64_t count;                     /* product of shape (1 for a scalar) */
    size_t data_offset;                /* bytes from the file start to the data */
    size_t data_bytes;                 /* count * item_size                 */
    size_t item_size;                  /* bytes per element (strings: 4n / n) */
} tnmtl_npy_header;

/* Parses the header at buf[len].  len is the number of bytes available; the
 * data must be complete (data_offset + data_bytes <= len) unless
 * header_only is set.  Fortran order, big-endian and unknown dtypes fail with
 * TNMTL_ERR_FORMAT and a message naming them. */
tnmtl_status tnmtl_npy_parse(const void *buf, size_t len, int header_only,
                             tnmtl_npy_header *h, tnmtl_error *err);

/* Loads a float32 or float64 .npy file as double (data is malloc'd).  Any
 * other dtype fails with TNMTL_ERR_FORMAT naming it. */
tnmtl_status tnmtl_npy_load_f64(const char *path, tnmtl_npy_header *h, double **data,
                                tnmtl_error *err);
/* The same, converted to float (float64 values are rounded). */
tnmtl_status tnmtl_npy_load_f32(const char *path, tnmtl_npy_header *h, float **data,
                                tnmtl_error *err);
/* Loads any supported dtype as raw little-endian bytes (h->data_bytes of
 * them, malloc'd; h->dtype says how to read them). */
tnmtl_status tnmtl_npy_load(const char *path, tnmtl_npy_header *h, void **data, tnmtl_error *err);

/* Writes a little-endian C-order array atomically (temp file, fsync, rename). */
tnmtl_status tnmtl_npy_save(const char *path, tnmtl_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
