/* tnmtl.h - deep multi-task learning with tensor trace-norm regularisation.
 *
 * T related tasks each get a network of one common architecture.  For every
 * shareable layer the T per-task weight tensors are stacked with the task
 * axis last, and a tensor trace norm (LAF, Tucker or Tensor-Train) on that
 * stack pulls the tasks toward sharing parameters where the data allows
 * (Yang & Hospedales, "Trace Norm Regularised Deep Multi-Task Learning").
 *
 * Modules (one header each):
 *   tnmtl/error.h     status codes, error messages, logging hook
 *   tnmtl/rng.h       seeded portable random generator
 *   tnmtl/net.h       one task's network: layers, forward, backward, losses
 *   tnmtl/optim.h     SGD with momentum, Adam over flat parameter buffers
 *   tnmtl/norm.h      tensor trace norms, subgradients, proximal operator
 *   tnmtl/npy.h       .npy arrays
 *   tnmtl/dataset.h   multi-task datasets and splits
 *   tnmtl/csv.h       multi-task tabular data from CSV files
 *   tnmtl/imagefolder.h  DIR/TASK/CLASS/image folders (PNG, JPEG)
 *   tnmtl/npz.h       numpy arrays x, y, task (numpy.savez)
 *   tnmtl/synthetic.h synthetic multi-task images with known task groups
 *   tnmtl/safetensors.h  safetensors files (named tensors + metadata)
 *
 * A minimal single-task use:
 *
 *   tnmtl_error err;
 *   tnmtl_net *net;
 *   tnmtl_net_config cfg = {"conv8x5,pool2,fc64", 28, 28, 1, 10, TNMTL_ACT_TANH};
 *   if (tnmtl_net_create(&cfg, &net, &err)) { fprintf(stderr, "%s\n", err.msg); ... }
 *   float *theta = calloc(tnmtl_net_param_count(net), sizeof *theta);
 *   tnmtl_layer_params p[tnmtl_net_n_layers(net)];
 *   tnmtl_net_bind(net, theta, p);
 *   tnmtl_rng rng; tnmtl_rng_seed(&rng, 42);
 *   tnmtl_net_init_params(net, p, &rng);
 *   ... tnmtl_net_forward / tnmtl_softmax_xent / tnmtl_net_backward ...
 *
 * Errors: every fallible call returns a tnmtl_status and fills a tnmtl_error;
 * the library never exits.
 */
#ifndef TNMTL_H
#define TNMTL_H

#define TNMTL_VERSION "0.1.0"

#include "tnmtl/error.h"
#include "tnmtl/rng.h"
#include "tnmtl/net.h"
#include "tnmtl/optim.h"
#include "tnmtl/norm.h"
#include "tnmtl/npy.h"
#include "tnmtl/dataset.h"
#include "tnmtl/omniglot.h"
#include "tnmtl/csv.h"
#include "tnmtl/imagefolder.h"
#include "tnmtl/npz.h"
#include "tnmtl/synthetic.h"
#include "tnmtl/safetensors.h"

#endif
