/* cmd_norm.c - `tnmtl norm`: tensor trace norm of an .npy tensor, one JSON
 * line on stdout, optionally the subgradient as a .npy of the input's dtype. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char norm_usage[] =
    "usage: tnmtl norm --method laf|tucker|tt [--gamma G[,G...]] IN.npy [--grad OUT.npy]\n\n"
    "Tensor trace norm of an N-d float32 or float64, little-endian, C-order .npy\n"
    "tensor with the task axis last (../shared/docs/method.md):\n"
    "  laf     gamma ||W_(N)||_*                 (1 term)\n"
    "  tucker  sum_i gamma_i ||W_(i)||_*         (N terms, mode-i unfoldings)\n"
    "  tt      sum_i gamma_i ||W_[i]||_*         (N-1 terms, row-major reshapes)\n\n"
    "Prints one JSON line {\"method\", \"shape\", \"value\", \"terms\"}: terms are the\n"
    "unweighted nuclear norms, value their gamma-weighted sum.\n\n"
    "  --method M        laf, tucker or tt (required)\n"
    "  --gamma LIST      one weight for every term, or one per term (default 1)\n"
    "  --grad OUT.npy    also write the subgradient sum_i gamma_i U_i V_i^T as a\n"
    "                    .npy of the tensor's shape and dtype (written atomically)\n"
    "  -h, --help        this text\n\n"
    "Exit status: 0 ok, 2 bad input (options, file, dtype, shape, NaN/Inf values).\n";

/* Exit code for a library error in this command: input problems are 2. */
static int norm_fail(tnmtl_error *err)
{
    fprintf(stderr, "tnmtl norm: error: %s\n", err->msg[0] ? err->msg : tnmtl_status_name(err->status));
    return err->status == TNMTL_ERR_INTERNAL ? EXIT_FAILURE_OTHER : EXIT_BAD_INPUT;
}

/* "--opt VALUE" or "--opt=VALUE": returns the value and advances *i. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = 0;
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') {
        *matched = 1;
        return a + n + 1;
    }
    if (a[n] != '\0') return NULL;
    *matched = 1;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int cmd_norm(int argc, char **argv)
{
    const char *method_s = NULL, *gamma_s = NULL, *grad_path = NULL, *in_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(norm_usage, stdout);
            return EXIT_OK;
        }
        static const char *const names[] = {"--method", "--gamma", "--grad"};
        const char **slots[] = {&method_s, &gamma_s, &grad_path};
        int handled = 0;
        for (int k = 0; k < 3 && !handled; k++) {
            int matched;
            const char *v = opt_value(argc, argv, &i, names[k], &matched);
            if (!matched) continue;
            handled = 1;
            if (!v) return cli_usage_error("norm", "%s needs a value", names[k]);
            if (*slots[k]) return cli_usage_error("norm", "%s given twice", names[k]);
            *slots[k] = v;
        }
        if (handled) continue;
        if (a[0] == '-' && a[1] != '\0') return cli_usage_error("norm", "unknown option '%s'", a);
        if (in_path) return cli_usage_error("norm", "more than one input file ('%s' and '%s')", in_path, a);
        in_path = a;
    }
    if (!method_s) return cli_usage_error("norm", "--method is required (laf, tucker or tt)");
    if (!in_path) return cli_usage_error("norm", "no input .npy file");

    tnmtl_error err = {0};
    tnmtl_norm_method method;
    if (tnmtl_norm_method_parse(method_s, &method, &err)) return cli_usage_error("norm", "--method: %s", err.msg);

    tnmtl_npy_header h;
    void *data = NULL;
    if (tnmtl_npy_load(in_path, &h, &data, &err)) return norm_fail(&err);
    int rc = EXIT_OK;
    void *grad = NULL;
    int f64 = h.dtype == TNMTL_DTYPE_F64;
    if (h.dtype != TNMTL_DTYPE_F32 && !f64) {
        tnmtl_fail(&err, TNMTL_ERR_FORMAT, "%s: dtype %s is not supported (expected float32 <f4 or float64 <f8)",
                   in_path, tnmtl_dtype_name(h.dtype));
        rc = norm_fail(&err);
        goto done;
    }
    if (h.ndim < 1) {
        tnmtl_fail(&err, TNMTL_ERR_FORMAT, "%s: a scalar (0-d array) is not a tensor", in_path);
        rc = norm_fail(&err);
        goto done;
    }
    int nt = tnmtl_norm_n_terms(method, h.ndim);
    if (nt < 1) {
        tnmtl_fail(&err, TNMTL_ERR_INVALID, "%s: the %s norm needs at least 2 dimensions, the tensor has %d",
                   in_path, method_s, h.ndim);
        rc = norm_fail(&err);
        goto done;
    }
    double gamma[TNMTL_NORM_MAX_NDIM];
    for (int i = 0; i < nt; i++) gamma[i] = 1.0;
    if (gamma_s) {
        int ng;
        double g[TNMTL_NORM_MAX_NDIM + 1];
        if (cli_parse_double_list("--gamma", gamma_s, g, TNMTL_NORM_MAX_NDIM + 1, &ng, &err)) {
            rc = cli_usage_error("norm", "%s", err.msg);
            goto done;
        }
        if (ng != 1 && ng != nt) {
            rc = cli_usage_error("norm", "--gamma: %d values given, but the %s norm of this %d-d tensor has %d term%s "
                                 "(give one value for all, or one per term)", ng, method_s, h.ndim, nt, nt == 1 ? "" : "s");
            goto done;
        }
        for (int i = 0; i < ng; i++) {
            if (g[i] < 0) {
                rc = cli_usage_error("norm", "--gamma: %g is negative", g[i]);
                goto done;
            }
        }
        for (int i = 0; i < nt; i++) gamma[i] = g[ng == 1 ? 0 : i];
    }

    if (grad_path) {
        grad = calloc((size_t)(h.count ? h.count : 1), f64 ? sizeof(double) : sizeof(float));
        if (!grad) {
            tnmtl_fail(&err, TNMTL_ERR_NOMEM, "out of memory for the gradient of %lld elements", (long long)h.count);
            rc = norm_fail(&err);
            goto done;
        }
    }
    double value, terms[TNMTL_NORM_MAX_NDIM];
    tnmtl_status st = f64 ? tnmtl_norm_eval_f64(method, h.ndim, h.shape, data, gamma, &value, terms, grad, &err)
                          : tnmtl_norm_eval(method, h.ndim, h.shape, data, gamma, &value, terms, grad, &err);
    if (st) {
        tnmtl_error_prefix(&err, "%s", in_path);
        rc = norm_fail(&err);
        goto done;
    }
    if (grad_path && tnmtl_npy_save(grad_path, h.dtype, h.ndim, h.shape, grad, &err)) {
        rc = norm_fail(&err);
        goto done;
    }
    printf("{\"method\": \"%s\", \"shape\": [", tnmtl_norm_method_name(method));
    for (int i = 0; i < h.ndim; i++) printf("%s%lld", i ? ", " : "", (long long)h.shape[i]);
    printf("], \"value\": %.17g, \"terms\": [", value);
    for (int i = 0; i < nt; i++) printf("%s%.17g", i ? ", " : "", terms[i]);
    printf("]}\n");
    if (fflush(stdout) != 0) rc = EXIT_FAILURE_OTHER;
done:
    free(data);
    free(grad);
    return rc;
}
