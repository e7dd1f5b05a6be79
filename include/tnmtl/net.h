/* tnmtl/net.h - one task's network: layers, shapes, forward and backward.
 *
 * Memory layout (fixed, documented in docs/design.md):
 *   activations   NHWC, row-major: x[b][h][w][c]; a vector is [b][d].
 *                 Flattening NHWC to [b][h*w*c] is free (same memory).
 *   conv weights  [kh][kw][c_in][c_out]   (HWIO, the paper's H x W x C_in x C_out)
 *   conv bias     [c_out]
 *   fc weights    [d_in][d_out]           (the paper's D_in x D_out)
 *   fc bias       [d_out]
 * So stacking "layer k of T tasks" with the task axis last gives exactly the
 * paper's tensors (H x W x C_in x C_out x T, D_in x D_out x T).
 *
 * A network (tnmtl_net) is an immutable description built from an
 * architecture string.  Parameters are not owned by the net: they are passed
 * as a table of per-layer pointers (tnmtl_layer_params), so that one
 * contiguous buffer (tnmtl_net_bind) or a multi-task buffer where "layer k of
 * every task" is one block can be used alike.  Activations live in a
 * tnmtl_workspace sized for a maximum batch; one workspace serves any number
 * of nets whose workspace need it covers (for example the T task networks of
 * a multi-task model processed one after another).
 *
 * Backward functions ACCUMULATE (+=) into gradient buffers; clear them first.
 *
 * Every float entry point has a double twin (suffix _f64) that runs the same
 * code in double precision; it exists for finite-difference verification.
 */
#ifndef TNMTL_NET_H
#define TNMTL_NET_H

#include <stdint.h>

#include "tnmtl/error.h"
#include "tnmtl/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnmtl_layer_kind {
    TNMTL_LAYER_CONV,     /* 2-D convolution, stride 1, "valid" or "same"    */
    TNMTL_LAYER_MAXPOOL,  /* k x k max-pooling, stride k, floor              */
    TNMTL_LAYER_FC,       /* fully connected                                 */
    TNMTL_LAYER_TANH,
    TNMTL_LAYER_RELU,
    TNMTL_LAYER_FLATTEN   /* NHWC -> [b][h*w*c]; no data movement            */
} tnmtl_layer_kind;

typedef enum tnmtl_activation {
    TNMTL_ACT_TANH,       /* inserted after every conv and hidden fc         */
    TNMTL_ACT_RELU,
    TNMTL_ACT_NONE        /* only the activations written in the string      */
} tnmtl_activation;

typedef struct tnmtl_layer_info {
    tnmtl_layer_kind kind;
    int in_h, in_w, in_c;     /* input shape of one example (vector: 1,1,d)   */
    int out_h, out_w, out_c;  /* output shape of one example                  */
    int ksize;                /* conv kernel size / pool size                 */
    int same_pad;             /* conv: 1 for "same" padding, 0 for "valid"    */
    int is_output;            /* 1 for the final fc layer                     */
    int64_t n_weight;         /* number of weights (0: no parameters)         */
    int64_t n_bias;
    int weight_ndim;          /* conv 4: [kh,kw,c_in,c_out]; fc 2: [d_in,d_out] */
    int weight_shape[4];
    int64_t macs;             /* multiply-adds of the forward pass, one example */
} tnmtl_layer_info;

typedef struct tnmtl_net_config {
    const char *arch;         /* e.g. "conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64" */
    int in_h, in_w, in_c;     /* input example shape (tabular data: 1, 1, d)  */
    int n_out;                /* size of the output fc layer appended to arch */
    tnmtl_activation act;     /* activation after each conv / hidden fc       */
} tnmtl_net_config;

typedef struct tnmtl_net tnmtl_net;

/* Per-layer parameter pointers; w and b are NULL for parameter-free layers. */
typedef struct tnmtl_layer_params     { float  *w, *b; } tnmtl_layer_params;
typedef struct tnmtl_layer_params_f64 { double *w, *b; } tnmtl_layer_params_f64;

/* Architecture string grammar (comma separated, case sensitive):
 *   convFxK       F filters of K x K, valid padding   (conv8x5)
 *   convFxK:same  same padding (odd K)
 *   poolK         K x K max-pooling, stride K, floor  (pool2)
 *   fcN           fully connected with N outputs      (fc64)
 *   tanh | relu   explicit activation
 *   flatten       explicit flatten (inserted automatically before fc)
 * The output layer fc(n_out) is appended; no activation follows it.
 * cfg.act is inserted after every conv and fc of the string, unless the next
 * token is an explicit tanh or relu (which then replaces it).
 * Errors name the token, its position in the string ("layer 3 'conv16x3'",
 * counted from 1) and the shapes involved. */
tnmtl_status tnmtl_net_create(const tnmtl_net_config *cfg, tnmtl_net **out, tnmtl_error *err);
void tnmtl_net_free(tnmtl_net *net);

int tnmtl_net_n_layers(const tnmtl_net *net);
const tnmtl_layer_info *tnmtl_net_layer(const tnmtl_net *net, int i);
int64_t tnmtl_net_n_in(const tnmtl_net *net);        /* in_h*in_w*in_c      */
int tnmtl_net_n_out(const tnmtl_net *net);
int64_t tnmtl_net_param_count(const tnmtl_net *net); /* all weights and biases */
int64_t tnmtl_net_macs(const tnmtl_net *net);        /* forward MACs per example */
/* Human readable one-line-per-layer summary with shapes (for --verbose). */
void tnmtl_net_describe(const tnmtl_net *net, char *buf, size_t len);

/* Default contiguous layout: for each layer in order, weights then bias.
 * Fills table[n_layers] with pointers into buffer[param_count]. */
void tnmtl_net_bind(const tnmtl_net *net, float *buffer, tnmtl_layer_params *table);
void tnmtl_net_bind_f64(const tnmtl_net *net, double *buffer, tnmtl_layer_params_f64 *table);

/* Glorot-uniform (tanh/none) or He-normal (relu) weights, zero biases. */
void tnmtl_net_init_params(const tnmtl_net *net, const tnmtl_layer_params *p, tnmtl_rng *rng);

/* Activation memory for batches up to max_batch.
 * The layer kernels of a workspace spread their work over threads: as many
 * as $TNMTL_NUM_THREADS, else OpenBLAS's thread count, at most 8, fixed when
 * the workspace is created (the memory needed grows a little with it).
 * Results do not depend on the thread count. */
typedef struct tnmtl_workspace tnmtl_workspace;
size_t tnmtl_workspace_bytes(const tnmtl_net *net, int max_batch, int f64);
tnmtl_status tnmtl_workspace_create(const tnmtl_net *const *nets, int n_nets, int max_batch,
                                    int f64, tnmtl_workspace **out, tnmtl_error *err);
void tnmtl_workspace_free(tnmtl_workspace *ws);
/* Lowers the threads of this workspace's kernels (1 when several workspaces
 * already run in parallel threads); values are clamped to [1, the count at
 * creation].  Returns the count now in use. */
int tnmtl_workspace_set_threads(tnmtl_workspace *ws, int n_threads);

/* Forward pass of B examples x[B][n_in]; returns the output (logits)
 * [B][n_out], which lives in the workspace until the next call.  x is
 * copied.  Returns NULL (and does nothing) when the workspace does not fit:
 * B outside [1, max_batch], a net bigger than the workspace's, or the other
 * precision. */
const float *tnmtl_net_forward(const tnmtl_net *net, const tnmtl_layer_params *p,
                               tnmtl_workspace *ws, const float *x, int B);
/* Backward pass for the last forward: dout[B][n_out] is dLoss/dlogits.
 * Accumulates parameter gradients into g; dx[B][n_in] is written if not NULL.
 * g[i].w / g[i].b may be NULL to skip a gradient.  Without a matching
 * forward (same net, B and precision) it does nothing and logs a warning. */
void tnmtl_net_backward(const tnmtl_net *net, const tnmtl_layer_params *p,
                        const tnmtl_layer_params *g, tnmtl_workspace *ws,
                        const float *dout, float *dx, int B);

const double *tnmtl_net_forward_f64(const tnmtl_net *net, const tnmtl_layer_params_f64 *p,
                                    tnmtl_workspace *ws, const double *x, int B);
void tnmtl_net_backward_f64(const tnmtl_net *net, const tnmtl_layer_params_f64 *p,
                            const tnmtl_layer_params_f64 *g, tnmtl_workspace *ws,
                            const double *dout, double *dx, int B);

/* Losses.  Cross-entropy is averaged over the batch; MSE is the mean over all
 * B*D elements (as PyTorch's MSELoss).  dlogits / dout (optional) receives
 * the gradient of that mean. */
double tnmtl_softmax_xent(const float *logits, const int *labels, int B, int C, float *dlogits);
double tnmtl_softmax_xent_f64(const double *logits, const int *labels, int B, int C, double *dlogits);
double tnmtl_mse(const float *out, const float *target, int B, int D, float *dout);
double tnmtl_mse_f64(const double *out, const double *target, int B, int D, double *dout);

#ifdef __cplusplus
}
#endif
#endif
