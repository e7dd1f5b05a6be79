/* train_arrays.c - multi-task training from arrays in memory, then the
 * sharing report: which layers the tasks ended up sharing, which tasks are
 * related.  Saves the whole training state to a checkpoint (resume.c
 * continues it).
 *
 *   cc train_arrays.c -o train_arrays $(pkg-config --cflags --libs tnmtl)
 *   ./train_arrays [CHECKPOINT [STEPS]]      (default toy.safetensors 300)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tnmtl.h>

#include "toy_tasks.h"

#define CHECK(call)                                             \
    if ((call) != TNMTL_OK) {                                   \
        fprintf(stderr, "train_arrays: error: %s\n", err.msg); \
        return 1;                                               \
    }

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "toy.safetensors";
    const long long steps = argc > 2 ? atoll(argv[2]) : 300;
    if (steps < 1) {
        fprintf(stderr, "train_arrays: error: STEPS must be a positive integer, not '%s'\n", argv[2]);
        return 2;
    }
    tnmtl_error err;

    /* Your data: features x[n][d], labels y[n], sorted by task. */
    static float x[TOY_N * TOY_D];
    static int y[TOY_N];
    static int64_t begin[TOY_T + 1];
    toy_tasks(x, y, begin);

    /* Into a dataset: TOY_N examples of shape 1 x 1 x TOY_D (float features). */
    tnmtl_dataset ds;
    CHECK(tnmtl_dataset_init(&ds, TOY_T, TOY_N, 1, 1, TOY_D, TNMTL_TARGET_CLASS, 0, &err));
    memcpy(ds.features, x, sizeof x);
    memcpy(ds.label, y, sizeof y);
    memcpy(ds.task_begin, begin, sizeof begin);
    for (int t = 0; t < TOY_T; t++) ds.n_classes[t] = TOY_CLASSES;
    CHECK(toy_name_tasks(&ds, &err)); /* optional: reports name the tasks */
    tnmtl_split split; /* per task and class: 40% train, 60% test; seed 1 */
    CHECK(tnmtl_split_make(&ds, 0.4, 0.0, 1, &split, &err));

    /* The model, its initialisation (seed 1) and the optimiser. */
    tnmtl_mtl_config mc;
    toy_model_config(&mc, &ds);
    tnmtl_mtl *m;
    CHECK(tnmtl_mtl_create(&mc, &m, &err));
    CHECK(tnmtl_mtl_init(m, 1, &err));
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    oc.lr = 0.01;
    tnmtl_optim opt;
    CHECK(tnmtl_optim_init(&opt, &oc, m->n_params, &err));

    /* Training: 32 examples per task per step, minibatch order from seed 1. */
    tnmtl_train_config tc = {0};
    tc.steps = steps, tc.batch = 32, tc.seed = 1;
    tc.progress = toy_show_progress;
    CHECK(tnmtl_train(m, &opt, &ds, &split, &tc, &err));
    CHECK(toy_evaluate(m, &ds, &split, &err));

    /* Sharing report: per shareable layer, how alike the tasks' weights are. */
    tnmtl_sharing_report rep;
    CHECK(tnmtl_sharing_report_make(m, &rep, &err));
    for (int k = 0; k < rep.n_layers; k++) {
        const tnmtl_layer_sharing *L = &rep.layers[k];
        printf("layer %s: rho %.3f, effective rank %.2f of %d\n", L->name, L->rho, L->eff_rank, TOY_T);
        for (int s = 0; s < TOY_T; s++) { /* relatedness[s][t] in [0, 1] */
            printf("  %s:", ds.task_names[s]);
            for (int t = 0; t < TOY_T; t++) printf(" %.2f", L->relatedness[s * TOY_T + t]);
            printf("\n");
        }
    }
    tnmtl_sharing_report_free(&rep);

    /* The whole training state (parameters, Adam moments, step) and, as
     * free-form JSON, whatever the caller wants to remember with it. */
    CHECK(tnmtl_checkpoint_save(path, m, &opt, "{\"example\": \"train_arrays\"}", &err));
    printf("saved %s at step %lld\n", path, (long long)opt.step);

    tnmtl_optim_free(&opt);
    tnmtl_mtl_free(m);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
    return 0;
}
