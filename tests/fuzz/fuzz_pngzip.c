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

static void png_structured(const uint8_t *p, size_t n, unsigned mode, const char *path)
{
    enum { MAX_MEMBERS = 32 };
    char *names[MAX_MEMBERS];
    uint8_t *data[MAX_MEMBERS];
    size_t lens[MAX_MEMBERS];
    int k = 0;
    while (n > 0 && k < MAX_MEMBERS) {
        const uint8_t *nl = memchr(p, '\n', n);
        if (!nl || (size_t)(nl - p) + 3 > n) break;
        const size_t name_len = (size_t)(nl - p);
        size_t len = (size_t)nl[1] | (size_t)nl[2] << 8;
        const uint8_t *body = nl + 3;
        const size_t left = n - name_len - 3;
        if (len > left) len = left;
        names[k] = malloc(name_len + 1);
        data[k] = malloc(len ? len : 1);
        if (!names[k] || !data[k]) abort();
        memcpy(names[k], p, name_len);
        names[k][name_len] = '\0';
        memcpy(data[k], body, len);
        fz_png_fix_crcs(data[k], len);
        lens[k++] = len;
        p = body + len, n = left - len;
    }
    fz_zip_write(path, (const char *const *)names, (const uint8_t *const *)data, lens, k, mode & 64);
    for (int i = 0; i < k; i++) free(names[i]), free(data[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const char *zip = fz_write(mode & 16 ? "images_evaluation.zip" : "in.zip", data + 1, size - 1);
    if (mode & 32) png_structured(data + 1, size - 1, mode, zip);
    fz_omniglot_load(mode & 16 ? fz_tmpdir() : zip, mode, "Beta,Alpha");
    return 0;
}
