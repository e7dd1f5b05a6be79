/* test_mpi.c - distributed training (tnmtl/dist.h) gives what one process
 * gives, bit for bit, and survives a dead process.
 *
 * The MPI program (`make mpi`: build-mpi/tnmtl) runs under
 *   mpirun --allow-run-as-root --oversubscribe -np P
 * and is compared with the one-process CLI (build/tnmtl, no MPI):
 *   - stl, ud, laf, tucker and tt with P = 1, 2, 3: the same checkpoint
 *     (parameters and Adam moments) and the same test accuracies; eval too;
 *   - each process holds the optimiser state of its own parameters only;
 *   - compare: the one-process table, and finished runs read back with another P;
 *   - tune: the one-process choice and test accuracy, and its ledger read back;
 *   - a run saved with P = 2 resumes with P = 3, and with one process
 *     without MPI, to the state of a run never stopped;
 *   - Ctrl-C on mpirun saves the checkpoint of the step all stopped at;
 *   - a process killed with SIGKILL stops the whole run within seconds
 *     (mpirun names the rank), and the last checkpoint loads and resumes;
 *   - a norm large enough for OpenBLAS's threads agrees within 1e-5;
 *   - --dist-norm split agrees with one process within 1e-4;
 *   - a bad option is reported once, exit 2;
 *   - each process reads its own tasks' data: Omniglot's PNG zip gives the
 *     one-process model, and a corrupt image of process 1's tasks is
 *     reported by process 1 alone;
 * and the task partition (tnmtl_dist_partition) and how the split norm
 * computes each term (dist_norm.h) on their own.
 * `make mpi-test` sets TNMTL_MPI_CLI; without it the MPI tests are skipped
 * (those two always run). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>

#include "testutil.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/dist.h"
#include "tnmtl/safetensors.h"
#include "dist_norm.h"

/* Minibatches, 8 tasks of unequal sizes (the embedded data), 30 steps. */
#define RUN "--data synthetic --batch 8 --seed 2 --steps 30 --quiet"

static const char *mpi_cli(void)
{
    return getenv("TNMTL_MPI_CLI");
}

/* Runs `mpirun -np P <MPI CLI> ARGS`; stdout into out[cap] (stderr too when
 * merge); returns the exit status. */
static int mpirun(int P, int merge, char *out, size_t cap, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "mpirun --allow-run-as-root --oversubscribe -np %d %s %s%s", P, mpi_cli(), args,
             merge ? "" : " 2>/dev/null");
    return tu_run(cmd, merge, out, cap);
}

static void assert_same(const char *a, const char *b)
{
    char why[512] = "";
    if (!tu_same_checkpoint(a, b, why, sizeof why)) fail_msg("%s and %s: %s", a, b, why);
}

/* The "test" part of a printed result (per-task metrics and their mean). */
static const char *test_part(const char *json)
{
    const char *p = strstr(json, "\"test\"");
    return p ? p : "";
}

static void prefix_until(const char *s, const char *stop, char *buf, size_t cap)
{
    const char *e = strstr(s, stop);
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

static void test_same_as_one_process(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    static const char *const methods[] = {"stl", "ud", "laf", "tucker", "tt"};
    const char *dir = tu_tmpdir();
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        char one[512], out1[65536];
        snprintf(one, sizeof one, "%s/%s-one", dir, methods[k]);
        assert_int_equal(tu_cli_run(0, out1, sizeof out1, "train " RUN " --method %s --out %s", methods[k], one), 0);
        char test1[8192];
        prefix_until(test_part(out1), "\"sharing\"", test1, sizeof test1);
        assert_true(strlen(test1) > 20);
        for (int P = 1; P <= 3; P++) {
            char many[512], outP[65536], testP[8192];
            snprintf(many, sizeof many, "%s/%s-np%d", dir, methods[k], P);
            assert_int_equal(mpirun(P, 0, outP, sizeof outP, "train " RUN " --method %s --out %s", methods[k], many), 0);
            assert_same(one, many);
            prefix_until(test_part(outP), "\"sharing\"", testP, sizeof testP);
            assert_string_equal(test1, testP);
            if (P > 1) assert_non_null(strstr(outP, "\"processes\""));
        }
        /* eval of a saved run: the same metrics from 3 processes */
        char e1[65536], e3[65536], m1[8192], m3[8192];
        assert_int_equal(tu_cli_run(0, e1, sizeof e1, "eval --model %s", one), 0);
        assert_int_equal(mpirun(3, 0, e3, sizeof e3, "eval --model %s", one), 0);
        prefix_until(test_part(e1), "\"sharing\"", m1, sizeof m1);
        prefix_until(test_part(e3), "\"sharing\"", m3, sizeof m3);
        assert_true(strlen(m1) > 20);
        assert_string_equal(m1, m3);
    }
    tu_rmtree(dir);
}

/* Weight decay under mpirun: each process sums its own tasks' squares, and
 * the per-task sums are gathered like the losses, so STL and UD (a
 * hard-shared layer, decayed by every task) give the one-process model. */
static void test_weight_decay_same_as_one_process(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    static const char *const methods[] = {"stl", "ud"};
    const char *dir = tu_tmpdir();
    for (size_t k = 0; k < 2; k++) {
        char one[512], none[512], many[512], buf[65536];
        snprintf(one, sizeof one, "%s/%s-one", dir, methods[k]);
        snprintf(none, sizeof none, "%s/%s-none", dir, methods[k]);
        snprintf(many, sizeof many, "%s/%s-np3", dir, methods[k]);
        assert_int_equal(tu_cli_run(0, buf, sizeof buf, "train " RUN " --method %s --weight-decay 0.2 --out %s",
                                    methods[k], one), 0);
        assert_int_equal(mpirun(3, 0, buf, sizeof buf, "train " RUN " --method %s --weight-decay 0.2 --out %s",
                                methods[k], many), 0);
        assert_same(one, many);
        assert_int_equal(tu_cli_run(0, buf, sizeof buf, "train " RUN " --method %s --out %s", methods[k], none), 0);
        char why[512] = "";
        assert_false(tu_same_checkpoint(one, none, why, sizeof why)); /* the penalty acted */
    }
    tu_rmtree(dir);
}

/* Each process reads its own tasks' data only: Omniglot's PNG zip gives the
 * one-process model with 2 and 3 processes, process 0 reporting
 * ("input_examples") the inputs of its tasks alone; and a corrupt image among process 1's tasks stops
 * the run, reported by process 1 alone (process 0 never reads it), with
 * the file named, within seconds. */
static void test_own_tasks_data(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char zip[1024], one[512], out1[65536], test1[8192];
    snprintf(zip, sizeof zip, "%s", tu_shared_path("omniglot/images_background_small1.zip"));
#define OG "train --data omniglot:%s --size 28 --batch 10 --steps 6 --seed 3 --method tucker --out %s"
    snprintf(one, sizeof one, "%s/og-one", dir);
    assert_int_equal(tu_cli_run(0, out1, sizeof out1, OG " --quiet", zip, one), 0);
    prefix_until(test_part(out1), "\"sharing\"", test1, sizeof test1);
    for (int P = 2; P <= 3; P++) {
        char many[512], outP[65536], testP[8192];
        snprintf(many, sizeof many, "%s/og-np%d", dir, P);
        assert_int_equal(mpirun(P, 0, outP, sizeof outP, OG, zip, many), 0);
        assert_same(one, many);
        prefix_until(test_part(outP), "\"sharing\"", testP, sizeof testP);
        assert_string_equal(test1, testP);
        /* process 0's inputs: 5 alphabets of 24, 22, 24, 40, 26 characters x 20 drawings */
        const char *line = strstr(outP, "\"input_examples\":");
        assert_non_null(line);
        long long held = 0;
        assert_int_equal(sscanf(strchr(line, ':') + 1, "%lld", &held), 1);
        assert_true(held > 0 && held <= (P == 2 ? 1400 : 960));
    }
#undef OG
    /* An image folder with a corrupt file in its last task (process 1's). */
    char tree[600], cmd[2048], out[65536];
    snprintf(tree, sizeof tree, "%s/img", dir);
    snprintf(cmd, sizeof cmd, "for p in python3 /usr/bin/python3; do if $p -c 'import numpy' 2>/dev/null; then "
             "exec $p scripts/make_image_tree.py '%s' --seed 7; fi; done; exit 77", tree);
    const int rc = tu_run(cmd, 1, NULL, 0);
    if (rc == 77) {
        tu_rmtree(dir);
        fprintf(stderr, "skipped the image folder: no python3 with numpy\n");
        return;
    }
    assert_int_equal(rc, 0);
    snprintf(cmd, sizeof cmd, "printf 'not an image' > '%s/tree/z\xc3\xa8" "bre \xc3\xbcn\xc3\xaf" "code/hiver/img_00.png'",
             tree);
    assert_int_equal(tu_run(cmd, 1, NULL, 0), 0);
    const double t0 = tu_now();
    const int code = mpirun(2, 1, out, sizeof out, "train --data images:%s/tree --steps 2 --out %s/img-run", tree, dir);
    const double took = tu_now() - t0;
    print_message("corrupt image on process 1: exit %d after %.1f s\n", code, took);
    assert_int_not_equal(code, 0);
    assert_true(took < 30);
    assert_non_null(strstr(out, "process 1 of 2 failed"));
    assert_non_null(strstr(out, "hiver/img_00.png"));
    assert_null(strstr(out, "process 0 of 2"));
    tu_rmtree(dir);
}

/* Each process keeps the optimiser state of the parameters it steps only
 * (tnmtl_mtl_own_optim): process 0 of 2 and of 3 reports (stderr and
 * "optimizer_bytes") 8 bytes (Adam) per parameter of its tasks, for LAF
 * exactly its share of all, for UD that plus the hard-shared layer; the
 * checkpoint, with the whole state gathered on process 0, is the one of
 * one process. */
static void test_own_optimiser_state(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    static const char *const methods[] = {"laf", "ud"};
    const char *dir = tu_tmpdir();
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        char one[512], out[65536];
        snprintf(one, sizeof one, "%s/%s-one", dir, methods[k]);
        const char *args = "--data synthetic:tasks=12 --batch 8 --seed 3 --steps 12 --save-every 5";
        assert_int_equal(tu_cli_run(0, out, sizeof out, "train %s --method %s --quiet --out %s", args, methods[k], one), 0);
        for (int P = 2; P <= 3; P++) {
            char many[512];
            snprintf(many, sizeof many, "%s/%s-np%d", dir, methods[k], P);
            assert_int_equal(mpirun(P, 1, out, sizeof out, "train %s --method %s --out %s", args, methods[k], many), 0);
            assert_same(one, many);
            long long n_params = 0, held = 0, json_held = 0;
            int n_tasks = 0, last = -1;
            const char *a = strstr(out, " tasks, "), *b = strstr(out, "(this one: tasks 0.."),
                       *c = strstr(out, "optimiser state "), *j = strstr(out, "\"optimizer_bytes\":");
            assert_true(a && b && c && j);
            while (a > out && a[-1] != ' ') a--;
            assert_int_equal(sscanf(a, "%d tasks, %lld parameters", &n_tasks, &n_params), 2);
            assert_int_equal(sscanf(b, "(this one: tasks 0..%d,", &last), 1);
            assert_int_equal(sscanf(c, "optimiser state %lld bytes", &held), 1);
            assert_int_equal(sscanf(strchr(j, ':') + 1, "%lld", &json_held), 1);
            print_message("%s, %d processes: process 0 (tasks 0..%d of %d) holds %lld bytes of optimiser state, one "
                          "process %lld\n", methods[k], P, last, n_tasks, held, 8 * n_params);
            assert_int_equal(n_tasks, 12);
            assert_int_equal(held, json_held);
            assert_true(held < 8 * n_params);
            if (k == 0) /* every task has as many parameters, none shared */
                assert_int_equal(held, 8 * n_params / n_tasks * (last + 1));
            else
                assert_true(held > 8 * n_params / n_tasks * (last + 1));
        }
    }
    tu_rmtree(dir);
}

/* Largest |a - b| over the float tensors of two checkpoints. */
static double max_difference(const char *dir_a, const char *dir_b)
{
    tnmtl_st_file *f[2];
    const char *dirs[2] = {dir_a, dir_b};
    for (int k = 0; k < 2; k++) {
        char path[1024];
        tnmtl_error err = {0};
        snprintf(path, sizeof path, "%s/%s", dirs[k], TNMTL_CHECKPOINT_FILE);
        assert_int_equal(tnmtl_st_load(path, 0, &f[k], &err), TNMTL_OK);
    }
    assert_int_equal(tnmtl_st_count(f[0]), tnmtl_st_count(f[1]));
    double worst = 0;
    for (int i = 0; i < tnmtl_st_count(f[0]); i++) {
        const tnmtl_st_tensor *x = tnmtl_st_at(f[0], i), *y = tnmtl_st_at(f[1], i);
        assert_int_equal(tnmtl_st_numel(x), tnmtl_st_numel(y));
        if (x->dtype != TNMTL_ST_F32) continue;
        for (int64_t j = 0; j < tnmtl_st_numel(x); j++) {
            const double d = fabs((double)((const float *)x->data)[j] - (double)((const float *)y->data)[j]);
            if (!(d <= worst)) worst = d;
        }
    }
    tnmtl_st_free(f[0]);
    tnmtl_st_free(f[1]);
    return worst;
}

/* A stacked tensor over 2^20 entries (200 tasks x 9216 fc weights): its norm
 * runs on OpenBLAS's threads, one process on all cores, two processes on
 * one core each.  The result is identical or within float rounding
 * (docs/performance.md, "Determinism"): bound 1e-5 after 8 steps. */
static void test_large_norm_within_bound(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char one[512], two[512], out[65536];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(two, sizeof two, "%s/two", dir);
    const char *args = "--data synthetic:tasks=200 --method tucker --steps 8 --batch 16 --quiet";
    assert_int_equal(tu_cli_run(0, out, sizeof out, "train %s --out %s", args, one), 0);
    assert_int_equal(mpirun(2, 0, out, sizeof out, "train %s --out %s", args, two), 0);
    const double d = max_difference(one, two);
    print_message("max |difference| one process vs two: %g\n", d);
    assert_true(d <= 1e-5);
    tu_rmtree(dir);
}

/* The last history row's regulariser value. */
static double last_reg(const char *dir)
{
    char path[600], text[1 << 16];
    snprintf(path, sizeof path, "%s/history.csv", dir);
    tu_read_text(path, text, sizeof text);
    char *last = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) last = line;
    assert_non_null(last);
    double step, loss, reg;
    assert_int_equal(sscanf(last, "%lf,%lf,%lf", &step, &loss, &reg), 3);
    return reg;
}

/* "received_bytes_per_step" of a printed result. */
static double received_per_step(const char *json)
{
    const char *p = strstr(json, "\"received_bytes_per_step\":");
    assert_non_null(p);
    return atof(strchr(p, ':') + 1);
}

/* --dist-norm split: the terms that are sums over task blocks come from
 * each process's own tasks, with their Gram parts summed in rank order.
 * Against one process: the regulariser's value within 1e-6 relative and the
 * parameters within 5e-4 after 20 steps (half of one Adam step, lr 1e-3: a
 * coordinate whose gradient is near zero can take Adam's normalised step in
 * either direction when the last bits differ; measured 6e-8 LAF, 6e-5 Tucker).
 * When every term splits (a small stacked layer, more tasks than its
 * weights) no weights travel: fewer bytes than the replicated norm. */
static void test_split_norm_agrees(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    static const char *const methods[] = {"laf", "tucker", "tt"};
    const char *dir = tu_tmpdir();
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        char one[512], split[512], out[65536];
        snprintf(one, sizeof one, "%s/%s-one", dir, methods[k]);
        snprintf(split, sizeof split, "%s/%s-split", dir, methods[k]);
        const char *args = "--data synthetic:tasks=300 --batch 8 --seed 4 --steps 20 --quiet";
        assert_int_equal(tu_cli_run(0, out, sizeof out, "train %s --method %s --out %s", args, methods[k], one), 0);
        for (int P = 2; P <= 3; P++) {
            assert_int_equal(mpirun(P, 0, out, sizeof out, "train %s --method %s --dist-norm split --out %s", args,
                                    methods[k], split), 0);
            const double d = max_difference(one, split), r1 = last_reg(one), r2 = last_reg(split);
            print_message("%s, %d processes, split norm: max |difference| %g, regulariser %.9g vs %.9g\n", methods[k], P,
                          d, r2, r1);
            assert_true(d <= 5e-4);
            assert_true(fabs(r1 - r2) <= 1e-6 * fabs(r1));
            tu_rmtree(split);
        }
        /* conv 3x3x1x4 alone stacked (36 weights per task, 300 tasks): every term splits */
        const char *small = "--data synthetic:tasks=300 --arch conv4x3 --batch 8 --steps 10 --quiet";
        char out_repl[65536];
        assert_int_equal(mpirun(2, 0, out, sizeof out, "train %s --method %s --dist-norm split", small, methods[k]), 0);
        assert_int_equal(mpirun(2, 0, out_repl, sizeof out_repl, "train %s --method %s", small, methods[k]), 0);
        const double bs = received_per_step(out), br = received_per_step(out_repl);
        print_message("%s, conv 3x3x1x4, 2 processes: %.0f bytes received per step split, %.0f replicated\n",
                      methods[k], bs, br);
        assert_true(bs > 0 && bs < br);
    }
    tu_rmtree(dir);
}

/* The method, accuracy, gain and wins cells of every row of a printed
 * comparison's table (the other cells hold times) into buf[cap]. */
static const char *table_of(const char *out, char *buf, size_t cap)
{
    const char *p = strstr(out, "| method");
    assert_non_null(p);
    size_t n = 0;
    while (*p == '|' && n + 1 < cap) {
        int bars = 0;
        for (; *p && *p != '\n'; p++) {
            if (bars < 5 && n + 1 < cap) buf[n++] = *p; /* up to the 5th '|' */
            bars += *p == '|';
        }
        if (n + 1 < cap) buf[n++] = '\n';
        if (*p == '\n') p++;
    }
    buf[n] = '\0';
    return buf;
}

/* `compare` under mpirun: the one-process table; a second command on the
 * same folder with another P reads the finished runs back. */
static void test_compare(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char one[512], many[512], out1[65536], out2[65536], out3[65536];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(many, sizeof many, "%s/many", dir);
    const char *args = "--methods stl,ud,tucker --seeds 0-1 --steps 20 --batch 8 --quiet";
    assert_int_equal(tu_cli_run(0, out1, sizeof out1, "compare %s --out %s", args, one), 0);
    assert_int_equal(mpirun(2, 0, out2, sizeof out2, "compare %s --out %s", args, many), 0);
    char t1[8192], t2[8192];
    assert_string_equal(table_of(out1, t1, sizeof t1), table_of(out2, t2, sizeof t2));
    assert_non_null(strstr(t1, "| tucker |"));
    for (int s = 0; s <= 1; s++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/tucker-seed%d", one, s);
        snprintf(b, sizeof b, "%s/tucker-seed%d", many, s);
        assert_same(a, b);
    }
    /* The table from stdout alone (mpirun forwards stdout and stderr apart,
     * so merged they may interleave), the note from both. */
    const char *again = "compare --methods stl,ud,tucker --seeds 0-1 --steps 20 --batch 8 --out %s";
    assert_int_equal(mpirun(3, 0, out3, sizeof out3, again, many), 0);
    assert_string_equal(t1, table_of(out3, t2, sizeof t2));
    assert_int_equal(mpirun(3, 1, out3, sizeof out3, again, many), 0);
    assert_non_null(strstr(out3, "finished earlier"));
    tu_rmtree(dir);
}

/* "chosen" and the test accuracy of a tune's printed JSON, as one string. */
static void tune_outcome(const char *out, char *buf, size_t cap)
{
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "test"), "mean_accuracy");
    char *chosen = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "chosen"));
    assert_non_null(chosen);
    assert_true(cJSON_IsNumber(test));
    snprintf(buf, cap, "%s test %.17g", chosen, test->valuedouble);
    free(chosen);
    cJSON_Delete(j);
}

/* `tune ARGS` in folder one with one process and in folder many with two:
 * the same choice and test accuracy (tune_outcome) in a[cap]. */
static void tune_one_and_two(const char *args, const char *one, const char *many, char *a, size_t cap)
{
    char out[65536], b[4096];
    assert_int_equal(tu_cli_run(0, out, sizeof out, "tune %s --out %s", args, one), 0);
    tune_outcome(out, a, cap);
    assert_int_equal(mpirun(2, 0, out, sizeof out, "tune %s --out %s", args, many), 0);
    tune_outcome(out, b, sizeof b);
    print_message("one process: %s\ntwo processes: %s\n", a, b);
    assert_string_equal(a, b);
}

/* `tune` under mpirun: the one-process choice and test accuracy; rerun
 * with another P it reads its ledger back to the same outcome. */
static void test_tune(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char one[512], many[512], out[65536], a[4096], b[4096];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(many, sizeof many, "%s/many", dir);
    const char *args = "--methods stl,ud,laf --steps 30 --batch 8 --quiet";
    tune_one_and_two(args, one, many, a, sizeof a);
    assert_int_equal(mpirun(3, 0, out, sizeof out, "tune %s --out %s", args, many), 0);
    tune_outcome(out, b, sizeof b);
    assert_string_equal(a, b);
    char fa[600], fb[600];
    snprintf(fa, sizeof fa, "%s/final", one);
    snprintf(fb, sizeof fb, "%s/final", many);
    assert_same(fa, fb);
    tu_rmtree(dir);
}

/* A confirmation that stops behind the path's start (cli/tune_search.c,
 * behind_start) stops at the same step under mpirun: the start's validation
 * curve is planted at 4 times its value, the confirmations are forgotten,
 * and the same tune reruns them with one process and with two. */
static void test_tune_stop(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char one[512], many[512], out[65536], a[4096], cmd[4096];
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(many, sizeof many, "%s/many", dir);
    const char *args = "--methods laf --gamma-count 4 --steps 40 --batch 8 --val-frac 0.3 --quiet";
    assert_int_equal(tu_cli_run(0, out, sizeof out, "tune %s --out %s", args, one), 0);
    snprintf(cmd, sizeof cmd, "%s/trials/laf-g0.0001-path/fold0/history.csv", one);
    assert_int_equal(tu_history_scale_val(cmd, "1", 4), 0);
    assert_int_equal(tu_tune_forget_confirmations(one, 1), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/final' && cp -a '%s' '%s'", one, one, many);
    assert_int_equal(tu_run(cmd, 0, out, sizeof out), 0);
    tune_one_and_two(args, one, many, a, sizeof a);
    char ta[8192], tb[8192];
    snprintf(cmd, sizeof cmd, "cut -d, -f1-7,9 '%s/trials.csv'", one);
    assert_int_equal(tu_run(cmd, 0, ta, sizeof ta), 0);
    snprintf(cmd, sizeof cmd, "cut -d, -f1-7,9 '%s/trials.csv'", many);
    assert_int_equal(tu_run(cmd, 0, tb, sizeof tb), 0);
    assert_string_equal(ta, tb);
    /* both confirmations stopped at the curve's third point (2 steps
     * apart): step 6 */
    assert_non_null(strstr(ta, "\nlaf,0.00215443,,,8,6,"));
    assert_non_null(strstr(ta, "\nlaf,1,,,8,6,"));
    char fa[600], fb[600];
    snprintf(fa, sizeof fa, "%s/final", one);
    snprintf(fb, sizeof fb, "%s/final", many);
    assert_same(fa, fb);
    tu_rmtree(dir);
}

static void test_resume_with_other_counts(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char straight[512], a[512], b[512], out[65536];
    snprintf(straight, sizeof straight, "%s/straight", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    const char *args = "--data synthetic --batch 8 --seed 5 --method tucker --save-every 10 --quiet";
    assert_int_equal(tu_cli_run(0, out, sizeof out, "train %s --steps 40 --out %s", args, straight), 0);
    /* 2 processes to step 20, 3 to step 30, then one process without MPI */
    assert_int_equal(mpirun(2, 0, out, sizeof out, "train %s --steps 20 --out %s", args, a), 0);
    assert_int_equal(mpirun(3, 0, out, sizeof out, "train --resume %s --steps 30 --quiet", a), 0);
    assert_int_equal(tu_cli_run(0, out, sizeof out, "train --resume %s --steps 40 --quiet", a), 0);
    assert_same(straight, a);
    /* one process to step 20, then 3 processes */
    assert_int_equal(tu_cli_run(0, out, sizeof out, "train %s --steps 20 --out %s", args, b), 0);
    assert_int_equal(mpirun(3, 0, out, sizeof out, "train --resume %s --steps 40 --quiet", b), 0);
    assert_same(straight, b);
    tu_rmtree(dir);
}

/* The process of rank `rank` among the children of mpirun `parent`. */
static pid_t rank_pid(pid_t parent, int rank)
{
    DIR *d = opendir("/proc");
    pid_t found = -1;
    struct dirent *e;
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    while (d && found < 0 && (e = readdir(d))) {
        const pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[1 << 16];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        tu_read_text(path, buf, sizeof buf);
        const char *close_paren = strrchr(buf, ')');
        int ppid = 0;
        char st;
        if (!close_paren || sscanf(close_paren + 1, " %c %d", &st, &ppid) != 2 || ppid != parent) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        const size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
            if (!strcmp(buf + i, want)) found = pid;
    }
    if (d) closedir(d);
    return found;
}

/* Starts `mpirun -np 2 <MPI CLI> train ... --out run` for a very long run
 * in its own process group, stderr to errpath; returns mpirun's pid. */
static pid_t start_long_run(const char *run, const char *errpath, const char *save_every)
{
    const pid_t mp = fork();
    assert_true(mp >= 0);
    if (mp == 0) {
        setpgid(0, 0);
        char *argv[] = {"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", (char *)mpi_cli(), "train",
                        "--data", "synthetic", "--arch", "fc256", "--method", "laf", "--steps", "1000000",
                        "--save-every", (char *)save_every, "--quiet", "--out", (char *)run, NULL};
        if (!freopen("/dev/null", "w", stdout) || !freopen(errpath, "w", stderr)) _exit(127);
        execvp("mpirun", argv);
        _exit(127);
    }
    return mp;
}

/* Waits up to limit seconds for pid; its wait status in *status, 1 if it ended. */
static int wait_for(pid_t pid, double limit, int *status)
{
    const double t0 = tu_now();
    pid_t w = 0;
    while ((w = waitpid(pid, status, WNOHANG)) == 0 && tu_now() - t0 < limit) usleep(20000);
    if (w == pid) return 1;
    kill(-pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

/* The step of a saved run, from `tnmtl eval` (one process, no MPI). */
static long long saved_step(const char *run)
{
    char out[65536];
    assert_int_equal(tu_cli_run(1, out, sizeof out, "eval --model %s", run), 0);
    const char *p = strstr(out, "\"steps\":");
    assert_non_null(p);
    return atoll(p + strlen("\"steps\":"));
}

/* Ctrl-C on mpirun: every process stops at the same step, the checkpoint
 * of that step is saved and resumes. */
static void test_interrupted(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char run[512], errpath[512], out[65536], text[8192];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(errpath, sizeof errpath, "%s/mpirun.err", dir);
    const pid_t mp = start_long_run(run, errpath, "1000000");
    char hist[600];
    snprintf(hist, sizeof hist, "%s/run.json", run); /* the folder claimed: training is on its way */
    const double t0 = tu_now();
    while (!tu_exists(hist) && tu_now() - t0 < 60) usleep(50000);
    sleep(2);
    assert_int_equal(kill(mp, SIGINT), 0);
    int status = 0;
    assert_true(wait_for(mp, 30, &status));
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    tu_read_text(errpath, text, sizeof text);
    assert_non_null(strstr(text, "checkpoint saved"));
    const long long at = saved_step(run);
    assert_true(at > 0);
    assert_int_equal(tu_cli_run(1, out, sizeof out, "train --resume %s --steps %lld --quiet", run, at + 5), 0);
    assert_int_equal(saved_step(run), at + 5);
    tu_rmtree(dir);
}

static void test_killed_process(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    const char *dir = tu_tmpdir();
    char run[512], errpath[512], out[65536];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(errpath, sizeof errpath, "%s/mpirun.err", dir);
    const pid_t mp = start_long_run(run, errpath, "20");
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run);
    const double t0 = tu_now();
    while (!tu_exists(ckpt) && tu_now() - t0 < 60) usleep(50000);
    assert_true(tu_exists(ckpt));
    usleep(300000); /* a few more checkpoints */
    pid_t victim = -1;
    for (int i = 0; i < 100 && victim < 0; i++, usleep(20000)) victim = rank_pid(mp, 1);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    const double t_kill = tu_now();
    int status = 0;
    const int ended = wait_for(mp, 30, &status);
    const double stopped_after = tu_now() - t_kill;
    print_message("mpirun stopped %.1f s after rank 1 was killed\n", stopped_after);
    assert_true(ended);
    assert_true(stopped_after < 15);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    char text[8192];
    tu_read_text(errpath, text, sizeof text);
    assert_non_null(strstr(text, "rank 1"));
    /* The last checkpoint is whole: a process without MPI continues it. */
    const long long at = saved_step(run);
    assert_true(at >= 20 && at % 20 == 0);
    assert_int_equal(tu_cli_run(1, out, sizeof out, "train --resume %s --steps %lld --quiet", run, at + 10), 0);
    assert_int_equal(saved_step(run), at + 10);
    tu_rmtree(dir);
}

static void test_bad_option_reported_once(void **state)
{
    (void)state;
    if (!mpi_cli()) skip();
    char out[65536];
    const double t0 = tu_now();
    const int code = mpirun(3, 1, out, sizeof out, "train --steps -4");
    assert_int_not_equal(code, 0);
    assert_true(tu_now() - t0 < 20);
    const char *first = strstr(out, "--steps");
    assert_non_null(first);
    /* one message: the writer's (the others would name their rank) */
    assert_null(strstr(out, "process 1 of 3"));
    assert_null(strstr(out, "process 2 of 3"));
    /* a command that runs in one process is refused under mpirun */
    assert_int_not_equal(mpirun(2, 1, out, sizeof out, "norm --help"), 0);
    assert_non_null(strstr(out, "runs in one process"));
}

static int64_t block_sum(const int64_t *w, const int *begin, int r)
{
    int64_t s = 0;
    for (int t = begin[r]; t < begin[r + 1]; t++) s += w[t];
    return s;
}

static void test_partition(void **state)
{
    (void)state;
    /* contiguous, non-empty, covering, and no block further from the
     * mean than the largest task */
    const int64_t w[10] = {5, 1, 1, 1, 9, 2, 2, 3, 7, 1};
    for (int P = 1; P <= 10; P++) {
        int begin[11];
        tnmtl_dist_partition(w, 10, P, begin);
        assert_int_equal(begin[0], 0);
        assert_int_equal(begin[P], 10);
        for (int r = 0; r < P; r++) {
            assert_true(begin[r + 1] > begin[r]);
            const double dev = (double)block_sum(w, begin, r) - 32.0 / P;
            assert_true(dev < 9 + 1e-9 && dev > -9 - 1e-9);
        }
    }
    int begin[5];
    tnmtl_dist_partition(NULL, 8, 4, begin); /* equal weights: 2 each */
    for (int r = 0; r <= 4; r++) assert_int_equal(begin[r], 2 * r);
    tnmtl_dist_partition(w, 2, 4, begin); /* more processes than tasks */
    assert_int_equal(begin[1], 1);
    assert_int_equal(begin[2], 2);
    assert_int_equal(begin[3], 2);
    assert_int_equal(begin[4], 2);
    const int64_t big[4] = {1, 1, 1, 100};
    tnmtl_dist_partition(big, 4, 2, begin); /* the heavy task alone */
    assert_int_equal(begin[1], 3);
    /* without MPI: one process */
    tnmtl_dist *d = NULL;
    tnmtl_error err = {0};
    assert_int_equal(tnmtl_dist_init(NULL, NULL, &d, &err), TNMTL_OK);
    assert_int_equal(tnmtl_dist_size(d), 1);
    assert_int_equal(tnmtl_dist_rank(d), 0);
    tnmtl_dist_finalize(d);
}

/* How --dist-norm split computes each term (no MPI needed): the fc layer of
 * the synthetic model (288 x 32, tasks last) under LAF and Tucker.  The
 * task mode is a sum over task blocks once the tasks outnumber a task's
 * 9216 weights; below that its T x T Gram is split by rows from 3
 * processes on and replicated with 2; Tucker's other modes are sums. */
static void test_norm_term_kinds(void **state)
{
    (void)state;
    int64_t shape[3] = {288, 32, 300};
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_LAF, 3, shape, 0, 2), TNMTL_DIST_TERM_REPLICATED);
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_LAF, 3, shape, 0, 3), TNMTL_DIST_TERM_ROWS);
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_TUCKER, 3, shape, 2, 3), TNMTL_DIST_TERM_ROWS);
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_TUCKER, 3, shape, 0, 3), TNMTL_DIST_TERM_SUM);
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_TUCKER, 3, shape, 1, 2), TNMTL_DIST_TERM_SUM);
    assert_false(tnmtl_dist_norm_term_splits(TNMTL_NORM_LAF, 3, shape, 0));
    shape[2] = 10000;
    assert_int_equal(tnmtl_dist_norm_term_kind_of(TNMTL_NORM_LAF, 3, shape, 0, 2), TNMTL_DIST_TERM_SUM);
    assert_true(tnmtl_dist_norm_term_splits(TNMTL_NORM_LAF, 3, shape, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_norm_term_kinds),
        cmocka_unit_test(test_same_as_one_process),
        cmocka_unit_test(test_weight_decay_same_as_one_process),
        cmocka_unit_test(test_own_tasks_data),
        cmocka_unit_test(test_own_optimiser_state),
        cmocka_unit_test(test_resume_with_other_counts),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_tune),
        cmocka_unit_test(test_tune_stop),
        cmocka_unit_test(test_large_norm_within_bound),
        cmocka_unit_test(test_split_norm_agrees),
        cmocka_unit_test(test_interrupted),
        cmocka_unit_test(test_killed_process),
        cmocka_unit_test(test_bad_option_reported_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
