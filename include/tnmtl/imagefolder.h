/* tnmtl/imagefolder.h - a folder of images as a multi-task dataset.
 *
 * Layout DIR/TASK/CLASS/FILE, as torchvision's ImageFolder with a folder per
 * task above it: one task per folder of DIR, one class per folder of a task
 * (0-based in byte order of the names, which is code-point order for UTF-8),
 * the images of a class in byte order of their names; images in subfolders
 * of a class folder belong to that class (a folder's files first, then its
 * subfolders, each sorted).  Names starting with '.' are skipped (hidden
 * files, .DS_Store, .ipynb_checkpoints).  Symbolic links are followed; a
 * link that leads back to a folder above it is refused as a loop.
 *
 * Files: PNG (8 or 16 bit, grey, RGB or palette, with or without alpha) and
 * JPEG, recognised by their content, decoded as described in src/image.h
 * (alpha over white; colour to grey by ITU-R 601 luma).  Pixels are uint8,
 * pixel_scale 1/255, offset 0 (inverted to 255 - v with opt.invert).
 *
 * Refused, with a message naming the folder or file: an empty DIR, task or
 * class folder, a task with one class, a file where a task or class folder
 * belongs, an empty (0-byte), truncated, corrupt or non-image file, images
 * of different sizes without opt.size, task or class names that are not
 * UTF-8 or hold control characters, symbolic-link loops, more pixels than
 * max_bytes (refused before decoding, with the estimate).
 *
 * Loading reads every file twice, in parallel: headers (kind, size,
 * colour), then, after the memory check, the pixels.
 */
#ifndef TNMTL_IMAGEFOLDER_H
#define TNMTL_IMAGEFOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "tnmtl/dataset.h"
#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress of a load: stage "checking" (headers) or "decoding", files done
 * out of total.  Called from a worker thread, never two at once. */
typedef void (*tnmtl_load_progress_fn)(void *user, const char *stage, int64_t done, int64_t total);
/* One bad file or folder (the message names it). */
typedef void (*tnmtl_bad_input_fn)(void *user, const char *message);

/* A zeroed struct (or opt = NULL) means: native size, native channels,
 * all CPUs, 4 GiB limit, no callbacks. */
typedef struct tnmtl_imagefolder_options {
    int size;                  /* 0: the images' own size (all must agree); else 1..4096:
                                * every image resized to S x S by area averaging */
    int channels;              /* 0: 1 if every image is grey, else 3; or 1 / 3 */
    int invert;                /* store 255 - v (ink on paper, as Omniglot)       */
    int threads;               /* 0: all CPUs                                      */
    size_t max_bytes;          /* refuse pixel arrays larger than this; 0 = 4 GiB  */
    tnmtl_load_progress_fn progress;
    void *progress_user;
    tnmtl_bad_input_fn bad_input; /* if set, every problem is reported (reading
                                   * every file) before the load fails          */
    void *bad_input_user;
    tnmtl_input_select inputs; /* zeroed: every task's images; else only the
                                * selected tasks' files are read (their headers
                                * give the shape, then agree_shape), the others'
                                * never opened (tnmtl/dataset.h)             */
} tnmtl_imagefolder_options;

/* Loads DIR into out (zeroed first; freed again on failure).  Task names are
 * the task folders', class names (out->class_names) the class folders'.
 * On failure err holds the first problem and, when there were more, their
 * count. */
tnmtl_status tnmtl_imagefolder_load(const char *dir, const tnmtl_imagefolder_options *opt, tnmtl_dataset *out,
                                    tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
