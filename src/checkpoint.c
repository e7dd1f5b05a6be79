/* checkpoint.c - the whole training state in one safetensors file.
 *
 * Tensors (F32):
 *   layer<l>.weight, layer<l>.bias         [T, weight shape...] / [T, n_b] for a
 *                                          task-specific layer, without the T
 *                                          axis for a hard-shared one;
 *   layer<l>.weight.task<t>, ...bias.task<t>  the output layer when its size
 *                                          differs between tasks;
 *   optim.m, optim.v                       [n_params] optimiser moments in the
 *                                          parameter buffer's layout.
 * The tensors are written in buffer order, so the file's data area is the
 * parameter buffer followed by the moments. */
#include "tnmtl/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tnmtl/safetensors.h"
#include "util.h"

/* One named piece of the parameter buffer. */
typedef struct piece {
    char name[64];
    int64_t offset;                       /* into the parameter buffer */
    int ndim;
    int64_t shape[TNMTL_ST_MAX_NDIM];
} piece;

static int uniform_outputs(const tnmtl_mtl *m)
{
    for (int t = 1; t < m->n_tasks; t++)
        if (m->n_out[t] != m->n_out[0]) return 0;
    return 1;
}

/* Lists the pieces of the parameter buffer in order; returns their number
 * (at most cap), or -1 if cap is too small. */
static int list_pieces(const tnmtl_mtl *m, piece *p, int cap)
{
    int n = 0;
    const int T = m->n_tasks;
    for (int i = 0; i < m->n_blocks; i++) {
        const tnmtl_param_block *b = &m->blocks[i];
        const tnmtl_layer_info *li = tnmtl_net_layer(m->nets[0], b->layer);
        const int per_task = li->is_output && !uniform_outputs(m);
        for (int part = 0; part < 2; part++) { /* weights, then biases */
            const int n_copies = per_task ? T : 1;
            for (int t = 0; t < n_copies; t++) {
                if (n >= cap) return -1;
                piece *q = &p[n++];
                const tnmtl_layer_info *lt = tnmtl_net_layer(m->nets[t], b->layer);
                q->ndim = 0;
                if (!per_task && !b->shared) q->shape[q->ndim++] = T;
                if (part == 0) {
                    for (int d = 0; d < lt->weight_ndim; d++) q->shape[q->ndim++] = lt->weight_shape[d];
                } else {
                    q->shape[q->ndim++] = lt->n_bias;
                }
                if (per_task) {
                    snprintf(q->name, sizeof q->name, "layer%d.%s.task%d", b->layer, part ? "bias" : "weight", t);
                    q->offset = (part ? m->view[(size_t)t * m->n_layers + b->layer].b
                                      : m->view[(size_t)t * m->n_layers + b->layer].w) - m->params;
                } else {
                    snprintf(q->name, sizeof q->name, "layer%d.%s", b->layer, part ? "bias" : "weight");
                    q->offset = part ? b->b_offset : b->w_offset;
                }
            }
        }
    }
    return n;
}

/* The model's identity: loading into a model with another signature fails. */
void tnmtl_checkpoint_signature(const tnmtl_mtl *m, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "arch=%s;act=%d;in=%dx%dx%d;kind=%d;method=%s;share=%d;n_out=", m->arch,
                                (int)m->cfg.act, m->cfg.in_h, m->cfg.in_w, m->cfg.in_c, (int)m->cfg.kind,
                                tnmtl_method_name(m->cfg.method), m->cfg.method == TNMTL_METHOD_UD ? m->cfg.ud_share : 0);
    for (int t = 0; t < m->n_tasks && k < cap; t++) k += (size_t)snprintf(buf + k, cap - k, "%s%d", t ? "," : "", m->n_out[t]);
}

#define MAX_PIECES (4 * TNMTL_MAX_LAYERS + 2 * TNMTL_MAX_TASKS + 2)

tnmtl_status tnmtl_checkpoint_save(const char *path, const tnmtl_mtl *m, const tnmtl_optim *opt,
                                   const char *config_json, tnmtl_error *err)
{
    piece *p = tnmtl_calloc(MAX_PIECES, sizeof *p, "checkpoint layout", err);
    tnmtl_st_tensor *t = tnmtl_calloc(MAX_PIECES + 2, sizeof *t, "checkpoint layout", err);
    char *sig = tnmtl_malloc(65536, "checkpoint signature", err);
    tnmtl_status st = TNMTL_ERR_NOMEM;
    if (!p || !t || !sig) goto done;
    if (opt && (opt->ranges || opt->n != m->n_params)) {
        st = tnmtl_fail(err, TNMTL_ERR_INVALID,
                        "the optimiser holds the state of %lld of the %lld parameters; a checkpoint needs all of it "
                        "(tnmtl_mtl_dist_sync gathers it on process 0)",
                        (long long)opt->n_held, (long long)m->n_params);
        goto done;
    }
    int n = list_pieces(m, p, MAX_PIECES);
    if (n < 0) {
        st = tnmtl_fail(err, TNMTL_ERR_INTERNAL, "too many parameter tensors for a checkpoint");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        t[i].name = p[i].name;
        t[i].dtype = TNMTL_ST_F32;
        t[i].ndim = p[i].ndim;
        memcpy(t[i].shape, p[i].shape, sizeof p[i].shape);
        t[i].data = m->params + p[i].offset;
    }
    int nt = n;
    if (opt) {
        const char *names[2] = {"optim.m", "optim.v"};
        const float *data[2] = {opt->m, opt->v};
        for (int k = 0; k < 2; k++) {
            if (!data[k]) continue;
            t[nt].name = names[k];
            t[nt].dtype = TNMTL_ST_F32;
            t[nt].ndim = 1;
            t[nt].shape[0] = m->n_params;
            t[nt].data = data[k];
            nt++;
        }
    }
    tnmtl_checkpoint_signature(m, sig, 65536);
    char version[16], step[32], n_params[32];
    snprintf(version, sizeof version, "%d", TNMTL_CHECKPOINT_VERSION);
    snprintf(step, sizeof step, "%" PRId64, opt ? opt->step : (int64_t)0);
    snprintf(n_params, sizeof n_params, "%" PRId64, m->n_params);
    const tnmtl_st_meta meta[] = {
        {"format", TNMTL_CHECKPOINT_FORMAT},
        {"version", version},
        {"step", step},
        {"optimizer", !opt ? "none" : opt->cfg.kind == TNMTL_OPTIM_SGD ? "sgd" : "adam"},
        {"n_params", n_params},
        {"signature", sig},
        {"config", config_json ? config_json : "{}"},
    };
    st = tnmtl_st_save(path, t, nt, meta, (int)(sizeof meta / sizeof meta[0]), err);
done:
    free(p);
    free(t);
    free(sig);
    return st;
}

/* Opens path and checks that it is a tnmtl checkpoint of a version we read. */
static tnmtl_status open_checkpoint(const char *path, tnmtl_st_file **f, tnmtl_error *err)
{
    tnmtl_status st = tnmtl_st_load(path, TNMTL_ST_MAX_BYTES, f, err);
    if (st) return st;
    const char *format = tnmtl_st_meta_get(*f, "format"), *version = tnmtl_st_meta_get(*f, "version");
    char *end = NULL;
    if (!format || strcmp(format, TNMTL_CHECKPOINT_FORMAT)) {
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: not a tnmtl checkpoint (no metadata format=%s)", path,
                        TNMTL_CHECKPOINT_FORMAT);
    } else if (!version || strtol(version, &end, 10) != TNMTL_CHECKPOINT_VERSION || end == version || *end) {
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: checkpoint version %s, this tnmtl reads version %d", path,
                        version ? version : "(none)", TNMTL_CHECKPOINT_VERSION);
    }
    if (st) {
        tnmtl_st_free(*f);
        *f = NULL;
    }
    return st;
}

tnmtl_status tnmtl_checkpoint_read_config(const char *path, char **config_json, tnmtl_error *err)
{
    *config_json = NULL;
    tnmtl_st_file *f;
    tnmtl_status st = open_checkpoint(path, &f, err);
    if (st) return st;
    const char *config;
    st = tnmtl_st_meta_find(f, "config", &config, err);
    if (!st) {
        *config_json = strdup(config);
        if (!*config_json) st = tnmtl_fail(err, TNMTL_ERR_NOMEM, "out of memory");
    }
    tnmtl_st_free(f);
    return st;
}

tnmtl_status tnmtl_checkpoint_load(const char *path, tnmtl_mtl *m, tnmtl_optim *opt, tnmtl_error *err)
{
    tnmtl_st_file *f = NULL;
    piece *p = tnmtl_calloc(MAX_PIECES, sizeof *p, "checkpoint layout", err);
    char *sig = tnmtl_malloc(65536, "checkpoint signature", err);
    float *params = tnmtl_calloc((size_t)m->n_params, sizeof(float), "checkpoint parameters", err);
    tnmtl_status st = TNMTL_ERR_NOMEM;
    if (!p || !sig || !params) goto done;
    if ((st = open_checkpoint(path, &f, err))) goto done;

    const char *stored_sig, *step_s, *kind_s;
    if ((st = tnmtl_st_meta_find(f, "signature", &stored_sig, err)) || (st = tnmtl_st_meta_find(f, "step", &step_s, err)) ||
        (st = tnmtl_st_meta_find(f, "optimizer", &kind_s, err)))
        goto done;
    tnmtl_checkpoint_signature(m, sig, 65536);
    if (strcmp(sig, stored_sig)) {
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: the checkpoint is of another model (%s) than this one (%s)", path,
                        stored_sig, sig);
        goto done;
    }
    char *end;
    long long step = strtoll(step_s, &end, 10);
    if (end == step_s || *end || step < 0) {
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: bad step '%s'", path, step_s);
        goto done;
    }
    int n = list_pieces(m, p, MAX_PIECES);
    for (int i = 0; i < n; i++) {
        const void *data;
        if ((st = tnmtl_st_find(f, p[i].name, TNMTL_ST_F32, p[i].ndim, p[i].shape, &data, err))) goto done;
        const size_t count = (size_t)tnmtl_st_numel(tnmtl_st_get(f, p[i].name));
        memcpy(params + p[i].offset, data, count * sizeof(float));
    }
    int64_t bad = tnmtl_first_nonfinite_f32(params, (size_t)m->n_params);
    if (bad >= 0) {
        st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: parameter %lld is not finite", path, (long long)bad);
        goto done;
    }
    const float *mom[2] = {NULL, NULL};
    if (opt) {
        if (opt->n != m->n_params) {
            st = tnmtl_fail(err, TNMTL_ERR_INTERNAL, "optimiser of %lld parameters, the model %lld", (long long)opt->n,
                            (long long)m->n_params);
            goto done;
        }
        const char *want = opt->cfg.kind == TNMTL_OPTIM_SGD ? "sgd" : "adam";
        if (strcmp(kind_s, want)) {
            st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: optimiser state is '%s', the run uses '%s'", path, kind_s, want);
            goto done;
        }
        const int64_t shape[1] = {m->n_params};
        const char *names[2] = {"optim.m", "optim.v"};
        for (int k = 0; k < 2; k++) {
            float *dst = k ? opt->v : opt->m;
            if (!dst) continue;
            if ((st = tnmtl_st_find(f, names[k], TNMTL_ST_F32, 1, shape, (const void **)&mom[k], err))) goto done;
            if ((bad = tnmtl_first_nonfinite_f32(mom[k], (size_t)m->n_params)) >= 0) {
                st = tnmtl_fail(err, TNMTL_ERR_FORMAT, "%s: %s[%lld] is not finite", path, names[k], (long long)bad);
                goto done;
            }
        }
    }
    /* Everything checked: commit. */
    memcpy(m->params, params, (size_t)m->n_params * sizeof(float));
    if (opt) { /* the ranges of the state opt holds (all by default) */
        const int64_t all[2] = {0, m->n_params};
        const int64_t *held = opt->ranges ? opt->ranges : all;
        const int n_held = opt->ranges ? opt->n_ranges : 1;
        for (int k = 0; k < 2; k++) {
            float *dst = k ? opt->v : opt->m;
            if (!mom[k]) continue;
            int64_t at = 0;
            for (int r = 0; r < n_held; r++) {
                const int64_t len = held[2 * r + 1] - held[2 * r];
                memcpy(dst + at, mom[k] + held[2 * r], (size_t)len * sizeof(float));
                at += len;
            }
        }
        opt->step = step;
    }
    st = TNMTL_OK;
done:
    tnmtl_st_free(f);
    free(p);
    free(sig);
    free(params);
    return st;
}
