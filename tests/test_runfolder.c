/* test_runfolder.c - a trained model is never lost (cli/runfolder.h,
 * docs/robustness.md "Run folders"), end to end through the tnmtl program:
 * - train --out into a folder holding a run is refused (exit 2, what is
 *   there, what to do) and changes nothing;
 * - --overwrite replaces the run, leaving one run's files only; killed
 *   (SIGKILL, SIGINT) before its first checkpoint it leaves the earlier run
 *   byte for byte; killed at random moments around the switch, the folder is
 *   always the earlier run intact or the new one, and a half-done switch is
 *   completed (or undone) by the next writer;
 * - two writers on one folder (train, compare): exactly one proceeds, the
 *   other exits 2 at once naming the holder's pid; readers (eval) work
 *   throughout without the lock;
 * - a folder mixing two runs' files is refused by eval, --resume and
 *   compare, naming the file that does not belong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/safetensors.h"

/* runfolder_verify as a reader that loads nothing (the coming report) calls it */
#include "../cli/runfolder.c"

/* A quick run (a fraction of a second) and a long one (stopped by the tests). */
#define QUICK "--data synthetic --arch fc16 --steps 30 --quiet"
#define LONG "--data synthetic --arch fc256 --batch 2 --steps 1000000 --save-every 0"

static char out[1 << 16];

/* `tnmtl ARGS` with stderr merged into out: the exit code. */
#define tnmtl(...) tu_cli_run(1, out, sizeof out, __VA_ARGS__)

static void path_of(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void fresh_dir(char *buf, size_t cap)
{
    const char *d = tu_tmpdir();
    assert_non_null(d);
    snprintf(buf, cap, "%s", d);
}

/* ---- the files of a folder, byte for byte ------------------------------------------ */

typedef struct snapshot {
    int n;
    char name[48][128];
    char *data[48];
    long size[48];
} snapshot;

/* Every regular file of dir (with_hidden: also dotfiles; never temp files). */
static void take_snapshot(const char *dir, int with_hidden, snapshot *s)
{
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[1024];
        path_of(path, sizeof path, dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || strstr(de->d_name, ".tmp.")) continue;
        if (de->d_name[0] == '.' && !with_hidden) continue;
        assert_true(s->n < 48);
        snprintf(s->name[s->n], sizeof s->name[0], "%.127s", de->d_name);
        s->data[s->n] = malloc((size_t)sb.st_size + 1);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        s->size[s->n] = (long)fread(s->data[s->n], 1, (size_t)sb.st_size, f);
        fclose(f);
        s->n++;
    }
    closedir(d);
}

static void free_snapshot(snapshot *s)
{
    for (int i = 0; i < s->n; i++) free(s->data[i]);
    s->n = 0;
}

static int same_snapshot(const snapshot *a, const snapshot *b)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        int j = 0;
        while (j < b->n && strcmp(a->name[i], b->name[j])) j++;
        if (j == b->n || a->size[i] != b->size[j] || memcmp(a->data[i], b->data[j], (size_t)a->size[i])) {
            fprintf(stderr, "%s differs\n", a->name[i]);
            return 0;
        }
    }
    return 1;
}

/* dir's files (no dotfiles) are those of before, byte for byte. */
static void assert_unchanged(const char *dir, const snapshot *before, int with_hidden)
{
    snapshot now;
    take_snapshot(dir, with_hidden, &now);
    const int same = same_snapshot(before, &now);
    free_snapshot(&now);
    assert_true(same);
}

/* ---- identities -------------------------------------------------------------------- */

static cJSON *read_json_file(const char *dir, const char *name)
{
    char path[1024], text[1 << 15];
    path_of(path, sizeof path, dir, name);
    tu_read_text(path, text, sizeof text);
    return cJSON_Parse(text);
}

/* Writes j as dir/name (replacing it), as a hand-made folder state. */
static void write_json_file(const char *dir, const char *name, const cJSON *j)
{
    char path[1024], *text = cJSON_Print(j);
    assert_non_null(text);
    path_of(path, sizeof path, dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

/* The run id a JSON file of dir records ("" if none) into id[64]. */
static void json_run_id(const char *dir, const char *name, char *id)
{
    cJSON *j = read_json_file(dir, name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    snprintf(id, 64, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(j);
}

/* The run id and step of dir's checkpoint. */
static long long checkpoint_run_id(const char *dir, char *id)
{
    char path[1024];
    path_of(path, sizeof path, dir, TNMTL_CHECKPOINT_FILE);
    tnmtl_st_file *f;
    tnmtl_error err;
    assert_int_equal(tnmtl_st_load(path, 0, &f, &err), TNMTL_OK);
    cJSON *c = cJSON_Parse(tnmtl_st_meta_get(f, "config"));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "run_id");
    snprintf(id, 64, "%s", cJSON_IsString(v) ? v->valuestring : "");
    const long long step = atoll(tnmtl_st_meta_get(f, "step"));
    cJSON_Delete(c);
    tnmtl_st_free(f);
    return step;
}

/* dir is one run: checkpoint, run.json and results.json carry one id, and
 * every other file is one run.json records.  Returns that id in id[64]. */
static void assert_one_run(const char *dir, char *id)
{
    char m_id[64], r_id[64];
    checkpoint_run_id(dir, id);
    json_run_id(dir, "run.json", m_id);
    json_run_id(dir, "results.json", r_id);
    assert_true(strlen(id) == 32);
    assert_string_equal(id, m_id);
    assert_string_equal(id, r_id);
    cJSON *m = read_json_file(dir, "run.json");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *e;
    snapshot s;
    take_snapshot(dir, 1, &s);
    for (int i = 0; i < s.n; i++) {
        if (!strcmp(s.name[i], TNMTL_CHECKPOINT_FILE) || !strcmp(s.name[i], "run.json")) continue;
        if (!strcmp(s.name[i], ".lock")) continue; /* left by a killed writer (the kernel released its lock) */
        int listed = 0;
        cJSON_ArrayForEach(e, files)
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
            listed |= cJSON_IsString(n) && !strcmp(n->valuestring, s.name[i]);
        }
        if (!listed) fprintf(stderr, "%s/%s is not recorded in run.json\n", dir, s.name[i]);
        assert_true(listed);
    }
    free_snapshot(&s);
    cJSON_Delete(m);
    const int code = tnmtl("eval --model %s", dir);
    if (code) fprintf(stderr, "eval --model %s: exit %d:\n%s\n", dir, code, out);
    assert_int_equal(code, 0);
}

/* The method results.json names. */
static void results_method(const char *dir, char *method)
{
    cJSON *j = read_json_file(dir, "results.json");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "method");
    snprintf(method, 32, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(j);
}

/* Waits (up to 20 s) until the file at path contains needle. */
static void wait_for_text(const char *path, const char *needle)
{
    char text[8192];
    const double t0 = tu_now();
    do {
        tu_read_text(path, text, sizeof text);
        if (strstr(text, needle)) return;
        usleep(2000);
    } while (tu_now() - t0 < 20);
    fprintf(stderr, "%s never said '%s':\n%s\n", path, needle, text);
    fail();
}

/* ---- no silent overwrite ------------------------------------------------------------- */

static void test_refuses_a_folder_holding_a_run(void **state)
{
    (void)state;
    char dir[256];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", dir), 0);
    snapshot before;
    take_snapshot(dir, 1, &before); /* dotfiles too: a refusal leaves no lock file */
    double t0 = tu_now();
    assert_int_equal(tnmtl("train " QUICK " --method stl --out %s", dir), 2);
    fprintf(stderr, "refused in %.2f s: %s", tu_now() - t0, out);
    assert_non_null(strstr(out, "error: "));
    assert_non_null(strstr(out, "already holds a finished laf run (step 30 of 30, last checkpoint 20"));
    assert_non_null(strstr(out, " UTC)"));
    assert_non_null(strstr(out, "--resume"));
    assert_non_null(strstr(out, "another folder"));
    assert_non_null(strstr(out, "--overwrite"));
    assert_unchanged(dir, &before, 1);
    /* an unfinished run: said so */
    char dir2[256];
    fresh_dir(dir2, sizeof dir2);
    assert_int_equal(tnmtl("train --data synthetic --arch fc16 --steps 10 --quiet --out %s", dir2), 0);
    assert_int_equal(tnmtl("train --resume %s --steps 20 --out %s/x", dir2, dir2), 0); /* a copy, continued elsewhere */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/x", dir2);
    assert_int_equal(tnmtl("train --data synthetic --arch fc16 --steps 10 --quiet --out %s", sub), 2);
    assert_non_null(strstr(out, "finished tucker run (step 20 of 20"));
    /* a comparison's folder is not a run's */
    assert_int_equal(tnmtl("compare --data synthetic --arch fc16 --steps 5 --methods stl --quiet --out %s/cmp", dir2), 0);
    assert_int_equal(tnmtl("train " QUICK " --out %s/cmp", dir2), 2);
    assert_non_null(strstr(out, "holds a comparison"));
    assert_int_equal(tnmtl("compare --data synthetic --arch fc16 --steps 5 --methods stl --quiet --out %s", dir), 2);
    assert_non_null(strstr(out, "needs a folder of its own"));
    assert_unchanged(dir, &before, 1);
    /* the same options continue a comparison, other methods or seeds extend it; other options are refused */
    assert_int_equal(tnmtl("compare --data synthetic --arch fc16 --steps 5 --methods stl,laf --quiet --out %s/cmp",
                           dir2), 0);
    assert_int_equal(tnmtl("compare --data synthetic --arch fc16 --steps 6 --methods stl --quiet --out %s/cmp", dir2), 2);
    assert_non_null(strstr(out, "made with other options"));
    free_snapshot(&before);
    tu_rmtree(dir2);
    tu_rmtree(dir);
}

static void test_overwrite_replaces_the_run(void **state)
{
    (void)state;
    char dir[256], old_id[64], new_id[64], method[32];
    fresh_dir(dir, sizeof dir);
    /* two hidden layers: more report files than the run replacing it writes */
    assert_int_equal(tnmtl("train --data synthetic --arch fc16,fc8 --steps 30 --quiet --method laf --out %s", dir), 0);
    assert_one_run(dir, old_id);
    snapshot s;
    take_snapshot(dir, 0, &s);
    const int n_before = s.n;
    free_snapshot(&s);
    assert_int_equal(tnmtl("train " QUICK " --method stl --overwrite --out %s", dir), 0);
    assert_one_run(dir, new_id); /* the earlier run's extra layer files are gone */
    assert_string_not_equal(old_id, new_id);
    results_method(dir, method);
    assert_string_equal(method, "stl");
    take_snapshot(dir, 0, &s);
    fprintf(stderr, "files: %d of the earlier run, %d of the new one\n", n_before, s.n);
    assert_true(s.n < n_before);
    free_snapshot(&s);
    char hidden[512];
    path_of(hidden, sizeof hidden, dir, ".replacing");
    assert_false(tu_exists(hidden));
    path_of(hidden, sizeof hidden, dir, ".lock");
    assert_false(tu_exists(hidden));
    /* --resume continues the run under its id */
    assert_int_equal(tnmtl("train --resume %s --steps 40 --quiet", dir), 0);
    assert_one_run(dir, old_id);
    assert_string_equal(old_id, new_id);
    assert_int_equal(tnmtl("train --resume %s --overwrite", dir), 2);
    tu_rmtree(dir);
}

/* Killed before its first checkpoint, --overwrite leaves the earlier run
 * byte for byte (SIGKILL: nothing was written; SIGINT: no checkpoint is
 * saved, the message says the earlier run is kept). */
static void test_overwrite_killed_before_first_checkpoint(void **state)
{
    (void)state;
    char dir[256], errf[512], method[32], id[64], id0[64];
    fresh_dir(dir, sizeof dir);
    snprintf(errf, sizeof errf, "%s.err", dir);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", dir), 0);
    checkpoint_run_id(dir, id0);
    snapshot before;
    take_snapshot(dir, 0, &before);
    srand(7);
    for (int k = 0; k < 4; k++) {
        const int sig = k % 2 ? SIGINT : SIGKILL;
        unlink(errf); /* not the last life's words */
        pid_t pid = tu_spawn(errf, "train " LONG " --method stl --overwrite --out %s", dir);
        assert_true(pid > 0);
        wait_for_text(errf, "training stl"); /* data loaded, model built, training */
        usleep((useconds_t)(rand() % 300000));
        kill(pid, sig);
        const int code = tu_wait_exit(pid);
        char msg[4096];
        tu_read_text(errf, msg, sizeof msg);
        fprintf(stderr, "--overwrite stopped by signal %d before its first checkpoint: exit %d\n", sig, code);
        if (sig == SIGKILL) {
            assert_int_equal(code, 1000 + SIGKILL);
        } else {
            assert_int_equal(code, 130);
            assert_non_null(strstr(msg, "still holds the earlier run, unchanged"));
            assert_null(strstr(msg, "resume with"));
            char lock[512];
            path_of(lock, sizeof lock, dir, ".lock");
            assert_false(tu_exists(lock)); /* released */
        }
        assert_unchanged(dir, &before, 0);
        assert_int_equal(tnmtl("eval --model %s", dir), 0);
        results_method(dir, method);
        assert_string_equal(method, "laf");
        assert_one_run(dir, id);
        assert_string_equal(id, id0);
    }
    free_snapshot(&before);
    unlink(errf);
    tu_rmtree(dir);
}

/* --overwrite with a checkpoint every step, SIGKILLed at random moments
 * around its first checkpoint: after every kill the folder holds the earlier
 * run byte for byte or the new run's checkpoint; the next writer completes a
 * half-done switch.  The kill comes within a window that widens by a quarter
 * after each kill that lands before the switch, so that a slow machine (or a
 * sanitizer build under load) reaches the switch too. */
static void test_overwrite_killed_around_the_switch(void **state)
{
    (void)state;
    char dir[256], id0[64], id[64];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", dir), 0);
    checkpoint_run_id(dir, id0);
    snapshot before;
    take_snapshot(dir, 0, &before);
    srand(11);
    int kills_before = 0, switched = 0;
    long window_us = 150000; /* the first checkpoint comes within it on an idle machine */
    for (int k = 0; k < 40 && !switched; k++) {
        pid_t pid = tu_spawn(NULL, "train --data synthetic --arch fc256 --batch 2 --steps 100000 --save-every 1 "
                                   "--method stl --quiet --overwrite --out %s", dir);
        usleep((useconds_t)(rand() % window_us));
        kill(pid, SIGKILL);
        assert_int_equal(tu_wait_exit(pid), 1000 + SIGKILL);
        checkpoint_run_id(dir, id);
        if (!strcmp(id, id0)) { /* not switched: the earlier run, intact */
            assert_unchanged(dir, &before, 0);
            assert_int_equal(tnmtl("eval --model %s", dir), 0);
            kills_before++;
            window_us += window_us / 4;
            if (window_us > 5000000) {
                window_us = 5000000; /* 5 s at most */
            }
        } else {
            switched = 1;
        }
    }
    fprintf(stderr, "%d SIGKILLs left the earlier run intact, then one after the switch%s\n", kills_before,
            switched ? "" : " (never reached)");
    assert_true(switched);
    /* a writer (here a resume that trains no further) completes the folder */
    const long long step = checkpoint_run_id(dir, id);
    assert_int_equal(tnmtl("train --resume %s --steps %lld --quiet", dir, step), 0);
    char now_id[64];
    assert_one_run(dir, now_id);
    assert_string_equal(now_id, id);
    free_snapshot(&before);
    tu_rmtree(dir);
}

/* A writer killed between writing history.csv and recording it in run.json
 * (built by hand: the file is newer than its record and still marked as
 * being written): a resume that trains no further writes the report files
 * but leaves the history marked, so the folder still reads as one run. */
static void test_history_killed_mid_write(void **state)
{
    (void)state;
    char dir[256], path[600], id[64];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tnmtl("train " QUICK " --method laf --save-every 10 --out %s", dir), 0);
    cJSON *m = read_json_file(dir, "run.json");
    cJSON *w = cJSON_CreateArray();
    cJSON_AddItemToArray(w, cJSON_CreateString("history.csv"));
    cJSON_ReplaceItemInObjectCaseSensitive(m, "writing", w);
    write_json_file(dir, "run.json", m);
    cJSON_Delete(m);
    path_of(path, sizeof path, dir, "history.csv");
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("31,0.1,0.1,,1.0\n", f); /* the killed writer's next row */
    fclose(f);
    assert_int_equal(tnmtl("eval --model %s", dir), 0);
    assert_int_equal(tnmtl("train --resume %s --steps 30 --quiet", dir), 0);
    assert_one_run(dir, id);
    tu_rmtree(dir);
}

/* Makes run folder dir look as a run SIGKILLed while writing its first
 * checkpoint leaves it: the history written just before that checkpoint and
 * the manifest it made (no model signature yet), a checkpoint's temp file,
 * nothing else. */
static void make_unsaved_start(const char *dir)
{
    snapshot s;
    take_snapshot(dir, 1, &s);
    char path[600];
    for (int i = 0; i < s.n; i++) {
        if (!strcmp(s.name[i], "history.csv") || !strcmp(s.name[i], "run.json")) continue;
        path_of(path, sizeof path, dir, s.name[i]);
        unlink(path);
    }
    free_snapshot(&s);
    cJSON *m = read_json_file(dir, "run.json"), *files = cJSON_CreateArray(), *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(m, "files"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, "history.csv"))
            cJSON_AddItemToArray(files, cJSON_Duplicate(e, 1));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(m, "files", files);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "signature");
    write_json_file(dir, "run.json", m);
    cJSON_Delete(m);
    path_of(path, sizeof path, dir, TNMTL_CHECKPOINT_FILE ".tmp.4242");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("half a checkpoint", f);
    fclose(f);
}

/* Killed while writing its first checkpoint, a run has nothing to resume:
 * --resume says so (exit 2), and the same command, or a compare that owns the
 * folder, starts it again there (it used to be refused as "files of a run",
 * leaving the folder stuck; tests/test_killed_runs.c hit it at random). */
static void test_killed_in_first_checkpoint(void **state)
{
    (void)state;
    char dir[256], cmp[256], sub[600], tmp[600], id[64];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tnmtl("train " QUICK " --method laf --save-every 10 --out %s", dir), 0);
    make_unsaved_start(dir);
    assert_int_equal(tnmtl("train --resume %s --quiet", dir), 2);
    assert_non_null(strstr(out, "killed before its first checkpoint"));
    assert_int_equal(tnmtl("train " QUICK " --method laf --save-every 10 --out %s", dir), 0);
    assert_one_run(dir, id);
    path_of(tmp, sizeof tmp, dir, TNMTL_CHECKPOINT_FILE ".tmp.4242");
    assert_false(tu_exists(tmp)); /* the next write cleaned it up */
    tu_rmtree(dir);
    /* a compare's run, the same */
    fresh_dir(cmp, sizeof cmp);
    assert_int_equal(tnmtl("compare " QUICK " --methods stl --seeds 0 --out %s", cmp), 0);
    path_of(sub, sizeof sub, cmp, "stl-seed0");
    make_unsaved_start(sub);
    assert_int_equal(tnmtl("compare " QUICK " --methods stl --seeds 0 --out %s", cmp), 0);
    assert_one_run(sub, id);
    tu_rmtree(cmp);
}

/* A switch stopped between the rename of the new checkpoint and the removal
 * of the earlier run's files (built by hand): readers refuse it and say how
 * to complete it, the next writer completes it; a marker whose checkpoint
 * never arrived is undone. */
static void test_half_done_switch_is_completed_or_undone(void **state)
{
    (void)state;
    char a[256], b[256], id_a[64], id_b[64], id[64], method[32], marker[512];
    fresh_dir(a, sizeof a);
    fresh_dir(b, sizeof b);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", a), 0);
    assert_int_equal(tnmtl("train " QUICK " --method stl --out %s", b), 0);
    checkpoint_run_id(a, id_a);
    checkpoint_run_id(b, id_b);
    path_of(marker, sizeof marker, a, ".replacing");
    char cmd[2048];
    /* undone: the marker names a run whose checkpoint never replaced A's */
    snprintf(cmd, sizeof cmd, "echo %s > %s", id_b, marker);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl("eval --model %s", a), 0);
    assert_int_equal(tnmtl("train --resume %s --quiet", a), 0);
    assert_false(tu_exists(marker));
    assert_one_run(a, id);
    assert_string_equal(id, id_a);
    /* completed: B's checkpoint is in place, A's other files still there */
    snprintf(cmd, sizeof cmd, "echo %s > %s && cp %s/%s %s/", id_b, marker, b, TNMTL_CHECKPOINT_FILE, a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl("eval --model %s", a), 2);
    assert_non_null(strstr(out, "stopped before removing the earlier run's files"));
    assert_non_null(strstr(out, "tnmtl train --resume"));
    assert_int_equal(tnmtl("train --resume %s --quiet", a), 0);
    assert_false(tu_exists(marker));
    assert_one_run(a, id);
    assert_string_equal(id, id_b);
    results_method(a, method);
    assert_string_equal(method, "stl");
    tu_rmtree(a);
    tu_rmtree(b);
}

/* ---- one writer per folder ---------------------------------------------------------- */

static long lock_pid(const char *dir)
{
    char path[512], text[64];
    path_of(path, sizeof path, dir, ".lock");
    tu_read_text(path, text, sizeof text);
    return atol(text);
}

/* Two writers p[2] (stderr in errf, errg) on one folder: exactly one exits
 * 0, the other 2 naming the first's pid. */
static void one_proceeded(const pid_t *p, const char *errf, const char *errg, const char *what)
{
    const int c0 = tu_wait_exit(p[0]), c1 = tu_wait_exit(p[1]);
    fprintf(stderr, "%s: exits %d and %d\n", what, c0, c1);
    assert_true((c0 == 0 && c1 == 2) || (c0 == 2 && c1 == 0));
    char msg[4096], needle[128];
    tu_read_text(c0 == 2 ? errf : errg, msg, sizeof msg);
    snprintf(needle, sizeof needle, "is being written by another tnmtl process (pid %ld)", (long)(c0 == 2 ? p[1] : p[0]));
    fprintf(stderr, "%s", msg);
    assert_non_null(strstr(msg, needle));
}

static void test_two_train_writers(void **state)
{
    (void)state;
    char dir[256], errf[512], errg[512], needle[128];
    fresh_dir(dir, sizeof dir);
    snprintf(errf, sizeof errf, "%s.err1", dir);
    snprintf(errg, sizeof errg, "%s.err2", dir);
    /* started one after the other: the second is refused at once, naming the first */
    pid_t first = tu_spawn(errf, "train " LONG " --save-every 50 --method laf --out %s", dir);
    wait_for_text(errf, "training laf");
    assert_int_equal(lock_pid(dir), first);
    snprintf(needle, sizeof needle, "is being written by another tnmtl process (pid %ld)", (long)first);
    const char *second[] = {"train " QUICK " --out %s", "train " QUICK " --overwrite --out %s", "train --resume %s",
                            "compare " QUICK " --methods stl --out %s"};
    for (size_t i = 0; i < sizeof second / sizeof second[0]; i++) {
        const double t0 = tu_now();
        assert_int_equal(tnmtl(second[i], dir), 2);
        fprintf(stderr, "second writer refused in %.3f s: %s", tu_now() - t0, out);
        assert_true(tu_now() - t0 < 2.0);
        assert_non_null(strstr(out, needle));
    }
    /* readers need no lock: eval works while the writer saves checkpoints */
    char ckpt[512];
    path_of(ckpt, sizeof ckpt, dir, TNMTL_CHECKPOINT_FILE);
    const double t0 = tu_now();
    while (!tu_exists(ckpt) && tu_now() - t0 < 20) usleep(1000);
    for (int i = 0; i < 5; i++) assert_int_equal(tnmtl("eval --model %s", dir), 0);
    kill(first, SIGINT);
    assert_int_equal(tu_wait_exit(first), 130);
    char id[64];
    checkpoint_run_id(dir, id);
    assert_int_equal(strlen(id), 32);
    assert_false(lock_pid(dir)); /* released: no lock file */

    /* started together: exactly one proceeds, the other exits 2 naming its pid */
    char dir2[256];
    fresh_dir(dir2, sizeof dir2);
    pid_t p[2];
    for (int i = 0; i < 2; i++)
        p[i] = tu_spawn(i ? errg : errf, "train --data synthetic --arch fc256 --batch 2 --steps 600 --method laf "
                                         "--quiet --out %s", dir2);
    one_proceeded(p, errf, errg, "two writers started together");
    assert_one_run(dir2, id);
    unlink(errf);
    unlink(errg);
    tu_rmtree(dir2);
    tu_rmtree(dir);
}

/* Two compare processes on one folder: one proceeds, the other exits 2
 * naming it; `train` into the folder or one of its runs is refused too. */
static void test_two_compare_writers(void **state)
{
    (void)state;
#define CMP "compare --data synthetic --arch fc256 --batch 2 --methods stl,laf --steps 600 --quiet --out "
    char dir[256], errf[512], errg[512], sub[512], id[64];
    fresh_dir(dir, sizeof dir);
    snprintf(errf, sizeof errf, "%s.err1", dir);
    snprintf(errg, sizeof errg, "%s.err2", dir);
    pid_t p[2];
    for (int i = 0; i < 2; i++) p[i] = tu_spawn(i ? errg : errf, CMP "%s", dir);
    /* while it runs: a train into the folder, or into its first run, is refused */
    snprintf(sub, sizeof sub, "%s/stl-seed0", dir);
    const double t0 = tu_now();
    while (!tu_exists(sub) && tu_now() - t0 < 20) usleep(1000);
    assert_int_equal(tnmtl("train " QUICK " --out %s", dir), 2);
    assert_non_null(strstr(out, "is being written by another tnmtl process (pid "));
    assert_int_equal(tnmtl("train " QUICK " --out %s", sub), 2);
    one_proceeded(p, errf, errg, "two compares on one folder");
    /* the folder: two runs, each one run, and the table of the winner */
    assert_one_run(sub, id);
    snprintf(sub, sizeof sub, "%s/laf-seed0", dir);
    assert_one_run(sub, id);
    char table[512];
    path_of(table, sizeof table, dir, "table.md");
    assert_true(tu_exists(table));
    /* the same command again reads both runs back */
    assert_int_equal(tnmtl(CMP "%s", dir), 0);
    unlink(errf);
    unlink(errg);
    tu_rmtree(dir);
#undef CMP
}

/* ---- a folder is one run ------------------------------------------------------------------- */

static void test_mixed_folder_refused(void **state)
{
    (void)state;
    char a[256], b[256], pristine[512], cmd[2048];
    fresh_dir(a, sizeof a);
    fresh_dir(b, sizeof b);
    snprintf(pristine, sizeof pristine, "%s/pristine", b);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", a), 0);
    assert_int_equal(tnmtl("train " QUICK " --method tucker --out %s/run", b), 0);
    snprintf(cmd, sizeof cmd, "cp -a %s %s", a, pristine);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    /* a file of run b in a; what the refusal must name */
    static const struct {
        const char *file, *needle;
    } cases[] = {
        {"sharing.json", "/sharing.json does not belong to the run in"},
        {"relatedness_layer1.csv", "/relatedness_layer1.csv does not belong to the run in"},
        {"results.json", "/results.json does not belong to the run in"},
        {TNMTL_CHECKPOINT_FILE, "are of two different runs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && cp -a %s %s && cp %s/run/%s %s/", a, pristine, a, b, cases[i].file, a);
        assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
        snapshot before;
        take_snapshot(a, 1, &before);
        const char *readers[] = {"eval --model %s", "train --resume %s --quiet"};
        for (int r = 0; r < 2; r++) {
            assert_int_equal(tnmtl(readers[r], a), 2);
            fprintf(stderr, "%s", out);
            assert_non_null(strstr(out, cases[i].needle));
            assert_non_null(strstr(out, a));
        }
        assert_unchanged(a, &before, 1); /* refused before anything was written */
        free_snapshot(&before);
    }
    /* a report file the run never wrote (a layer it does not have) */
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -a %s %s && cp %s/similarity.csv %s/similarity_layer7.csv", a, pristine, a,
             a, a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl("eval --model %s", a), 2);
    assert_non_null(strstr(out, "similarity_layer7.csv does not belong"));
    assert_non_null(strstr(out, "run.json does not record it"));
    tnmtl_error err;
    assert_int_equal(runfolder_verify(a, NULL, NULL, 1, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "similarity_layer7.csv does not belong"));
    /* the intact folder passes */
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -a %s %s", a, pristine, a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl("eval --model %s", a), 0);
    assert_int_equal(runfolder_verify(a, NULL, NULL, 1, &err), TNMTL_OK);
    /* without its checkpoint: the id of run.json */
    snprintf(cmd, sizeof cmd, "rm %s/%s && cp %s/run/results.json %s/", a, TNMTL_CHECKPOINT_FILE, b, a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(runfolder_verify(a, NULL, NULL, 1, &err), TNMTL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "results.json does not belong"));

    /* compare: a finished run holding a file of another run is refused */
    char c[512];
    snprintf(c, sizeof c, "%s/cmp", b);
#define CMP "compare --data synthetic --arch fc16 --steps 10 --methods stl,laf --quiet --out "
    assert_int_equal(tnmtl(CMP "%s", c), 0);
    snprintf(cmd, sizeof cmd, "cp %s/run/sharing.json %s/laf-seed0/", b, c);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl(CMP "%s", c), 2);
    assert_non_null(strstr(out, "laf-seed0/sharing.json does not belong"));
    /* a run of other options inside: refused, replaced with --overwrite */
    snprintf(cmd, sizeof cmd, "rm -rf %s/laf-seed0 && cp -a %s/run %s/laf-seed0", c, b, c);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl(CMP "%s", c), 2);
    assert_non_null(strstr(out, "made with other options"));
    assert_non_null(strstr(out, "--overwrite"));
    assert_int_equal(tnmtl(CMP "%s --overwrite", c), 0);
    char sub[600], id[64];
    snprintf(sub, sizeof sub, "%s/laf-seed0", c);
    assert_one_run(sub, id);
#undef CMP
    tu_rmtree(a);
    tu_rmtree(b);
}

/* dir as a run written before run ids existed: no run id in its checkpoint
 * and results.json, no run.json. */
static void make_older_run(const char *dir)
{
    char path[1024];
    path_of(path, sizeof path, dir, TNMTL_CHECKPOINT_FILE);
    tnmtl_st_file *f;
    tnmtl_error err;
    assert_int_equal(tnmtl_st_load(path, 0, &f, &err), TNMTL_OK);
    tnmtl_st_tensor t[64];
    tnmtl_st_meta meta[16];
    const int n = tnmtl_st_count(f), n_meta = tnmtl_st_meta_count(f);
    assert_true(n <= 64 && n_meta <= 16);
    for (int i = 0; i < n; i++) t[i] = *tnmtl_st_at(f, i);
    char *config = NULL;
    for (int i = 0; i < n_meta; i++) {
        meta[i] = *tnmtl_st_meta_at(f, i);
        if (strcmp(meta[i].key, "config")) continue;
        cJSON *c = cJSON_Parse(meta[i].value);
        assert_non_null(cJSON_GetObjectItemCaseSensitive(c, "run_id"));
        cJSON_DeleteItemFromObjectCaseSensitive(c, "run_id");
        meta[i].value = config = cJSON_PrintUnformatted(c);
        cJSON_Delete(c);
    }
    assert_non_null(config);
    assert_int_equal(tnmtl_st_save(path, t, n, meta, n_meta, &err), TNMTL_OK);
    free(config);
    tnmtl_st_free(f);
    cJSON *r = read_json_file(dir, "results.json");
    cJSON_DeleteItemFromObjectCaseSensitive(r, "run_id");
    cJSON_DeleteItemFromObjectCaseSensitive(r, "signature");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "config"), "run_id");
    write_json_file(dir, "results.json", r);
    cJSON_Delete(r);
    path_of(path, sizeof path, dir, "run.json");
    assert_int_equal(unlink(path), 0);
}

/* Runs written before run ids existed: read and continued as before
 * (without identity), still protected from overwriting, replaced by
 * --overwrite; a newer run's file among them is refused. */
static void test_older_runs_without_identity(void **state)
{
    (void)state;
    char a[256], b[256], id[64], cmd[2048], path[512];
    fresh_dir(a, sizeof a);
    fresh_dir(b, sizeof b);
    assert_int_equal(tnmtl("train " QUICK " --method laf --out %s", a), 0);
    assert_int_equal(tnmtl("train " QUICK " --method stl --out %s", b), 0);
    make_older_run(a);
    checkpoint_run_id(a, id);
    assert_string_equal(id, "");
    assert_int_equal(tnmtl("eval --model %s", a), 0);
    assert_int_equal(tnmtl("train --resume %s --steps 35 --quiet", a), 0);
    checkpoint_run_id(a, id);
    assert_string_equal(id, ""); /* continued as it was */
    path_of(path, sizeof path, a, "run.json");
    assert_false(tu_exists(path));
    assert_int_equal(tnmtl("train " QUICK " --out %s", a), 2);
    assert_non_null(strstr(out, "already holds a finished laf run (step 35 of 35"));
    /* a newer run's results.json among its files */
    snprintf(cmd, sizeof cmd, "cp -a %s %s.copy && cp %s/results.json %s.copy/", a, a, b, a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    assert_int_equal(tnmtl("eval --model %s.copy", a), 2);
    assert_non_null(strstr(out, ".copy/results.json does not belong"));
    assert_non_null(strstr(out, "carries no run id"));
    snprintf(cmd, sizeof cmd, "rm -rf %s.copy", a);
    assert_int_equal(tu_run(cmd, 0, NULL, 0), 0);
    /* replaced by --overwrite: then one run with an identity */
    assert_int_equal(tnmtl("train " QUICK " --method stl --overwrite --out %s", a), 0);
    assert_one_run(a, id);
    tu_rmtree(a);
    tu_rmtree(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_a_folder_holding_a_run),
        cmocka_unit_test(test_overwrite_replaces_the_run),
        cmocka_unit_test(test_overwrite_killed_before_first_checkpoint),
        cmocka_unit_test(test_overwrite_killed_around_the_switch),
        cmocka_unit_test(test_half_done_switch_is_completed_or_undone),
        cmocka_unit_test(test_history_killed_mid_write),
        cmocka_unit_test(test_killed_in_first_checkpoint),
        cmocka_unit_test(test_two_train_writers),
        cmocka_unit_test(test_two_compare_writers),
        cmocka_unit_test(test_mixed_folder_refused),
        cmocka_unit_test(test_older_runs_without_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
