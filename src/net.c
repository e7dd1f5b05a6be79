/* net.c - one task's network: architecture parsing, shapes, parameters,
 * workspace planning, forward and backward passes.
 *
 * A net is a list of layers (net_layer) built once from the architecture
 * string.  Besides the public tnmtl_layer_info, each layer records where its
 * output lives in the workspace, as an offset per example:
 *
 *   workspace = [ input copy | layer outputs ... ]   B * act_n   REAL
 *               [ gradient 0 ][ gradient 1 ]         2 * B * grad_n REAL
 *               [ kernel scratch ]                   conv: per-part sums and a
 *                                                    chunk per thread; fc: sums
 *               [ pool argmax ]                      B * idx_n   int32
 *
 * so the layout for a batch B (and a thread count) is computed from the net
 * alone.  Layers that need no memory of their own share their input's slot:
 * flatten always, and tanh/relu when the layer that produced their input does
 * not need it again for its backward pass (conv and fc need their input, not
 * their output; max-pool keeps argmax indices).  An activation right after a
 * conv or fc is applied by that layer's forward kernel on each block while it
 * is in cache ("fused"); its backward stays a separate in-place pass.  A conv
 * followed by a max-pool (with or without an activation between) runs as one
 * group whose conv output is never stored (plan_net).
 *
 * The forward and backward passes are written once for both precisions: the
 * buffers are handled as bytes and each layer calls its _f32 or _f64 kernel.
 * The kernels spread their work over the workspace's threads (layers.h).
 */
#include "tnmtl/net.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "util.h"

#define ARCH_MAX_LEN 65536                 /* characters in an architecture string     */
#define DIM_MAX (1 << 20)                  /* any number in a token, any dimension     */
#define TENSOR_MAX ((int64_t)1 << 30)      /* elements of one example's activation, of
                                            * one layer's weights, of one im2col row    */

typedef struct net_layer {
    tnmtl_layer_info info;
    int64_t in_n, out_n;        /* elements per example                              */
    int64_t param_off;          /* offset of the weights in the contiguous layout    */
    int64_t in_off, out_off;    /* activation slots (elements per example; 0 = input) */
    int64_t idx_off;            /* pool: argmax slot (int32 per example)             */
    tnmtl_conv_geom geom;       /* conv                                              */
    tnmtl_activation post;      /* conv/fc: activation fused into the forward kernel */
    tnmtl_activation act;       /* tanh/relu layers: which one                       */
    int fused;                  /* tanh/relu: applied by the preceding conv/fc       */
    int group_end;              /* conv heading a fused conv[-act]-pool group: the
                                 * pool's index (0: no group)                        */
    int group_head;             /* inside a group: the head's index, else -1         */
} net_layer;

struct tnmtl_net {
    int n_layers, cap;
    net_layer *layers;          /* [n_layers]                                        */
    int64_t n_in;
    int n_out;
    int64_t n_params, macs;
    int64_t act_n;              /* activation elements per example, input included   */
    int64_t grad_n;             /* largest layer input or output per example         */
    int64_t idx_n;              /* pool argmax entries per example                   */
    int first_param;            /* index of the first layer with parameters          */
};

struct tnmtl_workspace {
    int f64;
    int n_threads;              /* threads of the kernels                            */
    int max_threads;            /* the scratch is sized for this many (at creation)  */
    int max_batch;
    size_t bytes;
    unsigned char *mem;         /* [bytes]                                           */
    const tnmtl_net *last_net;  /* the net, batch and threads of the last successful */
    int last_B, last_threads;   /* forward                                           */
};

/* ---- architecture parsing ------------------------------------------------- */

typedef enum { TOK_CONV, TOK_POOL, TOK_FC, TOK_TANH, TOK_RELU, TOK_FLATTEN } tok_kind;

typedef struct arch_token {
    tok_kind kind;
    int a, b, same;             /* conv: a filters of b x b; pool: a; fc: a          */
    const char *text;           /* points into the arch string                       */
    int len;
} arch_token;

/* Reads decimal digits at *s (no sign, no spaces) into *out in [1, DIM_MAX]
 * range check done by the caller; returns 0 when there are no digits or the
 * number exceeds DIM_MAX (so nothing can overflow). */
static int read_number(const char **s, const char *end, long *out)
{
    const char *p = *s;
    long v = 0;
    if (p >= end || *p < '0' || *p > '9') return 0;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > DIM_MAX) return 0;
        p++;
    }
    *s = p;
    *out = v;
    return 1;
}

/* Parses one token text[0..len); fills t.  Returns 0 and writes why into
 * why[] when the token is malformed. */
static int parse_token(const char *text, int len, arch_token *t, char *why, size_t why_len)
{
    const char *s = text, *end = text + len;
    long a = 0, b = 0;
    memset(t, 0, sizeof *t);
    t->text = text;
    t->len = len;
#define IS(lit) (len == (int)sizeof(lit) - 1 && !memcmp(text, lit, sizeof(lit) - 1))
#define PREFIX(lit) (len >= (int)sizeof(lit) - 1 && !memcmp(text, lit, sizeof(lit) - 1))
    if (len == 0) {
        snprintf(why, why_len, "empty token (two commas in a row, or a comma at an end)");
        return 0;
    }
    if (IS("tanh")) t->kind = TOK_TANH;
    else if (IS("relu")) t->kind = TOK_RELU;
    else if (IS("flatten")) t->kind = TOK_FLATTEN;
    else if (PREFIX("conv")) {
        t->kind = TOK_CONV;
        s += 4;
        if (!read_number(&s, end, &a) || s >= end || *s != 'x' || (s++, !read_number(&s, end, &b))) {
            snprintf(why, why_len, "expected convFxK or convFxK:same with F, K in 1..%d", DIM_MAX);
            return 0;
        }
        if (s < end) {
            if (end - s == 5 && !memcmp(s, ":same", 5)) t->same = 1;
            else {
                snprintf(why, why_len, "unexpected '%.*s' after convFxK (only ':same' may follow)",
                         (int)(end - s), s);
                return 0;
            }
        }
        if (a < 1 || b < 1) {
            snprintf(why, why_len, "filters and kernel size must be at least 1");
            return 0;
        }
        if (t->same && b % 2 == 0) {
            snprintf(why, why_len, "same padding needs an odd kernel size, got %ld", b);
            return 0;
        }
    } else if (PREFIX("pool")) {
        t->kind = TOK_POOL;
        s += 4;
        if (!read_number(&s, end, &a) || s != end || a < 1) {
            snprintf(why, why_len, "expected poolK with K in 1..%d", DIM_MAX);
            return 0;
        }
    } else if (PREFIX("fc")) {
        t->kind = TOK_FC;
        s += 2;
        if (!read_number(&s, end, &a) || s != end || a < 1) {
            snprintf(why, why_len, "expected fcN with N in 1..%d", DIM_MAX);
            return 0;
        }
    } else {
        snprintf(why, why_len,
                 "unknown token (expected convFxK, convFxK:same, poolK, fcN, tanh, relu or flatten)");
        return 0;
    }
#undef IS
#undef PREFIX
    t->a = (int)a;
    t->b = (int)b;
    return 1;
}

/* ---- building -------------------------------------------------------------- */

typedef struct builder {
    tnmtl_net *net;
    int h, w, c;                /* current example shape */
    tnmtl_error *err;
    char where[96];             /* "layer 3 'conv16x3'" for messages */
} builder;

static tnmtl_status push_layer(builder *bd, const tnmtl_layer_info *info)
{
    tnmtl_net *net = bd->net;
    if (net->n_layers == net->cap) {
        int cap = net->cap ? 2 * net->cap : 16;
        net_layer *nl = realloc(net->layers, (size_t)cap * sizeof *nl);
        if (!nl) return tnmtl_fail(bd->err, TNMTL_ERR_NOMEM, "out of memory building the net");
        net->layers = nl;
        net->cap = cap;
    }
    net_layer *L = &net->layers[net->n_layers++];
    memset(L, 0, sizeof *L);
    L->info = *info;
    L->info.in_h = bd->h;
    L->info.in_w = bd->w;
    L->info.in_c = bd->c;
    L->in_n = (int64_t)bd->h * bd->w * bd->c;
    L->out_n = (int64_t)info->out_h * info->out_w * info->out_c;
    L->post = TNMTL_ACT_NONE;
    L->act = TNMTL_ACT_NONE;
    bd->h = info->out_h;
    bd->w = info->out_w;
    bd->c = info->out_c;
    return TNMTL_OK;
}

static tnmtl_status add_simple(builder *bd, tnmtl_layer_kind kind)
{
    tnmtl_layer_info in = {0};
    in.kind = kind;
    in.out_h = bd->h;
    in.out_w = bd->w;
    in.out_c = bd->c;
    if (kind == TNMTL_LAYER_FLATTEN) {
        in.out_h = in.out_w = 1;
        in.out_c = bd->h * bd->w * bd->c; /* <= TENSOR_MAX */
    }
    tnmtl_status st = push_layer(bd, &in);
    if (st) return st;
    net_layer *L = &bd->net->layers[bd->net->n_layers - 1];
    if (kind == TNMTL_LAYER_TANH) L->act = TNMTL_ACT_TANH;
    if (kind == TNMTL_LAYER_RELU) L->act = TNMTL_ACT_RELU;
    return TNMTL_OK;
}

static tnmtl_status add_conv(builder *bd, int F, int K, int same)
{
    const int h = bd->h, w = bd->w, c = bd->c;
    if (!same && (K > h || K > w))
        return tnmtl_fail(bd->err, TNMTL_ERR_INVALID, "%s: input %dx%dx%d is smaller than the %dx%d kernel",
                          bd->where, h, w, c, K, K);
    const int pad = same ? (K - 1) / 2 : 0;
    const int ho = h + 2 * pad - K + 1, wo = w + 2 * pad - K + 1;
    const int64_t kkc = (int64_t)K * K * c;
    if (kkc > TENSOR_MAX || kkc * F > TENSOR_MAX || (int64_t)ho * wo * F > TENSOR_MAX ||
        (int64_t)wo * kkc > TENSOR_MAX)
        return tnmtl_fail(bd->err, TNMTL_ERR_TOO_BIG,
                          "%s: input %dx%dx%d, %dx%d kernel, %d filters: the layer is too big "
                          "(limit %" PRId64 " elements per tensor)",
                          bd->where, h, w, c, K, K, F, (int64_t)TENSOR_MAX);
    tnmtl_layer_info in = {0};
    in.kind = TNMTL_LAYER_CONV;
    in.out_h = ho;
    in.out_w = wo;
    in.out_c = F;
    in.ksize = K;
    in.same_pad = same;
    in.n_weight = kkc * F;
    in.n_bias = F;
    in.weight_ndim = 4;
    in.weight_shape[0] = K;
    in.weight_shape[1] = K;
    in.weight_shape[2] = c;
    in.weight_shape[3] = F;
    /* what the im2col GEMM computes (with "same", the padded zeros too) */
    in.macs = (int64_t)ho * wo * kkc * F;
    tnmtl_status st = push_layer(bd, &in);
    if (st) return st;
    net_layer *L = &bd->net->layers[bd->net->n_layers - 1];
    tnmtl_conv_geom_init(&L->geom, h, w, c, K, F, same);
    return TNMTL_OK;
}

static tnmtl_status add_pool(builder *bd, int k)
{
    const int h = bd->h, w = bd->w, c = bd->c;
    if (k > h || k > w)
        return tnmtl_fail(bd->err, TNMTL_ERR_INVALID,
                          "%s: input %dx%dx%d is smaller than the %dx%d pooling window "
                          "(the output would be empty)",
                          bd->where, h, w, c, k, k);
    tnmtl_layer_info in = {0};
    in.kind = TNMTL_LAYER_MAXPOOL;
    in.out_h = h / k;
    in.out_w = w / k;
    in.out_c = c;
    in.ksize = k;
    return push_layer(bd, &in);
}

static tnmtl_status add_fc(builder *bd, int N, int is_output)
{
    if (bd->h != 1 || bd->w != 1) { /* automatic flatten */
        tnmtl_status st = add_simple(bd, TNMTL_LAYER_FLATTEN);
        if (st) return st;
    }
    const int64_t D = bd->c;
    if (D * N > TENSOR_MAX)
        return tnmtl_fail(bd->err, TNMTL_ERR_TOO_BIG,
                          "%s: %" PRId64 " inputs x %d outputs is too big (limit %" PRId64 " weights)",
                          bd->where, D, N, (int64_t)TENSOR_MAX);
    tnmtl_layer_info in = {0};
    in.kind = TNMTL_LAYER_FC;
    in.out_h = in.out_w = 1;
    in.out_c = N;
    in.is_output = is_output;
    in.n_weight = D * N;
    in.n_bias = N;
    in.weight_ndim = 2;
    in.weight_shape[0] = (int)D;
    in.weight_shape[1] = N;
    in.macs = D * N;
    return push_layer(bd, &in);
}

/* Memory plan, parameter offsets and fusion flags once all layers exist.
 * A conv followed by a max-pool, possibly with an activation in between, is
 * one fused group (layers.h, g->pool): its head (the conv) runs the whole
 * group, the conv output is never stored, and the activation is applied to
 * the pooled values (max commutes with tanh and relu). */
static void plan_net(tnmtl_net *net)
{
    int64_t act = net->n_in, idx = 0, params = 0, macs = 0, grad = net->n_in;
    net->first_param = net->n_layers;
    for (int i = 0; i < net->n_layers; i++) net->layers[i].group_head = -1;
    for (int i = 0; i < net->n_layers; i++) {
        net_layer *L = &net->layers[i];
        if (L->info.kind != TNMTL_LAYER_CONV) continue;
        int q = i + 1;
        if (q < net->n_layers && (net->layers[q].info.kind == TNMTL_LAYER_TANH ||
                                  net->layers[q].info.kind == TNMTL_LAYER_RELU))
            q++;
        if (q >= net->n_layers || net->layers[q].info.kind != TNMTL_LAYER_MAXPOOL) continue;
        L->group_end = q;
        for (int j = i + 1; j <= q; j++) net->layers[j].group_head = i;
        tnmtl_conv_geom_set_pool(&L->geom, net->layers[q].info.ksize);
    }
    for (int i = 0; i < net->n_layers; i++) {
        net_layer *L = &net->layers[i];
        net_layer *prev = i > 0 ? &net->layers[i - 1] : NULL;
        L->in_off = prev ? prev->out_off : 0;
        L->param_off = params;
        params += L->info.n_weight + L->info.n_bias;
        macs += L->info.macs;
        if (L->info.n_weight && net->first_param == net->n_layers) net->first_param = i;
        /* gradients that exist: the input of a layer (the output of a group) */
        if (L->group_head < 0 && L->in_n > grad) grad = L->in_n;
        if ((L->group_head < 0 || L->info.kind == TNMTL_LAYER_MAXPOOL) && L->out_n > grad &&
            !(L->info.kind == TNMTL_LAYER_CONV && L->group_end))
            grad = L->out_n;
        int own_slot = 1;
        if (L->info.kind == TNMTL_LAYER_FLATTEN) own_slot = 0;
        if (L->info.kind == TNMTL_LAYER_CONV && L->group_end) own_slot = 0; /* never stored */
        if (L->info.kind == TNMTL_LAYER_TANH || L->info.kind == TNMTL_LAYER_RELU) {
            /* the producer of our input: skip flattens (they alias) */
            int j = i - 1;
            while (j >= 0 && net->layers[j].info.kind == TNMTL_LAYER_FLATTEN) j--;
            tnmtl_layer_kind pk = j >= 0 ? net->layers[j].info.kind : TNMTL_LAYER_FLATTEN;
            if (pk == TNMTL_LAYER_CONV || pk == TNMTL_LAYER_FC || pk == TNMTL_LAYER_MAXPOOL)
                own_slot = 0; /* in place */
            if (prev && (prev->info.kind == TNMTL_LAYER_CONV || prev->info.kind == TNMTL_LAYER_FC)) {
                L->fused = 1;
                prev->post = L->act;
            }
        }
        if (own_slot) {
            L->out_off = act;
            act += L->out_n;
        } else {
            L->out_off = L->in_off;
        }
        if (L->info.kind == TNMTL_LAYER_MAXPOOL) {
            L->idx_off = idx;
            idx += L->out_n;
        }
    }
    net->act_n = act;
    net->idx_n = idx;
    net->grad_n = grad;
    net->n_params = params;
    net->macs = macs;
}

tnmtl_status tnmtl_net_create(const tnmtl_net_config *cfg, tnmtl_net **out, tnmtl_error *err)
{
    if (!out) return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_net_create: out is NULL");
    *out = NULL;
    if (!cfg || !cfg->arch)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_net_create: no config or no architecture");
    if (cfg->in_h < 1 || cfg->in_w < 1 || cfg->in_c < 1 || cfg->in_h > DIM_MAX ||
        cfg->in_w > DIM_MAX || cfg->in_c > DIM_MAX ||
        (int64_t)cfg->in_h * cfg->in_w * cfg->in_c > TENSOR_MAX)
        return tnmtl_fail(err, TNMTL_ERR_INVALID,
                          "input shape %dx%dx%d: each dimension must be in 1..%d and the product "
                          "at most %" PRId64,
                          cfg->in_h, cfg->in_w, cfg->in_c, DIM_MAX, (int64_t)TENSOR_MAX);
    if (cfg->n_out < 1 || cfg->n_out > DIM_MAX)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "output size %d must be in 1..%d", cfg->n_out, DIM_MAX);
    if (cfg->act != TNMTL_ACT_TANH && cfg->act != TNMTL_ACT_RELU && cfg->act != TNMTL_ACT_NONE)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "unknown activation %d", (int)cfg->act);
    const size_t alen = strnlen(cfg->arch, ARCH_MAX_LEN + 1);
    if (alen > ARCH_MAX_LEN)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "architecture string longer than %d characters",
                          ARCH_MAX_LEN);

    /* tokens */
    int n_tok = 0;
    if (alen > 0) {
        n_tok = 1;
        for (size_t i = 0; i < alen; i++) n_tok += cfg->arch[i] == ',';
    }
    arch_token *tok = tnmtl_calloc((size_t)n_tok + 1, sizeof *tok, "architecture tokens", err);
    if (!tok) return err ? err->status : TNMTL_ERR_NOMEM;
    const char *s = cfg->arch;
    for (int i = 0; i < n_tok; i++) {
        const char *e = strchr(s, ',');
        int len = e ? (int)(e - s) : (int)strlen(s);
        char why[160];
        if (!parse_token(s, len, &tok[i], why, sizeof why)) {
            tnmtl_fail(err, TNMTL_ERR_INVALID, "layer %d '%.*s': %s", i + 1, len > 40 ? 40 : len, s, why);
            free(tok);
            return TNMTL_ERR_INVALID;
        }
        s += len + 1;
    }

    tnmtl_net *net = tnmtl_calloc(1, sizeof *net, "net", err);
    if (!net) {
        free(tok);
        return err ? err->status : TNMTL_ERR_NOMEM;
    }
    net->n_in = (int64_t)cfg->in_h * cfg->in_w * cfg->in_c;
    net->n_out = cfg->n_out;
    builder bd = {net, cfg->in_h, cfg->in_w, cfg->in_c, err, ""};
    tnmtl_status st = TNMTL_OK;
    for (int i = 0; i < n_tok && !st; i++) {
        const arch_token *t = &tok[i];
        snprintf(bd.where, sizeof bd.where, "layer %d '%.*s'", i + 1, t->len > 40 ? 40 : t->len, t->text);
        int hidden = 0; /* gets the automatic activation */
        switch (t->kind) {
        case TOK_CONV: st = add_conv(&bd, t->a, t->b, t->same); hidden = 1; break;
        case TOK_POOL: st = add_pool(&bd, t->a); break;
        case TOK_FC: st = add_fc(&bd, t->a, 0); hidden = 1; break;
        case TOK_TANH: st = add_simple(&bd, TNMTL_LAYER_TANH); break;
        case TOK_RELU: st = add_simple(&bd, TNMTL_LAYER_RELU); break;
        case TOK_FLATTEN: st = add_simple(&bd, TNMTL_LAYER_FLATTEN); break;
        }
        /* an explicit activation written right after replaces the automatic one */
        const int explicit_next = i + 1 < n_tok && (tok[i + 1].kind == TOK_TANH || tok[i + 1].kind == TOK_RELU);
        if (!st && hidden && cfg->act != TNMTL_ACT_NONE && !explicit_next)
            st = add_simple(&bd, cfg->act == TNMTL_ACT_TANH ? TNMTL_LAYER_TANH : TNMTL_LAYER_RELU);
    }
    if (!st) {
        snprintf(bd.where, sizeof bd.where, "output layer 'fc%d'", cfg->n_out);
        st = add_fc(&bd, cfg->n_out, 1);
    }
    free(tok);
    if (st) {
        tnmtl_net_free(net);
        return st;
    }
    plan_net(net);
    *out = net;
    return TNMTL_OK;
}

void tnmtl_net_free(tnmtl_net *net)
{
    if (!net) return;
    free(net->layers);
    free(net);
}

int tnmtl_net_n_layers(const tnmtl_net *net) { return net->n_layers; }

const tnmtl_layer_info *tnmtl_net_layer(const tnmtl_net *net, int i)
{
    return i >= 0 && i < net->n_layers ? &net->layers[i].info : NULL;
}

int64_t tnmtl_net_n_in(const tnmtl_net *net) { return net->n_in; }
int tnmtl_net_n_out(const tnmtl_net *net) { return net->n_out; }
int64_t tnmtl_net_param_count(const tnmtl_net *net) { return net->n_params; }
int64_t tnmtl_net_macs(const tnmtl_net *net) { return net->macs; }

/* "conv8x5:same", "pool2", "fc64", "tanh", ... */
static void layer_name(const tnmtl_layer_info *L, char *buf, size_t len)
{
    switch (L->kind) {
    case TNMTL_LAYER_CONV:
        snprintf(buf, len, "conv%dx%d%s", L->out_c, L->ksize, L->same_pad ? ":same" : "");
        break;
    case TNMTL_LAYER_MAXPOOL: snprintf(buf, len, "pool%d", L->ksize); break;
    case TNMTL_LAYER_FC: snprintf(buf, len, "fc%d%s", L->out_c, L->is_output ? " (output)" : ""); break;
    case TNMTL_LAYER_TANH: snprintf(buf, len, "tanh"); break;
    case TNMTL_LAYER_RELU: snprintf(buf, len, "relu"); break;
    case TNMTL_LAYER_FLATTEN: snprintf(buf, len, "flatten"); break;
    }
}

void tnmtl_net_describe(const tnmtl_net *net, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    buf[0] = '\0';
    size_t used = 0;
#define APPEND(...)                                                          \
    do {                                                                     \
        if (used < len) {                                                    \
            int n_ = snprintf(buf + used, len - used, __VA_ARGS__);          \
            used = n_ < 0 ? len : used + (size_t)n_;                         \
        }                                                                    \
    } while (0)
    for (int i = 0; i < net->n_layers; i++) {
        const tnmtl_layer_info *L = &net->layers[i].info;
        char name[48], shp_in[48], shp_out[48];
        layer_name(L, name, sizeof name);
        snprintf(shp_in, sizeof shp_in, "%dx%dx%d", L->in_h, L->in_w, L->in_c);
        snprintf(shp_out, sizeof shp_out, "%dx%dx%d", L->out_h, L->out_w, L->out_c);
        APPEND("%3d %-18s %14s -> %-14s params %-9" PRId64 " macs %" PRId64 "\n", i, name, shp_in,
               shp_out, L->n_weight + L->n_bias, L->macs);
    }
    APPEND("total: %d layers, %" PRId64 " parameters, %" PRId64 " MACs per example\n", net->n_layers,
           net->n_params, net->macs);
#undef APPEND
}

/* ---- parameters ------------------------------------------------------------ */

void tnmtl_net_bind(const tnmtl_net *net, float *buffer, tnmtl_layer_params *table)
{
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *L = &net->layers[i];
        table[i].w = L->info.n_weight ? buffer + L->param_off : NULL;
        table[i].b = L->info.n_weight ? buffer + L->param_off + L->info.n_weight : NULL;
    }
}

void tnmtl_net_bind_f64(const tnmtl_net *net, double *buffer, tnmtl_layer_params_f64 *table)
{
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *L = &net->layers[i];
        table[i].w = L->info.n_weight ? buffer + L->param_off : NULL;
        table[i].b = L->info.n_weight ? buffer + L->param_off + L->info.n_weight : NULL;
    }
}

/* Layer by layer, weights in memory order: He-normal (std sqrt(2/fan_in))
 * when the layer is followed by relu, else Glorot-uniform (limit
 * sqrt(6/(fan_in+fan_out))); conv fans are k*k*c_in and k*k*c_out. */
void tnmtl_net_init_params(const tnmtl_net *net, const tnmtl_layer_params *p, tnmtl_rng *rng)
{
    for (int i = 0; i < net->n_layers; i++) {
        const tnmtl_layer_info *L = &net->layers[i].info;
        if (!L->n_weight) continue;
        double fan_in, fan_out;
        if (L->kind == TNMTL_LAYER_CONV) {
            fan_in = (double)L->ksize * L->ksize * L->in_c;
            fan_out = (double)L->ksize * L->ksize * L->out_c;
        } else {
            fan_in = (double)L->weight_shape[0];
            fan_out = (double)L->weight_shape[1];
        }
        const int relu = i + 1 < net->n_layers && net->layers[i + 1].info.kind == TNMTL_LAYER_RELU;
        if (relu) {
            const double sd = sqrt(2.0 / fan_in);
            for (int64_t j = 0; j < L->n_weight; j++) p[i].w[j] = (float)(sd * tnmtl_rng_normal(rng));
        } else {
            const double a = sqrt(6.0 / (fan_in + fan_out));
            for (int64_t j = 0; j < L->n_weight; j++)
                p[i].w[j] = (float)(a * (2.0 * tnmtl_rng_uniform(rng) - 1.0));
        }
        memset(p[i].b, 0, (size_t)L->n_bias * sizeof *p[i].b);
    }
}

/* ---- workspace --------------------------------------------------------------- */

typedef struct ws_layout {
    size_t act, grad0, grad1, col, idx, total;  /* byte offsets, total bytes */
} ws_layout;

/* kernel scratch elements (the largest over the conv and fc layers) */
static size_t scratch_elems(const tnmtl_net *net, int B, int n_threads)
{
    size_t m = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *L = &net->layers[i];
        size_t c = 0;
        if (L->info.kind == TNMTL_LAYER_CONV) c = tnmtl_conv_scratch_elems(&L->geom, B, n_threads);
        if (L->info.kind == TNMTL_LAYER_FC) c = tnmtl_fc_scratch_elems(B, (int)L->in_n, L->info.out_c);
        if (c > m) m = c;
    }
    return m;
}

/* Returns 0 when the sizes overflow. */
static int layout(const tnmtl_net *net, int B, size_t elem, int n_threads, ws_layout *lo)
{
    size_t a, g, c, x, t;
    if (!tnmtl_mul_size((size_t)net->act_n, (size_t)B, &a) || !tnmtl_mul_size(a, elem, &a)) return 0;
    if (!tnmtl_mul_size((size_t)net->grad_n, (size_t)B, &g) || !tnmtl_mul_size(g, elem, &g)) return 0;
    if (!tnmtl_mul_size(scratch_elems(net, B, n_threads), elem, &c)) return 0;
    if (!tnmtl_mul_size((size_t)net->idx_n, (size_t)B, &x) || !tnmtl_mul_size(x, sizeof(int32_t), &x))
        return 0;
    lo->act = 0;
    lo->grad0 = a;
    if (!tnmtl_add_size(lo->grad0, g, &lo->grad1) || !tnmtl_add_size(lo->grad1, g, &lo->col) ||
        !tnmtl_add_size(lo->col, c, &lo->idx) || !tnmtl_add_size(lo->idx, x, &t))
        return 0;
    lo->total = t;
    return 1;
}

static size_t workspace_bytes(const tnmtl_net *net, int max_batch, int f64, int n_threads)
{
    ws_layout lo;
    if (!net || max_batch < 1) return 0;
    return layout(net, max_batch, f64 ? sizeof(double) : sizeof(float), n_threads, &lo) ? lo.total
                                                                                     : SIZE_MAX;
}

size_t tnmtl_workspace_bytes(const tnmtl_net *net, int max_batch, int f64)
{
    return workspace_bytes(net, max_batch, f64, tnmtl_engine_threads());
}

tnmtl_status tnmtl_workspace_create(const tnmtl_net *const *nets, int n_nets, int max_batch, int f64,
                                    tnmtl_workspace **out, tnmtl_error *err)
{
    if (!out) return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_workspace_create: out is NULL");
    *out = NULL;
    if (!nets || n_nets < 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "tnmtl_workspace_create: no nets given");
    if (max_batch < 1)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "workspace: batch size %d must be at least 1", max_batch);
    const int n_threads = tnmtl_engine_threads();
    size_t bytes = 1;
    for (int i = 0; i < n_nets; i++) {
        if (!nets[i]) return tnmtl_fail(err, TNMTL_ERR_INVALID, "workspace: net %d is NULL", i);
        size_t b = workspace_bytes(nets[i], max_batch, f64, n_threads);
        if (b == SIZE_MAX)
            return tnmtl_fail(err, TNMTL_ERR_TOO_BIG,
                              "workspace for batch %d: the size of net %d overflows", max_batch, i);
        if (b > bytes) bytes = b;
    }
    tnmtl_workspace *ws = tnmtl_calloc(1, sizeof *ws, "workspace", err);
    if (!ws) return err ? err->status : TNMTL_ERR_NOMEM;
    ws->mem = tnmtl_calloc(bytes, 1, "workspace activations", err);
    if (!ws->mem) {
        free(ws);
        return err ? err->status : TNMTL_ERR_NOMEM;
    }
    ws->f64 = f64 ? 1 : 0;
    ws->n_threads = ws->max_threads = n_threads;
    ws->max_batch = max_batch;
    ws->bytes = bytes;
    *out = ws;
    return TNMTL_OK;
}

int tnmtl_workspace_set_threads(tnmtl_workspace *ws, int n_threads)
{
    if (!ws) return 0;
    const int n = n_threads < 1 ? 1 : n_threads > ws->max_threads ? ws->max_threads : n_threads;
    ws->n_threads = n;
    return n;
}

void tnmtl_workspace_free(tnmtl_workspace *ws)
{
    if (!ws) return;
    free(ws->mem);
    free(ws);
}

/* ---- forward and backward (both precisions) ------------------------------------
 * Kernels are called through K(name, ...), which picks name_f64 or name_f32;
 * buffers are void pointers (they convert to float* or double*). */
#define K(name, ...) (f64 ? name##_f64(__VA_ARGS__) : name##_f32(__VA_ARGS__))

/* The workspace fits this net and batch in this precision with n_threads. */
static int ws_fits(const tnmtl_net *net, const tnmtl_workspace *ws, int B, int f64, int n_threads,
                   ws_layout *lo)
{
    return net && ws && ws->f64 == f64 && B >= 1 && B <= ws->max_batch &&
           layout(net, B, f64 ? sizeof(double) : sizeof(float), n_threads, lo) &&
           lo->total <= ws->bytes;
}

/* w (which 0) or b (which 1) of layer i in a tnmtl_layer_params[_f64] table */
static void *param(const void *table, int f64, int i, int which)
{
    if (f64) {
        const tnmtl_layer_params_f64 *t = table;
        return which ? (void *)t[i].b : (void *)t[i].w;
    }
    const tnmtl_layer_params *t = table;
    return which ? (void *)t[i].b : (void *)t[i].w;
}

static const void *net_forward(const tnmtl_net *net, const void *p, tnmtl_workspace *ws,
                               const void *x, int B, int f64)
{
    ws_layout lo;
    ws->last_net = NULL;
    if (!x || !ws_fits(net, ws, B, f64, ws->n_threads, &lo)) return NULL;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const int nt = ws->n_threads;
    unsigned char *act = ws->mem + lo.act;
    void *col = ws->mem + lo.col;
    int32_t *idx = (int32_t *)(void *)(ws->mem + lo.idx);
    const size_t step = (size_t)B * es; /* bytes of one per-example element across the batch */
    memcpy(act, x, (size_t)net->n_in * step);
    for (int i = 0; i < net->n_layers; i++) {
        const net_layer *L = &net->layers[i];
        const tnmtl_layer_info *I = &L->info;
        const void *in = act + (size_t)L->in_off * step;
        void *out = act + (size_t)L->out_off * step;
        const void *w = param(p, f64, i, 0), *b = param(p, f64, i, 1);
        if (L->group_head >= 0) continue; /* done by the group's head */
        switch (I->kind) {
        case TNMTL_LAYER_CONV:
            if (L->group_end) { /* the pooled output and argmax go to the pool's slots */
                const net_layer *Q = &net->layers[L->group_end];
                K(tnmtl_conv_forward, (void *)(act + (size_t)Q->out_off * step), idx + (size_t)Q->idx_off * B,
                  in, w, b, col, nt, &L->geom, B, L->post);
            } else {
                K(tnmtl_conv_forward, out, NULL, in, w, b, col, nt, &L->geom, B, L->post);
            }
            break;
        case TNMTL_LAYER_FC:
            K(tnmtl_fc_forward, out, in, w, b, col, nt, B, (int)L->in_n, I->out_c, L->post);
            break;
        case TNMTL_LAYER_MAXPOOL:
            K(tnmtl_maxpool_forward, out, idx + (size_t)L->idx_off * B, in, B, I->in_h, I->in_w,
              I->in_c, I->ksize, nt);
            break;
        case TNMTL_LAYER_TANH:
        case TNMTL_LAYER_RELU:
            if (!L->fused) K(tnmtl_act_forward, out, in, (size_t)L->out_n * B, L->act, nt);
            break;
        case TNMTL_LAYER_FLATTEN: break;
        }
    }
    ws->last_net = net;
    ws->last_B = B;
    ws->last_threads = ws->n_threads;
    return act + (size_t)net->layers[net->n_layers - 1].out_off * step;
}

static void net_backward(const tnmtl_net *net, const void *p, const void *g, tnmtl_workspace *ws,
                         const void *dout, void *dx, int B, int f64)
{
    ws_layout lo;
    /* the layout of the forward pass (its thread count sized the scratch) */
    if (!dout || !ws || ws->last_net != net || ws->last_B != B ||
        !ws_fits(net, ws, B, f64, ws->last_threads, &lo)) {
        tnmtl_log(TNMTL_LOG_WARN, "tnmtl_net_backward: no matching forward pass (net, batch %d, "
                                  "precision) in this workspace; nothing done", B);
        return;
    }
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t step = (size_t)B * es;
    const int nt = ws->last_threads;
    unsigned char *act = ws->mem + lo.act;
    void *col = ws->mem + lo.col;
    unsigned char *gbuf[2] = {ws->mem + lo.grad0, ws->mem + lo.grad1};
    const int32_t *idx = (const int32_t *)(const void *)(ws->mem + lo.idx);
    const void *cur = dout; /* gradient of the current layer's output */
    int cur_buf = -1;       /* which gbuf holds cur (-1: the caller's dout) */
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const net_layer *L = &net->layers[i];
        const tnmtl_layer_info *I = &L->info;
        if (L->group_head >= 0) {
            /* i is the pool closing a fused group: the activation's derivative
             * at the pooled values, in place, then the conv from the pooled
             * gradient; the loop resumes below the group's head */
            const int h = L->group_head;
            const net_layer *H = &net->layers[h];
            const size_t n = (size_t)L->out_n * B;
            if (cur_buf < 0) { /* not reached (an fc closes every net), kept general */
                memcpy(gbuf[0], cur, n * es);
                cur = gbuf[0];
                cur_buf = 0;
            }
            if (H->post != TNMTL_ACT_NONE)
                K(tnmtl_act_backward, (void *)gbuf[cur_buf], cur, (void *)(act + (size_t)L->out_off * step),
                  n, H->post, nt);
            const int need = dx != NULL || h > net->first_param;
            const int dst_buf = h == 0 ? -1 : cur_buf == 0 ? 1 : 0;
            void *dst = !need ? NULL : h == 0 ? dx : gbuf[dst_buf];
            K(tnmtl_conv_backward, dst, param(g, f64, h, 0), param(g, f64, h, 1), cur,
              idx + (size_t)L->idx_off * B, (void *)(act + (size_t)H->in_off * step), param(p, f64, h, 0), col,
              nt, &H->geom, B);
            if (!need) break;
            cur = dst;
            cur_buf = dst_buf;
            i = h;
            continue;
        }
        const int need_din = dx != NULL || i > net->first_param;
        if (!need_din && !I->n_weight) break; /* nothing below needs a gradient */
        void *dst = NULL;
        int dst_buf = -1;
        if (need_din) {
            if (i == 0) dst = dx;
            else if ((I->kind == TNMTL_LAYER_TANH || I->kind == TNMTL_LAYER_RELU ||
                      I->kind == TNMTL_LAYER_FLATTEN) && cur_buf >= 0) {
                dst = gbuf[cur_buf]; /* elementwise: in place */
                dst_buf = cur_buf;
            } else {
                dst_buf = cur_buf == 0 ? 1 : 0;
                dst = gbuf[dst_buf];
            }
        }
        const void *in = act + (size_t)L->in_off * step;
        const void *out = act + (size_t)L->out_off * step;
        switch (I->kind) {
        case TNMTL_LAYER_CONV:
            K(tnmtl_conv_backward, dst, param(g, f64, i, 0), param(g, f64, i, 1), cur, NULL, in,
              param(p, f64, i, 0), col, nt, &L->geom, B);
            break;
        case TNMTL_LAYER_FC:
            K(tnmtl_fc_backward, dst, param(g, f64, i, 0), param(g, f64, i, 1), cur, in,
              param(p, f64, i, 0), nt, B, (int)L->in_n, I->out_c);
            break;
        case TNMTL_LAYER_MAXPOOL:
            K(tnmtl_maxpool_backward, dst, cur, idx + (size_t)L->idx_off * B, B, I->in_h, I->in_w,
              I->in_c, I->ksize, nt);
            break;
        case TNMTL_LAYER_TANH:
        case TNMTL_LAYER_RELU:
            K(tnmtl_act_backward, dst, cur, out, (size_t)L->out_n * B, L->act, nt);
            break;
        case TNMTL_LAYER_FLATTEN:
            if (dst != cur) memcpy(dst, cur, (size_t)L->out_n * step);
            break;
        }
        cur = dst;
        cur_buf = dst_buf;
    }
}

const float *tnmtl_net_forward(const tnmtl_net *net, const tnmtl_layer_params *p, tnmtl_workspace *ws,
                               const float *x, int B)
{
    if (!net || !p || !ws) return NULL;
    return net_forward(net, p, ws, x, B, 0);
}

const double *tnmtl_net_forward_f64(const tnmtl_net *net, const tnmtl_layer_params_f64 *p,
                                    tnmtl_workspace *ws, const double *x, int B)
{
    if (!net || !p || !ws) return NULL;
    return net_forward(net, p, ws, x, B, 1);
}

void tnmtl_net_backward(const tnmtl_net *net, const tnmtl_layer_params *p, const tnmtl_layer_params *g,
                        tnmtl_workspace *ws, const float *dout, float *dx, int B)
{
    if (!net || !p || !g || !ws) return;
    net_backward(net, p, g, ws, dout, dx, B, 0);
}

void tnmtl_net_backward_f64(const tnmtl_net *net, const tnmtl_layer_params_f64 *p,
                            const tnmtl_layer_params_f64 *g, tnmtl_workspace *ws, const double *dout,
                            double *dx, int B)
{
    if (!net || !p || !g || !ws) return;
    net_backward(net, p, g, ws, dout, dx, B, 1);
}
