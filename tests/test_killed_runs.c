/* test_killed_runs.c - a training run killed at random moments loses
 * nothing: `tnmtl train --save-every 1` is SIGKILLed again and again (most
 * kills land while a checkpoint is being written: the model is mostly
 * parameters and cheap to train, so writing dominates a step), resumed
 * with --resume each time, and ends with parameters and optimiser state
 * bit-identical to an uninterrupted run.  After every kill the checkpoint
 * is complete and loadable, and its step never goes back.  SIGINT saves a
 * checkpoint and exits 130; the run resumes to the same final state.  A
 * diverged run keeps the checkpoint of its last good step. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/safetensors.h"

/* ~0.5 M parameters (6 MB checkpoint), LAF on 8 tasks: a step costs well
 * under a millisecond, a checkpoint write (with fsync) several. */
#define RUN_ARGS "--data synthetic --arch fc256 --method laf --batch 2 --seed 3 --quiet"
#define KILL_STEPS "40"
#define INT_STEPS "60"

static int wait_exit(pid_t pid)
{
    const int code = tu_wait_exit(pid);
    assert_true(code >= 0);
    return code;
}

static int run_cli(const char *fmt, const char *a, const char *b)
{
    char args[1024];
    snprintf(args, sizeof args, fmt, a, b);
    return wait_exit(tu_spawn(NULL, "%s", args));
}

/* The text of a file (what a run wrote on stderr) into buf[cap]. */
static void read_text(const char *path, char *buf, size_t cap)
{
    assert_true(tu_exists(path));
    tu_read_text(path, buf, cap);
}

static long long mtime_ns(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

/* Number of "*.tmp.*" files in dir. */
static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* Loads dir's checkpoint; returns its step (fails the test if it is not
 * a complete, valid checkpoint). */
static long long checkpoint_step(const char *dir, tnmtl_st_file **keep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    tnmtl_st_file *f;
    tnmtl_error err;
    if (tnmtl_st_load(path, 0, &f, &err) != TNMTL_OK) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(f);
    const char *format = tnmtl_st_meta_get(f, "format"), *step = tnmtl_st_meta_get(f, "step");
    assert_non_null(format);
    assert_string_equal(format, TNMTL_CHECKPOINT_FORMAT);
    assert_non_null(step);
    assert_non_null(tnmtl_st_get(f, "optim.m"));
    long long s = atoll(step);
    if (keep) *keep = f;
    else tnmtl_st_free(f);
    return s;
}

static void assert_same_state(const char *a, const char *b)
{
    char why[512] = "";
    if (!tu_same_checkpoint(a, b, why, sizeof why)) fail_msg("%s and %s: %s", a, b, why);
}

static char ref_dir[256];

typedef struct kill_stats {
    int kills, mid_write, lives, code;
    long long last_step;
} kill_stats;

/* One killed run in dir: SIGKILL after a random delay of up to max_us
 * (every third kill at any moment, start-up included; the others once
 * this life has started writing checkpoints), restart, until enough kills
 * hit a write (or time is up), then let it finish. */
static kill_stats killed_run(const char *dir, useconds_t max_us)
{
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    kill_stats k = {0, 0, 0, -1, 0};
    const double t1 = tu_now();
    for (;;) {
        const int before_tmp = count_tmp(dir);
        pid_t pid = tu_exists(ckpt) ? tu_spawn(NULL, "train --resume %s --quiet", dir)
                                    : tu_spawn(NULL, "train " RUN_ARGS " --steps " KILL_STEPS " --save-every 1 --out %s", dir);
        k.lives++;
        if (!(tu_now() - t1 < 12 && (k.kills < 8 || (k.mid_write < 3 && k.kills < 60)))) {
            k.code = wait_exit(pid);
            return k;
        }
        if (k.kills % 3 != 0) {
            const long long m0 = mtime_ns(ckpt);
            const double w0 = tu_now();
            while (mtime_ns(ckpt) == m0 && count_tmp(dir) == before_tmp && tu_now() - w0 < 5) usleep(200);
        }
        usleep((useconds_t)rand() % max_us);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* finished before the kill */
            k.code = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
            return k;
        }
        kill(pid, SIGKILL);
        const int r = wait_exit(pid);
        if (r != 1000 + SIGKILL) { /* it finished just before the kill */
            k.code = r;
            return k;
        }
        k.kills++;
        k.mid_write += count_tmp(dir) > before_tmp; /* killed between creating the temp file and renaming it */
        if (tu_exists(ckpt)) {
            long long s = checkpoint_step(dir, NULL);  /* complete and loadable after every kill */
            assert_true(s >= k.last_step);
            k.last_step = s;
        }
    }
}

static void test_sigkill_and_resume(void **state)
{
    (void)state;
    char dir[256];
    snprintf(ref_dir, sizeof ref_dir, "%s", tu_tmpdir());
    const double t0 = tu_now();
    assert_int_equal(run_cli("train " RUN_ARGS " --steps " KILL_STEPS " --save-every 0 --out %s%s", ref_dir, ""), 0);
    const double ref_seconds = tu_now() - t0;
    srand(12345);
    /* On a machine fast enough to finish before enough kills, again with shorter delays. */
    kill_stats k;
    useconds_t max_us = 200000;
    for (int attempt = 0;; attempt++, max_us /= 4) {
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
        const double t1 = tu_now();
        k = killed_run(dir, max_us);
        fprintf(stderr, "reference run %.1f s; delays up to %u ms: %d lives, %d SIGKILLs (%d while a checkpoint was "
                "written), last step before the end %lld; %.1f s\n", ref_seconds, (unsigned)(max_us / 1000), k.lives,
                k.kills, k.mid_write, k.last_step, tu_now() - t1);
        if ((k.kills >= 5 && k.mid_write >= 1) || attempt == 2) break;
        tu_rmtree(dir);
    }
    assert_int_equal(k.code, 0);
    assert_true(k.kills >= 5);
    assert_true(k.mid_write >= 1);
    assert_int_equal(checkpoint_step(dir, NULL), atoi(KILL_STEPS));
    assert_same_state(ref_dir, dir);
    /* the temp files of killed writers are cleaned up by the next successful write */
    assert_int_equal(count_tmp(dir), 0);
    tu_rmtree(dir);
    tu_rmtree(ref_dir);
}

static void test_sigint_saves_and_resumes(void **state)
{
    (void)state;
    char dir[256], ckpt[512], errf[512];
    snprintf(ref_dir, sizeof ref_dir, "%s", tu_tmpdir());
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/%s", dir, TNMTL_CHECKPOINT_FILE);
    snprintf(errf, sizeof errf, "%s/stderr.txt", ref_dir);
    assert_int_equal(run_cli("train " RUN_ARGS " --steps " INT_STEPS " --save-every 0 --out %s%s", ref_dir, ""), 0);

    /* --save-every 7: the interrupted step is (almost surely) not a multiple of it */
    pid_t pid = tu_spawn(errf, "train " RUN_ARGS " --steps " INT_STEPS " --save-every 7 --out %s", dir);
    const double t0 = tu_now();
    while (!tu_exists(ckpt) && tu_now() - t0 < 20) usleep(1000);   /* training has started */
    assert_true(tu_exists(ckpt));
    usleep((useconds_t)(rand() % 20000));
    kill(pid, SIGINT);
    const int code = wait_exit(pid);
    char msg[4096];
    read_text(errf, msg, sizeof msg);
    const long long step = checkpoint_step(dir, NULL);
    fprintf(stderr, "SIGINT: exit %d, checkpoint at step %lld: %s", code, step, msg);
    assert_int_equal(code, 130);
    assert_non_null(strstr(msg, "interrupted at step"));
    assert_non_null(strstr(msg, "resume with: tnmtl train --resume"));
    assert_true(step > 0 && step < atoi(INT_STEPS));
    /* the checkpoint holds the step reached, not the last periodic one */
    char needle[64];
    snprintf(needle, sizeof needle, "interrupted at step %lld", step);
    assert_non_null(strstr(msg, needle));
    assert_int_equal(count_tmp(dir), 0);

    assert_int_equal(run_cli("train --resume %s --quiet%s", dir, ""), 0);
    assert_same_state(ref_dir, dir);
    tu_rmtree(dir);
    tu_rmtree(ref_dir);
}

/* compare interrupted (SIGINT) in its second run, then the same command:
 * the finished run is read back, the interrupted one resumes (on the data
 * compare already holds) and ends in the same state as an uninterrupted
 * comparison; a different option is refused instead of mixed in. */
static void test_compare_interrupted_and_resumed(void **state)
{
    (void)state;
#define CMP_ARGS "compare --data synthetic --arch fc256 --batch 2 --quiet --methods stl,laf --steps " INT_STEPS \
                 " --save-every 7 --out "
    char ref[256], dir[256], ckpt[512], errf[512], sub_a[512], sub_b[512];
    snprintf(ref, sizeof ref, "%s", tu_tmpdir());
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/laf-seed0/%s", dir, TNMTL_CHECKPOINT_FILE);
    snprintf(errf, sizeof errf, "%s/stderr.txt", ref);
    assert_int_equal(run_cli(CMP_ARGS "%s%s", ref, ""), 0);

    pid_t pid = tu_spawn(errf, CMP_ARGS "%s", dir);
    const double t0 = tu_now();
    while (!tu_exists(ckpt) && tu_now() - t0 < 20) usleep(1000); /* the second run has started */
    assert_true(tu_exists(ckpt));
    usleep((useconds_t)(rand() % 20000));
    kill(pid, SIGINT);
    assert_int_equal(wait_exit(pid), 130);
    snprintf(sub_b, sizeof sub_b, "%s/laf-seed0", dir);
    const long long step = checkpoint_step(sub_b, NULL);
    fprintf(stderr, "compare interrupted in its second run at step %lld\n", step);
    assert_true(step > 0 && step < atoi(INT_STEPS));

    /* another option: refused, nothing mixed in */
    char opt[512];
    snprintf(opt, sizeof opt, "compare --data synthetic --arch fc256 --batch 2 --quiet --methods stl,laf --steps 61 "
             "--save-every 7 --out %s", dir);
    assert_int_equal(run_cli("%s%s", opt, ""), 2);
    assert_int_equal(checkpoint_step(sub_b, NULL), step);

    char stl_ckpt[512];
    snprintf(stl_ckpt, sizeof stl_ckpt, "%s/stl-seed0/%s", dir, TNMTL_CHECKPOINT_FILE);
    const long long stl_mtime = mtime_ns(stl_ckpt);
    assert_int_equal(run_cli(CMP_ARGS "%s%s", dir, ""), 0);
    assert_true(mtime_ns(stl_ckpt) == stl_mtime); /* the finished run was read back, not run again */
    for (int i = 0; i < 2; i++) {
        const char *run = i ? "laf-seed0" : "stl-seed0";
        snprintf(sub_a, sizeof sub_a, "%s/%s", ref, run);
        snprintf(sub_b, sizeof sub_b, "%s/%s", dir, run);
        assert_same_state(sub_a, sub_b);
    }
#undef CMP_ARGS
    tu_rmtree(dir);
    tu_rmtree(ref);
}

/* A diverged run (exit 3) leaves the checkpoint of the last good step, even
 * between two periodic saves, and that checkpoint loads and evaluates. */
static void test_divergence_saves_last_good_step(void **state)
{
    (void)state;
    char dir[256], errf[512];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    /* linear layers and a huge SGD step: the loss blows up within a few steps */
    pid_t pid = tu_spawn(errf, "train --data synthetic --method laf --act none --optim sgd --lr 10 --steps 50 "
                            "--save-every 1000 --quiet --out %s", dir);
    assert_int_equal(wait_exit(pid), 3);
    char msg[4096];
    read_text(errf, msg, sizeof msg);
    fprintf(stderr, "%s", msg);
    const char *at = strstr(msg, "diverged at step ");
    assert_non_null(at);
    const long long bad = atoll(at + strlen("diverged at step "));
    assert_true(bad > 1);
    char needle[128];
    snprintf(needle, sizeof needle, "the parameters of step %lld are kept; checkpoint of step %lld saved", bad - 1,
             bad - 1);
    assert_non_null(strstr(msg, needle));
    assert_int_equal(checkpoint_step(dir, NULL), bad - 1);
    char args[512];
    snprintf(args, sizeof args, "eval --model %s", dir);
    assert_int_equal(wait_exit(tu_spawn(NULL, "%s", args)), 0);   /* finite: it loads */
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_and_resume),
        cmocka_unit_test(test_sigint_saves_and_resumes),
        cmocka_unit_test(test_compare_interrupted_and_resumed),
        cmocka_unit_test(test_divergence_saves_last_good_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
