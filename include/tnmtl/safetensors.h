/* tnmtl/safetensors.h - reading and writing safetensors files.
 *
 * The format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * (padded with spaces), then the data area: every tensor's bytes,
 * little-endian, C order, at [begin, end) relative to the data area.
 *
 * Writing: tnmtl_st_save writes the tensors (largest element size first,
 * then by name, so every tensor is aligned to its element size) and the
 * metadata, padding the header so the data starts at a multiple of 8, and
 * replaces the file atomically (temp file, fsync, rename): a failed or
 * killed write leaves any previous file intact.
 *
 *   tnmtl_st_tensor t[] = {{"params", TNMTL_ST_F32, 1, {n}, params}};
 *   tnmtl_st_meta meta[] = {{"format", "tnmtl-checkpoint"}};
 *   tnmtl_st_save("ckpt.safetensors", t, 1, meta, 1, &err);
 *
 * Reading: tnmtl_st_load checks everything before trusting anything: the
 * header length (within the file and at most TNMTL_ST_MAX_HEADER), the
 * header is UTF-8 JSON starting with '{', a JSON object; every tensor has a
 * known dtype, at most TNMTL_ST_MAX_NDIM non-negative integer dimensions,
 * an element count and byte size that do not overflow and match its
 * data_offsets; offsets lie inside the data area; tensors do not overlap
 * and leave no byte of the data area unused (as the format requires);
 * names and metadata keys are unique; metadata values are strings.
 * Messages name the file and the problem, e.g.
 *   "ckpt.safetensors: tensor 'params' data_offsets [0, 999999] exceed the 1200-byte data area".
 * Tensor data is then reachable by name, aligned to its element size.
 *
 *   tnmtl_st_file *f;
 *   if (tnmtl_st_load("ckpt.safetensors", 0, &f, &err)) ...
 *   const float *p;
 *   int64_t shape[1] = {n};
 *   if (tnmtl_st_find(f, "params", TNMTL_ST_F32, 1, shape, (const void **)&p, &err)) ...
 *   const char *fmt = tnmtl_st_meta_get(f, "format");   // NULL if absent
 *   tnmtl_st_free(f);
 *
 * Data are little-endian: big-endian hosts are refused.
 */
#ifndef TNMTL_SAFETENSORS_H
#define TNMTL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_ST_MAX_NDIM 8
#define TNMTL_ST_MAX_HEADER ((size_t)100 << 20)   /* as the reference implementation */
#define TNMTL_ST_MAX_BYTES ((size_t)4 << 30)      /* default file size cap of tnmtl_st_load */

typedef enum tnmtl_st_dtype {
    TNMTL_ST_BOOL, TNMTL_ST_U8, TNMTL_ST_I8, TNMTL_ST_F8_E4M3, TNMTL_ST_F8_E5M2,
    TNMTL_ST_U16, TNMTL_ST_I16, TNMTL_ST_F16, TNMTL_ST_BF16,
    TNMTL_ST_U32, TNMTL_ST_I32, TNMTL_ST_F32,
    TNMTL_ST_U64, TNMTL_ST_I64, TNMTL_ST_F64,
    TNMTL_ST_N_DTYPES
} tnmtl_st_dtype;

size_t tnmtl_st_dtype_size(tnmtl_st_dtype d);        /* bytes per element; 0 if unknown */
const char *tnmtl_st_dtype_name(tnmtl_st_dtype d);   /* "F32", ...; "?" if unknown     */

/* One tensor to write, or the description of one tensor read. */
typedef struct tnmtl_st_tensor {
    const char *name;
    tnmtl_st_dtype dtype;
    int ndim;                            /* 0 (scalar) .. TNMTL_ST_MAX_NDIM        */
    int64_t shape[TNMTL_ST_MAX_NDIM];
    const void *data;                    /* [prod(shape)] elements, little-endian  */
} tnmtl_st_tensor;

typedef struct tnmtl_st_meta {
    const char *key, *value;
} tnmtl_st_meta;

/* Writes n tensors t[n] and n_meta metadata entries meta[n_meta] (either
 * may be 0/NULL) to path atomically.  Names must be unique, non-empty and
 * not "__metadata__"; metadata keys unique. */
tnmtl_status tnmtl_st_save(const char *path, const tnmtl_st_tensor *t, int n, const tnmtl_st_meta *meta, int n_meta,
                           tnmtl_error *err);

typedef struct tnmtl_st_file tnmtl_st_file;

/* Loads and validates path (refused with TNMTL_ERR_TOO_BIG above max_bytes;
 * 0: TNMTL_ST_MAX_BYTES).  *out is NULL on failure. */
tnmtl_status tnmtl_st_load(const char *path, size_t max_bytes, tnmtl_st_file **out, tnmtl_error *err);
/* The same from memory (buf[len] is copied); name is used in messages. */
tnmtl_status tnmtl_st_parse(const void *buf, size_t len, const char *name, tnmtl_st_file **out, tnmtl_error *err);
void tnmtl_st_free(tnmtl_st_file *f);

/* Tensors, sorted by name: i in 0 .. tnmtl_st_count(f)-1.  The returned
 * descriptions (name, dtype, shape, data) live as long as f. */
int tnmtl_st_count(const tnmtl_st_file *f);
const tnmtl_st_tensor *tnmtl_st_at(const tnmtl_st_file *f, int i);
/* The tensor called name, or NULL. */
const tnmtl_st_tensor *tnmtl_st_get(const tnmtl_st_file *f, const char *name);
int64_t tnmtl_st_numel(const tnmtl_st_tensor *t);    /* product of the shape */

/* The data of tensor name, checked: it must exist and have this dtype; if
 * ndim >= 0 it must have ndim dimensions, and if shape is not NULL each
 * shape[i] >= 0 must match (-1: any size).  Fails with TNMTL_ERR_FORMAT and
 * a message naming the file, the tensor, what it has and what was expected. */
tnmtl_status tnmtl_st_find(const tnmtl_st_file *f, const char *name, tnmtl_st_dtype dtype, int ndim,
                           const int64_t *shape, const void **data, tnmtl_error *err);

/* Metadata, sorted by key. */
int tnmtl_st_meta_count(const tnmtl_st_file *f);
const tnmtl_st_meta *tnmtl_st_meta_at(const tnmtl_st_file *f, int i);
const char *tnmtl_st_meta_get(const tnmtl_st_file *f, const char *key);   /* NULL if absent */
/* The same, failing with TNMTL_ERR_FORMAT ("FILE: no metadata 'key'") if absent. */
tnmtl_status tnmtl_st_meta_find(const tnmtl_st_file *f, const char *key, const char **value, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
