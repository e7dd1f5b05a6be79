/* tnmtl.h - deep multi-task learning with tensor trace-norm regularisation.
 *
 * T related tasks each get a network of one common architecture.  For every
 * shareable layer the T per-task weight tensors are stacked with the task
 * axis last, and a tensor trace norm (LAF, Tucker or Tensor-Train) on that
 * stack pulls the tasks toward sharing parameters where the data allows
 * (Yang & Hospedales, "Trace Norm Regularised Deep Multi-Task Learning").
 *
 * Modules (one header each, all included here):
 *   tnmtl/version.h     TNMTL_VERSION, tnmtl_version()
 *   tnmtl/error.h       status codes, error messages, logging hook
 *   tnmtl/rng.h         seeded portable random generator
 *   tnmtl/net.h         one task's network: layers, forward, backward, losses
 *   tnmtl/optim.h       SGD with momentum, Adam over flat parameter buffers
 *   tnmtl/norm.h        tensor trace norms, subgradients, proximal operator
 *   tnmtl/dataset.h     multi-task datasets and splits
 *   tnmtl/npy.h, csv.h, omniglot.h, synthetic.h   data loaders
 *   tnmtl/imagefolder.h DIR/TASK/CLASS/image folders (PNG, JPEG)
 *   tnmtl/npz.h         numpy arrays x, y, task (numpy.savez)
 *   tnmtl/cluster.h     hierarchical clustering (task-relatedness ordering)
 *   tnmtl/mtl.h         the multi-task model, its objective, tnmtl_train
 *   tnmtl/report.h      which layers ended up shared, which tasks are related
 *   tnmtl/checkpoint.h  saving and resuming the whole training state
 *   tnmtl/resources.h   memory a model will need, checked up front
 *   tnmtl/safetensors.h safetensors files (named tensors + metadata)
 *
 * Every fallible call returns a tnmtl_status (TNMTL_OK = 0) and fills a
 * tnmtl_error with a message naming the problem; the library never exits and
 * prints only through tnmtl_set_log.  Build: cc app.c $(pkg-config --cflags
 * --libs tnmtl).  Complete programs: examples/ (train_arrays.c, norm_only.c,
 * resume.c).  The tutorial below is one of them: scripts/check-api.sh
 * compiles and runs it.
 *
 * Tutorial: a multi-task classifier trained from arrays in memory.
 *
 *   #include <stdio.h>
 *   #include <string.h>
 *   #include <tnmtl.h>
 *
 *   enum { T = 4, N = 800, D = 5 };   // tasks, examples (all tasks), features
 *   // Yours: fills x[N][D], labels y[N] (0 or 1) and begin[T + 1]; examples
 *   // are sorted by task, task t owns examples begin[t] .. begin[t+1] - 1.
 *   void my_data(float *x, int *y, int64_t *begin);
 *
 *   static void show(void *user, const tnmtl_progress *p)
 *   {
 *       (void)user;
 *       if (p->step % 100 == 0) printf("step %lld loss %.4f\n", (long long)p->step, p->loss);
 *   }
 *
 *   #define CHECK(call) if ((call) != TNMTL_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *
 *   int main(void)
 *   {
 *       tnmtl_error err;
 *       tnmtl_dataset ds;                          // 1 x 1 x D float features
 *       CHECK(tnmtl_dataset_init(&ds, T, N, 1, 1, D, TNMTL_TARGET_CLASS, 0, &err));
 *       my_data(ds.features, ds.label, ds.task_begin);
 *       for (int t = 0; t < T; t++) ds.n_classes[t] = 2;
 *       tnmtl_split split;                         // per task: 50% train, 50% test
 *       CHECK(tnmtl_split_make(&ds, 0.5, 0.0, 1, &split, &err));
 *
 *       tnmtl_mtl_config mc = {0};                 // T networks D -> 16 -> 2
 *       mc.arch = "fc16";
 *       mc.act = TNMTL_ACT_TANH;
 *       mc.in_h = 1, mc.in_w = 1, mc.in_c = D;
 *       mc.n_tasks = T, mc.n_out = ds.n_classes, mc.kind = TNMTL_TARGET_CLASS;
 *       mc.method = TNMTL_METHOD_TUCKER, mc.gamma = 0.01;   // fc16 stacked: D x 16 x T
 *       tnmtl_mtl *m;
 *       CHECK(tnmtl_mtl_create(&mc, &m, &err));
 *       CHECK(tnmtl_mtl_init(m, 42, &err));
 *       tnmtl_optim_config oc;
 *       tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
 *       tnmtl_optim opt;
 *       CHECK(tnmtl_optim_init(&opt, &oc, m->n_params, &err));
 *
 *       tnmtl_train_config tc = {0};
 *       tc.steps = 300, tc.batch = 32, tc.seed = 1, tc.progress = show;
 *       CHECK(tnmtl_train(m, &opt, &ds, &split, &tc, &err));
 *       double acc[T], loss;
 *       CHECK(tnmtl_mtl_evaluate(m, &ds, &split, TNMTL_PART_TEST, acc, &loss, &err));
 *       for (int t = 0; t < T; t++) printf("task %d: test accuracy %.3f\n", t, acc[t]);
 *
 *       tnmtl_sharing_report rep;                  // per shareable layer
 *       CHECK(tnmtl_sharing_report_make(m, &rep, &err));
 *       printf("%s: rho %.3f, effective rank %.2f of %d\n", rep.layers[0].name,
 *              rep.layers[0].rho, rep.layers[0].eff_rank, T);
 *       tnmtl_sharing_report_free(&rep);
 *
 *       CHECK(tnmtl_checkpoint_save("model.safetensors", m, &opt, "{}", &err));
 *       CHECK(tnmtl_checkpoint_load("model.safetensors", m, &opt, &err));  // any model of mc
 *       printf("checkpoint at step %lld\n", (long long)opt.step);
 *       tnmtl_optim_free(&opt);
 *       tnmtl_mtl_free(m);
 *       tnmtl_split_free(&split);
 *       tnmtl_dataset_free(&ds);
 *       return 0;
 *   }
 */
#ifndef TNMTL_H
#define TNMTL_H

#include "tnmtl/version.h"
#include "tnmtl/error.h"
#include "tnmtl/rng.h"
#include "tnmtl/net.h"
#include "tnmtl/optim.h"
#include "tnmtl/norm.h"
#include "tnmtl/npy.h"
#include "tnmtl/dataset.h"
#include "tnmtl/omniglot.h"
#include "tnmtl/csv.h"
#include "tnmtl/imagefolder.h"
#include "tnmtl/npz.h"
#include "tnmtl/synthetic.h"
#include "tnmtl/safetensors.h"
#include "tnmtl/dist.h"
#include "tnmtl/mtl.h"
#include "tnmtl/report.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/resources.h"
#include "tnmtl/cluster.h"

#endif
