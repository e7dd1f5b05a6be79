/* safetensors.c - validating safetensors reader and atomic writer (see
 * tnmtl/safetensors.h).  JSON through cJSON. */
#include "tnmtl/safetensors.h"
#include "util.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; size_t size; } dtypes[TNMTL_ST_N_DTYPES] = {
    [TNMTL_ST_BOOL] = {"BOOL", 1},       [TNMTL_ST_U8] = {"U8", 1},     [TNMTL_ST_I8] = {"I8", 1},
    [TNMTL_ST_F8_E4M3] = {"F8_E4M3", 1}, [TNMTL_ST_F8_E5M2] = {"F8_E5M2", 1},
    [TNMTL_ST_U16] = {"U16", 2},         [TNMTL_ST_I16] = {"I16", 2},   [TNMTL_ST_F16] = {"F16", 2},
    [TNMTL_ST_BF16] = {"BF16", 2},       [TNMTL_ST_U32] = {"U32", 4},   [TNMTL_ST_I32] = {"I32", 4},
    [TNMTL_ST_F32] = {"F32", 4},         [TNMTL_ST_U64] = {"U64", 8},   [TNMTL_ST_I64] = {"I64", 8},
    [TNMTL_ST_F64] = {"F64", 8},
};

size_t tnmtl_st_dtype_size(tnmtl_st_dtype d)
{
    return (unsigned)d < TNMTL_ST_N_DTYPES ? dtypes[d].size : 0;
}

const char *tnmtl_st_dtype_name(tnmtl_st_dtype d)
{
    return (unsigned)d < TNMTL_ST_N_DTYPES ? dtypes[d].name : "?";
}

static int little_endian_host(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* "[2, 3]" into buf. */
static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* Element count and byte size of a shape; 0 on overflow. */
static int shape_bytes(int ndim, const int64_t *shape, size_t elem, int64_t *count, size_t *bytes)
{
    size_t c = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !tnmtl_mul_size(c, (size_t)shape[i], &c)) return 0;
    if (c > (size_t)INT64_MAX || !tnmtl_mul_size(c, elem, bytes) || *bytes > (size_t)INT64_MAX) return 0;
    *count = (int64_t)c;
    return 1;
}

int64_t tnmtl_st_numel(const tnmtl_st_tensor *t)
{
    int64_t c = 1;
    for (int i = 0; i < t->ndim; i++) c *= t->shape[i];
    return c;
}

/* ---- writing ---- */

struct writer {
    const char *header;
    size_t header_len, padded_len;
    const tnmtl_st_tensor *t;
    const int *order;                    /* [n] data order                        */
    const size_t *bytes;                 /* [n]                                   */
    int n;
};

static int write_all(FILE *f, void *user)
{
    const struct writer *w = user;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)w->padded_len >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(w->header, 1, w->header_len, f) != w->header_len) return -1;
    for (size_t i = w->header_len; i < w->padded_len; i++)
        if (fputc(' ', f) == EOF) return -1;
    for (int j = 0; j < w->n; j++) {
        const int i = w->order[j];
        if (w->bytes[i] && fwrite(w->t[i].data, 1, w->bytes[i], f) != w->bytes[i]) return -1;
    }
    return 0;
}

/* Data order: largest element size first, then by name. */
typedef struct data_slot {
    size_t size;
    const char *name;
    int i;
} data_slot;

static int cmp_data_order(const void *a, const void *b)
{
    const data_slot *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return strcmp(x->name, y->name);
}

static cJSON *json_int(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);   /* exact integers (cJSON numbers are doubles) */
}

static tnmtl_status check_save_args(const char *path, const tnmtl_st_tensor *t, int n, const tnmtl_st_meta *meta,
                                    int n_meta, size_t *bytes, tnmtl_error *err)
{
    if (n < 0 || n_meta < 0 || (n && !t) || (n_meta && !meta))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: bad tensor or metadata list", path);
    char sh[256];
    for (int i = 0; i < n; i++) {
        const tnmtl_st_tensor *ti = &t[i];
        if (!ti->name || !ti->name[0] || !strcmp(ti->name, "__metadata__"))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tensor %d has an invalid name '%s'", path, i,
                              ti->name ? ti->name : "(null)");
        if (!tnmtl_st_dtype_size(ti->dtype))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tensor '%s' has unknown dtype %d", path, ti->name, (int)ti->dtype);
        if (ti->ndim < 0 || ti->ndim > TNMTL_ST_MAX_NDIM)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tensor '%s' has %d dimensions (at most %d)", path, ti->name,
                              ti->ndim, TNMTL_ST_MAX_NDIM);
        int64_t count;
        if (!shape_bytes(ti->ndim, ti->shape, tnmtl_st_dtype_size(ti->dtype), &count, &bytes[i]))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tensor '%s' has an invalid or too large shape %s", path,
                              ti->name, shape_str(ti->ndim, ti->shape, sh, sizeof sh));
        if (bytes[i] && !ti->data)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: tensor '%s' has no data", path, ti->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(t[j].name, ti->name))
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: two tensors are named '%s'", path, ti->name);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: metadata entry %d has no key or value", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta[j].key, meta[i].key))
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: metadata key '%s' given twice", path, meta[i].key);
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_st_save(const char *path, const tnmtl_st_tensor *t, int n, const tnmtl_st_meta *meta, int n_meta,
                           tnmtl_error *err)
{
    if (!little_endian_host()) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: big-endian hosts are not supported", path);
    size_t *bytes = tnmtl_calloc((size_t)(n > 0 ? n : 1), sizeof *bytes, "tensor sizes", err);
    int *order = tnmtl_calloc((size_t)(n > 0 ? n : 1), sizeof *order, "tensor order", err);
    data_slot *slot = tnmtl_calloc((size_t)(n > 0 ? n : 1), sizeof *slot, "tensor order", err);
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    tnmtl_status st = !bytes || !order || !slot ? TNMTL_ERR_NOMEM : check_save_args(path, t, n, meta, n_meta, bytes, err);
    if (st) goto done;
    if (!root) goto nomem;
    for (int i = 0; i < n; i++) slot[i] = (data_slot){tnmtl_st_dtype_size(t[i].dtype), t[i].name, i};
    qsort(slot, (size_t)n, sizeof *slot, cmp_data_order);
    for (int i = 0; i < n; i++) order[i] = slot[i].i;
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto nomem;
        for (int i = 0; i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) goto nomem;
    }
    size_t offset = 0;
    for (int j = 0; j < n; j++) {
        const tnmtl_st_tensor *ti = &t[order[j]];
        cJSON *o = cJSON_AddObjectToObject(root, ti->name);
        cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!o || !shape || !offs) {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            goto nomem;
        }
        cJSON_AddItemToObject(o, "dtype", cJSON_CreateString(tnmtl_st_dtype_name(ti->dtype)));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToObject(o, "data_offsets", offs);
        for (int d = 0; d < ti->ndim; d++) cJSON_AddItemToArray(shape, json_int(ti->shape[d]));
        size_t end;
        if (!tnmtl_add_size(offset, bytes[order[j]], &end) || end > (size_t)INT64_MAX) {
            st = tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: the tensors add up to more than 2^63 bytes", path);
            goto done;
        }
        cJSON_AddItemToArray(offs, json_int((int64_t)offset));
        cJSON_AddItemToArray(offs, json_int((int64_t)end));
        if (cJSON_GetArraySize(shape) != ti->ndim || cJSON_GetArraySize(offs) != 2 ||
            !cJSON_GetObjectItemCaseSensitive(o, "dtype"))
            goto nomem;
        offset = end;
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) goto nomem;
    struct writer w = {text, strlen(text), 0, t, order, bytes, n};
    w.padded_len = (w.header_len + 7) / 8 * 8;
    st = tnmtl_write_file_atomic(path, write_all, &w, err);
    goto done;
nomem:
    st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory building the header", path);
done:
    cJSON_free(text);
    cJSON_Delete(root);
    free(bytes);
    free(order);
    free(slot);
    return st;
}

/* ---- reading ---- */

typedef struct st_entry {
    tnmtl_st_tensor t;                   /* t.name points to name                 */
    char *name;
    size_t begin, end;                   /* in the data area                      */
    void *own;                           /* aligned copy when the file's is not   */
} st_entry;

struct tnmtl_st_file {
    char *name;                          /* for messages                          */
    unsigned char *buf;                  /* the file; data area moved to its start */
    size_t data_size;
    int n;
    st_entry *e;                         /* [n] sorted by name                    */
    int n_meta;
    tnmtl_st_meta *meta;                 /* [n_meta] sorted by key, owned strings */
};

void tnmtl_st_free(tnmtl_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->e[i].name);
        free(f->e[i].own);
    }
    for (int i = 0; i < f->n_meta; i++) {
        free((char *)f->meta[i].key);
        free((char *)f->meta[i].value);
    }
    free(f->e);
    free(f->meta);
    free(f->buf);
    free(f->name);
    free(f);
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c == 0) {
            return 0;
        } else if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* A JSON number that is an exact non-negative integer <= 2^53. */
static int json_uint(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    const double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const tnmtl_st_meta *)a)->key, ((const tnmtl_st_meta *)b)->key);
}

static tnmtl_status parse_metadata(tnmtl_st_file *f, const cJSON *m, tnmtl_error *err)
{
    if (!cJSON_IsObject(m)) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->name);
    const int n = cJSON_GetArraySize(m);
    f->meta = tnmtl_calloc((size_t)(n ? n : 1), sizeof *f->meta, "metadata", err);
    if (!f->meta) return TNMTL_ERR_NOMEM;
    for (const cJSON *v = m->child; v; v = v->next) {
        if (!cJSON_IsString(v) || !v->valuestring)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: metadata '%.100s' is not a string", f->name, v->string);
        char *k = strdup(v->string), *val = strdup(v->valuestring);
        f->meta[f->n_meta].key = k;
        f->meta[f->n_meta].value = val;
        f->n_meta++;
        if (!k || !val) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory for metadata", f->name);
    }
    qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta_key);
    for (int i = 1; i < f->n_meta; i++)
        if (!strcmp(f->meta[i - 1].key, f->meta[i].key))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: metadata key '%.100s' appears twice", f->name, f->meta[i].key);
    return TNMTL_OK;
}

static tnmtl_status parse_entry(tnmtl_st_file *f, const cJSON *o, st_entry *e, tnmtl_error *err)
{
    const char *nm = e->name;
    char sh[256];
    if (!cJSON_IsObject(o)) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' is not a JSON object", f->name, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(o, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' needs a string dtype, a shape array and a data_offsets array",
                          f->name, nm);
    int d;
    for (d = 0; d < TNMTL_ST_N_DTYPES; d++)
        if (!strcmp(dt->valuestring, dtypes[d].name)) break;
    if (d == TNMTL_ST_N_DTYPES)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' has unknown dtype '%.40s'", f->name, nm, dt->valuestring);
    e->t.dtype = (tnmtl_st_dtype)d;
    const int ndim = cJSON_GetArraySize(shape);
    if (ndim > TNMTL_ST_MAX_NDIM)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' has %d dimensions (at most %d supported)", f->name, nm,
                          ndim, TNMTL_ST_MAX_NDIM);
    e->t.ndim = ndim;
    int i = 0;
    for (const cJSON *v = shape->child; v; v = v->next, i++)
        if (!json_uint(v, &e->t.shape[i]))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s': shape entry %d is not a non-negative integer",
                              f->name, nm, i);
    int64_t b, en, count;
    if (cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) || !json_uint(offs->child->next, &en) || en < b)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s': data_offsets must be two integers [begin, end], begin <= end",
                          f->name, nm);
    size_t bytes;
    if (!shape_bytes(ndim, e->t.shape, dtypes[d].size, &count, &bytes))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s': shape %s is too large", f->name, nm,
                          shape_str(ndim, e->t.shape, sh, sizeof sh));
    if ((uint64_t)en > f->data_size)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' data_offsets [%" PRId64 ", %" PRId64 "] exceed the %zu-byte data area",
                          f->name, nm, b, en, f->data_size);
    if ((uint64_t)(en - b) != bytes)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' has %" PRId64 " bytes of data but dtype %s and shape %s need %zu",
                          f->name, nm, en - b, dtypes[d].name, shape_str(ndim, e->t.shape, sh, sizeof sh), bytes);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return TNMTL_OK;
}

/* Tensors must tile the data area exactly: no overlap, no unused byte. */
static tnmtl_status check_tiling(tnmtl_st_file *f, tnmtl_error *err)
{
    st_entry **by_off = tnmtl_calloc((size_t)(f->n ? f->n : 1), sizeof *by_off, "tensor order", err);
    if (!by_off) return TNMTL_ERR_NOMEM;
    for (int i = 0; i < f->n; i++) by_off[i] = &f->e[i];
    qsort(by_off, (size_t)f->n, sizeof *by_off, cmp_entry_offsets);
    tnmtl_status st = TNMTL_OK;
    size_t pos = 0;
    const st_entry *prev = NULL;
    for (int i = 0; i < f->n && !st; i++) {
        const st_entry *e = by_off[i];
        if (e->begin < pos)
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensors '%.100s' [%zu, %zu] and '%.100s' [%zu, %zu] overlap", f->name,
                            prev->name, prev->begin, prev->end, e->name, e->begin, e->end);
        else if (e->begin > pos)
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: bytes [%zu, %zu] of the data area belong to no tensor", f->name, pos,
                            e->begin);
        if (e->end > pos) {
            pos = e->end;
            prev = e;
        }
    }
    if (!st && pos != f->data_size)
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: bytes [%zu, %zu] of the data area belong to no tensor", f->name, pos,
                        f->data_size);
    free(by_off);
    return st;
}

/* Parses the file held in f->buf[len] (owned by f). */
static tnmtl_status parse_buffer(tnmtl_st_file *f, size_t len, tnmtl_error *err)
{
    if (len < 8) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", f->name, len);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)f->buf[i] << (8 * i);
    if (hl > len - 8)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %zu bytes after it (truncated or not safetensors)",
                          f->name, hl, len - 8);
    if (hl > TNMTL_ST_MAX_HEADER)
        return tnmtl_fail(err, TNMTL_ERR_TOO_BIG, "%s: header length %" PRIu64 " is more than the limit of %zu", f->name, hl,
                          TNMTL_ST_MAX_HEADER);
    const char *h = (const char *)f->buf + 8;
    if (hl < 2 || h[0] != '{')
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: the header does not start with '{' (not a safetensors file)", f->name);
    if (!valid_utf8((const unsigned char *)h, (size_t)hl))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: the header is not valid UTF-8 text", f->name);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hl, &end, 0);
    if (!root)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: the header is not valid JSON (error near header byte %td)", f->name,
                          end ? end - h : (ptrdiff_t)-1);
    tnmtl_status st = TNMTL_OK;
    for (const char *p = end; p < h + hl && !st; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at header byte %td)", f->name,
                            p - h);
    if (!st && !cJSON_IsObject(root))
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: the header is not a JSON object", f->name);
    f->data_size = len - 8 - (size_t)hl;
    int n = 0;
    for (const cJSON *c = st ? NULL : root->child; c; c = c->next) n += strcmp(c->string, "__metadata__") != 0;
    if (!st) {
        f->e = tnmtl_calloc((size_t)(n ? n : 1), sizeof *f->e, "tensor list", err);
        if (!f->e) st = TNMTL_ERR_NOMEM;
    }
    int seen_meta = 0;
    for (const cJSON *c = st ? NULL : root->child; c && !st; c = c->next) {
        if (!strcmp(c->string, "__metadata__")) {
            st = seen_meta++ ? tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: __metadata__ appears twice", f->name)
                             : parse_metadata(f, c, err);
            continue;
        }
        st_entry *e = &f->e[f->n];
        e->name = strdup(c->string);
        if (!e->name) {
            st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "%s: out of memory", f->name);
            break;
        }
        e->t.name = e->name;
        f->n++;
        st = parse_entry(f, c, e, err);
    }
    cJSON_Delete(root);
    if (st) return st;
    qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_entry_name);
    for (int i = 0; i < f->n; i++) f->e[i].t.name = f->e[i].name; /* entries moved */
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->e[i - 1].name, f->e[i].name))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%.100s' appears twice", f->name, f->e[i].name);
    st = check_tiling(f, err);
    if (st) return st;
    /* Move the data area to the start of the (malloc-aligned) buffer, then
     * copy any tensor that is still not aligned to its element size. */
    memmove(f->buf, f->buf + 8 + hl, f->data_size);
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        const size_t size = tnmtl_st_dtype_size(e->t.dtype), bytes = e->end - e->begin;
        e->t.data = f->buf + e->begin;
        if (e->begin % size) {
            e->own = tnmtl_malloc(bytes, e->name, err);
            if (!e->own) return TNMTL_ERR_NOMEM;
            memcpy(e->own, f->buf + e->begin, bytes);
            e->t.data = e->own;
        }
    }
    return TNMTL_OK;
}

static tnmtl_status finish_load(tnmtl_st_file *f, size_t len, tnmtl_st_file **out, tnmtl_error *err)
{
    tnmtl_status st = parse_buffer(f, len, err);
    if (st) {
        tnmtl_st_free(f);
        return st;
    }
    *out = f;
    return TNMTL_OK;
}

static tnmtl_st_file *new_file(const char *name, tnmtl_error *err)
{
    tnmtl_st_file *f = tnmtl_calloc(1, sizeof *f, "safetensors file", err);
    if (f && !(f->name = strdup(name ? name : "safetensors"))) {
        free(f);
        f = NULL;
        tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    }
    return f;
}

tnmtl_status tnmtl_st_load(const char *path, size_t max_bytes, tnmtl_st_file **out, tnmtl_error *err)
{
    *out = NULL;
    if (!little_endian_host()) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: big-endian hosts are not supported", path);
    tnmtl_st_file *f = new_file(path, err);
    if (!f) return TNMTL_ERR_NOMEM;
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, max_bytes ? max_bytes : TNMTL_ST_MAX_BYTES, &f->buf, &len, err);
    if (st) {
        tnmtl_st_free(f);
        return st;
    }
    return finish_load(f, len, out, err);
}

tnmtl_status tnmtl_st_parse(const void *buf, size_t len, const char *name, tnmtl_st_file **out, tnmtl_error *err)
{
    *out = NULL;
    if (!little_endian_host()) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: big-endian hosts are not supported", name);
    tnmtl_st_file *f = new_file(name, err);
    if (!f) return TNMTL_ERR_NOMEM;
    f->buf = tnmtl_malloc(len, f->name, err);
    if (!f->buf) {
        tnmtl_st_free(f);
        return TNMTL_ERR_NOMEM;
    }
    if (len) memcpy(f->buf, buf, len);
    return finish_load(f, len, out, err);
}

int tnmtl_st_count(const tnmtl_st_file *f) { return f->n; }

const tnmtl_st_tensor *tnmtl_st_at(const tnmtl_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->e[i].t : NULL;
}

const tnmtl_st_tensor *tnmtl_st_get(const tnmtl_st_file *f, const char *name)
{
    if (f->n == 0) return NULL;
    st_entry key;
    key.name = (char *)name;
    const st_entry *e = bsearch(&key, f->e, (size_t)f->n, sizeof *f->e, cmp_entry_name);
    return e ? &e->t : NULL;
}

tnmtl_status tnmtl_st_find(const tnmtl_st_file *f, const char *name, tnmtl_st_dtype dtype, int ndim,
                           const int64_t *shape, const void **data, tnmtl_error *err)
{
    const tnmtl_st_tensor *t = tnmtl_st_get(f, name);
    char have[256], want[256];
    if (!t) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no tensor named '%s'", f->name, name);
    if (t->dtype != dtype)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", f->name, name,
                          tnmtl_st_dtype_name(t->dtype), tnmtl_st_dtype_name(dtype));
    int ok = ndim < 0 || t->ndim == ndim;
    for (int i = 0; ok && ndim >= 0 && shape && i < ndim; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        if (ndim >= 0 && shape)
            shape_str(ndim, shape, want, sizeof want);
        else
            snprintf(want, sizeof want, "%d dimensions", ndim);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", f->name, name,
                          shape_str(t->ndim, t->shape, have, sizeof have), want);
    }
    *data = t->data;
    return TNMTL_OK;
}

int tnmtl_st_meta_count(const tnmtl_st_file *f) { return f->n_meta; }

const tnmtl_st_meta *tnmtl_st_meta_at(const tnmtl_st_file *f, int i)
{
    return i >= 0 && i < f->n_meta ? &f->meta[i] : NULL;
}

const char *tnmtl_st_meta_get(const tnmtl_st_file *f, const char *key)
{
    if (f->n_meta == 0) return NULL;
    const tnmtl_st_meta k = {key, NULL};
    const tnmtl_st_meta *m = bsearch(&k, f->meta, (size_t)f->n_meta, sizeof *f->meta, cmp_meta_key);
    return m ? m->value : NULL;
}

tnmtl_status tnmtl_st_meta_find(const tnmtl_st_file *f, const char *key, const char **value, tnmtl_error *err)
{
    *value = tnmtl_st_meta_get(f, key);
    return *value ? TNMTL_OK : tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: no metadata '%s'", f->name, key);
}
