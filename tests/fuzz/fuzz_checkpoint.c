/* fuzz_checkpoint.c - the safetensors reader from memory (tnmtl_st_parse),
 * then the checkpoint loader on the same bytes written to a file: the run
 * configuration it holds goes through the CLI's parser
 * (run_options_from_json, cli/run.c), the tensors are restored into a
 * small fixed model.  A refused checkpoint must leave the model and the
 * optimiser untouched (the loader's all-or-nothing promise); an accepted
 * one must give finite parameters.
 * The model is that of tests/fuzz/corpus/checkpoint/README (seed files). */
#ifndef TNMTL_FUZZ_NO_CLI
#include "run.h"
#endif
#include "fuzz_util.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/safetensors.h"

static tnmtl_mtl *ck_model;
static tnmtl_optim ck_optim;
static float *ck_saved;      /* [3][n_params] params, m, v as initialised */

static void ck_setup(void)
{
    static const int n_out[2] = {2, 3};
    tnmtl_mtl_config mc = {0};
    mc.arch = "fc4";
    mc.act = TNMTL_ACT_TANH;
    mc.in_h = mc.in_w = 1;
    mc.in_c = 3;
    mc.n_tasks = 2;
    mc.n_out = n_out;
    mc.kind = TNMTL_TARGET_CLASS;
    mc.method = TNMTL_METHOD_TUCKER;
    mc.gamma = 0.01;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    tnmtl_error err = {0};
    if (tnmtl_mtl_create(&mc, &ck_model, &err) || tnmtl_mtl_init(ck_model, 0, &err) ||
        tnmtl_optim_init(&ck_optim, &oc, ck_model->n_params, &err)) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err.msg);
        abort();
    }
    const size_t n = (size_t)ck_model->n_params;
    ck_saved = malloc(3 * n * sizeof *ck_saved);
    if (!ck_saved) abort();
    memcpy(ck_saved, ck_model->params, n * sizeof(float));
    memcpy(ck_saved + n, ck_optim.m, n * sizeof(float));
    memcpy(ck_saved + 2 * n, ck_optim.v, n * sizeof(float));
}

/* 1 if the model and optimiser still hold the initial state. */
static int ck_untouched(void)
{
    const size_t n = (size_t)ck_model->n_params;
    return ck_optim.step == 0 && !memcmp(ck_saved, ck_model->params, n * sizeof(float)) &&
           !memcmp(ck_saved + n, ck_optim.m, n * sizeof(float)) && !memcmp(ck_saved + 2 * n, ck_optim.v, n * sizeof(float));
}

static void ck_restore(void)
{
    const size_t n = (size_t)ck_model->n_params;
    memcpy(ck_model->params, ck_saved, n * sizeof(float));
    memcpy(ck_optim.m, ck_saved + n, n * sizeof(float));
    memcpy(ck_optim.v, ck_saved + 2 * n, n * sizeof(float));
    ck_optim.step = 0;
}

/* Everything a parsed file offers must be readable. */
static void ck_walk(const tnmtl_st_file *f)
{
    volatile unsigned sum = 0;
    for (int i = 0; i < tnmtl_st_count(f); i++) {
        const tnmtl_st_tensor *t = tnmtl_st_at(f, i);
        const size_t bytes = (size_t)tnmtl_st_numel(t) * tnmtl_st_dtype_size(t->dtype);
        if (tnmtl_st_get(f, t->name) != t) abort();
        for (size_t k = 0; k < bytes; k++) sum += ((const unsigned char *)t->data)[k];
    }
    for (int i = 0; i < tnmtl_st_meta_count(f); i++) {
        const tnmtl_st_meta *m = tnmtl_st_meta_at(f, i);
        if (tnmtl_st_meta_get(f, m->key) != m->value) abort();
        sum += (unsigned)strlen(m->value);
    }
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ck_model) ck_setup();
    tnmtl_error err = {0};
    tnmtl_st_file *f = NULL;
    tnmtl_status st = tnmtl_st_parse(data, size, "fuzz.safetensors", &f, &err);
    fz_check_error(st, &err);
    if (st == TNMTL_OK) {
        ck_walk(f);
        const void *p;
        st = tnmtl_st_find(f, "optim.m", TNMTL_ST_F32, 1, NULL, &p, &err);
        fz_check_error(st, &err);
    } else if (f) {
        abort();   /* *out must be NULL on failure */
    }
    tnmtl_st_free(f);

    const char *path = fz_write("checkpoint.safetensors", data, size);
    char *config = NULL;
    st = tnmtl_checkpoint_read_config(path, &config, &err);
    fz_check_error(st, &err);
#ifndef TNMTL_FUZZ_NO_CLI
    if (st == TNMTL_OK) {
        run_options o;
        st = run_options_from_json(config, &o, &err);
        fz_check_error(st, &err);
        if (st == TNMTL_OK) {
            char *again = run_options_to_json(&o);   /* round trip */
            run_options o2;
            if (!again || run_options_from_json(again, &o2, &err) != TNMTL_OK) abort();
            free(again);
        }
    }
#endif
    free(config);
    st = tnmtl_checkpoint_load(path, ck_model, &ck_optim, &err);
    fz_check_error(st, &err);
    if (st != TNMTL_OK) {
        if (!ck_untouched()) abort();
    } else {
        for (int64_t i = 0; i < ck_model->n_params; i++)
            if (!(ck_model->params[i] == ck_model->params[i])) abort();
        ck_restore();
    }
    return 0;
}
