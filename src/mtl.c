/* mtl.c - the multi-task model: parameter layout, objective, trainer,
 * evaluation.  See include/tnmtl/mtl.h for the layout and the objective. */
#include "tnmtl/mtl.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_internal.h"
#include "dist_norm.h"
#include "tnmtl/rng.h"
#include "util.h"

/* Scratch of one worker thread: batch buffers and activation workspace. */
typedef struct tnmtl_mtl_worker {
    tnmtl_workspace *ws;
    int batch;                   /* batch the buffers hold                      */
    float *x;                    /* [batch][n_in]                               */
    float *dout;                 /* [batch][max n_out]                          */
    float *targets;              /* [batch]                                     */
    int *labels;                 /* [batch]                                     */
    int64_t *idx;                /* [batch]                                     */
    int *perm;                   /* [n_perm] minibatch permutation scratch      */
    int64_t n_perm;
} tnmtl_mtl_worker;

static void worker_free(tnmtl_mtl_worker *w)
{
    tnmtl_workspace_free(w->ws);
    free(w->x);
    free(w->dout);
    free(w->targets);
    free(w->labels);
    free(w->idx);
    free(w->perm);
    memset(w, 0, sizeof *w);
}

const char *tnmtl_method_name(tnmtl_method m)
{
    switch (m) {
    case TNMTL_METHOD_STL: return "stl";
    case TNMTL_METHOD_UD: return "ud";
    case TNMTL_METHOD_LAF: return "laf";
    case TNMTL_METHOD_TUCKER: return "tucker";
    case TNMTL_METHOD_TT: return "tt";
    }
    return "?";
}

tnmtl_status tnmtl_method_parse(const char *s, tnmtl_method *m, tnmtl_error *err)
{
    static const tnmtl_method all[] = {TNMTL_METHOD_STL, TNMTL_METHOD_UD, TNMTL_METHOD_LAF,
                                       TNMTL_METHOD_TUCKER, TNMTL_METHOD_TT};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (s && !strcmp(s, tnmtl_method_name(all[i]))) {
            *m = all[i];
            return TNMTL_OK;
        }
    return tnmtl_fail(err, TNMTL_ERR_INVALID, "unknown method '%s' (expected stl, ud, laf, tucker or tt)",
                      s ? s : "");
}

static int method_is_norm(tnmtl_method m)
{
    return m == TNMTL_METHOD_LAF || m == TNMTL_METHOD_TUCKER || m == TNMTL_METHOD_TT;
}

static tnmtl_norm_method norm_of(tnmtl_method m)
{
    return m == TNMTL_METHOD_TUCKER ? TNMTL_NORM_TUCKER : m == TNMTL_METHOD_TT ? TNMTL_NORM_TT : TNMTL_NORM_LAF;
}

void tnmtl_mtl_free(tnmtl_mtl *m)
{
    if (!m) return;
    if (m->nets)
        for (int t = 0; t < m->n_tasks; t++) tnmtl_net_free(m->nets[t]);
    free(m->nets);
    free(m->arch);
    free(m->n_out);
    free(m->blocks);
    free(m->params);
    free(m->grads);
    free(m->view);
    free(m->gview);
    free(m->stack);
    free(m->stack_grad);
    free(m->reg_cache);
    free(m->dist_norm_scratch);
    for (int w = 0; w < m->n_threads && m->workers; w++) worker_free(&m->workers[w]);
    free(m->workers);
    free(m->shared_grads);
    free(m->dist_begin);
    free(m);
}

/* Lays out the parameter blocks (see mtl.h) and fills the per-task views. */
static tnmtl_status layout_blocks(tnmtl_mtl *m, tnmtl_error *err)
{
    const tnmtl_net *net0 = m->nets[0];
    const int T = m->n_tasks;
    int n_param_layers = 0, n_hidden_param_layers = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net0, l);
        if (li->n_weight > 0) {
            n_param_layers++;
            if (!li->is_output) n_hidden_param_layers++;
        }
    }
    int same_out = 1;
    for (int t = 1; t < T; t++) same_out &= m->n_out[t] == m->n_out[0];
    const int output_shareable = n_hidden_param_layers == 0 && same_out;

    m->blocks = tnmtl_calloc((size_t)n_param_layers, sizeof *m->blocks, "parameter blocks", err);
    if (!m->blocks) return err ? err->status : TNMTL_ERR_NOMEM;

    int64_t off = 0, max_stack = 0;
    int shareable_index = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net0, l);
        if (li->n_weight == 0) continue;
        tnmtl_param_block *b = &m->blocks[m->n_blocks++];
        b->layer = l;
        b->shareable = !li->is_output || output_shareable;
        b->n_w = li->n_weight;
        b->n_b = li->n_bias;
        if (b->shareable) {
            int k = shareable_index++;
            b->shared = m->cfg.method == TNMTL_METHOD_UD && k < m->cfg.ud_share;
            b->stacked = method_is_norm(m->cfg.method);
            b->ndim = li->weight_ndim + 1;
            for (int d = 0; d < li->weight_ndim; d++) b->shape[d] = li->weight_shape[d];
            b->shape[li->weight_ndim] = T;
            int n_terms = tnmtl_norm_n_terms(norm_of(m->cfg.method), b->ndim);
            for (int i = 0; i < n_terms; i++)
                b->gamma[i] = m->cfg.gamma_table ? m->cfg.gamma_table[k * TNMTL_NORM_MAX_NDIM + i]
                                                 : m->cfg.gamma;
            if (b->stacked && b->n_w * T > max_stack) max_stack = b->n_w * T;
        }
        const int copies = b->shared ? 1 : T;
        b->w_offset = off;
        if (li->is_output) {
            /* Sizes differ per task: weights of every task, then biases. */
            int64_t w = 0, bias = 0;
            for (int t = 0; t < T; t++) {
                const tnmtl_layer_info *lt = tnmtl_net_layer(m->nets[t], l);
                w += lt->n_weight;
                bias += lt->n_bias;
            }
            b->b_offset = off + w;
            off += w + bias;
        } else {
            b->b_offset = off + copies * b->n_w;
            off += copies * (b->n_w + b->n_b);
        }
    }
    if (m->cfg.method == TNMTL_METHOD_UD && m->cfg.ud_share > shareable_index)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--share %d: the architecture has only %d shareable layers",
                          m->cfg.ud_share, shareable_index);
    m->n_params = off;
    m->params = tnmtl_calloc((size_t)off, sizeof(float), "parameters", err);
    m->grads = tnmtl_calloc((size_t)off, sizeof(float), "gradients", err);
    m->view = tnmtl_calloc((size_t)T * m->n_layers, sizeof *m->view, "parameter views", err);
    m->gview = tnmtl_calloc((size_t)T * m->n_layers, sizeof *m->gview, "gradient views", err);
    if (max_stack > 0) {
        m->stack = tnmtl_calloc((size_t)max_stack, sizeof(float), "stacked tensor", err);
        m->stack_grad = tnmtl_calloc((size_t)max_stack, sizeof(float), "stacked gradient", err);
        if (!m->stack || !m->stack_grad) return TNMTL_ERR_NOMEM;
    }
    if (!m->params || !m->grads || !m->view || !m->gview) return TNMTL_ERR_NOMEM;
    for (int i = 0; i < m->n_blocks; i++)
        if (m->blocks[i].shared) m->n_shared += m->blocks[i].n_w + m->blocks[i].n_b;
    if (m->n_shared) {
        m->shared_grads = tnmtl_calloc((size_t)T * (size_t)m->n_shared, sizeof(float), "shared gradients", err);
        if (!m->shared_grads) return TNMTL_ERR_NOMEM;
    }

    int64_t shared_off = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        int64_t wo = b->w_offset, bo = b->b_offset;
        for (int t = 0; t < T; t++) {
            const tnmtl_layer_info *lt = tnmtl_net_layer(m->nets[t], b->layer);
            tnmtl_layer_params *v = &m->view[(size_t)t * m->n_layers + b->layer];
            tnmtl_layer_params *g = &m->gview[(size_t)t * m->n_layers + b->layer];
            v->w = m->params + wo;
            v->b = m->params + bo;
            if (b->shared) {
                /* Task t's contribution goes to its own slice (summed later). */
                g->w = m->shared_grads + (size_t)t * m->n_shared + shared_off;
                g->b = g->w + b->n_w;
            } else {
                g->w = m->grads + wo;
                g->b = m->grads + bo;
                wo += lt->n_weight;
                bo += lt->n_bias;
            }
        }
        if (b->shared) shared_off += b->n_w + b->n_b;
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_create(const tnmtl_mtl_config *cfg, tnmtl_mtl **out, tnmtl_error *err)
{
    *out = NULL;
    if (cfg->n_tasks < 1 || cfg->n_tasks > TNMTL_MAX_TASKS)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "number of tasks %d is out of range [1, %d]", cfg->n_tasks,
                          TNMTL_MAX_TASKS);
    if (!(cfg->gamma >= 0) || !isfinite(cfg->gamma))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "gamma must be a finite number >= 0, not %g", cfg->gamma);
    if (cfg->reg_every < 0)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "reg_every must be >= 0, not %d", cfg->reg_every);
    if (cfg->method == TNMTL_METHOD_UD && cfg->ud_share < 0)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "--share must be >= 0, not %d", cfg->ud_share);
    tnmtl_mtl *m = calloc(1, sizeof *m);
    if (!m) return tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory creating the multi-task model");
    m->cfg = *cfg;
    m->reg_step = m->reg_last = -1;
    m->n_tasks = cfg->n_tasks;
    m->task_begin = 0;
    m->task_end = cfg->n_tasks;
    m->arch = strdup(cfg->arch ? cfg->arch : "");
    m->n_out = tnmtl_calloc((size_t)cfg->n_tasks, sizeof(int), "output sizes", err);
    m->nets = tnmtl_calloc((size_t)cfg->n_tasks, sizeof *m->nets, "task networks", err);
    tnmtl_status st = TNMTL_ERR_NOMEM;
    if (!m->arch || !m->n_out || !m->nets) goto fail;
    memcpy(m->n_out, cfg->n_out, (size_t)cfg->n_tasks * sizeof(int));
    m->cfg.arch = m->arch;
    m->cfg.n_out = m->n_out;
    for (int t = 0; t < m->n_tasks; t++) {
        tnmtl_net_config nc = {m->arch, cfg->in_h, cfg->in_w, cfg->in_c, m->n_out[t], cfg->act};
        st = tnmtl_net_create(&nc, &m->nets[t], err);
        if (st) {
            if (m->n_tasks > 1) tnmtl_error_prefix(err, "task %d", t);
            goto fail;
        }
    }
    m->n_layers = tnmtl_net_n_layers(m->nets[0]);
    if (m->n_layers > TNMTL_MAX_LAYERS) {
        st = tnmtl_fail(err, TNMTL_ERR_INVALID, "the architecture has %d layers, more than %d", m->n_layers,
                        TNMTL_MAX_LAYERS);
        goto fail;
    }
    st = layout_blocks(m, err);
    if (!st) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        st = tnmtl_mtl_set_threads(m, cpus > 0 ? (int)cpus : 1, err);
    }
    if (st) goto fail;
    *out = m;
    return TNMTL_OK;
fail:
    tnmtl_mtl_free(m);
    return st;
}

tnmtl_status tnmtl_mtl_init(tnmtl_mtl *m, uint64_t seed, tnmtl_error *err)
{
    /* Shared blocks alias task 0's memory; tasks t > 0 initialise theirs into
     * scratch so every task draws the same stream whatever the method. */
    int64_t scratch_n = 0;
    for (int i = 0; i < m->n_blocks; i++)
        if (m->blocks[i].shared) scratch_n += m->blocks[i].n_w + m->blocks[i].n_b;
    float *scratch = tnmtl_calloc((size_t)scratch_n, sizeof(float), "initialisation scratch", err);
    if (!scratch) return TNMTL_ERR_NOMEM;
    tnmtl_rng base;
    tnmtl_rng_seed(&base, seed);
    for (int t = 0; t < m->n_tasks; t++) {
        tnmtl_rng rng = tnmtl_rng_split(&base, (uint64_t)t);
        tnmtl_layer_params views[TNMTL_MAX_LAYERS];
        memcpy(views, &m->view[(size_t)t * m->n_layers], (size_t)m->n_layers * sizeof *views);
        int64_t so = 0;
        for (int i = 0; i < m->n_blocks && t > 0; i++) {
            const tnmtl_param_block *b = &m->blocks[i];
            if (!b->shared) continue;
            views[b->layer].w = scratch + so;
            views[b->layer].b = scratch + so + b->n_w;
            so += b->n_w + b->n_b;
        }
        tnmtl_net_init_params(m->nets[t], views, &rng);
    }
    free(scratch);
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    return TNMTL_OK;
}

int tnmtl_mtl_n_stacked(const tnmtl_mtl *m)
{
    int n = 0;
    for (int i = 0; i < m->n_blocks; i++) n += m->blocks[i].stacked;
    return n;
}

/* src: task-major block [T][n_w] -> out: task-last tensor [n_w][T]. */
void tnmtl_mtl_stack(const tnmtl_mtl *m, const tnmtl_param_block *b, const float *src, float *out)
{
    const int T = m->n_tasks;
    const int64_t n = b->n_w;
    enum { TILE = 64 };
    for (int64_t i0 = 0; i0 < n; i0 += TILE) {
        const int64_t i1 = i0 + TILE < n ? i0 + TILE : n;
        for (int t = 0; t < T; t++) {
            const float *s = src + (int64_t)t * n;
            for (int64_t i = i0; i < i1; i++) out[i * T + t] = s[i];
        }
    }
}

void tnmtl_mtl_unstack_add(const tnmtl_mtl *m, const tnmtl_param_block *b, const float *in, float *dst)
{
    const int T = m->n_tasks;
    const int64_t n = b->n_w;
    enum { TILE = 64 };
    for (int64_t i0 = 0; i0 < n; i0 += TILE) {
        const int64_t i1 = i0 + TILE < n ? i0 + TILE : n;
        for (int t = 0; t < T; t++) {
            float *d = dst + (int64_t)t * n;
            for (int64_t i = i0; i < i1; i++) d[i] += in[i * T + t];
        }
    }
}

/* Does block b's norm need every task's weights on every process?  Not
 * when the norm is split (tnmtl_mtl_set_dist_norm) and each of its weighted
 * terms is a sum over task blocks (dist_norm.h). */
static int block_needs_all_weights(const tnmtl_mtl *m, const tnmtl_param_block *b)
{
    if (!m->dist_split_norms) return 1;
    const tnmtl_norm_method nm = norm_of(m->cfg.method);
    for (int i = 0; i < tnmtl_norm_n_terms(nm, b->ndim); i++)
        if (b->gamma[i] > 0 && !tnmtl_dist_norm_term_splits(nm, b->ndim, b->shape, i)) return 1;
    return 0;
}

/* Block b's norm with the norm split over the processes: the terms that
 * split from this process's tasks, the others on the whole (gathered)
 * tensor.  The value is every process's; the subgradient of this process's
 * tasks goes to out (task-major, like the block; other tasks untouched). */
static tnmtl_status regulariser_block_split(tnmtl_mtl *m, const tnmtl_param_block *b, int want_grad, double *value,
                                            float *out, tnmtl_error *err)
{
    const tnmtl_norm_method nm = norm_of(m->cfg.method);
    const int lo = m->task_begin, To = m->task_end - m->task_begin, n_terms = tnmtl_norm_n_terms(nm, b->ndim);
    const int64_t nw = b->n_w;
    const float *w = m->params + b->w_offset;
    float *Wl = tnmtl_calloc((size_t)(nw * To + 1), sizeof *Wl, "local stacked tensor", err);
    float *Gl = Wl ? tnmtl_calloc((size_t)(nw * To + 1), sizeof *Gl, "local stacked gradient", err) : NULL;
    if (!Gl) {
        free(Wl);
        return TNMTL_ERR_NOMEM;
    }
    for (int t = 0; t < To; t++) /* task-major [To][nw] -> task-last [nw][To] */
        for (int64_t j = 0; j < nw; j++) Wl[j * To + t] = w[(int64_t)(lo + t) * nw + j];
    /* The whole tensor (gathered) for the terms that need it: ROWS, REPLICATED. */
    double replicated[TNMTL_NORM_MAX_NDIM] = {0};
    int any = 0, whole = 0;
    for (int i = 0; i < n_terms; i++) {
        const tnmtl_dist_norm_term_kind kind =
            tnmtl_dist_norm_term_kind_of(nm, b->ndim, b->shape, i, tnmtl_dist_size(m->dist));
        whole |= kind != TNMTL_DIST_TERM_SUM && b->gamma[i] > 0;
        if (kind == TNMTL_DIST_TERM_REPLICATED) any |= (replicated[i] = b->gamma[i]) > 0;
    }
    if (whole) tnmtl_mtl_stack(m, b, w, m->stack);
    tnmtl_dist_norm_scratch scratch = {m->dist_norm_scratch, m->dist_norm_scratch_bytes};
    tnmtl_status st = tnmtl_dist_norm_eval(m->dist, m->dist_begin, nm, b->ndim, b->shape, m->task_begin, m->task_end,
                                           Wl, whole ? m->stack : NULL, b->gamma, value, want_grad ? Gl : NULL,
                                           &scratch, err);
    m->dist_norm_scratch = scratch.buf;
    m->dist_norm_scratch_bytes = scratch.cap;
    if (!st && any) {
        double v;
        st = tnmtl_norm_eval(nm, b->ndim, b->shape, m->stack, replicated, &v, NULL, want_grad ? m->stack_grad : NULL,
                             err);
        if (!st) {
            *value += v;
            for (int64_t j = 0; want_grad && j < nw; j++)
                for (int t = 0; t < To; t++) Gl[j * To + t] += m->stack_grad[j * m->n_tasks + lo + t];
        }
    }
    for (int t = 0; !st && want_grad && t < To; t++)
        for (int64_t j = 0; j < nw; j++) out[(int64_t)(lo + t) * nw + j] += Gl[j * To + t];
    free(Wl);
    free(Gl);
    return st;
}

/* The regulariser's value, and with add_grad its subgradient added into
 * m->grads; with cache (reg_every > 1) the subgradient of every stacked
 * block's weights is written there instead, blocks one after another in the
 * task-major layout of grads. */
static tnmtl_status regulariser_pass(tnmtl_mtl *m, int add_grad, float *cache, double *value, tnmtl_error *err)
{
    *value = 0;
    float *c = cache;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->stacked) continue;
        /* No term weighs anything (gamma 0, or a gamma table's zero row):
         * value and subgradient 0, at the cost of STL. */
        int weighted = 0;
        for (int t = 0; t < tnmtl_norm_n_terms(norm_of(m->cfg.method), b->ndim); t++) weighted |= b->gamma[t] > 0;
        if (!weighted) {
            if (c) {
                memset(c, 0, (size_t)(b->n_w * m->n_tasks) * sizeof *c);
                c += b->n_w * m->n_tasks;
            }
            continue;
        }
        if (m->dist && m->dist_split_norms) {
            const size_t n = (size_t)(b->n_w * m->n_tasks);
            if (c) memset(c, 0, n * sizeof *c);
            double v = 0;
            tnmtl_status st = regulariser_block_split(m, b, add_grad || c, &v, c ? c : m->grads + b->w_offset, err);
            if (st) {
                tnmtl_error_prefix(err, "regulariser of layer %d", b->layer);
                return st;
            }
            *value += v;
            if (c) c += n;
            continue;
        }
        /* LAF's one term is the nuclear norm of the task-mode unfolding, whose
         * rows are the tasks' weight vectors: the block's own task-major
         * layout [T][n_w], read in place, with the subgradient in that layout
         * (no stacking; the same matrix, so the same norm). */
        const int laf = m->cfg.method == TNMTL_METHOD_LAF;
        const int64_t task_rows[2] = {m->n_tasks, b->n_w};
        const float *w = m->params + b->w_offset;
        if (!laf) tnmtl_mtl_stack(m, b, w, m->stack);
        /* Small tensors: BLAS on one thread.  Waking OpenBLAS's pool costs
         * more than such a problem, and on a busy machine a threaded call
         * waits for a second core. */
        enum { SERIAL_BELOW = 1 << 20 };
        const int blas_threads = openblas_get_num_threads();
        const int serial = b->n_w * m->n_tasks < SERIAL_BELOW && blas_threads > 1;
        if (serial) openblas_set_num_threads(1);
        double v;
        tnmtl_status st = tnmtl_norm_eval(norm_of(m->cfg.method), laf ? 2 : b->ndim, laf ? task_rows : b->shape,
                                          laf ? w : m->stack, b->gamma, &v, NULL,
                                          add_grad || c ? m->stack_grad : NULL, err);
        if (serial) openblas_set_num_threads(blas_threads);
        if (st) {
            tnmtl_error_prefix(err, "regulariser of layer %d", b->layer);
            return st;
        }
        *value += v;
        const size_t n = (size_t)(b->n_w * m->n_tasks);
        if (add_grad && laf) {
            float *g = m->grads + b->w_offset;
            for (size_t k = 0; k < n; k++) g[k] += m->stack_grad[k];
        } else if (add_grad) {
            tnmtl_mtl_unstack_add(m, b, m->stack_grad, m->grads + b->w_offset);
        }
        if (c) {
            if (laf) {
                memcpy(c, m->stack_grad, n * sizeof *c);
            } else {
                memset(c, 0, n * sizeof *c);
                tnmtl_mtl_unstack_add(m, b, m->stack_grad, c);
            }
            c += n;
        }
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_regulariser(tnmtl_mtl *m, int add_grad, double *value, tnmtl_error *err)
{
    return regulariser_pass(m, add_grad, NULL, value, err);
}

/* The regulariser of the objective at `step`.  With cfg.reg_every = k > 1
 * (an approximation, see mtl.h) the value and subgradient computed at the
 * first step of the period [step - step % k, +k) are reused, as long as the
 * calls come one step after another; otherwise (the period's first step, a
 * resumed run, a jump) they are computed now. */
static tnmtl_status objective_regulariser(tnmtl_mtl *m, int64_t step, double *value, tnmtl_error *err)
{
    const int k = m->cfg.reg_every;
    if (k <= 1 || !tnmtl_mtl_n_stacked(m)) return regulariser_pass(m, 1, NULL, value, err);
    const int64_t start = step - step % k;
    const int reuse = m->reg_step >= start && m->reg_step < step && m->reg_last == step - 1;
    m->reg_last = step;
    if (!reuse) { /* refresh the cache; it is added to grads below like a reused one */
        if (!m->reg_cache) {
            int64_t n = 0;
            for (int i = 0; i < m->n_blocks; i++)
                if (m->blocks[i].stacked) n += m->blocks[i].n_w * m->n_tasks;
            m->reg_cache = tnmtl_calloc((size_t)n, sizeof(float), "cached regulariser gradient", err);
            if (!m->reg_cache) return TNMTL_ERR_NOMEM;
        }
        m->reg_step = -1;
        tnmtl_status st = regulariser_pass(m, 0, m->reg_cache, &m->reg_value, err);
        if (st) return st;
        m->reg_step = step;
    }
    *value = m->reg_value;
    const float *c = m->reg_cache;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->stacked) continue;
        float *g = m->grads + b->w_offset;
        const int64_t n = b->n_w * m->n_tasks;
        for (int64_t j = 0; j < n; j++) g[j] += c[j];
        c += n;
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_set_weight_decay(tnmtl_mtl *m, double wd, tnmtl_error *err)
{
    if (!(wd >= 0) || !isfinite(wd))
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "weight decay must be a finite number >= 0, not %g", wd);
    m->weight_decay = wd;
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_set_threads(tnmtl_mtl *m, int n_threads, tnmtl_error *err)
{
    if (n_threads < 1) return tnmtl_fail(err, TNMTL_ERR_INVALID, "number of threads must be >= 1, not %d", n_threads);
    if (n_threads > m->n_tasks) n_threads = m->n_tasks;
    tnmtl_mtl_worker *w = tnmtl_calloc((size_t)n_threads, sizeof *w, "worker scratch", err);
    if (!w) return TNMTL_ERR_NOMEM;
    for (int i = 0; i < m->n_threads && m->workers; i++) worker_free(&m->workers[i]);
    free(m->workers);
    m->workers = w;
    m->n_threads = n_threads;
    return TNMTL_OK;
}

/* ---- distributed runs (tnmtl/dist.h) ---- */

tnmtl_status tnmtl_mtl_set_dist(tnmtl_mtl *m, tnmtl_dist *d, const int64_t *task_weight, tnmtl_error *err)
{
    const int P = tnmtl_dist_size(d);
    if (P <= 1) return TNMTL_OK;
    int *begin = tnmtl_calloc((size_t)P + 1, sizeof(int), "task partition", err);
    if (!begin) return TNMTL_ERR_NOMEM;
    tnmtl_dist_partition(task_weight, m->n_tasks, P, begin);
    free(m->dist_begin);
    m->dist = d;
    m->dist_begin = begin;
    const int r = tnmtl_dist_rank(d);
    m->task_begin = begin[r];
    m->task_end = begin[r + 1];
    return TNMTL_OK;
}

void tnmtl_mtl_set_dist_norm(tnmtl_mtl *m, int split)
{
    m->dist_split_norms = split != 0;
}

/* Where block b's task-specific values of every task lie in the parameter
 * layout: weights (biases when bias) of task t at [off[t], off[t+1]). */
static void block_task_offsets(const tnmtl_mtl *m, int i, int bias, int64_t *off)
{
    const tnmtl_param_block *b = &m->blocks[i];
    for (int t = 0; t < m->n_tasks; t++) {
        const tnmtl_layer_params *v = &m->view[(size_t)t * m->n_layers + b->layer];
        off[t] = (bias ? v->b : v->w) - m->params;
    }
    const int64_t block_end = i + 1 < m->n_blocks ? m->blocks[i + 1].w_offset : m->n_params;
    off[m->n_tasks] = bias ? block_end : b->b_offset;
}

/* Every process receives the other processes' values of buf (parameters or
 * a mirror of them) in the task-specific blocks; stacked_weights_only: just
 * the weights of the stacked blocks (what the norm needs each step). */
static tnmtl_status dist_gather_blocks(tnmtl_mtl *m, float *buf, int stacked_weights_only, tnmtl_error *err)
{
    int64_t off[TNMTL_MAX_TASKS + 1];
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (b->shared || (stacked_weights_only && (!b->stacked || !block_needs_all_weights(m, b)))) continue;
        for (int bias = 0; bias < (stacked_weights_only ? 1 : 2); bias++) {
            block_task_offsets(m, i, bias, off);
            tnmtl_status st = tnmtl_dist_allgather_f32(m->dist, buf, off, m->dist_begin, err);
            if (st) return st;
        }
    }
    return TNMTL_OK;
}

/* The parameters this process steps, ascending: its tasks' slices of the
 * task-specific blocks (weights, then biases) and the whole of the
 * hard-shared ones (whose gradient every process summed alike); all of
 * them for one process.  ranges[4 * TNMTL_MAX_LAYERS]; returns their number. */
static int own_ranges(const tnmtl_mtl *m, int64_t *ranges)
{
    if (!m->dist) {
        ranges[0] = 0;
        ranges[1] = m->n_params;
        return 1;
    }
    int64_t off[TNMTL_MAX_TASKS + 1];
    int n = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (b->shared) {
            ranges[2 * n] = b->w_offset;
            ranges[2 * n + 1] = b->w_offset + b->n_w + b->n_b;
            n++;
            continue;
        }
        for (int bias = 0; bias < 2; bias++) {
            block_task_offsets(m, i, bias, off);
            ranges[2 * n] = off[m->task_begin];
            ranges[2 * n + 1] = off[m->task_end];
            n++;
        }
    }
    return n;
}

tnmtl_status tnmtl_mtl_own_optim(const tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err)
{
    if (opt->n != m->n_params)
        return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "optimiser holds %lld parameters, the model %lld",
                          (long long)opt->n, (long long)m->n_params);
    int64_t ranges[4 * TNMTL_MAX_LAYERS];
    const int n = own_ranges(m, ranges);
    return tnmtl_optim_set_ranges(opt, ranges, n, err);
}

/* Process 0 receives the moments of every process's tasks into buf (its
 * whole-layout moments); the others send theirs from their own layout. */
static tnmtl_status dist_gather_moments(tnmtl_mtl *m, const tnmtl_optim *opt, float *buf, tnmtl_error *err)
{
    int64_t off[TNMTL_MAX_TASKS + 1];
    const int root = tnmtl_dist_rank(m->dist) == 0;
    for (int i = 0; i < m->n_blocks; i++) {
        if (m->blocks[i].shared) continue; /* the same on every process */
        for (int bias = 0; bias < 2; bias++) {
            block_task_offsets(m, i, bias, off);
            const float *mine = NULL;
            if (!root && off[m->task_end] > off[m->task_begin])
                mine = buf + tnmtl_optim_index(opt, off[m->task_begin]);
            tnmtl_status st = tnmtl_dist_gather_f32(m->dist, 0, buf, mine, off, m->dist_begin, err);
            if (st) return st;
        }
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_dist_sync(tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err)
{
    if (!m->dist) return TNMTL_OK;
    tnmtl_status st = dist_gather_blocks(m, m->params, 0, err);
    if (st || !opt || !opt->m) return st;
    /* Process 0 takes the whole layout (the state of its own parameters
     * kept); every other process must hold its own parameters' state.
     * Checked together, so that no process waits in a gather alone. */
    int64_t ranges[4 * TNMTL_MAX_LAYERS];
    const int n = own_ranges(m, ranges);
    if (tnmtl_dist_rank(m->dist) == 0) {
        st = opt->n == m->n_params ? tnmtl_optim_set_ranges(opt, NULL, 0, err)
                                   : tnmtl_fail(err, TNMTL_ERR_INTERNAL, "optimiser of %lld parameters, the model %lld",
                                                (long long)opt->n, (long long)m->n_params);
    } else {
        for (int r = 0; r < n && !st; r++)
            if (ranges[2 * r + 1] > ranges[2 * r] &&
                (tnmtl_optim_index(opt, ranges[2 * r]) < 0 || tnmtl_optim_index(opt, ranges[2 * r + 1] - 1) < 0))
                st = tnmtl_fail(err, TNMTL_ERR_INTERNAL, "process %d does not hold the optimiser state of its tasks",
                                tnmtl_dist_rank(m->dist));
    }
    int failed[1] = {st != TNMTL_OK};
    tnmtl_dist_any(m->dist, failed, 1);
    if (st) return st;
    if (failed[0]) return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "another process could not gather the optimiser state");
    st = dist_gather_moments(m, opt, opt->m, err);
    if (!st && opt->v) st = dist_gather_moments(m, opt, opt->v, err);
    return st;
}

/* x[n_tasks], one value per task, each process filling its own tasks': every
 * task's on every process. */
static tnmtl_status dist_gather_per_task(tnmtl_mtl *m, double *x, tnmtl_error *err)
{
    int64_t off[TNMTL_MAX_TASKS + 1];
    for (int t = 0; t <= m->n_tasks; t++) off[t] = t;
    return tnmtl_dist_allgather_f64(m->dist, x, off, m->dist_begin, err);
}

/* One optimiser step of this process's parameters (own_ranges), then the
 * stacked weights are exchanged for the next step's norm. */
static tnmtl_status dist_optim_step(tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err)
{
    int64_t ranges[4 * TNMTL_MAX_LAYERS];
    const int n = own_ranges(m, ranges);
    tnmtl_optim_step_ranges(opt, m->params, m->grads, ranges, n);
    return dist_gather_blocks(m, m->params, 1, err);
}

/* Grows every worker's scratch to hold batches of B examples. */
static tnmtl_status ensure_batch(tnmtl_mtl *m, const tnmtl_dataset *ds, int B, tnmtl_error *err)
{
    int max_out = 1;
    for (int t = 0; t < m->n_tasks; t++) max_out = m->n_out[t] > max_out ? m->n_out[t] : max_out;
    const int64_t n_in = tnmtl_dataset_example_size(ds);
    for (int i = 0; i < m->n_threads; i++) {
        tnmtl_mtl_worker *w = &m->workers[i];
        if (B <= w->batch) continue;
        worker_free(w);
        tnmtl_status st = tnmtl_workspace_create((const tnmtl_net *const *)m->nets, m->n_tasks, B, 0, &w->ws, err);
        if (st) return st;
        /* One threading level: with several task workers, each runs its
         * kernels in its own thread; a single worker lets its kernels use
         * the engine's threads. */
        if (m->n_threads > 1) tnmtl_workspace_set_threads(w->ws, 1);
        w->x = tnmtl_calloc((size_t)B * (size_t)n_in, sizeof(float), "input batch", err);
        w->dout = tnmtl_calloc((size_t)B * (size_t)max_out, sizeof(float), "output gradient", err);
        w->targets = tnmtl_calloc((size_t)B, sizeof(float), "targets", err);
        w->labels = tnmtl_calloc((size_t)B, sizeof(int), "labels", err);
        w->idx = tnmtl_calloc((size_t)B, sizeof(int64_t), "batch indices", err);
        if (!w->x || !w->dout || !w->targets || !w->labels || !w->idx) {
            worker_free(w);
            return TNMTL_ERR_NOMEM;
        }
        w->batch = B;
    }
    return TNMTL_OK;
}

/* Runs fn(ctx, worker, t) for every task, spread over the workers.  Each
 * task's results go to slots of its own, so which worker ran it does not
 * matter: the outcome is the same for any number of threads. */
typedef void (*task_fn)(void *ctx, tnmtl_mtl_worker *w, int t);

typedef struct parallel_job {
    tnmtl_mtl *m;
    task_fn fn;
    void *ctx;
    const int *order;            /* this process's tasks, largest first */
    int n;
    atomic_int next;
} parallel_job;

typedef struct worker_arg {
    parallel_job *job;
    int w;
} worker_arg;

static void *run_worker(void *p)
{
    worker_arg *a = p;
    parallel_job *job = a->job;
    for (;;) {
        int i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n) break;
        job->fn(job->ctx, &job->m->workers[a->w], job->order[i]);
    }
    return NULL;
}

static void for_each_task(tnmtl_mtl *m, const tnmtl_split *split, tnmtl_part part, task_fn fn, void *ctx)
{
    /* This process's tasks (all of them unless distributed). */
    int order[TNMTL_MAX_TASKS];
    const int n_own = m->task_end - m->task_begin;
    for (int i = 0; i < n_own; i++) order[i] = m->task_begin + i;
    /* Largest tasks first balances the workers (insertion sort, stable). */
    for (int i = 1; i < n_own; i++) {
        int t = order[i], j = i;
        const int64_t nt = split->begin[part][t + 1] - split->begin[part][t];
        while (j > 0 && split->begin[part][order[j - 1] + 1] - split->begin[part][order[j - 1]] < nt) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = t;
    }
    parallel_job job = {m, fn, ctx, order, n_own, 0};
    worker_arg args[64];
    pthread_t threads[64];
    int n = m->n_threads < 64 ? m->n_threads : 64, started = 0;
    if (n > n_own) n = n_own > 1 ? n_own : 1;
    const int blas_threads = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    for (int i = 1; i < n; i++) {
        args[i] = (worker_arg){&job, i};
        if (pthread_create(&threads[i], NULL, run_worker, &args[i]) != 0) break;
        started = i;
    }
    args[0] = (worker_arg){&job, 0};
    run_worker(&args[0]);
    for (int i = 1; i <= started; i++) pthread_join(threads[i], NULL);
    if (n > 1) openblas_set_num_threads(blas_threads);
}

static int64_t n_part(const tnmtl_split *s, tnmtl_part p, int t)
{
    return s->begin[p][t + 1] - s->begin[p][t];
}

static int batch_size_of(const tnmtl_mtl *m, const tnmtl_split *split, int batch)
{
    int64_t most = 0;
    for (int t = 0; t < m->n_tasks; t++) most = n_part(split, TNMTL_PART_TRAIN, t) > most ? n_part(split, TNMTL_PART_TRAIN, t) : most;
    if (batch > 0 && batch < most) return batch;
    return (int)most;
}

int tnmtl_batch_indices(const tnmtl_split *split, int t, uint64_t seed, int64_t step, int batch,
                        int64_t *idx, int *perm)
{
    const int64_t n = n_part(split, TNMTL_PART_TRAIN, t);
    const int64_t *train = split->idx[TNMTL_PART_TRAIN] + split->begin[TNMTL_PART_TRAIN][t];
    if (batch <= 0 || batch >= n) {
        memcpy(idx, train, (size_t)n * sizeof *idx);
        return (int)n;
    }
    /* Positions step*batch .. +batch-1 of an endless sequence of epochs, each
     * a fresh permutation drawn from (seed, task, epoch). */
    int64_t cur_epoch = -1;
    for (int j = 0; j < batch; j++) {
        const int64_t pos = step * batch + j;
        const int64_t epoch = pos / n;
        if (epoch != cur_epoch) {
            tnmtl_rng base, rng;
            tnmtl_rng_seed(&base, seed ^ 0x6d74bd5e1a2f9c31ULL);
            rng = tnmtl_rng_split(&base, ((uint64_t)t << 40) ^ (uint64_t)epoch);
            for (int64_t i = 0; i < n; i++) perm[i] = (int)i;
            tnmtl_rng_shuffle(&rng, perm, (size_t)n);
            cur_epoch = epoch;
        }
        idx[j] = train[perm[pos % n]];
    }
    return batch;
}

typedef struct objective_ctx {
    tnmtl_mtl *m;
    const tnmtl_dataset *ds;
    const tnmtl_split *split;
    uint64_t seed;
    int64_t step;
    int batch;
    float weight;                /* of each task's loss in the objective        */
    double *losses;              /* [n_tasks]                                   */
    double *sq_norms;            /* [n_tasks] weight decay on: sum of the task's
                                    squared shareable weights                  */
    double decay_scale;          /* 2 wd c: weight decay's gradient per weight  */
} objective_ctx;

/* Weight decay's part of task t's gradient, 2 wd c W for each shareable
 * layer's weights W of task t (a hard-shared layer's go to the task's own
 * slice, summed later like its loss gradient); returns sum ||W||^2. */
static double task_weight_decay(const tnmtl_mtl *m, int t, double scale)
{
    double sq = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->shareable) continue;
        const size_t v = (size_t)t * m->n_layers + b->layer;
        const float *w = m->view[v].w;
        float *g = m->gview[v].w;
        const int64_t n = tnmtl_net_layer(m->nets[t], b->layer)->n_weight;
        for (int64_t j = 0; j < n; j++) {
            sq += (double)w[j] * w[j];
            g[j] += (float)(scale * w[j]);
        }
    }
    return sq;
}

/* Forward, loss and backward of task t on its minibatch. */
static void task_objective(void *p, tnmtl_mtl_worker *w, int t)
{
    objective_ctx *c = p;
    tnmtl_mtl *m = c->m;
    const tnmtl_net *net = m->nets[t];
    const int C = m->n_out[t];
    const int B = tnmtl_batch_indices(c->split, t, c->seed, c->step, c->batch, w->idx, w->perm);
    tnmtl_dataset_gather(c->ds, w->idx, B, w->x, w->labels, w->targets);
    const float *out = tnmtl_net_forward(net, &m->view[(size_t)t * m->n_layers], w->ws, w->x, B);
    c->losses[t] = c->ds->kind == TNMTL_TARGET_CLASS ? tnmtl_softmax_xent(out, w->labels, B, C, w->dout)
                                                      : tnmtl_mse(out, w->targets, B, C, w->dout);
    if (c->weight != 1.0f)
        for (int64_t i = 0; i < (int64_t)B * C; i++) w->dout[i] *= c->weight;
    tnmtl_net_backward(net, &m->view[(size_t)t * m->n_layers], &m->gview[(size_t)t * m->n_layers], w->ws, w->dout,
                       NULL, B);
    if (c->sq_norms) c->sq_norms[t] = task_weight_decay(m, t, c->decay_scale);
}

static tnmtl_status check_data(const tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                               tnmtl_error *err)
{
    if (ds->n_tasks != m->n_tasks || split->n_tasks != m->n_tasks)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the data has %d tasks but the model %d", ds->n_tasks, m->n_tasks);
    if (ds->in_h != m->cfg.in_h || ds->in_w != m->cfg.in_w || ds->in_c != m->cfg.in_c)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the data's examples are %dx%dx%d but the model expects %dx%dx%d",
                          ds->in_h, ds->in_w, ds->in_c, m->cfg.in_h, m->cfg.in_w, m->cfg.in_c);
    if (ds->kind != m->cfg.kind)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the data is %s but the model was built for %s",
                          ds->kind == TNMTL_TARGET_CLASS ? "classification" : "regression",
                          m->cfg.kind == TNMTL_TARGET_CLASS ? "classification" : "regression");
    for (int t = 0; t < m->n_tasks; t++) {
        if (ds->n_classes[t] != m->n_out[t])
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "task %d has %d classes in the data but %d outputs in the model", t,
                              ds->n_classes[t], m->n_out[t]);
        if (n_part(split, TNMTL_PART_TRAIN, t) < 1)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "task %d has no training example", t);
        if (t >= m->task_begin && t < m->task_end && !tnmtl_dataset_has_inputs(ds, t))
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "task %d's inputs were not loaded here (this process computes "
                              "tasks %d..%d, its data holds tasks %d..%d)", t, m->task_begin, m->task_end - 1,
                              ds->inputs_task_begin, ds->inputs_task_end - 1);
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_mtl_objective(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                                 uint64_t seed, int64_t step, int batch, double *loss, double *reg,
                                 tnmtl_error *err)
{
    tnmtl_status st = check_data(m, ds, split, err);
    if (st) return st;
    if ((st = ensure_batch(m, ds, batch_size_of(m, split, batch), err))) return st;
    /* Permutation scratch for the largest training part. */
    const int64_t n_perm = batch_size_of(m, split, 0);
    for (int i = 0; i < m->n_threads; i++) {
        tnmtl_mtl_worker *w = &m->workers[i];
        if (w->n_perm >= n_perm) continue;
        free(w->perm);
        w->n_perm = 0;
        w->perm = tnmtl_calloc((size_t)n_perm, sizeof(int), "minibatch permutation", err);
        if (!w->perm) return TNMTL_ERR_NOMEM;
        w->n_perm = n_perm;
    }
    double losses[TNMTL_MAX_TASKS], sq_norms[TNMTL_MAX_TASKS];
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
    if (m->n_shared) memset(m->shared_grads, 0, (size_t)m->n_tasks * (size_t)m->n_shared * sizeof(float));
    const double weight = m->cfg.sum_task_losses ? 1.0 : 1.0 / m->n_tasks;
    const int decay = m->weight_decay > 0;
    objective_ctx ctx = {m, ds, split, seed, step, batch, (float)weight, losses, decay ? sq_norms : NULL,
                         2 * m->weight_decay * weight};
    for_each_task(m, split, TNMTL_PART_TRAIN, task_objective, &ctx);
    if (m->dist) { /* every task's loss and shared-layer contribution on every process */
        int64_t off[TNMTL_MAX_TASKS + 1];
        for (int t = 0; t <= m->n_tasks; t++) off[t] = (int64_t)t * m->n_shared;
        st = dist_gather_per_task(m, losses, err);
        if (!st && decay) st = dist_gather_per_task(m, sq_norms, err);
        if (!st && m->n_shared) st = tnmtl_dist_allgather_f32(m->dist, m->shared_grads, off, m->dist_begin, err);
        if (st) return st;
    }
    /* Hard-shared blocks: sum the tasks' contributions in task order. */
    int64_t off = 0;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        if (!b->shared) continue;
        float *g = m->grads + b->w_offset; /* weights then biases, adjacent */
        for (int t = 0; t < m->n_tasks; t++) {
            const float *src = m->shared_grads + (size_t)t * m->n_shared + off;
            for (int64_t j = 0; j < b->n_w + b->n_b; j++) g[j] += src[j];
        }
        off += b->n_w + b->n_b;
    }
    double total = 0;
    for (int t = 0; t < m->n_tasks; t++) total += losses[t];
    *loss = total * weight;
    if ((st = objective_regulariser(m, step, reg, err))) return st;
    if (decay) { /* summed in task order: the same for any number of threads or processes */
        double sq = 0;
        for (int t = 0; t < m->n_tasks; t++) sq += sq_norms[t];
        *reg += m->weight_decay * weight * sq;
    }
    return TNMTL_OK;
}

/* The steps of tnmtl_train.  *collective: the outcome is the same on every
 * process of a distributed run (finished, interrupted, diverged, a failed
 * checkpoint), as opposed to a failure of this process alone. */
static tnmtl_status train_steps(tnmtl_mtl *m, tnmtl_optim *opt, const tnmtl_dataset *ds, const tnmtl_split *split,
                                const tnmtl_train_config *cfg, int *collective, tnmtl_error *err)
{
    const double t0 = tnmtl_now();
    *collective = 1;
    while (opt->step < cfg->steps) {
        if (!m->dist && cfg->stop && *cfg->stop)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "interrupted at step %lld", (long long)opt->step);
        double loss, reg;
        tnmtl_status st = tnmtl_mtl_objective(m, ds, split, cfg->seed, opt->step, cfg->batch, &loss, &reg, err);
        if (st && st != TNMTL_ERR_NUMERIC) { /* this process's own failure */
            *collective = 0;
            return st;
        }
        /* The losses are every process's already; a stop request and a
         * non-finite gradient of one process's tasks become everyone's. */
        int flags[2] = {cfg->stop && *cfg->stop,
                        !st && tnmtl_first_nonfinite_f32(m->grads, (size_t)m->n_params) >= 0};
        if (m->dist) {
            tnmtl_dist_any(m->dist, flags, 2);
            if (flags[0] && !st)
                return tnmtl_fail(err, TNMTL_ERR_INVALID, "interrupted at step %lld", (long long)opt->step);
        }
        if (st == TNMTL_ERR_NUMERIC || !(isfinite(loss) && isfinite(reg)))
            return tnmtl_fail(err, TNMTL_ERR_NUMERIC,
                              "training diverged at step %lld: loss %g, regulariser %g (try a smaller learning rate); "
                              "the parameters of step %lld are kept",
                              (long long)opt->step + 1, loss, st ? NAN : reg, (long long)opt->step);
        if (flags[1])
            return tnmtl_fail(err, TNMTL_ERR_NUMERIC,
                              "training diverged at step %lld: non-finite gradient; the parameters of step %lld are kept",
                              (long long)opt->step + 1, (long long)opt->step);
        if (m->dist) {
            if ((st = dist_optim_step(m, opt, err))) return st;
        } else {
            tnmtl_optim_step(opt, m->params, m->grads);
        }
        if (cfg->progress) {
            tnmtl_progress p = {opt->step, cfg->steps, loss, reg, tnmtl_now() - t0};
            cfg->progress(cfg->progress_user, &p);
        }
        const int at_end = opt->step == cfg->steps;
        if (at_end || (cfg->save_every > 0 && opt->step % cfg->save_every == 0)) {
            /* Distributed: the parameters reach every process and the
             * whole optimiser state process 0, whose checkpoint callback
             * (usually the only one) saves them; its outcome is everyone's. */
            if (m->dist && (st = tnmtl_mtl_dist_sync(m, opt, err))) return st;
            if (cfg->checkpoint) st = cfg->checkpoint(cfg->checkpoint_user, opt->step, err);
            if (m->dist) st = tnmtl_dist_share_status(m->dist, 0, st, err);
            if (st) return st;
            /* process 0 drops the other processes' moments again */
            if (m->dist && (st = tnmtl_mtl_own_optim(m, opt, err))) {
                *collective = 0;
                return st;
            }
        }
    }
    return TNMTL_OK;
}

tnmtl_status tnmtl_train(tnmtl_mtl *m, tnmtl_optim *opt, const tnmtl_dataset *ds,
                         const tnmtl_split *split, const tnmtl_train_config *cfg, tnmtl_error *err)
{
    if (opt->n != m->n_params)
        return tnmtl_fail(err, TNMTL_ERR_INTERNAL, "optimiser holds %lld parameters, the model %lld",
                          (long long)opt->n, (long long)m->n_params);
    const int64_t first = opt->step;
    int collective = 1;
    /* a distributed process keeps only its own parameters' optimiser state */
    tnmtl_status st = m->dist ? tnmtl_mtl_own_optim(m, opt, err) : TNMTL_OK;
    if (st) collective = 0;
    if (!st) st = train_steps(m, opt, ds, split, cfg, &collective, err);
    /* A distributed run stopped together (interrupted, diverged) leaves
     * every process with the whole model, to save or report it; a finished
     * one has it from its last step's checkpoint point.  The stop's message
     * is the one reported (a failed gather would only repeat the step's
     * layout error). */
    if (m->dist && collective && st && opt->step > first) {
        tnmtl_error ignored = {0};
        (void)tnmtl_mtl_dist_sync(m, opt, &ignored);
    }
    return st;
}

typedef struct evaluate_ctx {
    tnmtl_mtl *m;
    const tnmtl_dataset *ds;
    const tnmtl_split *split;
    tnmtl_part part;
    double *metric;              /* [n_tasks]                                   */
    double *loss_sum;            /* [n_tasks] summed example losses             */
} evaluate_ctx;

static void task_evaluate(void *p, tnmtl_mtl_worker *w, int t)
{
    evaluate_ctx *c = p;
    tnmtl_mtl *m = c->m;
    const int64_t n = n_part(c->split, c->part, t);
    const int64_t *idx = c->split->idx[c->part] + c->split->begin[c->part][t];
    const int C = m->n_out[t], B = w->batch;
    int64_t correct = 0;
    double sq = 0, loss = 0;
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        const int nb = (int)(n - i0 < B ? n - i0 : B);
        tnmtl_dataset_gather(c->ds, idx + i0, nb, w->x, w->labels, w->targets);
        const float *out = tnmtl_net_forward(m->nets[t], &m->view[(size_t)t * m->n_layers], w->ws, w->x, nb);
        if (c->ds->kind == TNMTL_TARGET_CLASS) {
            loss += nb * tnmtl_softmax_xent(out, w->labels, nb, C, NULL);
            for (int i = 0; i < nb; i++) {
                int best = 0;
                for (int k = 1; k < C; k++)
                    if (out[(int64_t)i * C + k] > out[(int64_t)i * C + best]) best = k;
                correct += best == w->labels[i];
            }
        } else {
            double l = tnmtl_mse(out, w->targets, nb, C, NULL);
            loss += nb * l;
            sq += nb * C * l;
        }
    }
    c->loss_sum[t] = loss;
    if (n == 0) c->metric[t] = NAN;
    else c->metric[t] = c->ds->kind == TNMTL_TARGET_CLASS ? (double)correct / (double)n : sqrt(sq / (double)(n * C));
}

tnmtl_status tnmtl_mtl_evaluate(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                                tnmtl_part part, double *metric, double *mean_loss, tnmtl_error *err)
{
    tnmtl_status st = check_data(m, ds, split, err);
    if (st) return st;
    enum { CHUNK = 256 };
    if ((st = ensure_batch(m, ds, m->workers[0].batch > 0 ? m->workers[0].batch : CHUNK, err))) return st;
    double loss_sum[TNMTL_MAX_TASKS];
    evaluate_ctx ctx = {m, ds, split, part, metric, loss_sum};
    for_each_task(m, split, part, task_evaluate, &ctx);
    if (m->dist && ((st = dist_gather_per_task(m, metric, err)) || (st = dist_gather_per_task(m, loss_sum, err))))
        return st;
    double total = 0;
    int64_t count = 0;
    for (int t = 0; t < m->n_tasks; t++) {
        total += loss_sum[t];
        count += n_part(split, part, t);
    }
    if (mean_loss) *mean_loss = count ? total / (double)count : NAN;
    return TNMTL_OK;
}
