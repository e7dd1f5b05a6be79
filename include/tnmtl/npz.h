/* tnmtl/npz.h - numpy arrays (numpy.savez / savez_compressed) as a
 * multi-task dataset.
 *
 * Arrays (members NAME.npy of the .npz; any other member is refused):
 *   x           (N, H, W), (N, H, W, C) or (N, D): uint8 -> pixels
 *               (pixel_scale 1/255, as image folders), float32 / float64 ->
 *               features (1 x 1 x D for (N, D))
 *   y           (N): integers (int32 / int64 / uint8) -> class labels, or
 *               floats -> regression targets
 *   task        (N): integers 0 .. T-1, every task with at least one row
 *   task_names  optional (T): strings (str or bytes)
 *   split       optional (N): "train" / "validation" (or "val") / "test",
 *               or integers 0 / 1 / 2; a fixed split (tnmtl_dataset.part)
 *
 * The rows are grouped by task, keeping their order within a task.  Each
 * class of a task is 0 .. max label of that task; tnmtl_dataset_validate
 * names a class with no example.  Messages name the file and the array:
 * arrays of different lengths, a wrong dtype or shape, labels or task ids
 * out of range, unknown split names.  The pixel or feature array is
 * checked against max_bytes before it is read, and streamed from the zip
 * into place.
 */
#ifndef TNMTL_NPZ_H
#define TNMTL_NPZ_H

#include <stddef.h>

#include "tnmtl/dataset.h"
#include "tnmtl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* max_bytes: refuse a dataset whose pixels or features need more; 0 = 4 GiB. */
tnmtl_status tnmtl_npz_load(const char *path, size_t max_bytes, tnmtl_dataset *out, tnmtl_error *err);

#ifdef __cplusplus
}
#endif
#endif
