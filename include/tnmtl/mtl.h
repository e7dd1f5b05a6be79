/* tnmtl/mtl.h - the multi-task model, its objective and its trainer.
 *
 * T task networks of one architecture (tnmtl/net.h) whose output layers are
 * sized per task.  All parameters of all tasks live in ONE float buffer,
 * laid out layer by layer so that "layer k of every task" is one block:
 *
 *   parameter layer k, task-specific:  weights [T][n_w]    then biases [T][n_b]
 *   parameter layer k, shared (UD):    weights [n_w]       then biases [n_b]
 *   output layer (sizes differ):       weights of task 0..T-1, then biases
 *
 * Gradients and optimiser moments mirror this layout.  Per-task views
 * (tnmtl_layer_params) point into the blocks, so a task network runs on
 * them unchanged, and a hard-shared layer's gradient accumulates the
 * contributions of every task by construction.
 *
 * Objective (what tnmtl minimises):
 *   J(theta) = (1/T) sum_t L_t(theta_t)
 *              + sum_{k stacked} sum_i gamma_{k,i} ||W_k unfolding_i||_*
 *              + (1/T) sum_t wd sum_{k shareable} ||W_{k,t}||_F^2
 * L_t is task t's mean loss over its minibatch (softmax cross-entropy for
 * classification, mean squared error for regression); W_k is the stacked
 * tensor of layer k's weights, shape (weight shape..., T).  The data term is
 * the mean over tasks, so gamma weighs the norms against the loss of an
 * average task whatever the number of tasks (sum_task_losses = 1 gives the
 * plain sum instead).  With gamma = 0 (or method STL) the tasks are
 * independent networks: each task's gradient is its own loss's, scaled by
 * 1/T, which Adam's per-parameter normalisation cancels.  Biases are not
 * stacked (as in the paper).  The last term, weight decay (off by default:
 * tnmtl_mtl_set_weight_decay), is an L2 penalty on every task's weights of
 * the shareable layers, the weights the norms act on, weighted like the
 * task losses (1/T, or 1 with sum_task_losses); a hard-shared (UD) layer
 * counts once per task.  It regularises any method, STL included, so the
 * norms can be compared with a penalised STL (docs/design.md).
 *
 * Shareable layers: every parameter layer except the output layer; when the
 * architecture has no hidden parameter layer and all tasks have the same
 * number of outputs (a linear multi-task model), the output layer itself is
 * shareable - then LAF is classic matrix trace-norm multi-task learning.
 */
#ifndef TNMTL_MTL_H
#define TNMTL_MTL_H

#include <stdint.h>

#include "tnmtl/dataset.h"
#include "tnmtl/dist.h"
#include "tnmtl/error.h"
#include "tnmtl/net.h"
#include "tnmtl/norm.h"
#include "tnmtl/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TNMTL_MAX_TASKS 4096
#define TNMTL_MAX_LAYERS 64

typedef enum tnmtl_method {
    TNMTL_METHOD_STL,     /* independent networks, no regulariser          */
    TNMTL_METHOD_UD,      /* first ud_share shareable layers hard-shared    */
    TNMTL_METHOD_LAF,     /* all shareable layers stacked, LAF norm         */
    TNMTL_METHOD_TUCKER,
    TNMTL_METHOD_TT
} tnmtl_method;

const char *tnmtl_method_name(tnmtl_method m);   /* "stl", "ud", "laf", "tucker", "tt" */
tnmtl_status tnmtl_method_parse(const char *s, tnmtl_method *m, tnmtl_error *err);

typedef struct tnmtl_mtl_config {
    const char *arch;            /* architecture string (tnmtl/net.h)          */
    tnmtl_activation act;
    int in_h, in_w, in_c;
    int n_tasks;
    const int *n_out;            /* [n_tasks] outputs (classes) per task        */
    tnmtl_target_kind kind;      /* loss: cross-entropy or MSE                  */
    tnmtl_method method;
    int ud_share;                /* UD: number of leading shareable layers shared */
    double gamma;                /* regulariser weight of every term            */
    /* Optional per-layer, per-term weights: gamma_table[k * TNMTL_NORM_MAX_NDIM + i]
     * for shareable layer k (0-based among shareable layers) and term i; NULL: gamma. */
    const double *gamma_table;
    int sum_task_losses;         /* 1: data term is sum_t L_t instead of the mean */
    /* An approximation, off by default (0 or 1: the regulariser is exact at
     * every step).  k > 1: tnmtl_mtl_objective computes the regulariser's
     * value and subgradient at the first step of each period of k steps
     * (steps 0, k, 2k, ...) and reuses them for the other k - 1 steps, which
     * divides the norms' cost by k.  A run resumed inside a period computes
     * them at the resume step instead, so resuming is bit-exact only at a
     * multiple of k (use a --save-every that is one). */
    int reg_every;
} tnmtl_mtl_config;

/* One parameter block: one layer's weights or biases for all tasks. */
typedef struct tnmtl_param_block {
    int layer;                   /* index in the task network                   */
    int shareable;               /* the layer may be shared / stacked           */
    int shared;                  /* one copy for all tasks (UD)                 */
    int stacked;                 /* regularised by the tensor norm              */
    int64_t w_offset, b_offset;  /* into the parameter buffer                   */
    int64_t n_w, n_b;            /* per task (output layer: of task 0)          */
    int ndim;                    /* stacked tensor: weight dims + task axis     */
    int64_t shape[TNMTL_NORM_MAX_NDIM];
    double gamma[TNMTL_NORM_MAX_NDIM];
} tnmtl_param_block;

typedef struct tnmtl_mtl {
    tnmtl_mtl_config cfg;        /* arch and n_out point to copies owned here   */
    char *arch;
    int *n_out;                  /* [n_tasks]                                   */
    int n_tasks, n_layers;
    tnmtl_net **nets;            /* [n_tasks] task networks                     */
    int n_blocks;                /* parameter layers                            */
    tnmtl_param_block *blocks;   /* [n_blocks]                                  */
    int64_t n_params;
    float *params;               /* [n_params] the one parameter buffer         */
    float *grads;                /* [n_params] mirror                           */
    tnmtl_layer_params *view;    /* [n_tasks][n_layers] into params             */
    tnmtl_layer_params *gview;   /* [n_tasks][n_layers] into grads              */
    float *stack, *stack_grad;   /* scratch for one stacked tensor              */
    /* Task-parallel execution (tnmtl_mtl_set_threads): tasks are spread over
     * n_threads workers, each with its own activation workspace; BLAS runs
     * single-threaded inside a worker.  Hard-shared gradients go to per-task
     * slices of shared_grads and are summed in task order, so results are
     * bit-identical for any number of threads. */
    int n_threads;
    struct tnmtl_mtl_worker *workers; /* [n_threads], private to mtl.c      */
    int64_t n_shared;            /* parameters in hard-shared blocks            */
    float *shared_grads;         /* [n_tasks][n_shared] or NULL                 */
    /* cfg.reg_every > 1: the regulariser computed at step reg_step (-1: none)
     * and the last step the objective ran (reuse needs consecutive steps) */
    float *reg_cache;            /* stacked blocks' weight subgradients, task-major, block after block */
    double reg_value;
    int64_t reg_step, reg_last;
    /* A distributed run (tnmtl/dist.h, tnmtl_mtl_set_dist; dist NULL: one
     * process): this process computes tasks task_begin .. task_end-1, process
     * r tasks dist_begin[r] .. dist_begin[r+1]-1. */
    tnmtl_dist *dist;
    int *dist_begin;             /* [P+1]                                       */
    int task_begin, task_end;
    int dist_split_norms;        /* tnmtl_mtl_set_dist_norm                     */
    void *dist_norm_scratch;     /* the split norm's buffers, kept between steps */
    size_t dist_norm_scratch_bytes;
    double weight_decay;         /* tnmtl_mtl_set_weight_decay (0: none)        */
} tnmtl_mtl;

tnmtl_status tnmtl_mtl_create(const tnmtl_mtl_config *cfg, tnmtl_mtl **out, tnmtl_error *err);
void tnmtl_mtl_free(tnmtl_mtl *m);
/* Initialises every task's parameters from the seed (task t uses stream t;
 * shared layers use the stream of task 0). */
tnmtl_status tnmtl_mtl_init(tnmtl_mtl *m, uint64_t seed, tnmtl_error *err);
int tnmtl_mtl_n_stacked(const tnmtl_mtl *m);
/* Number of worker threads for the per-task work (default: the number of
 * online CPUs, at most the number of tasks). */
tnmtl_status tnmtl_mtl_set_threads(tnmtl_mtl *m, int n_threads, tnmtl_error *err);

/* Weight decay wd >= 0 (finite): the objective's L2 term above, added to the
 * regulariser's value that tnmtl_mtl_objective returns (0, the default: none). */
tnmtl_status tnmtl_mtl_set_weight_decay(tnmtl_mtl *m, double wd, tnmtl_error *err);

/* Spreads the tasks over the processes of d (tnmtl/dist.h): contiguous
 * blocks balanced by task_weight[n_tasks] (training examples; NULL: equal),
 * this process computing its own block.  From then on tnmtl_train,
 * tnmtl_mtl_objective and tnmtl_mtl_evaluate are collective; m->params holds
 * the whole model after tnmtl_train returns (any way) and after
 * tnmtl_mtl_dist_sync.  d must outlive m.  NULL or one process: no-op. */
tnmtl_status tnmtl_mtl_set_dist(tnmtl_mtl *m, tnmtl_dist *d, const int64_t *task_weight, tnmtl_error *err);
/* How a distributed model evaluates its norms.  split = 0 (default): every
 * process evaluates the whole norm from the gathered stacked weights, so the
 * run is bit-identical to one process.  split = 1: each term whose Gram
 * matrix is a sum over task blocks (Tucker's non-task modes and the TT terms
 * with fewer rows than columns, the task mode when the tasks outnumber a
 * task's weights) is computed from each process's own tasks, their Gram
 * parts summed in rank order, and only the other terms need the gathered
 * weights; from 3 processes on, the task mode with fewer tasks than a
 * task's weights is split by rows of its T x T Gram.  Less work and traffic
 * per process, agreement with one process to rounding (docs/performance.md,
 * "Distributed training"). */
void tnmtl_mtl_set_dist_norm(tnmtl_mtl *m, int split);
/* Collective: every process receives the parameters of every task, so each
 * holds the whole model as one process would (to report or evaluate it);
 * unless opt is NULL, process 0 also receives the optimiser state of every
 * task: its opt then holds all of it (tnmtl_optim_set_ranges with NULL, a
 * transient n_params-sized m and v, to save a checkpoint), the others keep
 * theirs (each must hold at least its own parameters', as
 * tnmtl_mtl_own_optim leaves it).  tnmtl_train calls it at each checkpoint
 * (process 0 holds only its own part again after the callback) and when all
 * processes stop together (process 0 keeps the whole state, to save it). */
tnmtl_status tnmtl_mtl_dist_sync(tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err);
/* Makes opt (of m->n_params parameters) hold the state of the parameters
 * this process steps only (tnmtl_optim_set_ranges): its tasks' slices of
 * the task-specific blocks (weights [task_begin, task_end) of each block,
 * then its biases) and the whole of each hard-shared block, at most
 * 4 TNMTL_MAX_LAYERS ranges; of all of them without a tnmtl_dist (or with
 * one process).  opt->n_held is then about n_params / P plus the shared
 * blocks.  The state of those parameters is kept (a checkpoint loaded into
 * the whole layout first, or into this one directly: tnmtl_checkpoint_load
 * fills the ranges held).  tnmtl_train calls it on a distributed model. */
tnmtl_status tnmtl_mtl_own_optim(const tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err);

/* Copies stacked block b into out[n_w * T] with the task axis last; the
 * reverse adds a task-last gradient into the task-major gradient block. */
void tnmtl_mtl_stack(const tnmtl_mtl *m, const tnmtl_param_block *b, const float *src, float *out);
void tnmtl_mtl_unstack_add(const tnmtl_mtl *m, const tnmtl_param_block *b, const float *in, float *dst);

/* Regulariser: value, and its subgradient ADDED into m->grads when add_grad. */
tnmtl_status tnmtl_mtl_regulariser(tnmtl_mtl *m, int add_grad, double *value, tnmtl_error *err);

/* Per-step progress reported to a callback. */
typedef struct tnmtl_progress {
    int64_t step, steps;         /* steps done, total                           */
    double loss;                 /* sum of task losses of this step             */
    double reg;                  /* regulariser value (norms and weight decay)  */
    double elapsed;              /* seconds since training started              */
} tnmtl_progress;
typedef void (*tnmtl_progress_fn)(void *user, const tnmtl_progress *p);
/* Called to save a checkpoint after `step` steps; returns non-OK to stop. */
typedef tnmtl_status (*tnmtl_checkpoint_fn)(void *user, int64_t step, tnmtl_error *err);

typedef struct tnmtl_train_config {
    int64_t steps;               /* total steps (training stops at step == steps) */
    int batch;                   /* examples per task per step; 0 = full batch  */
    uint64_t seed;               /* minibatch order                             */
    int64_t save_every;          /* checkpoint period in steps (0: only at end) */
    tnmtl_progress_fn progress;  /* optional                                    */
    void *progress_user;
    tnmtl_checkpoint_fn checkpoint; /* optional                                 */
    void *checkpoint_user;
    const volatile int *stop;    /* optional: training stops when *stop != 0     */
} tnmtl_train_config;

/* Runs from opt->step to cfg->steps.  The minibatch of task t at step s is a
 * pure function of (seed, t, s), so a resumed run sees the same batches.
 * A non-finite loss or regulariser stops with TNMTL_ERR_NUMERIC naming the
 * step, before the parameters are touched.  On a distributed model (with
 * tnmtl_mtl_set_dist) opt keeps only this process's state from the start
 * (tnmtl_mtl_own_optim); at each checkpoint, and when all processes stop
 * together, process 0's opt holds the whole state (tnmtl_mtl_dist_sync)
 * for the checkpoint callback, which should therefore run on process 0. */
tnmtl_status tnmtl_train(tnmtl_mtl *m, tnmtl_optim *opt, const tnmtl_dataset *ds,
                         const tnmtl_split *split, const tnmtl_train_config *cfg, tnmtl_error *err);

/* One step's objective at the current parameters: *loss the data term,
 * *reg the norms' value plus weight decay's, and the gradient of their sum
 * in m->grads (cleared first).  Exposed for gradient checks and tools. */
tnmtl_status tnmtl_mtl_objective(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                                 uint64_t seed, int64_t step, int batch, double *loss, double *reg,
                                 tnmtl_error *err);

/* Evaluation on one part of the split: per-task accuracy (classification)
 * or RMSE (regression) into metric[n_tasks], and the mean loss. */
tnmtl_status tnmtl_mtl_evaluate(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                                tnmtl_part part, double *metric, double *mean_loss, tnmtl_error *err);

/* The minibatch of task t at step s: idx[n] (n = min(batch, n_train) or
 * all); perm is scratch for n_train ints (task t's training examples). */
int tnmtl_batch_indices(const tnmtl_split *split, int t, uint64_t seed, int64_t step, int batch,
                        int64_t *idx, int *perm);

#ifdef __cplusplus
}
#endif
#endif
