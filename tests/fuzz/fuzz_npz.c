/* fuzz_npz.c - the Omniglot numpy loader (format A): a .npz (zip, libzip)
 * holding images.npy and labels.npy, with its alphabet_ranges.tsv, through
 * tnmtl_omniglot_load on files in /dev/shm.
 * Input: bytes 0-1 = length L of the ranges file (little-endian), byte 2 =
 * options (bits 0-1 image size 105/28/7/1, bit 2 an alphabet list, bit 3
 * the first alphabet only, bit 4 the .npz path instead of the folder,
 * bit 5 structured), then L bytes of alphabet_ranges.tsv, then:
 *   raw mode         images_background.npz itself;
 *   structured mode  2 bytes (little-endian) = length M, M bytes = the start
 *                    of images.npy, the rest = labels.npy (none if empty);
 *                    the harness completes images.npy to the size its
 *                    header declares (up to 4 MB; bit 6: it does not) and
 *                    zips both (bit 7: stored, else deflated) with correct
 *                    CRCs, so mutations reach the headers and the labels. */
#define FZ_WANT_ZIP 1
#include "fuzz_util.h"
#include "tnmtl/npy.h"

static void npz_structured(const uint8_t *p, size_t n, unsigned mode, const char *path)
{
    if (n < 2) return;
    size_t m = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2, n -= 2;
    if (m > n) m = n;
    size_t img_len = m;
    tnmtl_npy_header h;
    if (!(mode & 64) && tnmtl_npy_parse(p, m, 1, &h, NULL) == TNMTL_OK && h.data_offset <= (4u << 20) &&
        h.data_bytes <= (4u << 20) - h.data_offset && h.data_offset + h.data_bytes > m)
        img_len = h.data_offset + h.data_bytes;
    uint8_t *img = malloc(img_len ? img_len : 1);
    if (!img) abort();
    memcpy(img, p, m);
    for (size_t i = m; i < img_len; i++) img[i] = (uint8_t)(i % 13 != 0);   /* background, some ink */
    const char *names[2] = {"images.npy", "labels.npy"};
    const uint8_t *data[2] = {img, p + m};
    const size_t lens[2] = {img_len, n - m};
    fz_zip_write(path, names, data, lens, n > m ? 2 : 1, mode & 128);
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t tsv_len = (size_t)data[0] | (size_t)data[1] << 8;
    const unsigned mode = data[2];
    data += 3, size -= 3;
    if (tsv_len > size) tsv_len = size;
    fz_write("alphabet_ranges.tsv", data, tsv_len);
    const char *npz = fz_write("images_background.npz", data + tsv_len, size - tsv_len);
    if (mode & 32) npz_structured(data + tsv_len, size - tsv_len, mode, npz);
    fz_omniglot_load(mode & 16 ? npz : fz_tmpdir(), mode, "B, A");
    return 0;
}
