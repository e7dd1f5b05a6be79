/* bench_train.c - one full-batch training step of the paper's Omniglot model
 * (50 tasks, 105x105, the 10% split) through the library API, against the
 * machine's sgemm.  The PyTorch counterpart is bench/bench_train_torch.py;
 * scripts/bench-train.sh runs both alternately and prints the table.
 *
 *   build/bench/bench_train [--method stl|laf|tucker|tt] [--steps N]
 *                           [--data DIR] [--threads N] [--gamma G]
 *   build/bench/bench_train --train STEPS [--method M] ...
 *   --reg-every K   the regulariser every K steps (tnmtl_mtl_config.reg_every,
 *                   an approximation; default exact)
 *
 * --train STEPS trains that many steps instead (tnmtl_train, full batch)
 * and prints train_steps, train_s_per_step, train_loss, test_loss and
 * test_acc (mean over tasks, %, on drawings 2..19): for comparing options.
 *
 * Data: Omniglot from DIR (default ../shared/data/omniglot) at 105x105,
 * all 50 alphabets; the training part of each character is its drawings 0
 * and 1 (2 of 20, 10%: 3246 images), the same images bench_train_torch.py
 * reads from the npz.
 *
 * One step = tnmtl_mtl_objective (batch 0: every training image of every
 * task; forward, loss, backward, regulariser value and subgradient) +
 * tnmtl_optim_step (Adam), as tnmtl_train does it.  After one warm-up step,
 * each of N steps is followed by one 2048^3 cblas_sgemm and one call of the
 * regulariser alone (tnmtl_mtl_regulariser with its subgradient), with
 * 0.15 s pauses so that OpenBLAS's idle threads go to sleep first: the
 * three see the same load of a shared machine.
 *
 * Output: one "c METHOD KEY VALUE" line per measurement, for the driver:
 *   step (s), reg (s), sgemm (GFLOP/s), step_cpu and reg_cpu (CPU seconds
 *   of the process, all threads)        - one per timed step
 *   flop (the data part's GEMM FLOPs of one step, as dense convolutions),
 *   flop_exec (those the engine executes: bench_util.h), loss, reg_value,
 *   maxrss_mb (peak resident memory of the process), images, params.
 * FLOPs counted: per example and task, exactly the multiply-adds of the
 * engine's GEMM-like loops (as bench/bench_engine.c counts them: forward
 * and weight gradient of every conv/fc layer, input gradient of every one
 * but the first, less the conv rows no max-pool window reads), times 2,
 * summed over the training images of every task.  The norms' FLOPs are not
 * counted (the eigensolver's are not a fixed number). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tnmtl/mtl.h"
#include "tnmtl/omniglot.h"
#include "tnmtl/rng.h"
#include "util.h"
#include "bench_util.h"

#define ARCH "conv8x5,pool2,conv12x3,pool2,conv16x3,pool2,fc64"
enum { DRAWINGS = 20, TRAIN_DRAWINGS = 2, MAX_REPS = 64 };

/* Training part: drawings 0 .. TRAIN_DRAWINGS-1 of every character, test
 * part: the others (format A keeps a task's examples in character order,
 * 20 drawings each). */
static tnmtl_status drawings_split(const tnmtl_dataset *ds, tnmtl_split *s, tnmtl_error *err)
{
    memset(s, 0, sizeof *s);
    s->n_tasks = ds->n_tasks;
    for (int p = 0; p < 3; p++) {
        s->begin[p] = tnmtl_calloc((size_t)ds->n_tasks + 1, sizeof(int64_t), "split", err);
        s->idx[p] = tnmtl_calloc((size_t)ds->n_examples + 1, sizeof(int64_t), "split", err);
        if (!s->begin[p] || !s->idx[p]) return TNMTL_ERR_NOMEM;
    }
    int64_t k[3] = {0, 0, 0};
    for (int t = 0; t < ds->n_tasks; t++) {
        const int64_t b = ds->task_begin[t];
        if (ds->task_begin[t + 1] - b != (int64_t)ds->n_classes[t] * DRAWINGS)
            return tnmtl_fail(err, TNMTL_ERR_INVALID, "task %d does not have %d drawings per character", t, DRAWINGS);
        for (int c = 0; c < ds->n_classes[t]; c++)
            for (int d = 0; d < DRAWINGS; d++) {
                const int64_t e = b + (int64_t)c * DRAWINGS + d;
                if (ds->label[e] != c) return tnmtl_fail(err, TNMTL_ERR_INVALID, "example %lld is not of class %d", (long long)e, c);
                const int p = d < TRAIN_DRAWINGS ? TNMTL_PART_TRAIN : TNMTL_PART_TEST;
                s->idx[p][k[p]++] = e;
            }
        for (int p = 0; p < 3; p++) s->begin[p][t + 1] = k[p];
    }
    return TNMTL_OK;
}

/* --train N: N full-batch Adam steps from the same start, then the mean
 * test accuracy over tasks (drawings 2..19); for comparing options. */
static int train_run(tnmtl_mtl *m, tnmtl_optim *opt, const tnmtl_dataset *ds, const tnmtl_split *split,
                     int64_t steps, const char *mname)
{
    tnmtl_error err;
    tnmtl_train_config tc = {0};
    tc.steps = steps;
    const double t0 = tnmtl_now();
    if (tnmtl_train(m, opt, ds, split, &tc, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    const double dt = tnmtl_now() - t0;
    double *acc = malloc((size_t)m->n_tasks * sizeof *acc), loss, train_loss, mean = 0;
    if (!acc || tnmtl_mtl_evaluate(m, ds, split, TNMTL_PART_TRAIN, acc, &train_loss, &err) ||
        tnmtl_mtl_evaluate(m, ds, split, TNMTL_PART_TEST, acc, &loss, &err)) {
        fprintf(stderr, "bench_train: %s\n", acc ? err.msg : "out of memory");
        return 1;
    }
    for (int t = 0; t < m->n_tasks; t++) mean += acc[t] / m->n_tasks;
    printf("c %s train_steps %lld\n", mname, (long long)steps);
    printf("c %s train_s_per_step %.4f\n", mname, dt / (double)steps);
    printf("c %s train_loss %.6f\n", mname, train_loss);
    printf("c %s test_loss %.6f\n", mname, loss);
    printf("c %s test_acc %.4f\n", mname, 100 * mean);
    free(acc);
    return 0;
}

/* CPU seconds of the process so far (all threads, user + system) */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double sgemm_gflops(int n, const float *a, const float *b, float *c)
{
    const double t0 = tnmtl_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    return 2.0 * n * n * (double)n / (tnmtl_now() - t0) * 1e-9;
}

static void pause_blas(void)
{
    /* OpenBLAS's idle threads spin (sched_yield) ~0.1 s after a threaded call */
    nanosleep(&(struct timespec){0, 150 * 1000 * 1000}, NULL);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_train [--method stl|laf|tucker|tt] [--steps 1..64] [--data DIR] "
                    "[--threads N] [--gamma G] [--train STEPS] [--reg-every K]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data/omniglot", *mname = "stl";
    int steps = 3, threads = 0, reg_every = 0;
    long long train = 0;
    double gamma = 0.01;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "--method")) mname = argv[++i];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data")) data = argv[++i];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gamma")) gamma = atof(argv[++i]);
        else if (!strcmp(argv[i], "--train")) train = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--reg-every")) reg_every = atoi(argv[++i]);
        else return usage();
    }
    if (steps < 1 || steps > MAX_REPS || threads < 0 || train < 0) return usage();
    tnmtl_error err;
    tnmtl_method method;
    if (tnmtl_method_parse(mname, &method, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 2;
    }
    tnmtl_dataset ds;
    tnmtl_split split;
    tnmtl_omniglot_options oo = {0};
    if (tnmtl_omniglot_load(data, &oo, &ds, &err) || drawings_split(&ds, &split, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    tnmtl_mtl_config mc = {0};
    mc.arch = ARCH;
    mc.act = TNMTL_ACT_TANH;
    mc.in_h = mc.in_w = TNMTL_OMNIGLOT_NATIVE;
    mc.in_c = 1;
    mc.n_tasks = ds.n_tasks;
    mc.n_out = ds.n_classes;
    mc.kind = TNMTL_TARGET_CLASS;
    mc.method = method;
    mc.gamma = gamma;
    mc.reg_every = reg_every;
    tnmtl_mtl *m;
    tnmtl_optim opt;
    tnmtl_optim_config oc;
    tnmtl_optim_defaults(TNMTL_OPTIM_ADAM, &oc);
    if (tnmtl_mtl_create(&mc, &m, &err) || (threads && tnmtl_mtl_set_threads(m, threads, &err)) ||
        tnmtl_mtl_init(m, 1, &err) || tnmtl_optim_init(&opt, &oc, m->n_params, &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    if (train) return train_run(m, &opt, &ds, &split, train, mname);
    double flop = 0, flop_exec = 0;
    int64_t images = 0;
    for (int t = 0; t < m->n_tasks; t++) {
        const int64_t nt = tnmtl_split_count(&split, TNMTL_PART_TRAIN, t);
        flop += 2.0 * (double)bench_train_macs(m->nets[t], 0) * (double)nt;
        flop_exec += 2.0 * (double)bench_train_macs(m->nets[t], 1) * (double)nt;
        images += nt;
    }

    enum { N = 2048 };
    float *a = malloc((size_t)N * N * sizeof(float)), *b = malloc((size_t)N * N * sizeof(float)),
          *c = malloc((size_t)N * N * sizeof(float));
    if (!a || !b || !c) return 1;
    tnmtl_rng rng;
    tnmtl_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)N * N; i++) {
        a[i] = (float)tnmtl_rng_uniform(&rng);
        b[i] = (float)tnmtl_rng_uniform(&rng);
    }

    double loss = 0, reg = 0, regv = 0;
    for (int r = -1; r < steps; r++) {
        double t0 = tnmtl_now(), c0 = cpu_now();
        if (tnmtl_mtl_objective(m, &ds, &split, 1, opt.step, 0, &loss, &reg, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        tnmtl_optim_step(&opt, m->params, m->grads);
        const double dt = tnmtl_now() - t0, dc = cpu_now() - c0;
        pause_blas();
        const double gf = sgemm_gflops(N, a, b, c);
        pause_blas();
        t0 = tnmtl_now(), c0 = cpu_now();
        if (tnmtl_mtl_regulariser(m, 1, &regv, &err)) {
            fprintf(stderr, "bench_train: %s\n", err.msg);
            return 1;
        }
        const double dr = tnmtl_now() - t0, dcr = cpu_now() - c0;
        pause_blas();
        if (r < 0) continue;
        printf("c %s step %.6f\n", mname, dt);
        printf("c %s reg %.6f\n", mname, dr);
        printf("c %s sgemm %.3f\n", mname, gf);
        printf("c %s step_cpu %.6f\n", mname, dc);
        printf("c %s reg_cpu %.6f\n", mname, dcr);
        fflush(stdout);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("c %s flop %.6e\n", mname, flop);
    printf("c %s flop_exec %.6e\n", mname, flop_exec);
    printf("c %s images %lld\n", mname, (long long)images);
    printf("c %s params %lld\n", mname, (long long)m->n_params);
    printf("c %s loss %.6f\n", mname, loss);
    printf("c %s reg_value %.6f\n", mname, reg);
    printf("c %s maxrss_mb %.1f\n", mname, ru.ru_maxrss / 1024.0);
    free(a), free(b), free(c);
    tnmtl_optim_free(&opt);
    tnmtl_mtl_free(m);
    tnmtl_split_free(&split);
    tnmtl_dataset_free(&ds);
    return 0;
}
