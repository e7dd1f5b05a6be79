/* fuzz_image.c - the PNG / JPEG decoder and the area filter (src/image.c),
 * shared by the image-folder and Omniglot loaders, on memory.
 * Input: byte 0 = options (bit 0: 3 channels, else 1; bits 1-2: resize to
 * native / 1 / 7 / 33 pixels square), then the file.  A PNG gets its chunk
 * CRCs fixed, so that mutations reach the decoder. */
#define FZ_WANT_ZIP 1
#include "fuzz_util.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const int sides[4] = {0, 1, 7, 33};
    const unsigned mode = data[0];
    const size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    memcpy(buf, data + 1, n);
    fz_png_fix_crcs(buf, n);
    tnmtl_image_info info;
    tnmtl_error err = {0};
    tnmtl_status st = tnmtl_image_probe(buf, n, "in", &info, &err);
    fz_check_error(st, &err);
    const int c = mode & 1 ? 3 : 1, side = sides[(mode >> 1) & 3];
    if (st || (int64_t)info.width * info.height > (1 << 20)) {   /* keep within the fuzzer's memory */
        free(buf);
        return 0;
    }
    uint8_t *img = malloc((size_t)info.width * info.height * c);
    if (!img) abort();
    st = tnmtl_image_decode(buf, n, "in", info.width, info.height, c, img, &err);
    fz_check_error(st, &err);
    if (!st && side) {
        tnmtl_resizer rs;
        uint8_t out[33 * 33 * 3];
        st = tnmtl_resizer_init(&rs, info.height, info.width, side, side, c, &err);
        fz_check_error(st, &err);
        if (!st) tnmtl_resizer_apply(&rs, img, out);
        tnmtl_resizer_free(&rs);
    }
    free(img);
    free(buf);
    return 0;
}
