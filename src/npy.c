/* npy.c - numpy .npy arrays: a validating header parser, a loader, a writer.
 *
 * File layout (numpy format v1.0 / v2.0 / v3.0):
 *   "\x93NUMPY" major minor  header_len (u16 LE for v1, u32 LE for v2/v3)
 *   header: an ASCII Python dict literal, padded with spaces, ending in '\n'
 *           {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *   data:   count * itemsize bytes, C order
 *
 * The parser trusts nothing: every length is checked against the buffer with
 * overflow-checked arithmetic before it is used, the dict is parsed by a small
 * recursive-descent reader (any key order, any spacing, trailing commas, each
 * key exactly once), and anything it does not understand is an error naming
 * the problem.
 */
#include "tnmtl/npy.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Files larger than this are refused before reading (16 GiB). */
#define NPY_MAX_FILE_BYTES ((size_t)1 << 34)

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t tnmtl_dtype_size(tnmtl_dtype d)
{
    switch (d) {
    case TNMTL_DTYPE_BOOL: return 1;
    case TNMTL_DTYPE_U8: return 1;
    case TNMTL_DTYPE_I32: return 4;
    case TNMTL_DTYPE_I64: return 8;
    case TNMTL_DTYPE_F32: return 4;
    case TNMTL_DTYPE_F64: return 8;
    case TNMTL_DTYPE_UNICODE:
    case TNMTL_DTYPE_BYTES: return 0;
    }
    return 0;
}

const char *tnmtl_dtype_name(tnmtl_dtype d)
{
    switch (d) {
    case TNMTL_DTYPE_BOOL: return "|b1";
    case TNMTL_DTYPE_U8: return "|u1";
    case TNMTL_DTYPE_I32: return "<i4";
    case TNMTL_DTYPE_I64: return "<i8";
    case TNMTL_DTYPE_F32: return "<f4";
    case TNMTL_DTYPE_F64: return "<f8";
    case TNMTL_DTYPE_UNICODE: return "<U";
    case TNMTL_DTYPE_BYTES: return "|S";
    }
    return "?";
}

/* ---- header dict reader ------------------------------------------------ */

typedef struct npy_reader {
    const char *p;      /* cursor                        */
    const char *end;    /* one past the last header byte */
} npy_reader;

static void rd_skip_ws(npy_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int rd_eat(npy_reader *r, char c)
{
    rd_skip_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes, copied into out[cap]. */
static int rd_string(npy_reader *r, char *out, size_t cap)
{
    rd_skip_ws(r);
    if (r->p >= r->end || (*r->p != '\'' && *r->p != '"')) return 0;
    char q = *r->p++;
    size_t n = 0;
    while (r->p < r->end && *r->p != q) {
        if (*r->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *r->p++;
    }
    if (r->p >= r->end) return 0;
    r->p++;
    out[n] = '\0';
    return 1;
}

static int rd_word(npy_reader *r, const char *w)
{
    rd_skip_ws(r);
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return 0;
    const char *after = r->p + n;
    if (after < r->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return 0;
    r->p = after;
    return 1;
}

/* Non-negative decimal integer (an old Python 2 "3L" suffix is accepted).
 * Returns 1 ok, 0 not a number, -1 negative, -2 overflow. */
static int rd_dim(npy_reader *r, int64_t *out)
{
    rd_skip_ws(r);
    if (r->p < r->end && *r->p == '-') return -1;
    if (r->p < r->end && *r->p == '+') r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return 0;
    int64_t v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        int d = *r->p++ - '0';
        if (v > (INT64_MAX - d) / 10) return -2;
        v = v * 10 + d;
    }
    if (r->p < r->end && (*r->p == 'L' || *r->p == 'l')) r->p++;
    *out = v;
    return 1;
}

/* Strings: '<Un' (or '=Un', '|Un' for n = 1... as numpy writes '<U') and
 * '|Sn', 1 <= n <= 4096. */
static int parse_string_descr(const char *s, tnmtl_dtype *d, size_t *item)
{
    const char *p = s + (s[0] == '<' || s[0] == '|' || s[0] == '=');
    if ((*p != 'U' && *p != 'S') || p[1] < '1' || p[1] > '9' || strlen(p + 1) > 4) return 0;
    size_t n = 0;
    for (const char *q = p + 1; *q; q++) {
        if (*q < '0' || *q > '9') return 0;
        n = n * 10 + (size_t)(*q - '0');
    }
    if (n > 4096 || (*p == 'U' && s[0] == '>')) return 0;
    *d = *p == 'U' ? TNMTL_DTYPE_UNICODE : TNMTL_DTYPE_BYTES;
    *item = *p == 'U' ? 4 * n : n;
    return 1;
}

static tnmtl_status parse_descr(const char *s, tnmtl_dtype *d, size_t *item, tnmtl_error *err)
{
    if (parse_string_descr(s, d, item)) return TNMTL_OK;
    static const struct { const char *code; tnmtl_dtype dtype; } codes[] = {
        {"b1", TNMTL_DTYPE_BOOL}, {"?", TNMTL_DTYPE_BOOL}, {"u1", TNMTL_DTYPE_U8},
        {"i4", TNMTL_DTYPE_I32}, {"i8", TNMTL_DTYPE_I64}, {"f4", TNMTL_DTYPE_F32},
        {"f8", TNMTL_DTYPE_F64},
    };
    char order = s[0];
    const char *code = s;
    if (order == '<' || order == '>' || order == '|' || order == '=') code = s + 1;
    else order = 0;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i].code) != 0) continue;
        size_t size = tnmtl_dtype_size(codes[i].dtype);
        if (size > 1) {
            /* '=' (native) is little-endian on every host we build for. */
            if (order == '>')
                return tnmtl_fail(err, TNMTL_ERR_FORMAT, "big-endian dtype '%s' is not supported (save it as '<%s')", s, code);
            if (order != '<' && order != '=')
                return tnmtl_fail(err, TNMTL_ERR_FORMAT, "dtype '%s' has no byte order (expected '<%s')", s, code);
        }
        *d = codes[i].dtype;
        *item = size;
        return TNMTL_OK;
    }
    return tnmtl_fail(err, TNMTL_ERR_FORMAT,
                      "unsupported dtype '%s' (supported: |b1 |u1 <i4 <i8 <f4 <f8 <Un |Sn)", s);
}

/* Parses the dict text[len] into h (dtype, ndim, shape). */
static tnmtl_status parse_dict(const char *text, size_t len, tnmtl_npy_header *h, tnmtl_error *err)
{
    npy_reader r = {text, text + len};
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char descr[32];

    if (!rd_eat(&r, '{')) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header is not a dict (no '{')");
    for (;;) {
        if (rd_eat(&r, '}')) break;
        char key[32];
        if (!rd_string(&r, key, sizeof key))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: expected a quoted key at offset %d",
                              (int)(r.p - text));
        if (!rd_eat(&r, ':')) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: expected ':' after '%s'", key);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: duplicate key 'descr'");
            rd_skip_ws(&r);
            if (r.p < r.end && (*r.p == '[' || *r.p == '('))
                return tnmtl_fail(err, TNMTL_ERR_FORMAT, "structured dtypes are not supported");
            if (!rd_string(&r, descr, sizeof descr))
                return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: 'descr' is not a short string");
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: duplicate key 'fortran_order'");
            if (rd_word(&r, "True")) fortran = 1;
            else if (rd_word(&r, "False")) fortran = 0;
            else return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: 'fortran_order' is not True or False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: duplicate key 'shape'");
            if (!rd_eat(&r, '(')) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: 'shape' is not a tuple");
            h->ndim = 0;
            for (;;) {
                if (rd_eat(&r, ')')) break;
                int64_t v = 0;
                int rc = rd_dim(&r, &v);
                if (rc == -1) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape has a negative dimension");
                if (rc == -2) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape has a dimension that overflows 64 bits");
                if (rc == 0) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape: expected an integer at offset %d",
                                               (int)(r.p - text));
                if (h->ndim >= TNMTL_NPY_MAX_NDIM)
                    return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape has more than %d dimensions", TNMTL_NPY_MAX_NDIM);
                h->shape[h->ndim++] = v;
                if (rd_eat(&r, ')')) break;
                if (!rd_eat(&r, ',')) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape: expected ',' or ')'");
            }
        } else {
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: unexpected key '%s'", key);
        }
        if (rd_eat(&r, '}')) break;
        if (!rd_eat(&r, ',')) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: expected ',' or '}' after '%s'", key);
    }
    rd_skip_ws(&r);
    if (r.p != r.end) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header: unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header dict: missing key '%s'",
                          !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    tnmtl_status st = parse_descr(descr, &h->dtype, &h->item_size, err);
    if (st) return st;
    if (fortran)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "Fortran-order arrays are not supported (save with C order)");
    return TNMTL_OK;
}

tnmtl_status tnmtl_npy_parse(const void *buf, size_t len, int header_only,
                             tnmtl_npy_header *h, tnmtl_error *err)
{
    const unsigned char *b = buf;
    memset(h, 0, sizeof *h);
    if (!b || len < 10) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "not an .npy file: only %zu bytes", len);
    if (memcmp(b, npy_magic, sizeof npy_magic) != 0)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "not an .npy file: bad magic");
    int major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "unsupported .npy format version %d.%d", major, minor);
    size_t start, hlen;
    if (major == 1) {
        start = 10;
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else {
        if (len < 12) return tnmtl_fail(err, TNMTL_ERR_FORMAT, "truncated .npy header: only %zu bytes", len);
        start = 12;
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    }
    if (hlen > len - start)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "truncated .npy header: header length %zu but only %zu bytes follow",
                          hlen, len - start);
    const char *text = (const char *)b + start;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "header has a non-ASCII or control byte 0x%02x at offset %zu",
                              c, start + i);
    }
    tnmtl_status st = parse_dict(text, hlen, h, err);
    if (st) return st;

    size_t count = 1, bytes;
    for (int i = 0; i < h->ndim; i++) {
        if ((uint64_t)h->shape[i] > SIZE_MAX || !tnmtl_mul_size(count, (size_t)h->shape[i], &count) ||
            count > INT64_MAX)
            return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape: element count overflows");
    }
    if (!tnmtl_mul_size(count, h->item_size, &bytes))
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "shape: data size overflows");
    h->count = (int64_t)count;
    h->data_offset = start + hlen;
    h->data_bytes = bytes;
    if (!header_only && bytes > len - h->data_offset)
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "truncated .npy data: header declares %zu bytes, %zu present",
                          bytes, len - h->data_offset);
    return TNMTL_OK;
}

/* ---- loading ------------------------------------------------------------ */

/* Reads and parses a whole file; *file is the malloc'd content. */
static tnmtl_status npy_read(const char *path, tnmtl_npy_header *h, unsigned char **file, tnmtl_error *err)
{
    size_t len;
    tnmtl_status st = tnmtl_read_file(path, NPY_MAX_FILE_BYTES, file, &len, err);
    if (st) return st;
    st = tnmtl_npy_parse(*file, len, 0, h, err);
    if (st) {
        tnmtl_error_prefix(err, "%s", path);
        free(*file);
        *file = NULL;
    }
    return st;
}

tnmtl_status tnmtl_npy_load(const char *path, tnmtl_npy_header *h, void **data, tnmtl_error *err)
{
    unsigned char *file;
    *data = NULL;
    tnmtl_status st = npy_read(path, h, &file, err);
    if (st) return st;
    void *out = tnmtl_malloc(h->data_bytes, path, err);
    if (out) memcpy(out, file + h->data_offset, h->data_bytes);
    free(file);
    if (!out) return TNMTL_ERR_NOMEM;
    *data = out;
    return TNMTL_OK;
}

static tnmtl_status npy_load_float(const char *path, tnmtl_npy_header *h, void **data, int want_f64,
                                   tnmtl_error *err)
{
    unsigned char *file;
    *data = NULL;
    tnmtl_status st = npy_read(path, h, &file, err);
    if (st) return st;
    if (h->dtype != TNMTL_DTYPE_F32 && h->dtype != TNMTL_DTYPE_F64) {
        free(file);
        return tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: dtype %s, expected float32 (<f4) or float64 (<f8)",
                          path, tnmtl_dtype_name(h->dtype));
    }
    size_t n = (size_t)h->count;
    const unsigned char *src = file + h->data_offset;
    void *out = tnmtl_calloc(n, want_f64 ? sizeof(double) : sizeof(float), path, err);
    if (!out) {
        free(file);
        return err ? err->status : TNMTL_ERR_NOMEM;
    }
    /* memcpy per element: the data need not be aligned. */
    for (size_t i = 0; i < n; i++) {
        double v;
        if (h->dtype == TNMTL_DTYPE_F32) {
            float f;
            memcpy(&f, src + 4 * i, 4);
            v = f;
        } else {
            memcpy(&v, src + 8 * i, 8);
        }
        if (want_f64) ((double *)out)[i] = v;
        else ((float *)out)[i] = (float)v;
    }
    free(file);
    *data = out;
    return TNMTL_OK;
}

tnmtl_status tnmtl_npy_load_f64(const char *path, tnmtl_npy_header *h, double **data, tnmtl_error *err)
{
    void *p;
    tnmtl_status st = npy_load_float(path, h, &p, 1, err);
    *data = p;
    return st;
}

tnmtl_status tnmtl_npy_load_f32(const char *path, tnmtl_npy_header *h, float **data, tnmtl_error *err)
{
    void *p;
    tnmtl_status st = npy_load_float(path, h, &p, 0, err);
    *data = p;
    return st;
}

/* ---- saving ------------------------------------------------------------- */

typedef struct npy_writer {
    const char *header;
    size_t header_len;
    const void *data;
    size_t data_bytes;
} npy_writer;

static int npy_write(FILE *f, void *user)
{
    const npy_writer *w = user;
    if (fwrite(w->header, 1, w->header_len, f) != w->header_len) return -1;
    if (w->data_bytes && fwrite(w->data, 1, w->data_bytes, f) != w->data_bytes) return -1;
    return 0;
}

/* Builds the preamble + padded dict in out[cap]; returns its length or 0. */
static size_t npy_format_header(tnmtl_dtype dtype, int ndim, const int64_t *shape, char *out, size_t cap)
{
    char dict[512];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                tnmtl_dtype_name(dtype));
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%lld%s", (long long)shape[i],
                              ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    n += (size_t)snprintf(dict + n, sizeof dict - n, "), }");
    /* v1.0: 10-byte preamble; total padded to a multiple of 64 with '\n' last. */
    size_t total = (10 + n + 1 + 63) / 64 * 64;
    if (total > cap || n >= sizeof dict) return 0;
    memcpy(out, npy_magic, 6);
    out[6] = 1;
    out[7] = 0;
    size_t hlen = total - 10;
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, n);
    memset(out + 10 + n, ' ', total - 10 - n - 1);
    out[total - 1] = '\n';
    return total;
}

tnmtl_status tnmtl_npy_save(const char *path, tnmtl_dtype dtype, int ndim, const int64_t *shape,
                            const void *data, tnmtl_error *err)
{
    if (ndim < 0 || ndim > TNMTL_NPY_MAX_NDIM)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: %d dimensions (at most %d)", path, ndim, TNMTL_NPY_MAX_NDIM);
    if (tnmtl_dtype_size(dtype) == 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: unknown dtype %d", path, (int)dtype);
    size_t count = 1, bytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !tnmtl_mul_size(count, (size_t)shape[i], &count))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: bad shape (dimension %d is %lld)", path, i,
                              (long long)shape[i]);
    }
    if (!tnmtl_mul_size(count, tnmtl_dtype_size(dtype), &bytes))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: data size overflows", path);
    if (bytes && !data) return tnmtl_fail(err, TNMTL_ERR_INVALID, "%s: no data", path);
    char header[512];
    size_t hl = npy_format_header(dtype, ndim, shape, header, sizeof header);
    if (!hl) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "%s: header does not fit", path);
    npy_writer w = {header, hl, data, bytes};
    return tnmtl_write_file_atomic(path, npy_write, &w, err);
}
