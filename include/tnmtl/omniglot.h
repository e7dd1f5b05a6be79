/* tnmtl/omniglot.h - the Omniglot data set as a multi-task dataset.
 *
 * One task per alphabet, one class per character of that alphabet (0-based,
 * in the order of the official character ids), 20 drawings per character.
 * Two on-disk formats are read:
 *
 *   A (numpy)    a folder with images_background.npz and/or
 *                images_evaluation.npz and alphabet_ranges.tsv.  Each .npz
 *                holds images.npy, |b1 (chars, 20, 105, 105), 0 = ink, and
 *                optionally labels.npy (chars, 20), label = row.  The ranges
 *                file maps alphabets to character ids; a set's npz row is
 *                id - (smallest id of that set), e.g. id-1 for background,
 *                id-965 for evaluation.
 *   B (official) a folder with images_background.zip and/or
 *                images_evaluation.zip, or the path of one .zip: PNGs laid
 *                out [top/]alphabet/characterNN/IIII_DD.png (IIII the global
 *                character id, DD the drawing, 105x105, any PNG colour type).
 *                Alphabets are ordered by their smallest character id,
 *                characters by id, drawings by DD, which is the order of
 *                format A.
 *
 * A folder holding both formats is read as format A.  Both formats give
 * identical datasets for the same alphabets.
 *
 * Pixels: uint8, ink = 255, background = 0 (pixel_scale = 1/255,
 * pixel_offset = 0, so the network sees ink as 1.0).  A grey PNG value g
 * becomes 255 - g.  Images are in_h = in_w = S, in_c = 1, downsampled at load
 * time by exact area averaging (tnmtl_omniglot_downsample).
 *
 *   tnmtl_omniglot_options opt = {.size = 28, .alphabets = "Latin,Greek"};
 *   tnmtl_dataset ds;
 *   if (tnmtl_omniglot_load("../shared/data/omniglot", &opt, &ds, &err)) ...
 *   ... tnmtl_dataset_free(&ds);
 */
#ifndef TNMTL_OMNIGLOT_H
#define TNMTL_OMNIGLOT_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/dataset.h"
#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_OMNIGLOT_NATIVE 105   /* side of the original images */

typedef enum tnmtl_omniglot_sets {
    TNMTL_OMNIGLOT_SETS_ALL = 0,        /* every set the folder holds        */
    TNMTL_OMNIGLOT_SETS_BACKGROUND = 1, /* the 30 background alphabets       */
    TNMTL_OMNIGLOT_SETS_EVALUATION = 2  /* the 20 evaluation alphabets       */
} tnmtl_omniglot_sets;

/* A zeroed struct (or opt = NULL) means: all alphabets, native size. */
typedef struct tnmtl_omniglot_options {
    int size;                  /* side S of the loaded images: 0 = 105, else 1..105   */
    int first_alphabets;       /* 0 = all, else the first k alphabets in order        */
    const char *alphabets;     /* NULL or "" = all, else a comma list of names; the
                                * tasks follow the list's order.  Not with first_alphabets. */
    tnmtl_omniglot_sets sets;  /* folders only: which set(s) to read                  */
    size_t max_bytes;          /* refuse pixel arrays larger than this; 0 = 4 GiB     */
    tnmtl_input_select inputs; /* zeroed: every task's images; else only the selected
                                * tasks' PNGs are decoded, npz rows are read up to the
                                * last selected one (tnmtl/dataset.h)                */
} tnmtl_omniglot_options;

/* Loads Omniglot from path (a folder, a .npz or a .zip of PNGs) into out
 * (zeroed first; freed again on failure).  Messages name the file, the
 * member and the problem. */
tnmtl_status tnmtl_omniglot_load(const char *path, const tnmtl_omniglot_options *opt,
                                 tnmtl_dataset *out, tnmtl_error *err);

/* Area-averaging downsample of a square image: src[n][n] -> dst[s][s],
 * 1 <= s <= n <= 4096.  Output pixel (i, j) is the mean of the source over
 * the square [i*n/s, (i+1)*n/s) x [j*n/s, (j+1)*n/s), source pixels weighted
 * by their exact fractional coverage, rounded to nearest (halves up).
 * s == n copies.  Fails (TNMTL_ERR_INVALID) only on bad sizes. */
tnmtl_status tnmtl_omniglot_downsample(const uint8_t *src, int n, uint8_t *dst, int s,
                                       tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
