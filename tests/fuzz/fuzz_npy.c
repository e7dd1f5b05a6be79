/* fuzz_npy.c - the .npy parser (tnmtl_npy_parse, both modes), the file
 * loaders on the same bytes, and the trace fz_npy_norms of small float tensors
 * (what `tnmtl norm` does with a hostile .npy). */
#include <math.h>

#include "fuzz_util.h"
#include "tnmtl/norm.h"
#include "tnmtl/npy.h"

static void fz_npy_check_header(const tnmtl_npy_header *h, const uint8_t *data, size_t size, int header_only)
{
    int64_t count = 1;
    if (h->ndim < 0 || h->ndim > TNMTL_NPY_MAX_NDIM) abort();
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] < 0) abort();
        count *= h->shape[i];  /* cannot overflow: the parser checked it */
    }
    if (count != h->count || h->data_bytes != (size_t)count * tnmtl_dtype_size(h->dtype)) abort();
    if (h->data_offset > size) abort();
    if (!header_only) {
        if (h->data_bytes > size - h->data_offset) abort();
        /* Touch every data byte: ASan reports a read past the buffer. */
        volatile unsigned sum = 0;
        for (size_t i = 0; i < h->data_bytes; i++) sum += data[h->data_offset + i];
        (void)sum;
    }
}

static void fz_npy_norms(const tnmtl_npy_header *h, const float *x)
{
    if (h->ndim < 1 || h->count < 1 || h->count > 4096) return;
    static const tnmtl_norm_method methods[] = {TNMTL_NORM_LAF, TNMTL_NORM_TUCKER, TNMTL_NORM_TT};
    float *grad = malloc((size_t)h->count * sizeof *grad);
    if (!grad) return;
    for (size_t k = 0; k < 3; k++) {
        double value, terms[TNMTL_NORM_MAX_NDIM];
        tnmtl_error err = {0};
        tnmtl_status st = tnmtl_norm_eval(methods[k], h->ndim, h->shape, x, NULL, &value, terms, grad, &err);
        fz_check_error(st, &err);
        if (st == TNMTL_OK && !(isfinite(value) && value >= 0)) abort();
    }
    free(grad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tnmtl_npy_header h;
    tnmtl_error err = {0};
    for (int header_only = 0; header_only < 2; header_only++) {
        tnmtl_status st = tnmtl_npy_parse(data, size, header_only, &h, &err);
        fz_check_error(st, &err);
        if (st == TNMTL_OK) fz_npy_check_header(&h, data, size, header_only);
    }
    /* The file loaders on the same bytes. */
    const char *path = fz_write("in.npy", data, size);
    void *raw = NULL;
    tnmtl_status st = tnmtl_npy_load(path, &h, &raw, &err);
    fz_check_error(st, &err);
    free(raw);
    float *x = NULL;
    st = tnmtl_npy_load_f32(path, &h, &x, &err);
    fz_check_error(st, &err);
    if (st == TNMTL_OK) fz_npy_norms(&h, x);
    free(x);
    return 0;
}
