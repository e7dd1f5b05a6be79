/* resources.c - memory estimate of a multi-task model before it is built,
 * and the memory this process may still use (see tnmtl/resources.h). */
#include "tnmtl/resources.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Saturating unsigned arithmetic: an absurd model gives UINT64_MAX, which
 * is refused like any other too-big estimate. */
static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) { return a && b > UINT64_MAX / a ? UINT64_MAX : a * b; }

tnmtl_status tnmtl_mtl_memory_estimate(const tnmtl_mtl_config *cfg, int batch, int n_threads, int n_moments,
                                       tnmtl_memory_estimate *est, tnmtl_error *err)
{
    memset(est, 0, sizeof *est);
    if (!cfg || !cfg->n_out) return tnmtl_fail(err, TNMTL_ERR_INVALID, "memory estimate: no model configuration");
    const int T = cfg->n_tasks;
    if (T < 1 || T > TNMTL_MAX_TASKS)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "number of tasks %d is out of range [1, %d]", T, TNMTL_MAX_TASKS);
    if (batch < 1) return tnmtl_fail(err, TNMTL_ERR_INVALID, "memory estimate: batch %d must be at least 1", batch);
    if (n_threads < 0) return tnmtl_fail(err, TNMTL_ERR_INVALID, "memory estimate: %d threads", n_threads);
    if (n_threads == 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);   /* as tnmtl_mtl_create */
        n_threads = cpus > 0 ? (int)(cpus < INT32_MAX ? cpus : INT32_MAX) : 1;
    }
    if (n_threads > T) n_threads = T;
    if (n_moments < 0 || n_moments > 2)
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "memory estimate: %d optimiser moments (0..2)", n_moments);
    int min_out = cfg->n_out[0], max_out = cfg->n_out[0];
    uint64_t sum_out = 0;
    for (int t = 0; t < T; t++) {
        if (cfg->n_out[t] < min_out) min_out = cfg->n_out[t];
        if (cfg->n_out[t] > max_out) max_out = cfg->n_out[t];
        sum_out += cfg->n_out[t] > 0 ? (uint64_t)cfg->n_out[t] : 0;
    }
    /* The task networks differ only in the output layer: the widest one has
     * the largest workspace; a bad output size fails with net_create's message. */
    tnmtl_net *net = NULL;
    tnmtl_net_config nc = {cfg->arch ? cfg->arch : "", cfg->in_h, cfg->in_w, cfg->in_c, min_out, cfg->act};
    tnmtl_status st = TNMTL_OK;
    if (min_out < 1) {
        st = tnmtl_net_create(&nc, &net, err);  /* fails, naming the output size */
        tnmtl_net_free(net);
        return st ? st : tnmtl_fail(err, TNMTL_ERR_INTERNAL, "output size %d accepted", min_out);
    }
    nc.n_out = max_out;
    if ((st = tnmtl_net_create(&nc, &net, err))) return st;
    const int L = tnmtl_net_n_layers(net);
    if (L > TNMTL_MAX_LAYERS) {
        tnmtl_net_free(net);
        return tnmtl_fail(err, TNMTL_ERR_INVALID, "the architecture has %d layers, more than %d", L, TNMTL_MAX_LAYERS);
    }

    /* Parameter count and the largest stacked tensor, as tnmtl_mtl_create lays them out. */
    const int norm_method = cfg->method == TNMTL_METHOD_LAF || cfg->method == TNMTL_METHOD_TUCKER ||
                            cfg->method == TNMTL_METHOD_TT;
    int hidden_param_layers = 0;
    for (int l = 0; l < L; l++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net, l);
        hidden_param_layers += li->n_weight > 0 && !li->is_output;
    }
    const int output_shareable = hidden_param_layers == 0 && min_out == max_out;
    uint64_t n_params = 0, max_stack = 0, n_shared = 0, all_stacks = 0;
    int shareable_index = 0;
    for (int l = 0; l < L; l++) {
        const tnmtl_layer_info *li = tnmtl_net_layer(net, l);
        if (li->n_weight == 0) continue;
        const int shareable = !li->is_output || output_shareable;
        if (shareable && norm_method) {
            const uint64_t n_stack = sat_mul((uint64_t)li->n_weight, (uint64_t)T);
            max_stack = n_stack > max_stack ? n_stack : max_stack;
            all_stacks = sat_add(all_stacks, n_stack);
        }
        const int shared = shareable && cfg->method == TNMTL_METHOD_UD && shareable_index < cfg->ud_share;
        shareable_index += shareable;
        if (li->is_output) {
            const uint64_t d_in = (uint64_t)li->weight_shape[0];   /* [d_in][n_out] per task */
            n_params = sat_add(n_params, sat_mul(d_in + 1, sum_out));
            if (shared) n_shared = sat_add(n_shared, (uint64_t)(li->n_weight + li->n_bias));
        } else {
            const uint64_t copies = shared ? 1 : (uint64_t)T;
            n_params = sat_add(n_params, sat_mul(copies, (uint64_t)(li->n_weight + li->n_bias)));
            if (shared) n_shared = sat_add(n_shared, (uint64_t)(li->n_weight + li->n_bias));
        }
    }
    const size_t ws = tnmtl_workspace_bytes(net, batch, 0);
    const uint64_t n_in = (uint64_t)tnmtl_net_n_in(net);
    tnmtl_net_free(net);

    const uint64_t f = sizeof(float);
    est->n_params = n_params > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n_params;
    est->batch = batch;
    est->threads = n_threads;
    est->params = sat_mul(n_params, f);
    /* the gradients, and a UD model's per-task copies of the shared ones */
    est->grads = sat_add(est->params, sat_mul(sat_mul((uint64_t)T, n_shared), f));
    est->optim = sat_mul((uint64_t)n_moments, est->params);
    est->stack = sat_mul(2 * f, max_stack);
    /* norm.c per term: a double copy of the tensor, a float copy, the
     * unfolding (double) and the subgradient (double) of up to max_stack
     * elements each, and a p x p Gram matrix with p*p <= max_stack. */
    est->regulariser = sat_mul(8 + 4 + 8 + 8 + 8 + 16, max_stack);
    /* reg_every > 1 keeps every stacked layer's subgradient (float) between refreshes */
    if (cfg->reg_every > 1) est->stack = sat_add(est->stack, sat_mul(f, all_stacks));
    /* per worker: activations + inputs, output gradient, targets, labels, indices */
    const uint64_t per_worker = sat_add(ws == SIZE_MAX ? UINT64_MAX : (uint64_t)ws,
                                        sat_mul((uint64_t)batch, sat_add(sat_mul(n_in, f), (uint64_t)max_out * f + 4 + 4 + 8)));
    est->workspace = sat_mul((uint64_t)n_threads, per_worker);
    /* tnmtl_checkpoint_load: the file (params, 2 moments) + a params copy */
    est->checkpoint = sat_mul(4, est->params);
    const uint64_t train = sat_add(est->regulariser, est->workspace);
    est->total = sat_add(sat_add(sat_add(est->params, est->grads), sat_add(est->optim, est->stack)),
                         train > est->checkpoint ? train : est->checkpoint);
    return TNMTL_OK;
}

/* "Key:  N kB" from /proc/meminfo in bytes, or 0. */
static uint64_t meminfo(const char *key)
{
    FILE *fp = fopen("/proc/meminfo", "r");
    if (!fp) return 0;
    char line[256];
    uint64_t v = 0;
    const size_t kl = strlen(key);
    while (fgets(line, sizeof line, fp)) {
        unsigned long long kb;
        if (!strncmp(line, key, kl) && line[kl] == ':' && sscanf(line + kl + 1, "%llu", &kb) == 1) {
            v = sat_mul(kb, 1024);
            break;
        }
    }
    fclose(fp);
    return v;
}

/* One unsigned number from a file ("max" or unreadable: 0). */
static uint64_t file_number(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    unsigned long long v = 0;
    if (fscanf(fp, "%llu", &v) != 1) v = 0;
    fclose(fp);
    return v;
}

static uint64_t min_known(uint64_t a, uint64_t b)
{
    if (!a) return b;
    if (!b) return a;
    return a < b ? a : b;
}

uint64_t tnmtl_memory_available(void)
{
    uint64_t avail = meminfo("MemAvailable");
    if (!avail) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) avail = sat_mul((uint64_t)pages, (uint64_t)page);
    }
    /* cgroup v2 limit of this process's group (containers). */
    const uint64_t limit = file_number("/sys/fs/cgroup/memory.max");
    if (limit && limit < ((uint64_t)1 << 62)) {
        const uint64_t used = file_number("/sys/fs/cgroup/memory.current");
        avail = min_known(avail, limit > used ? limit - used : 1);
    }
    static const int limits[] = {RLIMIT_AS, RLIMIT_DATA};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(limits[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) avail = min_known(avail, (uint64_t)rl.rlim_cur);
    }
    return avail;
}

static double mb(uint64_t bytes) { return (double)bytes / 1e6; }

tnmtl_status tnmtl_memory_check(const tnmtl_memory_estimate *est, uint64_t available, tnmtl_error *err)
{
    if (!available) available = tnmtl_memory_available();
    if (!available || est->total <= available) return TNMTL_OK;
    return tnmtl_fail(err, TNMTL_ERR_TOO_BIG,
                      "the model needs about %.0f MB (%" PRId64 " parameters: parameters %.0f MB, gradients %.0f MB, "
                      "optimiser %.0f MB, norm scratch %.0f MB, activations for batch %d on %d thread(s) %.0f MB), "
                      "more than the %.0f MB of memory available; use a smaller architecture, batch or number of threads",
                      mb(est->total), est->n_params, mb(est->params), mb(est->grads), mb(est->optim),
                      mb(sat_add(est->stack, est->regulariser)), est->batch, est->threads, mb(est->workspace),
                      mb(available));
}
