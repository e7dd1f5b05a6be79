/* resume.c - load a checkpoint written by train_arrays.c, continue training
 * to STEPS, evaluate, and save the checkpoint again.
 *
 * Minibatches are a pure function of (seed, task, step), so training 300
 * steps and resuming to 600 gives exactly the model of 600 steps in one go.
 *
 *   cc resume.c -o resume $(pkg-config --cflags --libs tnmtl)
 *   ./train_arrays toy.safetensors 300 && ./resume toy.safetensors 600
 */
#include <stdio.h>
#include <stdlib.h>

#include <tnmtl.h>

#include "toy_tasks.h"

#define CHECK(call)                                       \
    if ((call) != TNMTL_OK) {                             \
        fprintf(stderr, "resume: error: %s\n", err.msg); \
        return 1;                                         \
    }

int main(int argc, char **argv)
{
    if (argc != 3 || atoll(argv[2]) < 1) {
        fprintf(stderr, "usage: resume CHECKPOINT STEPS   (STEPS: the total to train to)\n");
        return 2;
    }
    const char *path = argv[1];
    const long long steps = atoll(argv[2]);
    tnmtl_error err;

    /* The same data and split as the run that wrote the checkpoint. */
    tnmtl_dataset ds;
    CHECK(tnmtl_dataset_init(&ds, TOY_T, TOY_N, 1, 1, TOY_D, TNMTL_TARGET_CLASS, 0, &err));
    toy_tasks(ds.features, ds.label, ds.task_begin);
    for (int t = 0; t < TOY_T; t++) ds.n_classes[t] = TOY_CLASSES;
    CHECK(toy_name_tasks(&ds, &err));
    tnmtl_split split;
    CHECK(tnmtl_split_make(&ds, 0.4, 0.0, 1, &split, &err));

    /* A model of the same configuration and an optimiser of the same kind;
     * loading fills parameters, moments and step (a checkpoint of another
     * model is refused with a message, and nothing is changed). */
    tnmtl_mtl_config mc;
    toy_model_config(&mc, &ds);
    tnmtl_mtl *m;
    CHECK(tnmtl_mtl_create(&mc, &m, &err));
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    oc.lr = 0.01;
    tnmtl_optim opt;
    CHECK(tnmtl_optim_init(&opt, &oc, m->n_params, &err));
    CHECK(tnmtl_checkpoint_load(path, m, &opt, &err));
    printf("loaded %s at step %lld\n", path, (long long)opt.step);
    if (steps <= opt.step) {
        fprintf(stderr, "resume: error: the checkpoint is at step %lld already; STEPS must be larger\n",
                (long long)opt.step);
        return 2;
    }

    /* Training runs from opt.step to tc.steps, with the original seed. */
    tnmtl_train_config tc = {0};
    tc.steps = steps, tc.batch = 32, tc.seed = 1;
    tc.progress = toy_show_progress;
    CHECK(tnmtl_train(m, &opt, &ds, &split, &tc, &err));
    CHECK(toy_evaluate(m, &ds, &split, &err));
    CHECK(tnmtl_checkpoint_save(path, m, &opt, "{\"example\": \"resume\"}", &err));
    printf("saved %s at step %lld\n", path, (long long)opt.step);

    tnmtl_optim_free(&opt);
    tnmtl_mtl_free(m);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
    return 0;
}
