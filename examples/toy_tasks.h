/* toy_tasks.h - what train_arrays.c and resume.c share: the data (arrays in
 * memory, standing for yours), the model, and printing progress and results.
 *
 * The data: TOY_T = 6 classification tasks in two groups of three (tasks "a1".."a3",
 * "b1".."b3"), TOY_PER_TASK examples each, TOY_D features, TOY_CLASSES
 * classes.  Task t's label is the argmax of x^T (V_g + 0.25 E_t) over the
 * classes: V_g is its group's weights and E_t its own small part, so the
 * tasks of a group need nearly the same first layer and the two groups
 * different ones.  Examples are sorted by task: task t owns rows
 * begin[t] .. begin[t+1] - 1.  Deterministic (a fixed generator).
 */
#ifndef TOY_TASKS_H
#define TOY_TASKS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <tnmtl.h>

enum { TOY_T = 6, TOY_PER_TASK = 150, TOY_N = TOY_T * TOY_PER_TASK, TOY_D = 8, TOY_CLASSES = 3 };

/* x[TOY_N][TOY_D] features, y[TOY_N] labels, begin[TOY_T + 1] task offsets */
static void toy_tasks(float *x, int *y, int64_t *begin)
{
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 2016);
    double V[2][TOY_D][TOY_CLASSES], E[TOY_T][TOY_D][TOY_CLASSES];
    for (int i = 0; i < TOY_D * TOY_CLASSES; i++) {
        for (int g = 0; g < 2; g++) V[g][i / TOY_CLASSES][i % TOY_CLASSES] = tnmtl_rng_normal(&rng);
        for (int t = 0; t < TOY_T; t++) E[t][i / TOY_CLASSES][i % TOY_CLASSES] = tnmtl_rng_normal(&rng);
    }
    for (int t = 0; t <= TOY_T; t++) begin[t] = (int64_t)t * TOY_PER_TASK;
    for (int i = 0; i < TOY_N; i++) {
        const int t = i / TOY_PER_TASK, g = t / 3;
        double score[TOY_CLASSES] = {0};
        for (int d = 0; d < TOY_D; d++) {
            x[i * TOY_D + d] = (float)tnmtl_rng_normal(&rng);
            for (int c = 0; c < TOY_CLASSES; c++) score[c] += x[i * TOY_D + d] * (V[g][d][c] + 0.25 * E[t][d][c]);
        }
        y[i] = 0;
        for (int c = 1; c < TOY_CLASSES; c++)
            if (score[c] > score[y[i]]) y[i] = c;
    }
}

/* Names the tasks "a1", "a2", "a3", "b1", "b2", "b3" (group, member). */
static tnmtl_status toy_name_tasks(tnmtl_dataset *ds, tnmtl_error *err)
{
    for (int t = 0; t < TOY_T; t++) {
        const char name[3] = {(char)('a' + t / 3), (char)('1' + t % 3), 0};
        tnmtl_status st = tnmtl_dataset_set_task_name(ds, t, name, err);
        if (st) return st;
    }
    return TNMTL_OK;
}

/* The model both train_arrays.c and resume.c use (a checkpoint loads only
 * into a model of the same architecture, outputs and method): per task
 * TOY_D -> fc16 (tanh) -> TOY_CLASSES, the hidden layer's weights stacked
 * into a TOY_D x 16 x TOY_T tensor under the Tucker trace norm. */
static void toy_model_config(tnmtl_mtl_config *mc, const tnmtl_dataset *ds)
{
    *mc = (tnmtl_mtl_config){0};
    mc->arch = "fc16";
    mc->act = TNMTL_ACT_TANH;
    mc->in_h = 1, mc->in_w = 1, mc->in_c = TOY_D;
    mc->n_tasks = TOY_T, mc->n_out = ds->n_classes, mc->kind = TNMTL_TARGET_CLASS;
    mc->method = TNMTL_METHOD_TUCKER, mc->gamma = 0.01;
}

/* Prints step, loss and regulariser every 100 steps (a tnmtl_progress_fn). */
static void toy_show_progress(void *user, const tnmtl_progress *p)
{
    (void)user;
    if (p->step % 100 == 0 || p->step == p->steps)
        printf("step %lld/%lld  loss %.4f  norm %.4f\n", (long long)p->step, (long long)p->steps, p->loss, p->reg);
}

/* Prints each task's test accuracy and their mean, and the mean test loss
 * with all its digits (a resumed run must reproduce it exactly). */
static tnmtl_status toy_evaluate(tnmtl_mtl *m, const tnmtl_dataset *ds, const tnmtl_split *split,
                                 tnmtl_error *err)
{
    double acc[TOY_T], loss, mean = 0;
    tnmtl_status st = tnmtl_mtl_evaluate(m, ds, split, TNMTL_PART_TEST, acc, &loss, err);
    if (st) return st;
    printf("test accuracy:");
    for (int t = 0; t < TOY_T; t++) {
        printf(" %s %.3f", ds->task_names[t], acc[t]);
        mean += acc[t] / TOY_T;
    }
    printf("\nmean test accuracy %.3f (chance %.3f)\ntest loss %.9g\n", mean, 1.0 / TOY_CLASSES, loss);
    return TNMTL_OK;
}

#endif
