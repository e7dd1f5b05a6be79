/* cmd_train.c - `tnmtl train` and `tnmtl eval`. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"
#include "runfolder.h"
#include "session.h"
#include "tnmtl/checkpoint.h"
#include "tnmtl/report.h"
#include "util.h"

static const char train_usage[] =
    "usage: tnmtl train [OPTIONS]\n"
    "       tnmtl train --resume DIR [--steps N] [--threads N] [--quiet]\n\n"
    "Trains one multi-task model and prints its evaluation as one JSON object.\n\n"
    "output:\n"
    "  --out DIR            save checkpoints, the sharing report and results.json there\n"
    "                       (a folder holding another run is refused; one writer at a time)\n"
    "  --resume DIR         continue the run saved in DIR exactly where it stopped\n"
    "  --overwrite          replace the run in --out DIR; it is kept until the new run's\n"
    "                       first checkpoint\n"
    "  --config FILE        start from the options in FILE (the JSON a run stores in\n"
    "                       results.json's \"config\", or tune's chosen.json); options\n"
    "                       given after it on the command line override it\n"
    "  --quiet              no progress output\n";

typedef struct train_args {
    run_options o;
    const char *out_dir, *resume;
    int quiet, overwrite, in_place; /* in_place: --resume continues in its own folder */
    int64_t resume_steps;           /* --steps given with --resume, else -1 */
} train_args;

/* The command line into *a; -1 to go on, else the exit code (--help, or a
 * usage error, already printed). */
static int parse_train_args(int argc, char **argv, train_args *a)
{
    *a = (train_args){.resume_steps = -1};
    run_options_init(&a->o);
    const char *fixed_by_resume = NULL; /* an option a resumed run cannot change */
    tnmtl_error err = {0};
    /* --config first, wherever it is: the other options refine it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config")) continue;
        if (i + 1 >= argc) return cli_usage_error("train", "--config needs a file");
        if (run_options_read_file(argv[i + 1], &a->o, &err)) return cli_usage_error("train", "%s", err.msg);
        fixed_by_resume = "--config";
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s\n%s", train_usage, run_options_help);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "--overwrite")) {
            *(!strcmp(argv[i], "--quiet") ? &a->quiet : &a->overwrite) = 1;
            continue;
        }
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--resume")) {
            if (i + 1 >= argc) return cli_usage_error("train", "%s needs a directory", argv[i]);
            *(!strcmp(argv[i], "--out") ? &a->out_dir : &a->resume) = argv[i + 1];
            i++;
            continue;
        }
        const char *given = argv[i];
        int r = run_parse_option(&a->o, argc, argv, &i, &err);
        if (r < 0) return cli_usage_error("train", "%s", err.msg);
        if (r == 0) return cli_usage_error("train", "unknown option '%s'", argv[i]);
        if (!strcmp(given, "--steps")) a->resume_steps = a->o.steps;
        else if (strcmp(given, "--threads") && strcmp(given, "--dist-norm")) fixed_by_resume = given;
    }
    if (a->resume && fixed_by_resume)
        return cli_usage_error("train", "%s cannot be changed when resuming (only --steps, --threads, --dist-norm, "
                               "--out, --quiet)",
                               fixed_by_resume);
    a->in_place = a->resume && (!a->out_dir || !strcmp(a->out_dir, a->resume));
    if (a->overwrite && (!a->out_dir || a->in_place))
        return cli_usage_error("train", "--overwrite needs --out DIR (the folder whose run the new one replaces)");
    if (a->resume && !a->out_dir) a->out_dir = a->resume;
    return -1;
}

/* The session to train: the run saved in --resume, with the options a
 * resumed run may change, or a new one from the options. */
static tnmtl_status open_session(const train_args *a, session *s, tnmtl_error *err)
{
    if (!a->resume) return session_start(s, &a->o, NULL, err);
    tnmtl_status st = session_resume(s, a->resume, NULL, err);
    if (st) return st;
    st = session_verify_folder(s, a->resume, err);
    if (!st && a->resume_steps >= 0) s->opts.steps = a->resume_steps;
    if (!st && a->o.threads > 0) st = tnmtl_mtl_set_threads(s->model, a->o.threads, err);
    if (!st) tnmtl_mtl_set_dist_norm(s->model, s->opts.dist_norm_split = a->o.dist_norm_split);
    if (st) session_free(s);
    return st;
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    const int parsed = parse_train_args(argc, argv, &a);
    if (parsed >= 0) return parsed;
    tnmtl_error err = {0};
    /* The output folder first, before loading anything: a second writer, or
     * a folder holding another run, is refused at once. */
    runfolder rf = {.lock_fd = -1};
    const int writes = a.out_dir && cli_is_writer(); /* under mpirun the writer holds the folder for every process */
    if (writes && runfolder_claim(&rf, a.out_dir, "run",
                                  a.in_place ? RUNFOLDER_RESUME : a.overwrite ? RUNFOLDER_OVERWRITE : RUNFOLDER_NEW,
                                  NULL, &err))
        return cli_fail("train", &err);
    /* The others read a resumed run only once the writer holds the folder
     * (a claim may complete an interrupted replacement). */
    session s;
    tnmtl_status st = tnmtl_dist_barrier(cli_dist, &err);
    if (!st) st = open_session(&a, &s, &err);
    if (st) {
        runfolder_release(&rf);
        return cli_fail("train", &err);
    }
    if (writes) { /* continued in place: the run's own identity; else the new one */
        if (a.in_place) runfolder_adopt(&rf, s.opts.run_id);
        else snprintf(s.opts.run_id, sizeof s.opts.run_id, "%s", rf.run_id);
        s.folder = &rf;
    }
    cli_catch_stop_signals();
    cJSON *result = NULL;
    st = session_train(&s, a.out_dir, a.quiet, &cli_stop_requested, &err);
    if (st) {
        int code = cli_fail("train", &err);
        if (cli_stop_requested && a.out_dir && !rf.replacing)
            fprintf(stderr, "tnmtl train: resume with: tnmtl train --resume %s\n", a.out_dir);
        session_free(&s);
        runfolder_release(&rf);
        return cli_stop_requested ? 130 : code;
    }
    st = session_evaluate(&s, a.out_dir, &result, &err);
    runfolder_release(&rf);
    if (st) {
        session_free(&s);
        return cli_fail("train", &err);
    }
    char *text = cJSON_Print(result);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(result);
    if (!a.quiet) session_print_sharing(&s, stderr);
    session_free(&s);
    return EXIT_OK;
}

static const char eval_usage[] =
    "usage: tnmtl eval --model DIR\n\n"
    "Evaluates a saved model on the data and split it was trained with and\n"
    "prints one JSON object (per-task accuracy or RMSE, their mean, sharing).\n";

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL;
    tnmtl_error err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", eval_usage);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
            continue;
        }
        return cli_usage_error("eval", "unknown option or missing value '%s'", argv[i]);
    }
    if (!model) return cli_usage_error("eval", "--model DIR is required");
    session s;
    tnmtl_status st = session_resume(&s, model, NULL, &err);
    if (!st && (st = session_verify_folder(&s, model, &err))) session_free(&s);
    if (st) return cli_fail("eval", &err);
    cJSON *result = NULL;
    st = session_evaluate(&s, NULL, &result, &err);
    if (st) {
        session_free(&s);
        return cli_fail("eval", &err);
    }
    char *text = cJSON_Print(result);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(result);
    session_free(&s);
    return EXIT_OK;
}
