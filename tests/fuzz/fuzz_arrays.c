/* fuzz_arrays.c - the npz dataset loader (npz:FILE, src/npz.c): x, y,
 * task, task_names, split arrays in a zip, through tnmtl_npz_load on a file
 * in /dev/shm.
 * Input: byte 0 = options (bit 0 structured, bit 1 stored, else deflated),
 * then:
 *   raw mode         the .npz itself;
 *   structured mode  members, each "NAME\n", 2 bytes (little-endian) =
 *                    length N, N bytes (e.g. "x.npy\n" and an .npy file);
 *                    the harness zips them with correct CRCs, so mutations
 *                    reach the .npy headers and the arrays. */
#define FZ_WANT_ZIP 1
#include "fuzz_util.h"
#include "tnmtl/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned mode = data[0];
    const char *path = fz_write("in.npz", data + 1, size - 1);
    if (mode & 1) fz_zip_members(data + 1, size - 1, path, mode & 2, 0);
    tnmtl_dataset ds;
    tnmtl_error err = {0};
    tnmtl_status st = tnmtl_npz_load(path, 64u << 20, &ds, &err);
    fz_check_error(st, &err);
    if (st == TNMTL_OK) {
        tnmtl_split split;
        st = tnmtl_dataset_validate(&ds, &err);   /* may refuse, e.g. a class with no example */
        fz_check_error(st, &err);
        if (!st) {
            st = tnmtl_split_make(&ds, 0.5, 0.2, 1, &split, &err);
            fz_check_error(st, &err);
            if (!st) tnmtl_split_free(&split);
        }
    }
    tnmtl_dataset_free(&ds);
    return 0;
}
