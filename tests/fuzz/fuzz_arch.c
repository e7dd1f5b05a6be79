/* fuzz_arch.c - the architecture string parser (tnmtl_net_create) on a few
 * input shapes, the workspace plan, a forward/backward pass of the small
 * nets that parse, and the multi-task model built on them: its memory
 * estimate must match what tnmtl_mtl_create lays out.
 * Input: byte 0 = activation (bits 0-1) and method (bits 2-4), byte 1 =
 * output size, the rest = the architecture string. */
#include <math.h>

#include "fuzz_util.h"
#include "tnmtl/mtl.h"
#include "tnmtl/net.h"
#include "tnmtl/resources.h"

static void arch_check_net(const tnmtl_net *net, const tnmtl_net_config *cfg)
{
    int64_t params = 0;
    int h = cfg->in_h, w = cfg->in_w, c = cfg->in_c;
    const int L = tnmtl_net_n_layers(net);
    for (int i = 0; i < L; i++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net, i);
        if (li->in_h != h || li->in_w != w || li->in_c != c) abort();   /* shapes chain */
        if (li->out_h < 1 || li->out_w < 1 || li->out_c < 1 || li->n_weight < 0 || li->n_bias < 0) abort();
        params += li->n_weight + li->n_bias;
        h = li->out_h, w = li->out_w, c = li->out_c;
    }
    if (L < 1 || !tnmtl_net_layer(net, L - 1)->is_output || c != cfg->n_out || h != 1 || w != 1) abort();
    if (params != tnmtl_net_param_count(net)) abort();
    char buf[512];
    tnmtl_net_describe(net, buf, sizeof buf);
    if (!memchr(buf, '\0', sizeof buf)) abort();
}

/* One forward and backward pass of a small net on random inputs. */
static void arch_run_net(const tnmtl_net *net)
{
    enum { B = 2 };
    const int64_t np = tnmtl_net_param_count(net), n_in = tnmtl_net_n_in(net);
    const size_t ws_bytes = tnmtl_workspace_bytes(net, B, 0);
    if (np > 20000 || tnmtl_net_macs(net) > 200000 || n_in > 4096 || ws_bytes > (8u << 20)) return;
    const int L = tnmtl_net_n_layers(net), C = tnmtl_net_n_out(net);
    float *theta = calloc((size_t)np + 1, sizeof *theta), *grad = calloc((size_t)np + 1, sizeof *grad);
    float *x = malloc((size_t)(B * n_in) * sizeof *x), *dx = malloc((size_t)(B * n_in) * sizeof *dx);
    float *dout = malloc((size_t)(B * C) * sizeof *dout);
    tnmtl_layer_params *p = malloc((size_t)L * sizeof *p), *g = malloc((size_t)L * sizeof *g);
    tnmtl_workspace *ws = NULL;
    tnmtl_error err = {0};
    if (!theta || !grad || !x || !dx || !dout || !p || !g) abort();
    tnmtl_net_bind(net, theta, p);
    tnmtl_net_bind(net, grad, g);
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    tnmtl_net_init_params(net, p, &rng);
    for (int64_t i = 0; i < B * n_in; i++) x[i] = (float)tnmtl_rng_normal(&rng);
    if (tnmtl_workspace_create(&net, 1, B, 0, &ws, &err)) abort();
    const float *out = tnmtl_net_forward(net, p, ws, x, B);
    int labels[B] = {0, C - 1};
    const double loss = tnmtl_softmax_xent(out, labels, B, C, dout);
    if (!isfinite(loss)) abort();
    tnmtl_net_backward(net, p, g, ws, dout, dx, B);
    for (int64_t i = 0; i < np; i++)
        if (!isfinite(grad[i])) abort();
    tnmtl_workspace_free(ws);
    free(theta), free(grad), free(x), free(dx), free(dout), free(p), free(g);
}

/* The multi-task model: estimate, then build only what fits in a few MB. */
static void arch_mtl(const char *arch, tnmtl_activation act, tnmtl_method method, int n_out)
{
    const int outs[3] = {n_out, n_out + 1, n_out};
    tnmtl_mtl_config mc = {0};
    mc.arch = arch;
    mc.act = act;
    mc.in_h = mc.in_w = 12;
    mc.in_c = 1;
    mc.n_tasks = 3;
    mc.n_out = outs;
    mc.method = method;
    mc.ud_share = 1;
    mc.gamma = 0.01;
    tnmtl_memory_estimate est;
    tnmtl_error err = {0};
    tnmtl_status st = tnmtl_mtl_memory_estimate(&mc, 4, 2, 2, &est, &err);
    fz_check_error(st, &err);
    if (st) return;
    if (est.total < est.params || est.params != (uint64_t)est.n_params * 4) abort();
    if (est.total > (32u << 20)) {
        if (tnmtl_memory_check(&est, 1u << 20, &err) != TNMTL_ERR_TOO_BIG) abort();
        return;
    }
    tnmtl_mtl *m;
    st = tnmtl_mtl_create(&mc, &m, &err);
    fz_check_error(st, &err);
    if (st) return;  /* e.g. --share beyond the shareable layers */
    if (m->n_params != est.n_params) abort();   /* the estimate counts what is allocated */
    if (tnmtl_mtl_init(m, 3, &err)) abort();
    if (est.stack <= (1u << 20)) {
        double reg;
        st = tnmtl_mtl_regulariser(m, 1, &reg, &err);
        fz_check_error(st, &err);
        if (st == TNMTL_OK && !(isfinite(reg) && reg >= 0)) abort();
    }
    tnmtl_mtl_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096) return 0;
    static const int shapes[][3] = {{28, 28, 1}, {1, 1, 7}, {9, 7, 3}};
    const tnmtl_activation act = (tnmtl_activation)(data[0] & 3) == 3 ? TNMTL_ACT_TANH : (tnmtl_activation)(data[0] & 3);
    const tnmtl_method method = (tnmtl_method)((data[0] >> 2) & 7) > TNMTL_METHOD_TT ? TNMTL_METHOD_STL
                                                                                   : (tnmtl_method)((data[0] >> 2) & 7);
    const int n_out = 1 + data[1] % 16;
    char *arch = malloc(size - 1);
    if (!arch) abort();
    memcpy(arch, data + 2, size - 2);
    arch[size - 2] = '\0';
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        tnmtl_net_config cfg = {arch, shapes[k][0], shapes[k][1], shapes[k][2], n_out, act};
        tnmtl_net *net = NULL;
        tnmtl_error err = {0};
        tnmtl_status st = tnmtl_net_create(&cfg, &net, &err);
        fz_check_error(st, &err);
        if (st) continue;
        arch_check_net(net, &cfg);
        arch_run_net(net);
        tnmtl_net_free(net);
    }
    arch_mtl(arch, act, method, n_out);
    free(arch);
    return 0;
}
