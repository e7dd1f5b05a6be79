/* fuzz_pngzip.c - the Omniglot PNG loader (format B): a zip of
 * alphabet/characterNN/IIII_DD.png members (libzip, libpng), through
 * tnmtl_omniglot_load on a file in /dev/shm.
 * Input: byte 0 = options (bits 0-1 image size 105/28/7/1, bit 2 an
 * alphabet list, bit 3 the first alphabet only, bit 4 the zip given as a
 * folder's images_evaluation.zip instead of by its path, bit 5
 * structured), then:
 *   raw mode         the zip itself;
 *   structured mode  members, each "NAME\n", 2 bytes (little-endian) =
 *                    length N, N bytes; the harness fixes the PNG chunk
 *                    CRCs and zips them (bit 6: stored, else deflated),
 *                    so mutations reach the names and the PNG headers. */
#define FZ_WANT_ZIP 1
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const char *zip = fz_write(mode & 16 ? "images_evaluation.zip" : "in.zip", data + 1, size - 1);
    if (mode & 32) fz_zip_members(data + 1, size - 1, zip, mode & 64, 1);
    fz_omniglot_load(mode & 16 ? fz_tmpdir() : zip, mode, "Beta,Alpha");
    return 0;
}
