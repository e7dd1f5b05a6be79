/* tnmtl/checkpoint.h - saving and restoring the whole training state.
 *
 * A checkpoint is one safetensors file: tensors "params" [n_params] and the
 * optimiser moments "optim.m" / "optim.v" [n_params] (F32, the layout of
 * tnmtl/mtl.h), and metadata: format "tnmtl-checkpoint", version, the step,
 * the optimiser kind, the model signature (architecture, outputs per task,
 * method) and the caller's run configuration as a JSON string.  Minibatches
 * are a pure function of (seed, task, step), so this is the whole state: a
 * resumed run continues bit for bit.  Writes are atomic (temp file, fsync,
 * rename): a killed run leaves the previous checkpoint intact.
 * Weights can be read with numpy alone (docs/checkpoints.md).
 */
#ifndef TNMTL_CHECKPOINT_H
#define TNMTL_CHECKPOINT_H

#include "tnmtl/error.h"
#include "tnmtl/mtl.h"
#include "tnmtl/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_CHECKPOINT_FORMAT "tnmtl-checkpoint"
#define TNMTL_CHECKPOINT_VERSION 1
#define TNMTL_CHECKPOINT_FILE "checkpoint.safetensors"

/* opt may be NULL (weights only); else it must hold the whole optimiser
 * state (opt->ranges NULL: on a distributed model, process 0 after
 * tnmtl_mtl_dist_sync), or the save is refused (TNMTL_ERR_INVALID). */
tnmtl_status tnmtl_checkpoint_save(const char *path, const tnmtl_mtl *m, const tnmtl_optim *opt,
                                   const char *config_json, tnmtl_error *err);
/* The run configuration stored in the checkpoint (malloc'd string). */
tnmtl_status tnmtl_checkpoint_read_config(const char *path, char **config_json, tnmtl_error *err);
/* Restores the parameters (and, if opt is not NULL, the optimiser state and
 * step) into a model built from that configuration.  The file holds the
 * whole optimiser state; an opt holding some ranges only
 * (tnmtl_optim_set_ranges, tnmtl_mtl_own_optim) takes their part of it.  A foreign file, another
 * version, a different model signature, wrong sizes or non-finite values are
 * refused with a message, and m / opt are left untouched. */
tnmtl_status tnmtl_checkpoint_load(const char *path, tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err);
/* The model signature a checkpoint of m stores (metadata "signature":
 * architecture, activation, input shape, target kind, method, sharing,
 * outputs per task) into buf[cap]; a checkpoint loads only into a model of
 * the same signature.  Callers use it to tag other files of a run. */
void tnmtl_checkpoint_signature(const tnmtl_mtl *m, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
